"""Sending notifications (issue 16): once each under two replicas, retried with back-off, never
twice when unsure, at decent hours, one SMS a day unless a meeting is tomorrow, the e-mail
digest, consent read again at sending, in each resident's language; the providers (Brevo, a
webhook, the log) against an HTTP server the test starts.

"Replicas" are dispatchers on engines of their own; the clock is notifications.services.now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import smtplib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from babel.dates import format_skeleton

from accounts import mail
from accounts.models import User
from notifications import delivery, messages, providers, services, sms
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
    Delivery,
)
from tests.factories import add_user, build_world, seat
from tests.servers import free_port
from voix import db, jobs
from voix.i18n import LOCAL_TIMEZONE
from voix.settings import Settings, get_settings

# A Tuesday in winter: Paris is UTC+1.
MORNING = datetime(2026, 12, 1, 10, 0, tzinfo=LOCAL_TIMEZONE)


# The clock -------------------------------------------------------------------------------


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at.astimezone(UTC)

    def to(self, local: datetime) -> None:
        self.at = local

    def forward(self, **delta: float) -> None:
        self.at = self.at + timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moving = Clock(MORNING)
    monkeypatch.setattr(services, "now", moving)
    return moving


# A provider the test runs ----------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SmsServer:
    """An HTTP server on 127.0.0.1 that records each request and answers as told: a status
    (201 by default), a status and its body, "hang" (no answer ever) or "cut" (the connection
    closed, no answer)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: deque[int | str | tuple[int, bytes]] = field(default_factory=deque)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, json.loads(raw or b"{}")))
            answer = self.answers.popleft() if self.answers else 201
            if answer == "hang":
                await asyncio.sleep(3600)
            if answer == "cut":
                return
            status, body = answer if isinstance(answer, tuple) else (answer, b'{"messageId": 1}')
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        finally:
            writer.close()
            self._handlers.discard(task)

    def texts_to(self, number: str) -> list[str]:
        return [r.body["text"] for r in self.received if r.body.get("to") == number]


def use_settings(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> Settings:
    """The settings with these changes, as the providers and messages read them."""
    changed = dataclasses.replace(get_settings(), **changes)
    for module in (providers, messages):
        monkeypatch.setattr(module, "get_settings", lambda: changed)
    return changed


@pytest.fixture
async def sms_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SmsServer]:
    """The webhook provider, posting to a server of the test's own."""
    server = SmsServer()
    await server.start()
    use_settings(
        monkeypatch, sms_provider="webhook", sms_url=server.url, sms_api_key="webhook-secret"
    )
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Mailbox:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(
        self, to: str, subject: str, body: str, *, unsubscribe: str | None, message_id: int
    ) -> None:
        self.sent.append({"to": to, "subject": subject, "body": body, "unsubscribe": unsubscribe})


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    box = Mailbox()
    monkeypatch.setattr(providers, "send_email", box)
    return box


@pytest.fixture
async def engines() -> AsyncIterator[list[db.SQLite | db.Postgres]]:
    """Two engines of their own on the test database: two replicas' connections."""
    made = [db.engine_from_url(os.environ["DATABASE_URL"]) for _ in range(2)]
    for engine in made:
        await engine.start()
    yield made
    for engine in made:
        await engine.stop()


# People and events -----------------------------------------------------------------------


async def resident(
    login: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    language: str = "fr",
    sms: bool = True,
    mail_too: bool = True,
    digest: bool = False,
) -> int:
    user = await add_user(login)
    await User.update({User.phone: phone, User.email: email, User.language: language}).where(
        User.id == user
    )
    await services.set_channels(
        user, sms=sms, email=mail_too, email_digest=digest, recorded_by=None
    )
    return user


