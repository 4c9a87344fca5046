"""Sending e-mail: through SMTP when configured, to the log in development, else not at all."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from voix import logs
from voix.settings import get_settings

logger = logging.getLogger("voix.mail")


def available() -> bool:
    return get_settings().mail_mode is not None


def _send_smtp(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            parts.hostname or "", parts.port or 465, context=context, timeout=20
        )
    else:
        server = smtplib.SMTP(parts.hostname or "", parts.port or 587, timeout=20)
        server.starttls(context=context)
    with server:
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        server.send_message(message)


async def send(to: str, subject: str, body: str) -> None:
    settings = get_settings()
    if settings.mail_mode is None:
        return
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, to, subject
    message.set_content(body)
    if settings.mail_mode == "log":
        logger.info(
            "E-mail (not sent, no SMTP configured) to %s: %s\n%s",
            to,
            subject,
            body,
            extra={logs.KEEP_SECRETS: True},  # development only: its links must work from here
        )
        return
    assert settings.smtp_url  # noqa: S101 - mail_mode "smtp" means it is set
    await anyio.to_thread.run_sync(_send_smtp, settings.smtp_url, message)
