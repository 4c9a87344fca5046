"""Sending the deliveries that are due: once each, at a decent hour, within the daily SMS.

A dispatcher works in rounds of at most BATCH people's due deliveries:
1. The claim, one short write transaction (PostgreSQL: the rows taken `FOR UPDATE SKIP LOCKED`
   under a transaction-scoped advisory lock, so that two replicas' claims follow each other;
   SQLite: `BEGIN IMMEDIATE`, which does the same). Within it: deliveries left "sending" past
   their lease become "uncertain"; then for each person and channel, the rules decide:
   - SMS: none between 21:00 and 08:00 Paris time (due_at moves to the next 08:00, still
     queued); at most one a Paris day, unless its event is urgent (urgent_until set, still
     ahead, and falling on or before tomorrow): others wait for tomorrow 08:00; several
     non-urgent ones due together go as one SMS (a count and a link), the others "bundled";
   - e-mail: for a digest reader, non-urgent ones wait for 18:00 Paris and go as one e-mail;
     otherwise one e-mail each;
   what goes is marked "sending" with this dispatcher's name and a lease, its attempt counted.
2. The sending, outside any transaction: consent is read again (withdrawn or STOP:
   cancelled), the message rendered in the person's language and handed to the provider;
   the end is written only while the claim is still this dispatcher's. Sent → "sent"; a
   definite failure → "retry" with back-off (voix.jobs.backoff), "failed" after MAX_ATTEMPTS;
   a request that went without an answer → "uncertain", never sent again automatically.

Every time comes from notifications.services.now (tests move it). Every statement goes
through the engine given, so two dispatchers on two engines behave as two replicas.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from piccolo.querystring import QueryString

from accounts.models import User
from notifications import messages, providers, services
from notifications.models import (
    BUNDLED,
    CANCELLED,
    EMAIL,
    FAILED,
    QUEUED,
    RETRY,
    SENDING,
    SENT,
    SMS,
    UNCERTAIN,
)
from voix import crypto, db, jobs
from voix.i18n import LOCAL_TIMEZONE

logger = logging.getLogger("voix.notifications")

DISPATCH_DUE_JOB = "notifications.dispatch_due"
BATCH = 50  # people per claim
CONCURRENCY = 10  # messages handed to providers at once
LEASE = timedelta(minutes=5)  # far beyond a send's 15 s (SMS) or SMTP's time-outs
MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 60.0  # 1, 2, 4, 8 minutes
MAX_ROUNDS = 1000
QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)
DIGEST_AT = time(18, 0)
# pg_advisory_xact_lock's key for the claims ("voix" in ASCII).
CLAIM_LOCK = 0x766F6978

LEASE_EXPIRED = "the dispatcher sending it stopped before it ended (lease expired)"
NO_CONSENT = "consent withdrawn before sending"
NO_ADDRESS = "no valid address"
WITHDRAWN = "the proposal was hidden by moderation"


def _now() -> datetime:
    return services.now()


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return db.utc(value)


def _at(day: date, clock: time) -> datetime:
    """A Paris day and hour, as an aware datetime (UTC offset as that day has it)."""
    return datetime.combine(day, clock, tzinfo=LOCAL_TIMEZONE)


# The opt-out link ------------------------------------------------------------------------

STOP_PURPOSE = "notifications-stop"


def _stop_signature(user_id: int, channel: str, created_at: datetime) -> str:
    # The account's creation time is signed too: on SQLite an erased account's id may be given
    # to the next account, whose e-mails an old link must not stop.
    moment = db.utc(created_at).isoformat(timespec="microseconds")
    return crypto.keyed_hash(f"{user_id}.{channel}.{moment}", STOP_PURPOSE)[:32]


async def _created_at(user_id: int) -> datetime | None:
    row = await User.select(User.created_at).where(User.id == user_id).first()
    return None if row is None else row["created_at"]


def signed_stop_path(user_id: int, channel: str, created_at: datetime) -> str:
    """The opt-out link's path: who, which channel, signed with the secret key; no expiry (an
    old e-mail's link must still work)."""
    return (
        f"/notifications/stop/{user_id}.{channel}.{_stop_signature(user_id, channel, created_at)}"
    )