async def emit(
    users: list[int],
    key: str,
    kind: str = "vote.opened",
    urgent_until: datetime | None = None,
    **params: Any,
) -> int:
    values = {"table": "Flamants-Iris", "question": "Repeindre la cage d'escalier ?", **params}
    async with db.write_transaction():
        event = await services.emit(
            kind,
            key,
            audience=services.Audience(users=tuple(users)),
            params=values,
            path="/votes/7",
            urgent_until=urgent_until,
        )
    assert event is not None
    return event


async def deliveries(user: int, channel: str = SMS) -> list[dict[str, Any]]:
    return await (
        Delivery.select()
        .where((Delivery.user == user) & (Delivery.channel == channel))
        .order_by(Delivery.id)
    )


async def only(user: int, channel: str = SMS) -> dict[str, Any]:
    rows = await deliveries(user, channel)
    assert len(rows) == 1, rows
    return rows[0]


def meeting_tomorrow(clock: Clock) -> dict[str, Any]:
    """A meeting.cancelled event's arguments for a meeting tomorrow evening: urgent."""
    starts = clock() + timedelta(hours=30)
    return {
        "kind": "meeting.cancelled",
        "urgent_until": starts,
        "starts_at": starts.isoformat(),
        "title": "Réunion",
    }


def local(value: datetime) -> datetime:
    return db.utc(value).astimezone(LOCAL_TIMEZONE)


# Once only ------------------------------------------------------------------------------


