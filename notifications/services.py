"""Following, RSVPs, channels, and emitting events to the people they concern.

`emit` is called inside the transaction of the change it tells of (a meeting cancelled, a
status moved): the event, its notifications and their deliveries exist exactly when the change
was committed. It is three statements whatever the audience's size (the fan-out is
INSERT … SELECT), and repeating it adds nothing (unique keys, ON CONFLICT DO NOTHING), so a
retried job or a second replica emitting the same event is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from piccolo.querystring import QueryString

from notifications.models import (
    CANCELLED,
    EMAIL,
    FOLLOW_KINDS,
    MEETING,
    PROPOSAL,
    QUEUED,
    RETRY,
    SMS,
    TABLE,
    Follow,
    Preference,
    Rsvp,
)
from voix import db

DISPATCH_JOB = "notifications.dispatch"


def now() -> datetime:
    """The notifications' clock (tests move it by patching this function)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Audience:
    """Who an event reaches: followers of some things, a table's members, minus the person who
    acted and those who said they will not come to the meeting it is about."""

    follows: tuple[tuple[str, int], ...] = ()
    members_of: int | None = None
    not_declined: int | None = None  # a meeting's id
    exclude: int | None = None  # the actor's user id
    users: tuple[int, ...] = field(default=())


def followers(*pairs: tuple[str, int | None]) -> tuple[tuple[str, int], ...]:
    return tuple((kind, target) for kind, target in pairs if target is not None)


def _ts() -> str:
    """A timestamp parameter in a SELECT list: PostgreSQL must be told its type."""
    return "{}" if isinstance(db.engine(), db.SQLite) else "CAST({} AS timestamptz)"


async def _run(sql: str, *args: Any) -> list[dict[str, Any]]:
    return list(await db.engine().run_querystring(QueryString(sql, *args)))


async def emit(
    kind: str,
    key: str,
    *,
    audience: Audience,
    params: Mapping[str, Any],
    path: str,
    table_id: int | None = None,
    urgent_until: datetime | None = None,
) -> int | None:
    """Records the event `key` (once ever) and notifies its audience; the event's id, or None
    when it had been emitted already. Call it inside the change's transaction."""
    at = now()
    rows = await _run(
        'INSERT INTO notification_event (key, kind, "table", params, path, urgent_until,'
        " created_at) VALUES ({}, {}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING id",
        key,
        kind,
        table_id,
        json.dumps(dict(params), ensure_ascii=False, default=str),
        path,
        urgent_until,
        at,
    )
    if not rows:
        return None
    event_id = int(rows[0]["id"])
    sources: list[str] = []
    args: list[Any] = [event_id, at]
    for follow_kind, target in audience.follows:
        sources.append('SELECT f."user" AS u FROM follow f WHERE f.kind = {} AND f.target = {}')
        args += [follow_kind, target]
    if audience.members_of is not None:
        sources.append('SELECT m."user" AS u FROM membership m WHERE m."table" = {}')
        args.append(audience.members_of)
    for user_id in audience.users:
        sources.append("SELECT CAST({} AS INTEGER) AS u")
        args.append(user_id)
    if not sources:
        return event_id
    condition = "a.u IS NOT NULL"
    if audience.exclude is not None:
        condition += " AND a.u <> {}"
        args.append(audience.exclude)
    if audience.not_declined is not None:
        condition += (
            ' AND NOT EXISTS (SELECT 1 FROM rsvp r WHERE r.meeting = {} AND r."user" = a.u'
            " AND r.coming = {})"
        )
        args += [audience.not_declined, False]
    await _run(
        'INSERT INTO notification (event, "user", created_at)'  # noqa: S608 - no input in it
        f" SELECT DISTINCT CAST({{}} AS INTEGER), a.u, {_ts()} FROM ("
        + " UNION ".join(sources)
        + f") a WHERE {condition} ON CONFLICT DO NOTHING",
        *args,
    )
    # Consent counts for the number or address it was given for, not for one typed since.
    for channel, address, consent, given_for in (
        (SMS, "a.phone", "p.sms_consent_at", "p.sms_consent_phone"),
        (EMAIL, "a.email", "p.email_consent_at", "p.email_consent_address"),
    ):
        await _run(
            'INSERT INTO notification_delivery (notification, "user", channel, status, due_at,'  # noqa: S608
            " attempts, last_error, segments, created_at)"
            f' SELECT n.id, n."user", CAST({{}} AS TEXT), CAST({{}} AS TEXT), {_ts()}, 0,'
            f" CAST({{}} AS TEXT), 0, {_ts()} FROM notification n"
            ' JOIN notification_preference p ON p."user" = n."user"'
            ' JOIN account a ON a.id = n."user"'
            f" WHERE n.event = {{}} AND {consent} IS NOT NULL"
            f" AND {address} IS NOT NULL AND {address} <> {{}} AND {given_for} = {address}"
            " ON CONFLICT DO NOTHING",
            channel,
            QUEUED,
            at,
            "",
            at,
            event_id,
            "",
        )
    from voix import jobs  # noqa: PLC0415 (jobs import the domains' handlers)

    await jobs.enqueue(DISPATCH_JOB, key=DISPATCH_JOB)
    return event_id


