"""A facilitator's message to a table's members, and the coordinators' view of deliveries.

The message is written on a page reached from a meeting: those who run the meeting's table
("meetings.manage") preview who receives it by which channel and what the SMS costs, then send
it. The form carries a one-time token, the event's key: a form sent twice (a double click, a
reload) is one event, since `services.emit` records a key once ever. Channels the sender left
unticked lose their deliveries in the same transaction, before any sender can see them.

Coordinators (and administrators) see what went wrong with their organisation's deliveries:
failed, uncertain, waiting to be tried again, or late in the queue; and put a failed or
uncertain one back in the queue, which only they may decide (an uncertain SMS may have reached
its reader already).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from babel.numbers import format_currency, format_decimal
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from piccolo.query.functions.aggregate import Count

from audit import services as audit
from meetings import services as meetings
from notifications import messages, services, sms
from notifications.models import (
    BUNDLED,
    CANCELLED,
    CHANNELS,
    EMAIL,
    FAILED,
    QUEUED,
    RETRY,
    SENT,
    SMS,
    UNCERTAIN,
    Delivery,
    Event,
    Notification,
    Preference,
)
from tables import services as tables
from tables.models import Membership
from voix import db, i18n, jobs
from voix.forms import Form, FormErrors, Message, parse_int
from voix.i18n import N_
from voix.permissions import Principal, Scope, require
from voix.settings import get_settings
from voix.web import ObjectId, Slug, form_data, page, redirect

# Who may write to a table's members: those who run its meetings.
MESSAGE_ACTION = "meetings.manage"
# Who sees and retries an organisation's deliveries: its coordinators, and administrators.
DELIVERIES_ACTION = "organisation.settings"

KIND = "message"
MESSAGE_MAX = 300
PAGE_SIZE = 50
LATE = timedelta(minutes=10)  # queued and due longer ago than this: something is stuck
WEEK = timedelta(days=7)
ERROR_SHOWN = 160  # characters of a delivery's last error shown in a row

NO_HTML = N_("Please write plain text: HTML tags are not allowed.")
EXPIRED = N_("This form has expired. Check the message, then send it again.")

_TOKEN = re.compile(r"[0-9a-f]{32}")
_TAG = re.compile(r"<[A-Za-z!?/]")  # "<b>", "</p>", "<!--"; not "a < b" nor "<3"

# What each event is about, as the coordinators' page names it.
KIND_LABELS = {
    "meeting.scheduled": N_("Meeting scheduled"),
    "meeting.changed": N_("Meeting changed"),
    "meeting.cancelled": N_("Meeting cancelled"),
    "meeting.reminder": N_("Meeting reminder"),
    "vote.opened": N_("Vote opened"),
    "vote.closing": N_("Vote closing soon"),
    "vote.result": N_("Vote result"),
    "proposal.status": N_("Proposal status changed"),
    "institution.answer": N_("Institution's answer"),
    "minutes.published": N_("Minutes published"),
    KIND: N_("Message from the facilitators"),
}
CHANNEL_LABELS = {SMS: N_("By SMS"), EMAIL: N_("By e-mail")}
STATUS_LABELS = {
    QUEUED: N_("Late in the queue"),
    RETRY: N_("Waiting to be tried again"),
    FAILED: N_("Failed"),
    UNCERTAIN: N_("Uncertain"),
    SENT: N_("Sent"),
    CANCELLED: N_("Cancelled before sending"),
    BUNDLED: N_("Grouped with another"),
}
PROBLEMS = (FAILED, UNCERTAIN, RETRY)
RETRYABLE = (FAILED, UNCERTAIN)
WEEK_STATUSES = (SENT, FAILED, UNCERTAIN, CANCELLED, BUNDLED)


# The message ------------------------------------------------------------------------------


@dataclass
class SmsSample:
    """The SMS in one language, as it will read, and what it costs."""

    language: str
    text: str
    alphabet: str
    length: int
    segments: int
    recipients: int = 0


@dataclass
class Preview:
    site: int = 0
    sms: int = 0
    email_now: int = 0
    email_digest: int = 0
    samples: list[SmsSample] = field(default_factory=list)
    segments: int = 0
    cost: str = ""
    price: str = ""


def new_token() -> str:
    return uuid4().hex


def event_key(token: str) -> str:
    return f"{KIND}:{token}"


def _event(
    table: Mapping[str, Any], author: str, text: str, author_id: int | None = None
) -> dict[str, Any]:
    # The author's id lets an erasure find the messages that carry their name.
    return {
        "kind": KIND,
        "params": {"table": table["name"], "author": author, "author_id": author_id, "text": text},
        "path": f"/tables/{table['slug']}",
    }


def _language(code: str | None) -> str:
    return i18n.normalise(code) or i18n.DEFAULT_LANGUAGE


def sms_sample(event: Mapping[str, Any], language: str) -> SmsSample:
    """The SMS as `language`'s readers will get it: French typography fitted to GSM-7."""
    text = sms.fit(messages.render(event, language, "sms").text)
    return SmsSample(
        language=language,
        text=text,
        alphabet=sms.encoding(text),
        length=sms.length(text),
        segments=sms.segments(text),
    )