async def test_two_replicas_send_each_sms_exactly_once(
    clock: Clock,
    sms_server: SmsServer,
    mailbox: Mailbox,
    engines: list[db.SQLite | db.Postgres],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await build_world()
    people = []
    for n in range(24):
        user = await resident(
            f"voisin-{n}", phone=f"06 12 34 56 {n:02d}", email=f"v{n}@example.org"
        )
        await seat(user, world.table_a)
        people.append(user)
    # Two meetings tomorrow: both SMS go today (a third, ordinary one would wait).
    await emit(people, "meeting.cancelled:3", **meeting_tomorrow(clock))
    await emit(people, "meeting.cancelled:4", **meeting_tomorrow(clock))
    monkeypatch.setattr(delivery, "BATCH", 5)  # many claims, interleaved

    sent = await asyncio.gather(
        *(delivery.dispatch(engines[n % 2], name=f"replica-{n}") for n in range(4))
    )

    # 24 people × 2 events: 48 SMS and 48 e-mails.
    assert sum(sent) == 96
    numbers = [request.body["to"] for request in sms_server.received]
    assert len(numbers) == 48
    assert sorted(set(numbers)) == sorted(f"+336123456{n:02d}" for n in range(24))
    assert all(numbers.count(number) == 2 for number in set(numbers))
    keys = [request.headers["idempotency-key"] for request in sms_server.received]
    assert len(set(keys)) == 48
    assert len(mailbox.sent) == 48
    rows = await Delivery.select(Delivery.status, Delivery.attempts, Delivery.locked_by)
    assert {(row["status"], row["attempts"]) for row in rows} == {(SENT, 1)}
    assert {row["locked_by"] for row in rows} <= {f"replica-{n}" for n in range(4)}
    # Nothing left to send: another round sends nothing.
    assert await delivery.dispatch(engines[0]) == 0
    assert len(sms_server.received) == 48


async def test_a_claimed_delivery_is_not_claimed_again(
    clock: Clock, engines: list[db.SQLite | db.Postgres]
) -> None:
    user = await resident("samira", phone="0612345678")
    await emit([user], "vote.opened:1")
    first = delivery._Dispatcher(engines[0], "a")
    second = delivery._Dispatcher(engines[1], "b")
    claims = await asyncio.gather(first.claim(), second.claim())
    assert sorted(len(ids) for ids, _ in claims) == [0, 1]
    row = await only(user)
    assert row["status"] == SENDING
    assert row["locked_by"] in ("a", "b")


# Failures --------------------------------------------------------------------------------


async def test_a_refused_sms_is_tried_again_after_its_back_off_then_sent(
    clock: Clock, sms_server: SmsServer
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    sms_server.answers.extend([500])

    assert await delivery.dispatch() == 0
    row = await only(user)
    assert (row["status"], row["attempts"]) == (RETRY, 1)
    assert "500" in row["last_error"]
    assert db.utc(row["due_at"]) == clock() + timedelta(seconds=delivery.BACKOFF_SECONDS)

    assert await delivery.dispatch() == 0  # not before its time
    assert len(sms_server.received) == 1
    clock.forward(seconds=delivery.BACKOFF_SECONDS)
    assert await delivery.dispatch() == 1
    row = await only(user)
    assert (row["status"], row["attempts"], row["segments"], row["last_error"]) == (SENT, 2, 1, "")
    assert len(sms_server.received) == 2
    assert sms_server.received[0].body == sms_server.received[1].body


async def test_an_sms_refused_every_time_fails_after_five_attempts(
    clock: Clock, sms_server: SmsServer
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    sms_server.answers.extend([503] * 10)
    waits = []
    for _ in range(delivery.MAX_ATTEMPTS):
        await delivery.dispatch()
        row = await only(user)
        if row["status"] == RETRY:
            waits.append(db.utc(row["due_at"]) - clock())
            clock.to(local(row["due_at"]))
    assert row["status"] == FAILED
    assert row["attempts"] == delivery.MAX_ATTEMPTS
    assert [wait.total_seconds() for wait in waits] == [60, 120, 240, 480]
    clock.forward(days=1)
    await delivery.dispatch()
    assert len(sms_server.received) == delivery.MAX_ATTEMPTS


async def test_no_answer_makes_it_uncertain_and_it_is_never_sent_again(
    clock: Clock, sms_server: SmsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(providers, "TOTAL_SECONDS", 0.5)
    hanging = await resident("samira", phone="06 12 34 56 78")
    cut = await resident("karim", phone="06 12 34 56 79")
    await emit([hanging], "vote.opened:1")
    await emit([cut], "vote.opened:2")
    sms_server.answers.extend(["hang", "cut"])

    assert await delivery.dispatch() == 0
    for user in (hanging, cut):
        row = await only(user)
        assert row["status"] == UNCERTAIN
        assert row["sent_at"] is not None  # when it may have gone: it counts in that day's SMS
    assert len(sms_server.received) == 2
    clock.forward(days=2)
    assert await delivery.dispatch() == 0
    assert len(sms_server.received) == 2


async def test_a_provider_that_cannot_be_reached_is_tried_again(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, sms_provider="webhook", sms_url=f"http://127.0.0.1:{free_port()}/")
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    assert await delivery.dispatch() == 0
    row = await only(user)
    assert row["status"] == RETRY
    assert "ConnectError" in row["last_error"]


async def test_a_lease_that_expired_while_sending_leaves_it_uncertain(
    clock: Clock, sms_server: SmsServer
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    dead = delivery._Dispatcher(db.engine(), "died-while-sending")
    claimed, _ = await dead.claim()  # then the process dies: nothing written after
    assert len(claimed) == 1
    clock.forward(seconds=delivery.LEASE.total_seconds() - 1)
    await delivery.dispatch()
    assert (await only(user))["status"] == SENDING
    clock.forward(seconds=2)
    assert await delivery.dispatch() == 0
    row = await only(user)
    assert row["status"] == UNCERTAIN
    assert row["last_error"] == delivery.LEASE_EXPIRED
    assert sms_server.received == []


# Quiet hours, one SMS a day, the digest --------------------------------------------------


async def test_no_sms_in_the_quiet_hours_it_goes_at_eight(
    clock: Clock, sms_server: SmsServer, mailbox: Mailbox
) -> None:
    clock.to(datetime(2026, 12, 1, 22, 30, tzinfo=LOCAL_TIMEZONE))
    user = await resident("samira", phone="06 12 34 56 78", email="samira@example.org")
    await emit([user], "vote.opened:1")

    assert await delivery.dispatch() == 1  # the e-mail: no quiet hours for it
    assert len(mailbox.sent) == 1
    row = await only(user)
    assert row["status"] == QUEUED
    assert local(row["due_at"]) == datetime(2026, 12, 2, 8, 0, tzinfo=LOCAL_TIMEZONE)
    assert sms_server.received == []

    clock.to(datetime(2026, 12, 2, 7, 59, tzinfo=LOCAL_TIMEZONE))
    assert await delivery.dispatch() == 0
    clock.to(datetime(2026, 12, 2, 8, 0, tzinfo=LOCAL_TIMEZONE))
    assert await delivery.dispatch() == 1
    assert (await only(user))["status"] == SENT
    assert len(sms_server.received) == 1


async def test_even_an_urgent_sms_waits_for_the_morning(
    clock: Clock, sms_server: SmsServer
) -> None:
    clock.to(datetime(2026, 12, 2, 6, 15, tzinfo=LOCAL_TIMEZONE))
    user = await resident("samira", phone="06 12 34 56 78")
    await emit(
        [user],
        "meeting.changed:1",
        kind="meeting.changed",
        urgent_until=clock() + timedelta(hours=12),
    )
    await delivery.dispatch()
    row = await only(user)
    assert local(row["due_at"]) == datetime(2026, 12, 2, 8, 0, tzinfo=LOCAL_TIMEZONE)
    assert sms_server.received == []


async def test_one_sms_a_day_unless_a_meeting_is_tomorrow_the_rest_bundled(
    clock: Clock, sms_server: SmsServer
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    assert await delivery.dispatch() == 1

    clock.forward(hours=2)
    await emit([user], "vote.opened:2")
    await emit([user], "vote.result:3", kind="vote.result")
    # Urgent only until a moment beyond tomorrow: not urgent today.
    await emit(
        [user],
        "meeting.changed:4",
        kind="meeting.changed",
        urgent_until=clock() + timedelta(days=3),
    )
    assert await delivery.dispatch() == 0
    tomorrow_morning = datetime(2026, 12, 2, 8, 0, tzinfo=LOCAL_TIMEZONE)
    waiting = [row for row in await deliveries(user) if row["status"] == QUEUED]
    assert len(waiting) == 3
    assert {local(row["due_at"]) for row in waiting} == {tomorrow_morning}

    # A meeting tomorrow passes the limit.
    await emit([user], "meeting.cancelled:5", **meeting_tomorrow(clock))
    assert await delivery.dispatch() == 1
    assert len(sms_server.received) == 2
    assert "Flamants-Iris" in sms_server.received[1].body["text"]

    # Tomorrow at eight, the three that waited go as one SMS.
    clock.to(tomorrow_morning)
    assert await delivery.dispatch() == 1
    assert len(sms_server.received) == 3
    bundle = sms_server.received[2].body
    assert bundle["text"] == messages.render_bundle(3, "fr", SMS).text
    assert bundle["text"].endswith("http://testserver.local/notifications")
    rows = {row["id"]: row for row in await deliveries(user)}
    carrier = next(
        row
        for row in rows.values()
        if row["id"] == int(sms_server.received[2].headers["idempotency-key"])
    )
    assert carrier["status"] == SENT
    carried = [row for row in rows.values() if row["status"] == BUNDLED]
    assert len(carried) == 2
    assert {row["bundle"] for row in carried} == {carrier["id"]}
    # And nothing more that day.
    clock.forward(hours=3)
    await emit([user], "vote.opened:6")
    assert await delivery.dispatch() == 0
    assert len(sms_server.received) == 3


async def test_the_digest_reader_gets_one_e_mail_at_six(clock: Clock, mailbox: Mailbox) -> None:
    reader = await resident("josiane", email="josiane@example.org", sms=False, digest=True)
    every = await resident("nadia", email="nadia@example.org", sms=False)
    await emit([reader, every], "vote.opened:1")
    clock.forward(hours=3)
    await emit([reader, every], "vote.result:2", kind="vote.result")
    assert await delivery.dispatch() == 2
    assert [m["to"] for m in mailbox.sent] == ["nadia@example.org", "nadia@example.org"]
    six = datetime(2026, 12, 1, 18, 0, tzinfo=LOCAL_TIMEZONE)
    assert {local(row["due_at"]) for row in await deliveries(reader, EMAIL)} == {six}

    # A meeting tomorrow does not wait for the digest.
    await emit([reader], "meeting.cancelled:3", **meeting_tomorrow(clock))
    await delivery.dispatch()
    assert mailbox.sent[-1]["to"] == "josiane@example.org"
    assert len(mailbox.sent) == 3

    clock.to(six)
    assert await delivery.dispatch() == 1
    digest = mailbox.sent[-1]
    assert digest["to"] == "josiane@example.org"
    assert digest["subject"] == messages.render_bundle(2, "fr", EMAIL).subject
    assert "2" in digest["subject"]
    assert "Repeindre la cage d'escalier ?" in digest["body"]
    assert digest["body"].count("http://testserver.local/votes/7") == 2
    statuses = sorted(row["status"] for row in await deliveries(reader, EMAIL))
    assert statuses == sorted([SENT, SENT, BUNDLED])

    # Something after six waits for tomorrow's.
    clock.forward(minutes=30)
    await emit([reader], "vote.result:4", kind="vote.result")
    assert await delivery.dispatch() == 0
    latest = (await deliveries(reader, EMAIL))[-1]
    assert local(latest["due_at"]) == six + timedelta(days=1)


# Consent -------------------------------------------------------------------------------


async def test_no_consent_no_delivery(clock: Clock) -> None:
    agreed = await resident("samira", phone="0612345678", email="s@example.org")
    refused = await resident(
        "karim", phone="0612345679", email="k@example.org", sms=False, mail_too=False
    )
    no_phone = await resident("nadia", email="n@example.org")
    await emit([agreed, refused, no_phone], "vote.opened:1")
    assert len(await deliveries(agreed)) == len(await deliveries(agreed, EMAIL)) == 1
    assert await deliveries(refused) == await deliveries(refused, EMAIL) == []
    assert await deliveries(no_phone) == []
    assert len(await deliveries(no_phone, EMAIL)) == 1


async def test_consent_withdrawn_before_sending_cancels(
    clock: Clock, sms_server: SmsServer, mailbox: Mailbox
) -> None:
    early = await resident("samira", phone="0612345678")
    late = await resident("karim", phone="0612345679", email="k@example.org")
    await emit([early, late], "vote.opened:1")
    async with db.write_transaction():
        await services.set_channels(
            early, sms=False, email=False, email_digest=False, recorded_by=None
        )
    # `late` withdraws while a dispatcher holds the claim: the sending reads consent again.
    dispatcher = delivery._Dispatcher(db.engine(), "replica")
    claimed, _ = await dispatcher.claim()
    async with db.write_transaction():
        await services.set_channels(
            late, sms=False, email=True, email_digest=False, recorded_by=None
        )
    assert await dispatcher.send_all(claimed) == 1  # only late's e-mail
    assert (await only(early))["status"] == CANCELLED
    row = await only(late)
    assert row["status"] == CANCELLED
    assert row["last_error"] == delivery.NO_CONSENT
    assert sms_server.received == []
    assert [m["to"] for m in mailbox.sent] == ["k@example.org"]


# Language --------------------------------------------------------------------------------


async def test_each_resident_reads_in_their_language_in_one_segment(
    clock: Clock, sms_server: SmsServer
) -> None:
    arabic = await resident("amina", phone="06 11 11 11 11", language="ar")
    french = await resident("josiane", phone="06 22 22 22 22", language="fr")
    starts = datetime(2026, 12, 9, 18, 30, tzinfo=LOCAL_TIMEZONE)
    await emit(
        [arabic, french],
        "meeting.scheduled:9",
        kind="meeting.scheduled",
        title="Réunion de la table",
        starts_at=starts.astimezone(UTC).isoformat(),
        place="Centre social",
    )
    assert await delivery.dispatch() == 2
    (ar_request,) = [r.body for r in sms_server.received if r.body["to"] == "+33611111111"]
    (fr_request,) = [r.body for r in sms_server.received if r.body["to"] == "+33622222222"]
    assert ar_request["encoding"] == "UCS-2"
    assert ar_request["segments"] == 1
    assert format_skeleton("MMMd", starts, locale="ar") in ar_request["text"]
    assert (
        ar_request["text"]
        == messages.render(
            {
                "kind": "meeting.scheduled",
                "params": json.loads(await event_params("meeting.scheduled:9")),
                "path": "/votes/7",
            },
            "ar",
            SMS,
        ).text
    )
    assert fr_request["encoding"] == "GSM-7"
    assert fr_request["segments"] == 1
    assert sms.fit(format_skeleton("MMMEd", starts, locale="fr")) in fr_request["text"]
    assert "18:30" in fr_request["text"]
    assert fr_request["text"].endswith("\nhttp://testserver.local/votes/7")
    assert (await only(arabic))["segments"] == 1


async def event_params(key: str) -> str:
    from notifications.models import Event

    row = await Event.select(Event.params).where(Event.key == key).first()
    assert row is not None
    return str(row["params"])


# E-mails ---------------------------------------------------------------------------------


async def test_an_e_mail_carries_its_opt_out_link(clock: Clock, mailbox: Mailbox) -> None:
    user = await resident("samira", email="samira@example.org", sms=False)
    await emit([user], "vote.opened:1")
    assert await delivery.dispatch() == 1
    (sent,) = mailbox.sent
    link = f"http://testserver.local/notifications/stop/{await delivery.stop_token(user, EMAIL)}"
    assert sent["unsubscribe"] == link
    assert sent["body"].rstrip().endswith(link)
    assert "http://testserver.local/votes/7" in sent["body"]
    assert (
        sent["subject"]
        == messages.render(
            {
                "kind": "vote.opened",
                "params": json.loads(await event_params("vote.opened:1")),
                "path": "/votes/7",
            },
            "fr",
            EMAIL,
        ).subject
    )


async def test_the_e_mail_goes_through_smtp_with_its_list_unsubscribe_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_settings(monkeypatch, smtp_url="smtp://mail.example.org:587")
    handed: list[EmailMessage] = []

    def smtp(url: str, message: EmailMessage) -> None:
        assert url == "smtp://mail.example.org:587"
        handed.append(message)

    monkeypatch.setattr(mail, "_send_smtp", smtp)
    await providers.send_email(
        "samira@example.org", "Sujet", "Corps", unsubscribe="http://x/stop", message_id=7
    )
    (message,) = handed
    assert message["To"] == "samira@example.org"
    assert message["List-Unsubscribe"] == "<http://x/stop>"
    assert message.get_content().strip() == "Corps"

    def refused(url: str, message: EmailMessage) -> None:
        raise smtplib.SMTPRecipientsRefused({"samira@example.org": (550, b"no such user")})

    monkeypatch.setattr(mail, "_send_smtp", refused)
    with pytest.raises(providers.DefiniteFailure):
        await providers.send_email("samira@example.org", "S", "C", message_id=7)

    def no_answer(url: str, message: EmailMessage) -> None:
        raise TimeoutError("timed out")

    monkeypatch.setattr(mail, "_send_smtp", no_answer)
    with pytest.raises(providers.Uncertain):
        await providers.send_email("samira@example.org", "S", "C", message_id=7)


# Providers -------------------------------------------------------------------------------


async def test_brevo_gets_its_transactional_sms_request(monkeypatch: pytest.MonkeyPatch) -> None:
    server = SmsServer()
    await server.start()
    try:
        use_settings(
            monkeypatch,
            sms_provider="brevo",
            sms_url=server.url,
            sms_api_key="brevo-key",
            sms_sender="VoixQuart",
        )
        await providers.send_sms(providers.Sms(to="+33612345678", text="Bonjour\nhttp://x/1", id=5))
        await providers.send_sms(providers.Sms(to="+212612345678", text="مرحبا\nhttp://x/1", id=6))
        server.answers.append(400)
        with pytest.raises(providers.DefiniteFailure, match="400"):
            await providers.send_sms(providers.Sms(to="+33612345678", text="x", id=7))
    finally:
        await server.stop()
    first, second, _ = server.received
    assert (first.method, first.path) == ("POST", "/sms")
    assert first.headers["api-key"] == "brevo-key"
    assert first.headers["content-type"] == "application/json"
    assert first.body == {
        "sender": "VoixQuart",
        "recipient": "33612345678",
        "content": "Bonjour\nhttp://x/1",
        "type": "transactional",
        "unicodeEnabled": False,
    }
    assert second.body["recipient"] == "212612345678"
    assert second.body["unicodeEnabled"] is True


async def test_the_webhook_gets_the_sms_its_key_and_its_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = SmsServer()
    await server.start()
    try:
        use_settings(monkeypatch, sms_provider="webhook", sms_url=server.url, sms_api_key=None)
        await providers.send_sms(providers.Sms(to="+33612345678", text="Salut", id=41))
        use_settings(monkeypatch, sms_provider="webhook", sms_url=server.url, sms_api_key="tok-123")
        await providers.send_sms(providers.Sms(to="+33612345678", text="مرحبا", id=42))
    finally:
        await server.stop()
    without, with_token = server.received
    assert "authorization" not in without.headers
    assert without.headers["idempotency-key"] == "41"
    assert without.body == {
        "to": "+33612345678",
        "text": "Salut",
        "encoding": "GSM-7",
        "segments": 1,
        "id": 41,
    }
    assert with_token.headers["authorization"] == "Bearer tok-123"
    assert with_token.headers["idempotency-key"] == "42"
    assert with_token.body["encoding"] == "UCS-2"


async def test_in_development_the_sms_goes_to_the_log(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    assert get_settings().sms_mode == "log"
    user = await resident("samira", phone="06 12 34 56 78", language="ar")
    await emit([user], "vote.opened:1")
    with caplog.at_level(logging.INFO, logger="voix.notifications"):
        assert await delivery.dispatch() == 1
    (line,) = [r.getMessage() for r in caplog.records if r.name == "voix.notifications"]
    assert "+33612345678" in line
    assert "1 segment" in line
    assert ("UCS-2" in line) or ("GSM-7" in line)
    assert (await only(user))["status"] == SENT


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("+212 6 12 34 56 78", "+212612345678"),
        ("12 34", None),
        ("", None),
        (None, None),
        ("abc", None),
    ],
)
def test_phone_numbers_in_e164(typed: str | None, number: str | None) -> None:
    assert providers.e164(typed) == number


# The job queue ---------------------------------------------------------------------------


async def test_the_queue_runs_the_dispatch_an_event_asks_for(
    clock: Clock, sms_server: SmsServer
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    runner = jobs.Runner(handlers={services.DISPATCH_JOB: delivery.dispatch_now})
    assert await runner.run_due() == 1
    assert len(sms_server.received) == 1
    # The wake-up is a one-off job; the sweep for what came due since is the recurring kind.
    assert services.DISPATCH_JOB not in jobs.RECURRING
    assert jobs.RECURRING[delivery.DISPATCH_DUE_JOB] == 60
    assert jobs.HANDLERS[delivery.DISPATCH_DUE_JOB] is delivery.dispatch_due
