"""Residents' rights: download everything held about oneself, and erase one's account."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from accounts import mine
from accounts.models import Throttle, User
from accounts.services import close_all_sessions, verify_password_async
from accounts.throttle import storage_key
from audit import services as audit
from audit.models import AuditEntry
from exports.services import forget_signatory
from meetings.models import Attendance, Meeting, Speaker
from notifications.models import Delivery, Event, Follow, Notification, Preference, Rsvp
from proposals.discussion import recount_supports
from proposals.models import Comment, Report, Support
from tables.models import Coordinator, Membership
from voix import db
from voix.forms import UserError
from voix.i18n import N_
from voix.permissions import Principal, signed_in
from votes.models import Participation

WRONG_PASSWORD = N_("This password is not right.")
CONFIRM_ERASE = N_("Tick the box to confirm that you want your account erased.")
ERASED_NAME = "—"
# Shown in place of an erased person's comment (kept empty in the database: the replies stay).
ERASED_COMMENT = N_("[comment deleted]")
# The download's last word (in English, as its keys are): the readable page says it translated.
EXPORT_NOTE = "Ballots are stored apart from voters: what you voted is not linked to you."


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def export(who: Principal) -> dict[str, Any]:
    """What the platform holds about this person. Secrets and hashes are not personal data
    to hand out, and how they voted is not held against their name at all. The same lists as
    the readable page of one's data (accounts.mine), whole."""
    user_id = signed_in(who)
    lists = await mine.everything(user_id)
    return {
        "format": "voix-personal-data/1",
        "account": {k: _plain(v) for k, v in (await mine.account(user_id) or {}).items()},
        **{
            key: [{k: _plain(v) for k, v in row.items()} for row in rows]
            for key, rows in lists.items()
        },
        **{
            key: [{k: _plain(v) for k, v in row.items()} for row in rows]
            for key, rows in (await _notifications(user_id)).items()
        },
        "note": EXPORT_NOTE,
    }


async def _notifications(user_id: int) -> dict[str, list[dict[str, Any]]]:
    """How the person hears of things (channels, consents and who recorded them, STOP), what
    they follow, what they said of meetings, and what was sent to them and how: their own
    rows only (who recorded a consent or an answer is named, nothing else of them)."""
    preference = await (
        Preference.select(
            Preference.sms_consent_at,
            Preference.sms_consent_by.display_name.as_alias("sms_consent_recorded_by"),
            Preference.email_consent_at,
            Preference.email_consent_by.display_name.as_alias("email_consent_recorded_by"),
            Preference.email_digest,
            Preference.sms_stopped_at,
            Preference.updated_at,
        )
        .where(Preference.user == user_id)
        .first()
    )
    follows = await (
        Follow.select(Follow.kind, Follow.target, Follow.created_at)
        .where(Follow.user == user_id)
        .order_by(Follow.id)
    )
    rsvps = await (
        Rsvp.select(
            Rsvp.meeting,
            Rsvp.meeting.title.as_alias("meeting_title"),
            Rsvp.meeting.starts_at.as_alias("meeting_starts_at"),
            Rsvp.coming,
            Rsvp.recorded_by.display_name.as_alias("recorded_by"),
            Rsvp.updated_at,
        )
        .where(Rsvp.user == user_id)
        .order_by(Rsvp.id)
    )
    received = await (
        Notification.select(
            Notification.id,
            Notification.event.kind.as_alias("kind"),
            Notification.event.path.as_alias("path"),
            Notification.created_at,
            Notification.read_at,
        )
        .where(Notification.user == user_id)
        .order_by(Notification.id)
    )
    deliveries: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in received}
    for row in await (
        Delivery.select(Delivery.notification, Delivery.channel, Delivery.status, Delivery.sent_at)
        .where(Delivery.user == user_id)
        .order_by(Delivery.id)
    ):
        if row["notification"] in deliveries:
            deliveries[row.pop("notification")].append({k: _plain(v) for k, v in row.items()})
    for row in received:
        row["deliveries"] = deliveries[row.pop("id")]
    return {
        "notification_preferences": [preference] if preference else [],
        "follows": follows,
        "meeting_answers": rsvps,
        "notifications": received,
    }