# Moderation ------------------------------------------------------------------------------

PROPOSAL_EVENT = "proposal.status"


def _proposal_of(kind: str, path: str) -> int | None:
    """The proposal a "proposal.status" event is about (its path is /proposals/ID)."""
    if kind != PROPOSAL_EVENT or not path.startswith("/proposals/"):
        return None
    tail = path.removeprefix("/proposals/").split("/", 1)[0]
    return int(tail) if tail.isdigit() else None


async def withdrawn(events: Iterable[Mapping[str, Any]]) -> set[int]:
    """The proposals of these events that moderation has hidden since: their title is no
    longer shown on the site nor sent (one query)."""
    from proposals.models import Proposal  # noqa: PLC0415 (proposals import notifications)

    ids = {i for e in events if (i := _proposal_of(str(e["kind"]), str(e["path"]))) is not None}
    if not ids:
        return set()
    rows = await Proposal.select(Proposal.id).where(
        Proposal.id.is_in(sorted(ids)) & Proposal.hidden_at.is_not_null()
    )
    return {row["id"] for row in rows}


def is_withdrawn(event: Mapping[str, Any], hidden: AbstractSet[int]) -> bool:
    return _proposal_of(str(event["kind"]), str(event["path"])) in hidden


# Following -------------------------------------------------------------------------------


async def follow(user_id: int, kind: str, target: int) -> None:
    assert kind in FOLLOW_KINDS  # noqa: S101 - callers pass the constants
    await Follow.insert(
        Follow(user=user_id, kind=kind, target=target, created_at=now())
    ).on_conflict(action="DO NOTHING")


async def unfollow(user_id: int, kind: str, target: int) -> None:
    await Follow.delete().where(
        (Follow.user == user_id) & (Follow.kind == kind) & (Follow.target == target)
    )


# Asked by every page a signed-in reader may follow: compiled to SQL once (voix.db.Prepared).
_FOLLOWS = db.Prepared(
    lambda user_id, kind, target: (
        Follow.select(Follow.id)
        .where((Follow.user == user_id) & (Follow.kind == kind) & (Follow.target == target))
        .limit(1)
    )
)


async def follows(user_id: int | None, kind: str, target: int) -> bool:
    if user_id is None:
        return False
    return bool(await _FOLLOWS.rows(user_id, kind, target))


async def follow_all(user_ids: Iterable[int], kind: str, target: int) -> None:
    at = now()
    rows = [Follow(user=user_id, kind=kind, target=target, created_at=at) for user_id in user_ids]
    if rows:
        await Follow.insert(*rows).on_conflict(action="DO NOTHING")


# RSVP ------------------------------------------------------------------------------------


async def set_rsvp(meeting_id: int, user_id: int, coming: bool, recorded_by: int | None) -> None:
    """ "I'll come" follows the meeting; "I can't" stops following it (the table's news still
    reaches them, but not this meeting's reminder). Call it inside a transaction."""
    at = now()
    await Rsvp.insert(
        Rsvp(
            meeting=meeting_id,
            user=user_id,
            coming=coming,
            recorded_by=recorded_by if recorded_by != user_id else None,
            updated_at=at,
        )
    ).on_conflict(
        target=(Rsvp.meeting, Rsvp.user),
        action="DO UPDATE",
        values=[Rsvp.coming, Rsvp.recorded_by, Rsvp.updated_at],
    )
    if coming:
        await follow(user_id, MEETING, meeting_id)
    else:
        await unfollow(user_id, MEETING, meeting_id)


async def rsvp_of(meeting_id: int, user_id: int | None) -> bool | None:
    """True "I'll come", False "I can't", None not said."""
    if user_id is None:
        return None
    row = (
        await Rsvp.select(Rsvp.coming)
        .where((Rsvp.meeting == meeting_id) & (Rsvp.user == user_id))
        .first()
    )
    return None if row is None else bool(row["coming"])


# Channels --------------------------------------------------------------------------------


