"""Sending one SMS or one e-mail, and telling apart what surely failed from what may have gone.

SMS providers (settings.sms_mode):
- "log": development; a line in the log ("voix.notifications"), nothing sent.
- "brevo": Brevo's transactional SMS API (a French provider): POST settings.sms_url with the
  account's api-key; the recipient in international form without "+", "unicodeEnabled" when
  the text needs UCS-2.
- "webhook": a JSON POST to settings.sms_url for any other gateway, with a bearer token when
  sms_api_key is set, and the delivery's id as Idempotency-Key: a gateway that honours it never
  sends one delivery twice.

How a call ends decides what happens next (notifications.delivery):
- it worked: sent;
- `DefiniteFailure`: nothing can have gone (no connection, or the provider answered with an
  error status): tried again later;
- `Uncertain`: the request was written and no answer came (a time-out, a connection cut while
  waiting): the provider may have sent it, so it is never sent again automatically.
Whether the request was written is known from httpcore's trace of the exchange, not guessed
from the kind of exception.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import anyio.to_thread

from accounts import mail
from notifications import sms
from voix import logs
from voix.settings import get_settings

logger = logging.getLogger("voix.notifications")

CONNECT_SECONDS = 5.0
TOTAL_SECONDS = 15.0


_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"\+?\d[\d .()/-]{4,}\d")


def redact(text: str) -> str:
    """An error as coordinators may read it: a provider or mail server that echoes a phone
    number or an address back has it masked (the error is kept, the person is not)."""
    return _NUMBER.sub("[number]", _ADDRESS.sub("[address]", text))


class SendError(Exception):
    """The message did not surely go."""


class DefiniteFailure(SendError):
    """Nothing went: safe to try again."""


class Uncertain(SendError):
    """It may have gone: never to be sent again automatically."""


class NotConfigured(SendError):
    """No provider for this channel (SMS or e-mail is off on this site)."""


@dataclass(frozen=True)
class Sms:
    to: str  # E.164, "+33612345678"
    text: str
    id: int  # the delivery's: the idempotency key

    @property
    def encoding(self) -> str:
        return sms.encoding(self.text)

    @property
    def segments(self) -> int:
        return sms.segments(self.text)


# Phone numbers ---------------------------------------------------------------------------

_NOT_DIGITS = re.compile(r"[\s.()\-]")


def e164(phone: str | None) -> str | None:
    """A number as residents type it, in E.164: "06 12 34 56 78" → "+33612345678",
    "0033 6…" → "+336…", "33612345678" (as providers write it) → "+33612345678", "+212 6…"
    kept; None when it is not a number."""
    digits = _NOT_DIGITS.sub("", (phone or "").strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    number: str | None = None
    if digits.startswith("+") and digits[1:].isdigit():
        number = digits[1:]
        if number.startswith("330"):  # "+33 06…": the trunk zero typed after the country code
            number = "33" + number[3:]
    elif digits.isdigit() and len(digits) == 10 and digits.startswith("0"):  # French, national
        number = "33" + digits[1:]
    elif digits.isdigit() and len(digits) == 9 and digits[0] in "67":  # its zero forgotten
        number = "33" + digits
    elif digits.isdigit() and len(digits) >= 11:  # international without "+": 33612345678
        number = digits
    return f"+{number}" if number and 8 <= len(number) <= 15 else None


# SMS -------------------------------------------------------------------------------------


async def send_sms(message: Sms) -> None:
    """Sends by the configured provider; raises a SendError when it did not surely go."""
    settings = get_settings()
    mode = settings.sms_mode
    if mode == "log":
        logger.info(
            "SMS (not sent, log mode) to %s, %s, %s segment(s):\n%s",
            message.to,
            message.encoding,
            message.segments,
            message.text,
            extra={logs.KEEP_SECRETS: True},  # development only: its link must work from here
        )
        return
    if mode == "brevo":
        await _post(
            settings.sms_url or "",
            {
                "sender": settings.sms_sender,
                "recipient": message.to.removeprefix("+"),  # Brevo wants 33612345678
                "content": message.text,
                "type": "transactional",
                "unicodeEnabled": message.encoding == sms.UCS2,
            },
            {"api-key": settings.sms_api_key or "", "accept": "application/json"},
        )
        return
    if mode == "webhook":
        headers = {"Idempotency-Key": str(message.id)}
        if settings.sms_api_key:
            headers["Authorization"] = f"Bearer {settings.sms_api_key}"
        await _post(
            settings.sms_url or "",
            {
                "to": message.to,
                "text": message.text,
                "encoding": message.encoding,
                "segments": message.segments,
                "id": message.id,
            },
            headers,
        )
        return
    raise NotConfigured("no SMS provider is configured")


async def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    """One POST, at most TOTAL_SECONDS; its failure classified as definite or uncertain."""
    import httpx  # noqa: PLC0415 — 0.1 s at start-up for what only the sending job does

    written = False

    async def trace(event: str, _info: dict[str, Any]) -> None:
        nonlocal written
        if event.endswith("send_request_body.complete"):
            written = True

    timeout = httpx.Timeout(TOTAL_SECONDS, connect=CONNECT_SECONDS)
    try:
        async with asyncio.timeout(TOTAL_SECONDS):
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
                response = await client.post(
                    url, json=body, headers=headers, extensions={"trace": trace}
                )
    except (TimeoutError, httpx.TransportError) as error:
        what = redact(f"{type(error).__name__}: {error}".rstrip(": "))
        if written and not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
            raise Uncertain(f"sent, no answer ({what})") from error
        raise DefiniteFailure(f"not sent ({what})") from error
    if response.status_code >= 400:
        raise DefiniteFailure(f"HTTP {response.status_code}: {redact(response.text[:300])}")


# E-mail ----------------------------------------------------------------------------------


async def send_email(
    to: str, subject: str, body: str, *, unsubscribe: str | None = None, message_id: int
) -> None:
    """accounts.mail's sending (the log in development, SMTP otherwise), with the
    List-Unsubscribe headers (RFC 2369, RFC 8058 one-click) when given a link."""
    settings = get_settings()
    if settings.mail_mode is None:
        raise NotConfigured("no e-mail is configured")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, to, subject
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["X-Voix-Delivery"] = str(message_id)
    message.set_content(body)
    if settings.mail_mode == "log":
        mail.logger.info(
            "E-mail (not sent, no SMTP configured) to %s: %s\n%s",
            to,
            subject,
            body,
            extra={logs.KEEP_SECRETS: True},  # development only: its links must work from here
        )
        return
    assert settings.smtp_url  # noqa: S101 - mail_mode "smtp" means it is set
    try:
        await anyio.to_thread.run_sync(mail._send_smtp, settings.smtp_url, message)
    except (TimeoutError, ConnectionResetError, smtplib.SMTPServerDisconnected) as error:
        # No answer, or the line cut: the server may have taken the message.
        raise Uncertain(redact(f"{type(error).__name__}: {error}")) from error
    except OSError as error:
        # Refused, unknown host, or the server answered with an error code
        # (smtplib.SMTPResponseException): it did not take the message.
        raise DefiniteFailure(redact(f"{type(error).__name__}: {error}")) from error
