"""The notifications' pages: one's notifications (and the header's count), the channels a
resident chooses (or a facilitator records with them), following a table or a proposal, and
"I'll come" / "I can't" for a meeting (one's own, or recorded for a resident).

Every form is a plain POST followed by a redirect; htmx only swaps a block in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from accounts.cards import PHONE_INVALID
from accounts.controllers import safe_next
from accounts.models import User
from audit import services as audit
from meetings import services as meetings
from meetings.models import SCHEDULED
from notifications import messages, providers, services
from notifications.models import EMAIL, PROPOSAL, SMS, TABLE, Notification, Rsvp
from proposals import services as proposals
from tables import services as tables
from tables.models import RESIDENT
from voix import db
from voix.forms import UNKNOWN_CHOICE, Form, FormErrors, Message, UserError, parse_int
from voix.i18n import N_, current_language, gettext
from voix.permissions import Principal, Scope, can, require, signed_in
from voix.settings import get_settings
from voix.web import MAX_ID, ObjectId, Slug, form_data, page, redirect

PAGE_SIZE = 30

# Who records a resident's channels or answer with them: those who may act on a resident's
# behalf at the table (the rule the proposals' on-behalf forms ask).
ON_BEHALF = "proposals.discuss_on_behalf"

WITHDRAWN = N_("A proposal you followed was withdrawn by moderation.")
NO_PHONE = N_("SMS needs a phone number, and none is on file.")
NO_EMAIL = N_("E-mail needs an address, and none is on file.")
NOT_AGREED = N_("Tick this box once the resident has agreed to these choices.")
NOT_A_RESIDENT = N_("Choose one of the table's residents.")
RSVP_CLOSED = N_("Answers are taken before the meeting only.")


# One's notifications ---------------------------------------------------------------------


async def _notifications(user_id: int, before: int | None) -> list[dict[str, Any]]:
    """Newest first, PAGE_SIZE + 1 (the one more says whether an older page exists)."""
    condition: Any = Notification.user == user_id
    if before is not None:
        condition &= Notification.id < before
    return await (
        Notification.select(
            Notification.id,
            Notification.created_at,
            Notification.read_at,
            Notification.event.kind.as_alias("kind"),
            Notification.event.params.as_alias("params"),
            Notification.event.path.as_alias("path"),
        )
        .where(condition)
        .order_by(Notification.id, ascending=False)
        .limit(PAGE_SIZE + 1)
    )


def _isolate(value: Any) -> Any:
    if isinstance(value, str) and value and not value[:1].isdigit():
        return f"\u2068{value}\u2069"
    if isinstance(value, list):
        return [_isolate(item) for item in value]
    return value


def _isolated(params: dict[str, Any]) -> dict[str, Any]:
    """What people typed (a French title in an Arabic sentence) isolated (U+2068 … U+2069), so
    that it does not reorder the words around it on the page. Times (ISO, from a digit) and
    status keys stay as they are: the messages read and translate them."""
    return {k: v if k == "status" else _isolate(v) for k, v in params.items()}


@get("/notifications", name="notifications")
async def notifications_page(request: Request, principal: NamedDependency[Principal]) -> Template:
    user_id = signed_in(principal)
    before = parse_int(request.query_params.get("before"), min=1, max=MAX_ID)
    rows = await _notifications(user_id, before)
    reader = current_language.get()
    items = []
    hidden = await services.withdrawn(rows[:PAGE_SIZE])
    for row in rows[:PAGE_SIZE]:
        event = {"kind": row["kind"], "params": messages.params_of(row), "path": row["path"]}
        shown = messages.render({**event, "params": _isolated(event["params"])}, reader, "site")
        if services.is_withdrawn(event, hidden):
            # Moderation hid the proposal since: its title goes from here too.
            shown = messages.Rendered(subject=gettext(WITHDRAWN), text="", path="/notifications")
        items.append(
            {
                "id": row["id"],
                "title": shown.subject,
                "text": shown.text,
                "path": safe_next(shown.path),
                "at": db.utc(row["created_at"]),
                "unread": row["read_at"] is None,
            }
        )
    response = page(
        request,
        "notifications/list.html",
        items=items,
        older=items[-1]["id"] if len(rows) > PAGE_SIZE else None,
        newer=before is not None,
    )
    response.headers["cache-control"] = "no-store"  # one's own, and it changes
    return response


@post("/notifications/read", name="notifications_read_all")
async def read_all(request: Request, principal: NamedDependency[Principal]) -> Redirect:
    user_id = signed_in(principal)
    await form_data(request)
    await Notification.update({Notification.read_at: services.now()}).where(
        (Notification.user == user_id) & Notification.read_at.is_null()
    )
    return redirect("/notifications")


@post("/notifications/{notification_id:int}/read", name="notification_read")
async def read_one(
    request: Request, principal: NamedDependency[Principal], notification_id: ObjectId
) -> Redirect:
    """Marks it read and opens what it is about. Someone else's is not found."""
    user_id = signed_in(principal)
    await form_data(request)
    mine = (Notification.id == notification_id) & (Notification.user == user_id)
    row = await Notification.select(Notification.event.path.as_alias("path")).where(mine).first()
    if row is None:
        raise NotFoundException()
    await Notification.update({Notification.read_at: services.now()}).where(
        mine & Notification.read_at.is_null()
    )
    return redirect(safe_next(row["path"]))