async def preference(user_id: int) -> dict[str, Any]:
    row = await Preference.select().where(Preference.user == user_id).first()
    return row or {
        "sms_consent_at": None,
        "sms_consent_by": None,
        "email_consent_at": None,
        "email_consent_by": None,
        "sms_consent_phone": None,
        "email_consent_address": None,
        "email_digest": False,
        "sms_stopped_at": None,
    }


async def set_channels(
    user_id: int, *, sms: bool, email: bool, email_digest: bool, recorded_by: int | None
) -> None:
    """Records the channels a resident chose (consent given or withdrawn, now, by whom, for
    the number and address on file now: a new number needs consent again). A channel withdrawn
    cancels what was still waiting to go by it. Inside a transaction."""
    from accounts.models import User  # noqa: PLC0415 (accounts build on nothing of ours)

    at = now()
    by = recorded_by if recorded_by != user_id else None
    current = await preference(user_id)
    person = await User.select(User.phone, User.email).where(User.id == user_id).first()
    phone = (person or {}).get("phone") or None
    address = (person or {}).get("email") or None
    values: dict[Any, Any] = {Preference.email_digest: email_digest, Preference.updated_at: at}
    if sms and (current["sms_consent_at"] is None or current["sms_consent_phone"] != phone):
        values[Preference.sms_consent_at], values[Preference.sms_consent_by] = at, by
        values[Preference.sms_consent_phone] = phone
    elif not sms:
        values[Preference.sms_consent_at], values[Preference.sms_consent_by] = None, None
        values[Preference.sms_consent_phone] = None
    if email and (
        current["email_consent_at"] is None or current["email_consent_address"] != address
    ):
        values[Preference.email_consent_at], values[Preference.email_consent_by] = at, by
        values[Preference.email_consent_address] = address
    elif not email:
        values[Preference.email_consent_at], values[Preference.email_consent_by] = None, None
        values[Preference.email_consent_address] = None
    await Preference.insert(
        Preference(user=user_id, email_digest=email_digest, updated_at=at)
    ).on_conflict(action="DO NOTHING")
    await Preference.update(values).where(Preference.user == user_id)
    withdrawn = [channel for channel, kept in ((SMS, sms), (EMAIL, email)) if not kept]
    if withdrawn:
        await cancel_pending(user_id, withdrawn)


def consented(channel: str, preference: Mapping[str, Any] | None, address: str | None) -> bool:
    """Whether a message may go by this channel to this number or address: consent recorded,
    for that very number or address (a new one needs consent again), and no STOP since. The
    same rule as `emit`'s SQL; read again before sending and for the facilitator's preview."""
    if not preference or not address:
        return False
    consent = preference["sms_consent_at" if channel == SMS else "email_consent_at"]
    given_for = preference["sms_consent_phone" if channel == SMS else "email_consent_address"]
    if consent is None or given_for != address:
        return False
    stopped = preference.get("sms_stopped_at") if channel == SMS else None
    return stopped is None or _moment(stopped) < _moment(consent)


def _moment(value: datetime | str) -> datetime:
    """A time as a row holds it (a raw SQLite row may hold its text)."""
    return db.utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


async def withdraw(user_id: int, channel: str, *, stop: bool = False) -> int:
    """Consent to one channel withdrawn, the other left as it is (an opt-out link, a STOP:
    `stop` records when); what was waiting to go by it is cancelled. How many were. Inside a
    transaction."""
    at = now()
    if channel == SMS:
        values: dict[Any, Any] = {
            Preference.sms_consent_at: None,
            Preference.sms_consent_by: None,
            Preference.sms_consent_phone: None,
        }
        if stop:
            values[Preference.sms_stopped_at] = at
    else:
        values = {
            Preference.email_consent_at: None,
            Preference.email_consent_by: None,
            Preference.email_consent_address: None,
        }
    await Preference.insert(Preference(user=user_id, updated_at=at)).on_conflict(
        action="DO NOTHING"
    )
    await Preference.update({**values, Preference.updated_at: at}).where(Preference.user == user_id)
    return await cancel_pending(user_id, [channel])


async def cancel_pending(user_id: int, channels: Iterable[str]) -> int:
    """What has not gone yet by these channels will not go: consent withdrawn, STOP."""
    from notifications.models import Delivery  # noqa: PLC0415

    cancelled = await (
        Delivery.update({Delivery.status: CANCELLED, Delivery.last_error: ""})
        .where(
            (Delivery.user == user_id)
            & Delivery.channel.is_in(list(channels))
            & Delivery.status.is_in([QUEUED, RETRY])
        )
        .returning(Delivery.id)
    )
    return len(cancelled)


__all__ = ["EMAIL", "MEETING", "PROPOSAL", "SMS", "TABLE"]