async def stop_token(user_id: int, channel: str) -> str:
    """The opt-out link's token, for an account by its id."""
    return (await stop_path(user_id, channel)).removeprefix("/notifications/stop/")


async def read_stop_token(token: str) -> tuple[int, str] | None:
    """(user id, channel) of a token `stop_token` made for an account that still exists."""
    try:
        user_text, channel, signature = token.split(".")
        user_id = int(user_text)
    except ValueError:
        return None
    if channel not in (SMS, EMAIL) or not 0 < user_id <= 2**31 - 1:
        return None
    created_at = await _created_at(user_id)
    if created_at is None:
        return None
    expected = _stop_signature(user_id, channel, created_at)
    return (user_id, channel) if hmac.compare_digest(expected, signature) else None


async def stop_path(user_id: int, channel: str) -> str:
    created_at = await _created_at(user_id)
    if created_at is None:
        raise LookupError(user_id)
    return signed_stop_path(user_id, channel, created_at)


# Deciding --------------------------------------------------------------------------------


@dataclass
class Due:
    """A delivery due now, with what the rules need."""

    id: int
    user: int
    channel: str
    status: str
    due_at: datetime
    created_at: datetime
    attempts: int
    urgent_until: datetime | None
    email_digest: bool


@dataclass
class Plan:
    send: list[int] = field(default_factory=list)
    defer: dict[int, datetime] = field(default_factory=dict)  # id -> new due_at
    bundle: dict[int, list[int]] = field(default_factory=dict)  # carrier -> carried


def quiet(local: datetime) -> bool:
    clock = local.time()
    return clock >= QUIET_FROM or clock < QUIET_UNTIL


def next_morning(local: datetime) -> datetime:
    """The next 08:00 Paris time after a moment in the quiet hours."""
    day = local.date() + timedelta(days=1) if local.time() >= QUIET_FROM else local.date()
    return _at(day, QUIET_UNTIL)


def urgent(row: Due, now: datetime) -> bool:
    """An SMS that may pass the daily limit: its event is urgent until a moment still ahead
    that falls on or before tomorrow (a meeting tomorrow)."""
    if row.urgent_until is None or row.urgent_until <= now:
        return False
    tomorrow = now.astimezone(LOCAL_TIMEZONE).date() + timedelta(days=1)
    return row.urgent_until.astimezone(LOCAL_TIMEZONE).date() <= tomorrow


def plan(rows: Iterable[Due], sms_today: Mapping[int, int], now: datetime) -> Plan:
    """What to do with each due delivery (a pure function of the rows and the clock)."""
    decided = Plan()
    groups: dict[tuple[int, str], list[Due]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.due_at, r.id)):
        groups[(row.user, row.channel)].append(row)
    local = now.astimezone(LOCAL_TIMEZONE)
    for (user, channel), group in groups.items():
        if channel == SMS:
            _plan_sms(decided, group, sms_today.get(user, 0), now, local)
        else:
            _plan_email(decided, group, now, local)
    return decided


def _carry(decided: Plan, rows: Sequence[Due]) -> None:
    """One message for them all: the first carries the others."""
    carrier, *carried = rows
    decided.send.append(carrier.id)
    if carried:
        decided.bundle[carrier.id] = [row.id for row in carried]


def _plan_sms(
    decided: Plan, rows: list[Due], sent_today: int, now: datetime, local: datetime
) -> None:
    if quiet(local):
        morning = next_morning(local)
        decided.defer.update((row.id, morning) for row in rows)
        return
    pressing = [row for row in rows if urgent(row, now)]
    ordinary = [row for row in rows if not urgent(row, now)]
    decided.send.extend(row.id for row in pressing)
    if not ordinary:
        return
    if sent_today + len(pressing) >= 1:
        tomorrow = _at(local.date() + timedelta(days=1), QUIET_UNTIL)
        decided.defer.update((row.id, tomorrow) for row in ordinary)
        return
    _carry(decided, ordinary)