async def erase(who: Principal, password: str | None, confirmed: bool) -> None:
    """Personal data goes; proposals stay, signed "habitant·e"; ballots stay counted."""
    user_id = signed_in(who)
    if not confirmed:
        raise UserError(CONFIRM_ERASE, status_code=400)
    user = (
        await User.select(User.password_hash, User.login, User.email, User.display_name)
        .where(User.id == user_id)
        .first()
    )
    # Residents registered with a card have no password: the signed-in session is their proof.
    if password is not None and (
        user is None or not await verify_password_async(user["password_hash"], password)
    ):
        raise UserError(WRONG_PASSWORD, status_code=400)
    async with db.write_transaction():
        await audit.record(who, "account.erased", subject="user:erased")
        # The journal keeps that an act happened, not who the erased person was.
        await AuditEntry.update({AuditEntry.actor_name: ERASED_NAME}).where(
            AuditEntry.actor == user_id
        )
        await close_all_sessions(user_id)
        if user is not None:
            await _forget_traces(user_id, user)
        await Coordinator.delete().where(Coordinator.user == user_id)
        await _forget_notifications(user_id)
        # Foreign keys do the rest: proposals and participations keep their rows, without
        # the person (set null), and so do the proposals, supports and comments a facilitator
        # recorded for residents; memberships, cards, codes and sessions go (cascade).
        await User.delete().where(User.id == user_id)


async def _forget_traces(user_id: int, user: dict[str, Any]) -> None:
    """What names the person outside their own rows: the discussion they took part in, the
    meetings they came to, the throttle counters keyed by their login. Counts stay right."""
    # Comments keep their place in the thread (replies hang from them), not their text.
    await Comment.update({Comment.body: "", Comment.author: None}).where(Comment.author == user_id)
    # Supports go, and each proposal's count is recounted from the supports left.
    supported = await Support.delete().where(Support.user == user_id).returning(Support.proposal)
    for proposal_id in sorted({row["proposal"] for row in supported}):
        await recount_supports(proposal_id)
    await Report.delete().where(Report.reporter == user_id)
    # Named as a signatory of a position document (with their consent): no longer.
    await forget_signatory(user_id)
    # Attendance keeps counting (one row each, the person key stays unique per meeting).
    # One statement: each row's new key is built from its own id ("erased:<id>").
    attended = await Attendance.raw(
        'UPDATE attendance SET "user" = NULL, name = {}, person = {} || id '
        'WHERE "user" = {} OR person = {} RETURNING meeting',
        ERASED_NAME,
        "erased:",
        user_id,
        f"user:{user_id}",
    )
    # So does the roll of every vote: the person key stays, unique per vote, without the id.
    await Participation.raw(
        "UPDATE vote_participation SET person = {} || id WHERE person = {}",
        "erased:",
        f"user:{user_id}",
    )
    # The speakers' queue holds names as typed by the facilitator: those of the person's name,
    # in the meetings of their tables, lose it.
    tables = await Membership.select(Membership.table).where(Membership.user == user_id)
    meetings = {row["meeting"] for row in attended}
    if tables:
        held = await Meeting.select(Meeting.id).where(
            Meeting.table.is_in([row["table"] for row in tables])
        )
        meetings |= {row["id"] for row in held}
    if meetings:
        name = str(user["display_name"]).casefold().strip()
        turns = await Speaker.select(Speaker.id, Speaker.name).where(
            Speaker.meeting.is_in(sorted(meetings))
        )
        named = [row["id"] for row in turns if str(row["name"]).casefold().strip() == name]
        if named:
            await Speaker.update({Speaker.name: ERASED_NAME}).where(Speaker.id.is_in(named))
    # Throttle keys hold the login and e-mail as typed (or their digest, when long).
    keys = [f"login:account:{user['login']}", f"totp:account:{user_id}"]
    if user["email"]:
        keys.append(f"reset:email:{user['email']}")
    await Throttle.delete().where(Throttle.key.is_in([storage_key(key) for key in keys]))


async def _forget_notifications(user_id: int) -> None:
    """Consents, follows, answers, notifications and what was (or was still to be) sent go
    with the account; said here, not only left to its foreign keys."""
    await Delivery.delete().where(Delivery.user == user_id)
    await Notification.delete().where(Notification.user == user_id)
    await Rsvp.delete().where(Rsvp.user == user_id)
    await Follow.delete().where(Follow.user == user_id)
    await Preference.delete().where(Preference.user == user_id)
    # Messages they sent to a table's members keep their text, not their author's name.
    sent = await Event.select(Event.id, Event.params).where(
        (Event.kind == "message") & Event.params.like(f'%"author_id": {int(user_id)}%')
    )
    for row in sent:
        params = json.loads(row["params"])
        if params.get("author_id") == user_id:
            params.update(author=ERASED_NAME, author_id=None)
            await Event.update({Event.params: json.dumps(params, ensure_ascii=False)}).where(
                Event.id == row["id"]
            )


async def has_password(user_id: int) -> bool:
    """Residents registered with a card have none: their hash is empty and matches nothing."""
    row = await User.select(User.password_hash).where(User.id == user_id).first()
    return row is not None and bool(row["password_hash"])