ROUTES: list[Any] = [notifications_page, read_all, read_one]


# Channels --------------------------------------------------------------------------------


async def _person(user_id: int) -> dict[str, Any]:
    row = await (
        User.select(User.id, User.display_name, User.phone, User.email, User.language)
        .where(User.id == user_id)
        .first()
    )
    if row is None:
        raise NotFoundException()
    return dict(row)


async def _names(*user_ids: int | None) -> dict[int, str]:
    wanted = [u for u in user_ids if u is not None]
    if not wanted:
        return {}
    rows = await User.select(User.id, User.display_name).where(User.id.is_in(wanted))
    return {row["id"]: row["display_name"] for row in rows}


def _offered() -> dict[str, bool]:
    """SMS and e-mail are offered where the site can send them."""
    settings = get_settings()
    return {SMS: settings.sms_mode is not None, EMAIL: settings.mail_mode is not None}


async def _channels_page(
    request: Request,
    principal: Principal,
    person: dict[str, Any],
    *,
    table: dict[str, Any] | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    preference = await services.preference(person["id"])
    names = await _names(preference["sms_consent_by"], preference["email_consent_by"])
    response = page(
        request,
        "notifications/channels.html",
        status_code=status_code,
        person=person,
        preference=preference,
        recorded_by={
            SMS: names.get(preference["sms_consent_by"] or 0),
            EMAIL: names.get(preference["email_consent_by"] or 0),
        },
        offered=_offered(),
        table=table,
        action=(
            f"/tables/{table['slug']}/members/{person['id']}/notifications"
            if table
            else "/account/notifications"
        ),
        saved=request.query_params.get("saved") == "1",
        **context,
    )
    response.headers["cache-control"] = "no-store"
    return response


def _contacts(data: dict[str, Any], person: dict[str, Any]) -> dict[str, str | None]:
    """The phone number and e-mail address as the form changes them (a field the form does
    not send stays as it is); the number kept in its international form (+33…)."""
    form = Form(data)
    changed: dict[str, str | None] = {}
    if "phone" in data:
        typed = form.text("phone", max_length=32, required=False)
        number = providers.e164(typed) if typed else None
        if typed and number is None:
            form.error("phone", PHONE_INVALID)
        changed["phone"] = number
    if "address" in data:
        changed["email"] = form.email("address")
    form.validate()
    return {k: v for k, v in changed.items() if v != (person.get(k) or None)}


def _chosen(
    data: dict[str, Any], person: dict[str, Any], current: dict[str, Any], on_behalf: bool
) -> dict[str, bool]:
    """The channels asked for; a channel the site does not offer keeps its consent as it is."""
    offered = _offered()
    errors: dict[str, Message] = {}
    sms = data.get("sms") == "yes" if offered[SMS] else current["sms_consent_at"] is not None
    email = (
        data.get("email") == "yes" if offered[EMAIL] else current["email_consent_at"] is not None
    )
    if offered[SMS] and sms and not (person["phone"] or "").strip():
        errors["sms"] = Message(NO_PHONE)
    if offered[EMAIL] and email and not (person["email"] or "").strip():
        errors["email"] = Message(NO_EMAIL)
    if on_behalf and data.get("consent") != "yes":
        errors["consent"] = Message(NOT_AGREED)
    if errors:
        raise FormErrors(errors)
    return {"sms": sms, "email": email, "email_digest": data.get("rhythm") == "digest"}


async def _save_channels(
    principal: Principal,
    person: dict[str, Any],
    data: dict[str, Any],
    *,
    scope: Scope | None,
    on_behalf: bool,
) -> None:
    current = await services.preference(person["id"])
    changed = _contacts(data, person)
    chosen = _chosen(data, {**person, **changed}, current, on_behalf)
    async with db.write_transaction():
        if changed:
            await User.update({getattr(User, k): v for k, v in changed.items()}).where(
                User.id == person["id"]
            )
        await services.set_channels(person["id"], recorded_by=principal.user_id, **chosen)
        await audit.record(
            principal,
            "channels.recorded_on_behalf" if on_behalf else "channels.changed",
            scope,
            subject=f"user:{person['id']}",
            **chosen,
            # That they changed, not what to: the journal holds no number or address.
            phone_changed="phone" in changed,
            email_changed="email" in changed,
        )


@get("/account/notifications", name="account_notifications")
async def my_channels(request: Request, principal: NamedDependency[Principal]) -> Template:
    return await _channels_page(request, principal, await _person(signed_in(principal)))


@post("/account/notifications", name="account_notifications_save")
async def save_my_channels(
    request: Request, principal: NamedDependency[Principal]
) -> Template | Redirect:
    person = await _person(signed_in(principal))
    data = await form_data(request)
    try:
        await _save_channels(principal, person, data, scope=None, on_behalf=False)
    except FormErrors as invalid:
        return await _channels_page(
            request, principal, person, status_code=400, errors=invalid.errors, values=data
        )
    return redirect("/account/notifications?saved=1")


async def _resident_of(principal: Principal, slug: str, user_id: int) -> tuple[dict, dict]:
    """The table and one of its residents, for those who act on its residents' behalf."""
    table = await tables.get_table(slug)
    require(principal, ON_BEHALF, tables.scope_of(table))
    if not await tables.is_member(user_id, table["id"], RESIDENT):
        raise NotFoundException()
    return table, await _person(user_id)


@get("/tables/{slug:str}/members/{user_id:int}/notifications", name="member_notifications")
async def member_channels(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Template:
    table, person = await _resident_of(principal, slug, user_id)
    return await _channels_page(request, principal, person, table=table)


@post("/tables/{slug:str}/members/{user_id:int}/notifications", name="member_notifications_save")
async def save_member_channels(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Template | Redirect:
    table, person = await _resident_of(principal, slug, user_id)
    data = await form_data(request)
    try:
        await _save_channels(principal, person, data, scope=tables.scope_of(table), on_behalf=True)
    except FormErrors as invalid:
        return await _channels_page(
            request,
            principal,
            person,
            table=table,
            status_code=400,
            errors=invalid.errors,
            values=data,
        )
    return redirect(f"/tables/{slug}/members/{user_id}/notifications?saved=1")


ROUTES += [my_channels, save_my_channels, member_channels, save_member_channels]


# Following -------------------------------------------------------------------------------


async def _visible_proposal(principal: Principal, proposal_id: int) -> dict[str, Any]:
    """A proposal its reader may see: a hidden one is for its moderators only."""
    proposal, table = await proposals.get_with_table(proposal_id)
    if proposal["hidden_at"] and not can(principal, "proposals.moderate", tables.scope_of(table)):
        raise NotFoundException()
    return proposal


@post("/proposals/{proposal_id:int}/follow", name="proposal_follow")
async def follow_proposal(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Redirect:
    user_id = signed_in(principal)
    await form_data(request)
    await _visible_proposal(principal, proposal_id)
    await services.follow(user_id, PROPOSAL, proposal_id)
    return redirect(f"/proposals/{proposal_id}#follow")


@post("/proposals/{proposal_id:int}/unfollow", name="proposal_unfollow")
async def unfollow_proposal(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Redirect:
    user_id = signed_in(principal)
    await form_data(request)
    # Anyone may stop following, even a proposal hidden since (its news must be stoppable).
    await services.unfollow(user_id, PROPOSAL, proposal_id)
    try:
        await _visible_proposal(principal, proposal_id)
    except NotFoundException:
        return redirect("/notifications")
    return redirect(f"/proposals/{proposal_id}#follow")


@post("/tables/{slug:str}/follow", name="table_follow")
async def follow_table(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Redirect:
    user_id = signed_in(principal)
    await form_data(request)
    table = await tables.get_table(slug)
    await services.follow(user_id, TABLE, table["id"])
    return redirect(f"/tables/{slug}#follow")


@post("/tables/{slug:str}/unfollow", name="table_unfollow")
async def unfollow_table(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Redirect:
    user_id = signed_in(principal)
    await form_data(request)
    table = await tables.get_table(slug)
    await services.unfollow(user_id, TABLE, table["id"])
    return redirect(f"/tables/{slug}#follow")


ROUTES += [follow_proposal, unfollow_proposal, follow_table, unfollow_table]


# "I'll come" / "I can't" -----------------------------------------------------------------


def answerable(meeting: dict[str, Any], at: datetime | None = None) -> bool:
    """Answers are for a scheduled meeting still ahead."""
    moment = at or services.now()
    return meeting["status"] == SCHEDULED and db.utc(meeting["starts_at"]) > moment


async def rsvp_context(
    principal: Principal, meeting: dict[str, Any], table: dict[str, Any]
) -> dict[str, Any]:
    """What the meeting page shows of the answers: the reader's own, the counts, and for those
    who record answers with residents, each resident's answer. The answers are read at once
    (one query; a meeting's answers are a table's members at most)."""
    scope = tables.scope_of(table)
    recorder = can(principal, ON_BEHALF, scope)
    rows = await Rsvp.select(Rsvp.user, Rsvp.coming).where(Rsvp.meeting == meeting["id"])
    answers = {row["user"]: bool(row["coming"]) for row in rows}
    coming = sum(answers.values())
    residents = await tables.residents(table["id"], RESIDENT) if recorder else []
    return {
        "open": answerable(meeting),
        "mine": answers.get(principal.user_id) if principal.user_id is not None else None,
        "counts": {"coming": coming, "not_coming": len(answers) - coming},
        "may_answer": can(principal, "meetings.check_in", scope),
        "recorder": recorder,
        "residents": [dict(r, coming=answers.get(r["id"])) for r in residents],
    }


async def proposal_reader(user_id: int | None, proposal_id: int) -> tuple[bool, bool]:
    """(supported, following): whether the reader supports the proposal and follows it, in one query: the proposal's
    page keeps to its budget of queries (tests/test_queries.py)."""
    if user_id is None:
        return False, False
    rows = await Rsvp.raw(
        'SELECT EXISTS (SELECT 1 FROM proposal_support s WHERE s.proposal = {} AND s."user" = {})'
        " AS supported, EXISTS (SELECT 1 FROM follow f WHERE f.kind = {} AND f.target = {}"
        ' AND f."user" = {}) AS following',
        proposal_id,
        user_id,
        PROPOSAL,
        proposal_id,
        user_id,
    )
    return bool(rows[0]["supported"]), bool(rows[0]["following"])


def _coming(data: dict[str, Any]) -> bool:
    value = data.get("coming")
    if value not in ("yes", "no"):
        raise UserError(UNKNOWN_CHOICE, status_code=400)
    return value == "yes"


@post("/meetings/{meeting_id:int}/rsvp", name="meeting_rsvp")
async def rsvp(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    """One's own answer, for a member of the meeting's table."""
    user_id = signed_in(principal)
    data = await form_data(request)
    meeting, table = await meetings.get_with_table(meeting_id)
    require(principal, "meetings.check_in", tables.scope_of(table))
    coming = _coming(data)
    if not answerable(meeting):
        raise UserError(RSVP_CLOSED)
    async with db.write_transaction():
        await services.set_rsvp(meeting_id, user_id, coming, recorded_by=user_id)
    return redirect(f"/meetings/{meeting_id}#rsvp")


@post("/meetings/{meeting_id:int}/on-behalf/rsvp", name="meeting_rsvp_on_behalf")
async def rsvp_on_behalf(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    """A resident's answer, recorded by a facilitator of the table with them."""
    data = await form_data(request)
    meeting, table = await meetings.get_with_table(meeting_id)
    scope = tables.scope_of(table)
    require(principal, ON_BEHALF, scope)
    resident = parse_int(data.get("member"), min=1, max=MAX_ID)
    if resident is None or not await tables.is_member(resident, table["id"], RESIDENT):
        raise UserError(NOT_A_RESIDENT, status_code=400)
    coming = _coming(data)
    if not answerable(meeting):
        raise UserError(RSVP_CLOSED)
    async with db.write_transaction():
        await services.set_rsvp(meeting_id, resident, coming, recorded_by=principal.user_id)
        await audit.record(
            principal,
            "rsvp.recorded_on_behalf",
            scope,
            subject=f"meeting:{meeting_id}",
            resident=resident,
            coming=coming,
        )
    return redirect(f"/meetings/{meeting_id}#rsvp")


ROUTES += [rsvp, rsvp_on_behalf]