def _plan_email(decided: Plan, rows: list[Due], now: datetime, local: datetime) -> None:
    ordinary = []
    for row in rows:
        if urgent(row, now) or not row.email_digest:
            decided.send.append(row.id)
        else:
            ordinary.append(row)
    if not ordinary:
        return
    # A delivery never put off (due when it was made) waits for the next 18:00; one that
    # waited already, or is being retried, goes now with the others.
    fresh = [
        r for r in ordinary if r.status == QUEUED and r.attempts == 0 and r.due_at <= r.created_at
    ]
    ready = [r for r in ordinary if r not in fresh]
    if fresh:
        evening = _at(local.date(), DIGEST_AT)
        if local >= evening:
            evening = _at(local.date() + timedelta(days=1), DIGEST_AT)
        decided.defer.update((row.id, evening) for row in fresh)
    if ready:
        _carry(decided, ready)


# Claiming --------------------------------------------------------------------------------


class _Dispatcher:
    def __init__(self, engine: db.SQLite | db.Postgres, name: str) -> None:
        self.engine = engine
        self.name = name
        self.postgres = not isinstance(engine, db.SQLite)

    async def sql(self, template: str, *args: Any) -> list[dict[str, Any]]:
        return list(await self.engine.run_querystring(QueryString(template, *args)))

    @staticmethod
    def marks(values: Sequence[Any]) -> str:
        return ", ".join("{}" for _ in values)

    async def anything_due(self, now: datetime) -> bool:
        """A plain read first: on SQLite an idle dispatcher never takes the write lock."""
        return bool(
            await self.sql(
                "SELECT id FROM notification_delivery WHERE (status IN ({}, {}) AND due_at <= {})"
                " OR (status = {} AND locked_until < {}) LIMIT 1",
                QUEUED,
                RETRY,
                now,
                SENDING,
                now,
            )
        )

    async def claim(self) -> tuple[list[int], int]:
        """(the deliveries now this dispatcher's to send, how many rows the claim changed)."""
        now = _now()
        if not await self.anything_due(now):
            return [], 0
        skip_locked = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
        async with self.engine.write_transaction():
            if self.postgres:
                await self.sql("SELECT pg_advisory_xact_lock({})", CLAIM_LOCK)
            expired = await self.sql(
                # sent_at: when it may have gone (it counts in that day's SMS).
                "UPDATE notification_delivery SET status = {}, last_error = {},"
                " sent_at = {} WHERE status = {} AND locked_until < {} RETURNING id",
                UNCERTAIN,
                LEASE_EXPIRED,
                now,
                SENDING,
                now,
            )
            for row in expired:
                logger.warning("Delivery %s is uncertain: %s", row["id"], LEASE_EXPIRED)
            first = await self.sql(
                'SELECT id, "user" FROM notification_delivery'  # noqa: S608 - no input in it
                " WHERE status IN ({}, {}) AND due_at <= {}"
                f" ORDER BY due_at, id LIMIT {{}}{skip_locked}",
                QUEUED,
                RETRY,
                now,
                BATCH,
            )
            users = sorted({int(row["user"]) for row in first})
            if not users:
                return [], len(expired)
            rows = await self._due_rows(users, now, skip_locked)
            decided = plan(rows, await self._sms_today(users, now), now)
            changed = await self._apply(decided, now)
        return decided.send if changed else [], changed + len(expired)

    async def _due_rows(self, users: list[int], now: datetime, skip_locked: str) -> list[Due]:
        lock = " FOR UPDATE OF d SKIP LOCKED" if skip_locked else ""
        rows = await self.sql(
            'SELECT d.id, d."user", d.channel, d.status, d.due_at, d.created_at, d.attempts,'  # noqa: S608
            " e.urgent_until, p.email_digest FROM notification_delivery d"
            " JOIN notification n ON n.id = d.notification"
            " JOIN notification_event e ON e.id = n.event"
            ' LEFT JOIN notification_preference p ON p."user" = d."user"'
            f' WHERE d.status IN ({{}}, {{}}) AND d.due_at <= {{}} AND d."user" IN ({self.marks(users)})'
            f" ORDER BY d.due_at, d.id{lock}",
            QUEUED,
            RETRY,
            now,
            *users,
        )
        return [
            Due(
                id=int(row["id"]),
                user=int(row["user"]),
                channel=str(row["channel"]),
                status=str(row["status"]),
                due_at=_utc(row["due_at"]) or now,
                created_at=_utc(row["created_at"]) or now,
                attempts=int(row["attempts"]),
                urgent_until=_utc(row["urgent_until"]),
                email_digest=bool(row["email_digest"]),
            )
            for row in rows
        ]

    async def _sms_today(self, users: list[int], now: datetime) -> dict[int, int]:
        """SMS each person got this Paris day, or that may be going to them now."""
        day_start = _at(now.astimezone(LOCAL_TIMEZONE).date(), time(0, 0))
        rows = await self.sql(
            'SELECT "user", COUNT(*) AS n FROM notification_delivery'  # noqa: S608
            f' WHERE channel = {{}} AND "user" IN ({self.marks(users)})'
            " AND (status = {} OR (status IN ({}, {}) AND sent_at >= {}))"
            ' GROUP BY "user"',
            SMS,
            *users,
            SENDING,
            SENT,
            UNCERTAIN,
            day_start,
        )
        return {int(row["user"]): int(row["n"]) for row in rows}

    async def _apply(self, decided: Plan, now: datetime) -> int:
        changed = 0
        by_time: dict[datetime, list[int]] = defaultdict(list)
        for delivery, due_at in decided.defer.items():
            by_time[due_at].append(delivery)
        for due_at, ids in by_time.items():
            await self.sql(
                f"UPDATE notification_delivery SET due_at = {{}} WHERE id IN ({self.marks(ids)})",  # noqa: S608
                due_at,
                *ids,
            )
            changed += len(ids)
        for carrier, carried in decided.bundle.items():
            marks = self.marks(carried)
            # What the carried ones carried (a digest put off, a bundle retried) moves too.
            await self.sql(
                f"UPDATE notification_delivery SET bundle = {{}} WHERE bundle IN ({marks})",  # noqa: S608
                carrier,
                *carried,
            )
            await self.sql(
                "UPDATE notification_delivery SET status = {}, bundle = {}, locked_by = NULL,"  # noqa: S608
                f" locked_until = NULL WHERE id IN ({marks})",
                BUNDLED,
                carrier,
                *carried,
            )
            changed += len(carried)
        if decided.send:
            claimed = await self.sql(
                "UPDATE notification_delivery SET status = {}, locked_by = {}, locked_until = {},"  # noqa: S608
                " attempts = attempts + 1"
                f" WHERE id IN ({self.marks(decided.send)}) AND status IN ({{}}, {{}}) RETURNING id",
                SENDING,
                self.name,
                now + LEASE,
                *decided.send,
                QUEUED,
                RETRY,
            )
            changed += len(claimed)
        return changed

    # Sending ------------------------------------------------------------------------------

    async def load(
        self, ids: list[int]
    ) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        """The claimed deliveries with their person, consent and event, in one query; and the
        events the bundles carry, in one more."""
        rows = await self.sql(
            'SELECT d.id, d."user", d.channel, d.attempts, a.phone, a.email, a.language,'  # noqa: S608
            " a.created_at AS account_created_at,"
            " p.sms_consent_at, p.email_consent_at, p.sms_stopped_at,"
            " p.sms_consent_phone, p.email_consent_address,"
            " e.kind, e.params, e.path FROM notification_delivery d"
            ' JOIN account a ON a.id = d."user"'
            " JOIN notification n ON n.id = d.notification"
            " JOIN notification_event e ON e.id = n.event"
            ' LEFT JOIN notification_preference p ON p."user" = d."user"'
            f" WHERE d.id IN ({self.marks(ids)}) AND d.status = {{}} AND d.locked_by = {{}}"
            " ORDER BY d.id",
            *ids,
            SENDING,
            self.name,
        )
        carried: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in await self.sql(
            "SELECT b.bundle, e.kind, e.params, e.path FROM notification_delivery b"  # noqa: S608
            " JOIN notification n ON n.id = b.notification"
            " JOIN notification_event e ON e.id = n.event"
            f" WHERE b.bundle IN ({self.marks(ids)}) AND b.status = {{}} ORDER BY b.id",
            *ids,
            BUNDLED,
        ):
            carried[int(row["bundle"])].append(row)
        return rows, carried

    async def finish(self, delivery: int, status: str, error: str = "", **more: Any) -> bool:
        """Writes how a sending ended, while the claim is still this dispatcher's."""
        values: dict[str, Any] = {
            "status": status,
            "last_error": error[:2000],
            "locked_until": None,
        }
        values.update(more)
        assignments = ", ".join(f"{column} = {{}}" for column in values)
        done = await self.sql(
            f"UPDATE notification_delivery SET {assignments}"  # noqa: S608 - our own columns
            " WHERE id = {} AND locked_by = {} AND status IN ({}, {}) RETURNING id",
            *values.values(),
            delivery,
            self.name,
            SENDING,
            UNCERTAIN,
        )
        return bool(done)

    async def _still_to_send(
        self, row: dict[str, Any], carried: list[dict[str, Any]], hidden: AbstractSet[int]
    ) -> list[dict[str, Any]] | None:
        """What this message still carries; None when it must not go (cancelled here): the
        consent was withdrawn, or moderation hid the proposal it is about."""
        delivery, channel = int(row["id"]), str(row["channel"])
        # The row carries the preference's columns under their own names.
        if not services.consented(channel, row, row["phone" if channel == SMS else "email"]):
            await self.finish(delivery, CANCELLED, NO_CONSENT)
            return None
        if not hidden:
            return carried
        # A hidden proposal's title is not sent. What this message was to carry besides goes
        # back to the queue, to go on its own.
        if services.is_withdrawn(row, hidden):
            await self.sql(
                "UPDATE notification_delivery SET status = {}, bundle = NULL"
                " WHERE bundle = {} AND status = {}",
                QUEUED,
                delivery,
                BUNDLED,
            )
            await self.finish(delivery, CANCELLED, WITHDRAWN)
            return None
        return [c for c in carried if not services.is_withdrawn(c, hidden)]

    async def send(
        self,
        row: dict[str, Any],
        carried: list[dict[str, Any]],
        hidden: AbstractSet[int] = frozenset(),
    ) -> bool:
        """Sends one claimed delivery; True when it went. `hidden`: the proposals, among those
        the batch's events are about, that moderation has hidden since."""
        delivery, channel = int(row["id"]), str(row["channel"])
        kept = await self._still_to_send(row, carried, hidden)
        if kept is None:
            return False
        carried = kept
        language = row["language"] or "fr"
        try:
            if channel == SMS:
                segments = await self._send_sms(row, carried, language)
            else:
                segments = 0
                await self._send_email(row, carried, language)
        except providers.Uncertain as error:
            logger.warning("Delivery %s is uncertain: %s", delivery, error)
            # sent_at: when it may have gone, so that it counts in the day's SMS.
            await self.finish(delivery, UNCERTAIN, str(error), sent_at=_now())
            return False
        except providers.NotConfigured as error:
            await self.finish(delivery, CANCELLED, str(error))
            return False
        except _NoAddress:
            await self.finish(delivery, FAILED, NO_ADDRESS)
            return False
        except Exception as error:  # a definite failure, or a fault of ours before sending
            await self._failed(row, error)
            return False
        await self.finish(delivery, SENT, sent_at=_now(), segments=segments)
        return True

    async def _failed(self, row: dict[str, Any], error: Exception) -> None:
        delivery, attempts = int(row["id"]), int(row["attempts"])
        text = (
            str(error)
            if isinstance(error, providers.SendError)
            else f"{type(error).__name__}: {error}"
        )
        if attempts >= MAX_ATTEMPTS:
            logger.error("Delivery %s failed for good after %s tries: %s", delivery, attempts, text)
            await self.finish(delivery, FAILED, text)
            return
        delay = jobs.backoff(attempts, BACKOFF_SECONDS)
        logger.warning(
            "Delivery %s failed, try %s of %s; again in %.0f s: %s",
            delivery, attempts, MAX_ATTEMPTS, delay, text,
        )  # fmt: skip
        await self.finish(delivery, RETRY, text, due_at=_now() + timedelta(seconds=delay))

    async def _send_sms(
        self, row: dict[str, Any], carried: list[dict[str, Any]], language: str
    ) -> int:
        to = providers.e164(row["phone"])
        if to is None:
            raise _NoAddress
        if carried:
            text = messages.render_bundle(1 + len(carried), language, messages.SMS).text
        else:
            text = messages.render(row, language, messages.SMS).text
        message = providers.Sms(to=to, text=text, id=int(row["id"]))
        await providers.send_sms(message)
        return message.segments

    async def _send_email(
        self, row: dict[str, Any], carried: list[dict[str, Any]], language: str
    ) -> None:
        to = (row["email"] or "").strip()
        if "@" not in to:
            raise _NoAddress
        if carried:
            rendered = messages.render_digest([row, *carried], language)
        else:
            rendered = messages.render(row, language, messages.EMAIL)
        stop = signed_stop_path(int(row["user"]), EMAIL, _utc(row["account_created_at"]) or _now())
        await providers.send_email(
            to,
            rendered.subject,
            rendered.text + messages.footer(language, stop),
            unsubscribe=messages.link(stop),
            message_id=int(row["id"]),
        )

    async def send_all(self, ids: list[int]) -> int:
        rows, carried = await self.load(ids)
        # Hidden since by moderation, among the proposals the batch is about: one query.
        hidden = await services.withdrawn([*rows, *(c for cs in carried.values() for c in cs)])
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: dict[str, Any]) -> bool:
            async with gate:
                return await self.send(row, carried.get(int(row["id"]), []), hidden)

        return sum(await asyncio.gather(*(one(row) for row in rows)))