async def recipients(table_id: int, actor: int | None) -> list[dict[str, Any]]:
    """The table's members but the sender, with the channels a message would reach them by."""
    condition: Any = Membership.table == table_id
    if actor is not None:
        condition &= Membership.user != actor
    members = await Membership.select(
        Membership.user.id.as_alias("id"),
        Membership.user.language.as_alias("language"),
        Membership.user.phone.as_alias("phone"),
        Membership.user.email.as_alias("email"),
    ).where(condition)
    ids = [member["id"] for member in members]
    preferences = {
        row["user"]: row
        for row in (
            await Preference.select(
                Preference.user,
                Preference.sms_consent_at,
                Preference.sms_consent_phone,
                Preference.sms_stopped_at,
                Preference.email_consent_at,
                Preference.email_consent_address,
                Preference.email_digest,
            ).where(Preference.user.is_in(ids))
            if ids
            else []
        )
    }
    found = []
    for member in members:
        preference = preferences.get(member["id"])
        found.append(
            {
                "id": member["id"],
                "language": _language(member["language"]),
                "sms": services.consented(SMS, preference, member["phone"]),
                "email": services.consented(EMAIL, preference, member["email"]),
                "digest": bool(preference and preference["email_digest"]),
            }
        )
    return found


def _money(amount: float, *, exact: bool = False) -> str:
    """Euros in the reader's language; `exact` keeps every decimal (a price of 0,045 €)."""
    return format_currency(
        amount, "EUR", locale=i18n.current_language.get(), decimal_quantization=not exact
    )


async def preview(
    table: Mapping[str, Any], author: Principal, text: str, channels: Iterable[str]
) -> Preview:
    """Who receives the message by which channel, the SMS in each language, their cost."""
    chosen = set(channels)
    event = _event(table, author.display_name, text)
    people = await recipients(table["id"], author.user_id)
    shown = Preview(site=len(people))
    # French and Arabic always (the table's languages); others if a reader has them.
    others = sorted({p["language"] for p in people if p["sms"]} - {"fr", "ar"})
    languages = ["fr", "ar", *others]
    samples = {code: sms_sample(event, code) for code in languages}
    price = get_settings().sms_segment_price
    if SMS in chosen:
        for person in people:
            if person["sms"]:
                shown.sms += 1
                samples[person["language"]].recipients += 1
                shown.segments += samples[person["language"]].segments
    if EMAIL in chosen:
        for person in people:
            if person["email"]:
                if person["digest"]:
                    shown.email_digest += 1
                else:
                    shown.email_now += 1
    shown.samples = list(samples.values())
    shown.cost = _money(shown.segments * price)
    shown.price = _money(price, exact=True)
    return shown


