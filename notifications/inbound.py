"""Received SMS ("STOP") and the opt-out link of every e-mail: both take effect at once.

- POST /notifications/sms/inbound/{token}: the SMS provider posts what residents answer
  (token = settings.sms_inbound_token; 404 when unset or wrong, compared in constant time; no
  CSRF, a server calls it). JSON or a form with "from" and "text"; Brevo's "replied" event
  too (the resident's number in "to", the answer in "reply"). A text whose first word is
  STOP, ARRET, ARRÊT or STOPSMS (any case) withdraws the SMS consent of every account with
  that number, records sms_stopped_at and cancels their SMS still waiting.
- GET /notifications/stop/{token}: the link in an e-mail (signed: who, which channel) shows
  what it would stop and changes nothing (mail scanners open links); POST (with the form's
  CSRF token) withdraws that channel's consent and cancels what was waiting to go by it.
"""

from __future__ import annotations

import hmac
import json
import logging
import unicodedata
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from accounts.models import User
from audit import services as audit
from notifications import delivery, providers, services  # delivery: its job handlers register
from notifications.models import EMAIL, SMS
from voix import db
from voix.permissions import Principal
from voix.settings import get_settings
from voix.web import page, redirect

logger = logging.getLogger("voix.notifications")

STOP_WORDS = frozenset({"STOP", "ARRET", "STOPSMS"})
StopToken = Annotated[str, PathParameter(max_length=80)]  # read by delivery.read_stop_token
InboundToken = Annotated[str, PathParameter(max_length=200)]

__all__ = ["ROUTES", "delivery"]


def is_stop(text: str) -> bool:
    """ "stop", "Arrêt merci", "STOP SMS"… : the first word, accents and case aside."""
    words = text.split()
    if not words:
        return False
    bare = "".join(
        c for c in unicodedata.normalize("NFD", words[0]) if not unicodedata.combining(c)
    )
    return bare.upper().strip(".!,;") in STOP_WORDS


async def stop_sms(phone: str) -> int:
    """Withdraws SMS consent of every account with this number; how many accounts."""
    number = providers.e164(phone)
    if number is None:
        return 0
    # Numbers may be kept as typed ("06 12 34 56 78", "0 6 1 2 …"): every number on file is
    # compared in its E.164 form. A STOP is rare and the accounts with a phone are an
    # association's residents (thousands at most): a scan, not an index, and never a miss.
    candidates = await User.select(User.id, User.phone, User.display_name).where(
        User.phone.is_not_null() & (User.phone != "")
    )
    users = [row for row in candidates if providers.e164(row["phone"]) == number]
    for user in users:
        user_id = user["id"]
        async with db.write_transaction():
            cancelled = await services.withdraw(user_id, SMS, stop=True)
            await audit.record(
                Principal(user_id=user_id, display_name=user["display_name"]),
                "channels.changed",
                subject=f"user:{user_id}",
                sms=False,
                via="STOP",
            )
        logger.info("STOP received: account %s gets no SMS (%s cancelled)", user_id, cancelled)
    return len(users)


async def _inbound_fields(request: Request) -> dict[str, Any]:
    if "json" in (request.headers.get("content-type") or ""):
        try:
            data = json.loads(await request.body())
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    form = await request.form()
    return {key: form.get(key) for key in form}


@post(
    "/notifications/sms/inbound/{token:str}",
    exclude_from_csrf=True,
    include_in_schema=False,
    status_code=200,
)
async def inbound_sms(request: Request, token: InboundToken) -> Response[dict[str, str]]:
    expected = get_settings().sms_inbound_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotFoundException()
    data = await _inbound_fields(request)
    sender = data.get("from") or data.get("msisdn") or data.get("to")
    text = data.get("text") or data.get("reply") or data.get("message") or ""
    if isinstance(sender, str | int) and isinstance(text, str) and is_stop(text):
        await stop_sms(str(sender))
    # The same answer whatever was found: the provider only needs to know it arrived.
    return Response({"status": "ok"})


async def _holder(token: str) -> tuple[dict[str, Any], str]:
    """The account and channel a link stops; 404 for a forged link or an erased account."""
    holder = await delivery.read_stop_token(token)
    user = None
    if holder is not None:
        user = await User.select(User.id, User.display_name).where(User.id == holder[0]).first()
    if holder is None or user is None:
        raise NotFoundException()
    return user, holder[1]


@get("/notifications/stop/{token:str}", name="notifications_stop")
async def stop_form(
    request: Request, principal: NamedDependency[Principal], token: StopToken
) -> Template:
    user, channel = await _holder(token)
    current = await services.preference(user["id"])
    consented = current["sms_consent_at" if channel == SMS else "email_consent_at"] is not None
    template = "notifications/stop.html" if consented else "notifications/stopped.html"
    return page(request, template, token=token, channel=channel)


@post("/notifications/stop/{token:str}")
async def stop(token: StopToken) -> Redirect:
    user, channel = await _holder(token)
    user_id = user["id"]
    async with db.write_transaction():
        current = await services.preference(user_id)
        # This channel only: the other is left as it is (its consent is not given again).
        await services.withdraw(user_id, channel)
        chosen = {
            "sms": channel != SMS and current["sms_consent_at"] is not None,
            "email": channel != EMAIL and current["email_consent_at"] is not None,
            "email_digest": bool(current["email_digest"]),
        }
        await audit.record(
            Principal(user_id=user_id, display_name=user["display_name"]),
            "channels.changed",
            None,
            subject=f"user:{user_id}",
            via="opt-out link",
            **chosen,
        )
    logger.info("Opt-out link: account %s gets no %s", user_id, channel)
    return redirect(f"/notifications/stop/{token}")


ROUTES: list[Any] = [inbound_sms, stop_form, stop]