class _NoAddress(Exception):
    """The account has no phone number (or e-mail address) that can be used."""


def _name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def dispatch(engine: db.SQLite | db.Postgres | None = None, name: str | None = None) -> int:
    """Sends everything due now, round after round; how many messages went (SMS and e-mails;
    a bundle counts once)."""
    dispatcher = _Dispatcher(engine or db.engine(), name or _name())
    sent = 0
    for _ in range(MAX_ROUNDS):
        claimed, changed = await dispatcher.claim()
        if claimed:
            sent += await dispatcher.send_all(claimed)
        if not changed:
            break
    return sent


# The queue's handlers: at once after an event (services.emit enqueues DISPATCH_JOB, one at a
# time by its key), and every minute for what has come due since (quiet hours, digests,
# retries). Two kinds, because a kind declared `every=` turns each of its jobs into a recurring
# one (voix.jobs.Runner._succeeded): the keyed wake-up would stay queued for a minute, and
# emit's next wake-ups would find its key taken.


@jobs.handler(services.DISPATCH_JOB)
async def dispatch_now(_payload: dict[str, Any]) -> None:
    await dispatch()


@jobs.handler(DISPATCH_DUE_JOB, every=60)
async def dispatch_due(_payload: dict[str, Any]) -> None:
    await dispatch()