def read_message(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The text and the channels ticked; FormErrors if the text is empty, too long or HTML."""
    form = Form(data)
    text = form.text("text", max_length=MESSAGE_MAX, multiline=True)
    if text and "text" not in form.errors and _TAG.search(text):
        form.error("text", NO_HTML)
    raw = data.get("channels") or []
    ticked = [raw] if isinstance(raw, str) else list(raw)
    channels = [channel for channel in CHANNELS if channel in ticked]
    form.validate()
    return text, channels


async def _drop_unchosen(event_id: int, channels: Iterable[str]) -> None:
    """Deliveries by the channels the sender did not tick: gone before anyone can send them
    (emit adds one for every channel a member consented to)."""
    unchosen = [channel for channel in CHANNELS if channel not in set(channels)]
    if not unchosen:
        return
    marks = ", ".join("{}" for _ in unchosen)
    await Delivery.raw(
        f"DELETE FROM notification_delivery WHERE channel IN ({marks})"  # noqa: S608 - marks only
        " AND notification IN (SELECT id FROM notification WHERE event = {})",
        *unchosen,
        event_id,
    )


async def sent_counts(event_id: int) -> dict[str, int]:
    """How many members the event reached: on the site, and by each channel."""
    counts = {"site": await Notification.count().where(Notification.event == event_id)}
    rows = (
        await Delivery.select(Delivery.channel, Count(Delivery.id, alias="n"))
        .where(_joined_event() == event_id)
        .group_by(Delivery.channel)
    )
    for channel in CHANNELS:
        counts[channel] = next((int(r["n"]) for r in rows if r["channel"] == channel), 0)
    return counts


async def send(
    who: Principal,
    meeting: Mapping[str, Any],
    table: Mapping[str, Any],
    data: Mapping[str, Any],
) -> str:
    """Sends the message once per token; the token (a second sending of the same form sends
    nothing). Raises FormErrors, the form's token then unchanged."""
    scope = tables.scope_of(table)
    require(who, MESSAGE_ACTION, scope)
    text, channels = read_message(data)
    token = str(data.get("token") or "")
    if not _TOKEN.fullmatch(token):
        raise FormErrors({"form": Message(EXPIRED)})
    event = _event(table, who.display_name, text, who.user_id)
    async with db.write_transaction():
        event_id = await services.emit(
            KIND,
            event_key(token),
            audience=services.Audience(members_of=table["id"], exclude=who.user_id),
            params=event["params"],
            path=event["path"],
            table_id=table["id"],
        )
        if event_id is None:  # this form was sent already
            return token
        await _drop_unchosen(event_id, channels)
        counts = await sent_counts(event_id)
        # The text is the facilitator's words to residents: the journal keeps that a message
        # went, to how many and by which channels, not what it said.
        await audit.record(
            who,
            "notification.message",
            scope,
            subject=f"meeting:{meeting['id']}",
            event=event_id,
            length=len(text),
            channels=["site", *channels],
            recipients=counts["site"],
            sms=counts[SMS],
            email=counts[EMAIL],
        )
    return token


async def sent_event(table_id: int, token: str | None) -> dict[str, Any] | None:
    """The message sent with this token from this table's page, with its counts."""
    if not token or not _TOKEN.fullmatch(token):
        return None
    event = (
        await Event.select(Event.id, Event.created_at)
        .where((Event.key == event_key(token)) & (Event.table == table_id) & (Event.kind == KIND))
        .first()
    )
    if event is None:
        return None
    return {**event, **await sent_counts(event["id"])}


async def _managed_meeting(
    principal: Principal, meeting_id: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    meeting, table = await meetings.get_with_table(meeting_id)
    require(principal, MESSAGE_ACTION, tables.scope_of(table))
    return meeting, table


def _message_page(
    request: Request,
    meeting: Mapping[str, Any],
    table: Mapping[str, Any],
    *,
    token: str,
    values: Mapping[str, Any],
    status_code: int = 200,
    errors: Mapping[str, Any] | None = None,
    shown: Preview | None = None,
    sent: Mapping[str, Any] | None = None,
) -> Template:
    return page(
        request,
        "notifications/message.html",
        status_code=status_code,
        meeting=meeting,
        table=table,
        token=token,
        values=values,
        errors=dict(errors or {}),
        preview=shown,
        sent=sent,
        max_length=MESSAGE_MAX,
    )


@get("/meetings/{meeting_id:int}/message", name="meeting_message")
async def message_form(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    meeting, table = await _managed_meeting(principal, meeting_id)
    sent = await sent_event(table["id"], request.query_params.get("sent"))
    return _message_page(
        request,
        meeting,
        table,
        token=new_token(),
        values={"text": "", "channels": list(CHANNELS)},
        sent=sent,
    )


@post("/meetings/{meeting_id:int}/message", name="meeting_message_send")
async def message_post(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template | Redirect:
    """action=preview shows what would go (nothing changes); action=send sends it, once."""
    data = await form_data(request, "channels")
    meeting, table = await _managed_meeting(principal, meeting_id)
    given = str(data.get("token") or "")
    token = given if _TOKEN.fullmatch(given) else new_token()
    ticked = data.get("channels") or []
    values = {
        "text": str(data.get("text") or "")[: MESSAGE_MAX * 4],
        "channels": [c for c in CHANNELS if c in ticked],
    }
    try:
        text, channels = read_message(data)
        values = {"text": text, "channels": channels}
        if data.get("action") == "send":
            sent = await send(principal, meeting, table, data)
            return redirect(f"/meetings/{meeting_id}/message?sent={sent}")
    except FormErrors as invalid:
        return _message_page(
            request,
            meeting,
            table,
            token=token,
            values=values,
            status_code=400,
            errors=invalid.errors,
        )
    return _message_page(
        request,
        meeting,
        table,
        token=token,
        values=values,
        shown=await preview(table, principal, text, channels),
    )


# The coordinators' view of deliveries --------------------------------------------------------


def _joined_event() -> Any:
    """The delivery's event, joined through its notification."""
    return Delivery.notification.event


def _in_organisation(organisation_id: int) -> Any:
    return _joined_event().table.organisation == organisation_id


def _problem(now: datetime) -> Any:
    return Delivery.status.is_in(list(PROBLEMS)) | (
        (Delivery.status == QUEUED) & (Delivery.due_at < now - LATE)
    )


async def problems(organisation_id: int, page_number: int) -> tuple[list[dict[str, Any]], bool]:
    """One page of the organisation's deliveries that need a look, newest first; and whether
    there is a next page."""
    rows = await (
        Delivery.select(
            Delivery.id,
            Delivery.channel,
            Delivery.status,
            Delivery.attempts,
            Delivery.last_error,
            Delivery.due_at,
            Delivery.created_at,
            _joined_event().kind.as_alias("kind"),
            _joined_event().table.name.as_alias("table_name"),
            _joined_event().table.slug.as_alias("table_slug"),
            Delivery.user.display_name.as_alias("recipient"),
        )
        .where(_in_organisation(organisation_id) & _problem(services.now()))
        .order_by(Delivery.created_at, ascending=False)
        .order_by(Delivery.id, ascending=False)
        .limit(PAGE_SIZE + 1)
        .offset((page_number - 1) * PAGE_SIZE)
    )
    for row in rows:
        error = row["last_error"] or ""
        row["error"] = error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 1] + "…"
        row["next_try"] = row["due_at"] if row["status"] in (RETRY, QUEUED) else None
        row["retryable"] = row["status"] in RETRYABLE
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


async def week_counts(organisation_id: int) -> dict[str, int]:
    """Deliveries of the last seven days, by status."""
    rows = (
        await Delivery.select(Delivery.status, Count(Delivery.id, alias="n"))
        .where(
            _in_organisation(organisation_id)
            & (Delivery.created_at >= services.now() - WEEK)
            & Delivery.status.is_in(list(WEEK_STATUSES))
        )
        .group_by(Delivery.status)
    )
    found = {row["status"]: int(row["n"]) for row in rows}
    return {status: found.get(status, 0) for status in WEEK_STATUSES}


async def retry(who: Principal, organisation: Mapping[str, Any], delivery_id: int) -> bool:
    """A failed or uncertain delivery of the organisation back in the queue, due now, its
    attempts kept; audited. False when it was neither (tried again already). 404 when the
    delivery is not one of the organisation's."""
    require(who, DELIVERIES_ACTION, tables.organisation_scope(organisation["id"]))
    async with db.write_transaction():
        row = (
            await Delivery.select(
                Delivery.status,
                Delivery.channel,
                _joined_event().table.as_alias("table_id"),
            )
            .where((Delivery.id == delivery_id) & _in_organisation(organisation["id"]))
            .first()
        )
        if row is None:
            raise NotFoundException()
        changed = await (
            Delivery.update(
                {
                    Delivery.status: RETRY,
                    Delivery.due_at: services.now(),
                    Delivery.locked_by: None,
                    Delivery.locked_until: None,
                }
            )
            .where((Delivery.id == delivery_id) & Delivery.status.is_in(list(RETRYABLE)))
            .returning(Delivery.id)
        )
        if not changed:
            return False
        await audit.record(
            who,
            "notification.retry",
            Scope(table_id=row["table_id"], organisation_id=organisation["id"]),
            subject=f"delivery:{delivery_id}",
            was=row["status"],
            channel=row["channel"],
        )
        await jobs.enqueue(services.DISPATCH_JOB, key=services.DISPATCH_JOB)
    return True


@get("/organisations/{slug:str}/notifications", name="organisation_notifications")
async def deliveries(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    organisation = await tables.get_organisation(slug)
    require(principal, DELIVERIES_ACTION, tables.organisation_scope(organisation["id"]))
    number = parse_int(request.query_params.get("page"), min=1, max=100_000) or 1
    rows, more = await problems(organisation["id"], number)
    retried = parse_int(request.query_params.get("retried"), min=1)
    return page(
        request,
        "notifications/deliveries.html",
        organisation=organisation,
        rows=rows,
        counts=await week_counts(organisation["id"]),
        page_number=number,
        more=more,
        retried=retried,
        kind_labels=KIND_LABELS,
        channel_labels=CHANNEL_LABELS,
        delivery_status_labels=STATUS_LABELS,
        late_minutes=int(LATE.total_seconds() // 60),
        number=lambda n: format_decimal(n, locale=i18n.current_language.get()),
    )


@post(
    "/organisations/{slug:str}/notifications/{delivery_id:int}/retry",
    name="delivery_retry",
)
async def retry_delivery(
    request: Request, principal: NamedDependency[Principal], slug: Slug, delivery_id: ObjectId
) -> Redirect:
    await form_data(request)
    organisation = await tables.get_organisation(slug)
    changed = await retry(principal, organisation, delivery_id)
    back = f"/organisations/{slug}/notifications"
    return redirect(f"{back}?retried={delivery_id}" if changed else back)


ROUTES: list[Any] = [message_form, message_post, deliveries, retry_delivery]
