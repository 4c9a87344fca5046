"""An outsider's attack on the notifications (issue 16): privacy of what coordinators and
readers see, the daily SMS limit when a provider leaves us unsure, STOP for numbers as people
type them, permissions of every role on the new forms, hostile texts, quiet hours at the
changes of time, the header's count, and erasure.

Each test asserts the behaviour the issue asks for: one that fails is a problem found."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from accounts import mail
from accounts.models import User
from notifications import delivery, inbound, messages, providers, services, sms
from notifications.delivery import Due
from notifications.models import (
    EMAIL,
    FAILED,
    PROPOSAL,
    QUEUED,
    RETRY,
    SMS,
    UNCERTAIN,
    Delivery,
    Event,
    Follow,
    Notification,
    Preference,
    Rsvp,
)
from proposals.models import Proposal
from tests import test_notification_delivery as sending
from tests.factories import add_proposal, build_world, post_form, seat, sign_in
from tests.test_notification_delivery import (
    Clock,
    SmsServer,
    deliveries,
    emit,
    resident,
)
from tests.test_notification_pages import add_meeting, unread_badge
from voix import db
from voix.i18n import LOCAL_TIMEZONE
from voix.settings import get_settings

clock = sending.clock
sms_server = sending.sms_server  # a hostile provider: it answers each request as told

NUMBER = "06 12 34 56 78"
E164 = "+33612345678"
DIGITS = "612345678"  # what any way of writing the number shows


async def at_table_a(world: Any, user: int) -> int:
    """An event of table A (so of its organisation) for this person; the event's id."""
    async with db.write_transaction():
        event = await services.emit(
            "vote.opened",
            f"vote.opened:{user}",
            audience=services.Audience(users=(user,)),
            params={"table": world.table_a["name"], "question": "Repeindre ?"},
            path="/votes/7",
            table_id=world.table_a["id"],
        )
    assert event is not None
    return event


async def coordinators_page(client: AsyncClient, world: Any) -> str:
    await sign_in(client, world.users["coordinator_a"])
    page = await client.get("/organisations/avec-nous/notifications?lang=fr")
    assert page.status_code == 200
    return page.text


# Privacy: the coordinators' page ---------------------------------------------------------


async def test_coordinators_page_does_not_show_a_number_the_provider_echoes(
    client: AsyncClient, clock: Clock, sms_server: SmsServer
) -> None:
    """Providers' error bodies name the recipient ("invalid number 33612345678"): kept as the
    delivery's last error, they must not reach the coordinators' page."""
    world = await build_world()
    user = await resident("samira", phone=NUMBER, mail_too=False)
    await seat(user, world.table_a)
    sms_server.answers.append(
        (400, b'{"code":"invalid_parameter","message":"33612345678 blocked"}')
    )
    await at_table_a(world, user)
    await delivery.dispatch()
    (row,) = await deliveries(user, SMS)
    assert row["status"] == RETRY  # the error was recorded, the page lists it

    page = await coordinators_page(client, world)
    assert "samira" in page.lower() or "Samira" in page  # the row is there…
    assert DIGITS not in page  # …without the phone number


async def test_coordinators_page_does_not_show_an_address_the_smtp_server_echoes(
    client: AsyncClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """smtplib's refusal names the address ({'samira@…': (550, …)}): not for the page."""
    world = await build_world()
    user = await resident("samira", email="samira.private@example.org", sms=False)
    await seat(user, world.table_a)
    changed = dataclasses.replace(get_settings(), smtp_url="smtp://127.0.0.1:1")
    monkeypatch.setattr(providers, "get_settings", lambda: changed)

    def refuse(_url: str, message: Any) -> None:
        raise smtplib.SMTPRecipientsRefused(
            {str(message["To"]): (550, b"5.1.1 <samira.private@example.org> unknown")}
        )

    monkeypatch.setattr(mail, "_send_smtp", refuse)
    await at_table_a(world, user)
    await delivery.dispatch()
    (row,) = await deliveries(user, EMAIL)
    assert row["status"] == RETRY

    page = await coordinators_page(client, world)
    assert "samira.private@example.org" not in page


# The daily SMS limit ---------------------------------------------------------------------


async def test_an_uncertain_sms_counts_in_the_daily_limit(
    clock: Clock, sms_server: SmsServer
) -> None:
    """An SMS the provider may have sent (request written, connection cut) may be on the
    phone: a second ordinary SMS the same day breaks "at most one SMS a day"."""
    user = await resident("samira", phone=NUMBER, mail_too=False)
    sms_server.answers.append("cut")
    await emit([user], "vote.opened:1")
    await delivery.dispatch()
    (first,) = await deliveries(user, SMS)
    assert first["status"] == UNCERTAIN

    clock.forward(hours=1)
    await emit([user], "vote.opened:2", question="Un autre sujet ?")
    await delivery.dispatch()
    assert len(sms_server.received) == 1, "a second SMS went the same day"
    second = (await deliveries(user, SMS))[1]
    assert second["status"] == QUEUED
    due = db.utc(second["due_at"]).astimezone(LOCAL_TIMEZONE)
    assert (due.date(), due.hour) == (clock.at.date() + timedelta(days=1), 8)


# Privacy: a hidden proposal --------------------------------------------------------------


async def test_a_hidden_proposal_s_title_leaves_the_notifications_page(
    client: AsyncClient, clock: Clock
) -> None:
    """Moderation hides a proposal (its title is abusive, or names someone): its followers'
    notifications must not keep showing that title (the reminders already leave hidden
    agenda items out)."""
    world = await build_world()
    title = "Titre injurieux envers M. Dupont"
    proposal = await add_proposal(world.table_a, title=title)
    reader = world.users["resident_a"]
    await services.follow(reader, PROPOSAL, proposal)
    async with db.write_transaction():
        await services.emit(
            "proposal.status",
            f"proposal.status:{proposal}:adopted:1",
            audience=services.Audience(follows=((PROPOSAL, proposal),)),
            params={"table": world.table_a["name"], "title": title, "status": "adopted"},
            path=f"/proposals/{proposal}",
            table_id=world.table_a["id"],
        )
    await sign_in(client, reader)
    before = await client.get("/notifications?lang=fr")
    assert "Dupont" in before.text  # shown while the proposal is visible

    await Proposal.update(
        {Proposal.hidden_at: datetime.now(UTC), Proposal.hidden_reason: "insult"}
    ).where(Proposal.id == proposal)
    after = await client.get("/notifications?lang=fr")
    assert after.status_code == 200
    assert "Dupont" not in after.text


# STOP for numbers as they are typed -------------------------------------------------------


@pytest.fixture
def inbound_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = "inbound-token-attack-0123456789"
    changed = dataclasses.replace(get_settings(), sms_inbound_token=token)
    monkeypatch.setattr(inbound, "get_settings", lambda: changed)
    return token


@pytest.mark.parametrize(
    "typed",
    [
        "0 6 1 2 3 4 5 6 7 8",  # digit by digit: the registration form accepts it
        "06.12.34.56.78",
        "+33 (0)6 12 34 56 78",
        "0033 6 12 34 56 78",
    ],
)
async def test_stop_reaches_a_number_however_it_was_typed(
    client: AsyncClient, clock: Clock, inbound_token: str, typed: str
) -> None:
    user = await resident("samira", phone=typed, mail_too=False)
    await emit([user], "vote.opened:1")
    answer = await client.post(
        f"/notifications/sms/inbound/{inbound_token}", json={"from": E164, "text": "Stop."}
    )
    assert answer.status_code == 200
    row = await Preference.select().where(Preference.user == user).first()
    assert row is not None
    assert row["sms_consent_at"] is None, f"STOP missed {typed!r}"
    assert [d["status"] for d in await deliveries(user, SMS)] == ["cancelled"]


async def test_inbound_garbage_changes_nothing(
    client: AsyncClient, clock: Clock, inbound_token: str
) -> None:
    user = await resident("samira", phone=NUMBER, mail_too=False)
    base = f"/notifications/sms/inbound/{inbound_token}"
    assert (await client.post(base + "x", json={"from": E164, "text": "STOP"})).status_code == 404
    for body in (b"not json", b"[1, 2]", b'{"from": ["x"], "text": {"a": 1}}'):
        sent = await client.post(base, content=body, headers={"content-type": "application/json"})
        assert sent.status_code == 200
    huge = await client.post(base, json={"from": E164, "text": "bonjour " * 50_000})
    assert huge.status_code in (200, 413)
    assert (await Preference.select().where(Preference.user == user).first() or {})[
        "sms_consent_at"
    ] is not None


# Permissions on the new forms ------------------------------------------------------------


async def test_on_behalf_forms_refuse_those_of_other_tables_and_non_residents(
    client: AsyncClient, clock: Clock
) -> None:
    world = await build_world()
    u = world.users
    meeting = await add_meeting(world.table_a)
    a, b = world.table_a["slug"], world.table_b["slug"]
    attempts = [
        ("facilitator_b", f"/tables/{a}/members/{u['resident_a']}/notifications"),
        ("coordinator_b", f"/tables/{a}/members/{u['resident_a']}/notifications"),
        ("resident_a", f"/tables/{a}/members/{u['resident_a']}/notifications"),
        ("outsider", f"/tables/{a}/members/{u['resident_a']}/notifications"),
        # A resident of another table, or a facilitator, is no resident of this one.
        ("facilitator_a", f"/tables/{a}/members/{u['resident_b']}/notifications"),
        ("facilitator_a", f"/tables/{a}/members/{u['facilitator_a']}/notifications"),
        ("facilitator_a", f"/tables/{b}/members/{u['resident_b']}/notifications"),
    ]
    form = {"sms": "yes", "email": "yes", "consent": "yes", "rhythm": "digest"}
    for who, url in attempts:
        await sign_in(client, u[who])
        assert (await client.get(url)).status_code in (403, 404), (who, url)
        assert (await post_form(client, url, form)).status_code in (403, 404), (who, url)
    # A facilitator whose session has not proved its second factor records nothing either.
    await sign_in(client, u["facilitator_a"], verified=False)
    url = f"/tables/{a}/members/{u['resident_a']}/notifications"
    assert (await post_form(client, url, form)).status_code in (401, 403)
    assert await Preference.count() == 0

    rsvp = f"/meetings/{meeting}/on-behalf/rsvp"
    for who, member in (
        ("facilitator_b", u["resident_a"]),
        ("resident_a", u["resident_a"]),
        ("facilitator_a", u["resident_b"]),
        ("facilitator_a", u["outsider"]),
        ("facilitator_a", "99999999999999999999"),
        ("facilitator_a", "٣"),
    ):
        await sign_in(client, u[who])
        answer = await post_form(client, rsvp, {"member": str(member), "coming": "yes"})
        assert answer.status_code in (400, 403, 404), (who, member)
    for who in ("outsider", "resident_b", "facilitator_b", "coordinator_b"):
        await sign_in(client, u[who])
        own = await post_form(client, f"/meetings/{meeting}/rsvp", {"coming": "yes"})
        assert own.status_code in (403, 404), who
    await sign_in(client, u["resident_a"])
    for bad in ({"coming": "maybe"}, {}, {"coming": "oui"}):
        answer = await post_form(client, f"/meetings/{meeting}/rsvp", bad)
        assert answer.status_code == 400, bad
    assert (await post_form(client, "/meetings/abc/rsvp", {"coming": "yes"})).status_code == 404
    assert await Rsvp.count() == 0
    assert await Follow.count().where(Follow.kind == "meeting") == 0


async def test_the_message_page_and_retry_stay_within_their_table_and_organisation(
    client: AsyncClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build_world()
    u = world.users
    meeting = await add_meeting(world.table_a)
    for who in ("facilitator_b", "coordinator_b", "resident_a", "outsider"):
        await sign_in(client, u[who])
        assert (await client.get(f"/meetings/{meeting}/message")).status_code == 403, who
        sent = await post_form(
            client,
            f"/meetings/{meeting}/message",
            {"text": "Bonjour", "channels": "sms", "action": "send", "token": "a" * 32},
        )
        assert sent.status_code == 403, who
    assert await Event.count() == 0

    user = await resident("samira", phone=NUMBER, mail_too=False)
    await seat(user, world.table_a)
    await at_table_a(world, user)
    (row,) = await deliveries(user, SMS)
    await Delivery.update({Delivery.status: FAILED}).where(Delivery.id == row["id"])
    for who, slug in (("coordinator_b", "collectif-des-femmes"), ("coordinator_b", "avec-nous")):
        await sign_in(client, u[who])
        answer = await post_form(
            client, f"/organisations/{slug}/notifications/{row['id']}/retry", {}
        )
        assert answer.status_code in (403, 404), (who, slug)
        page = await client.get(f"/organisations/{slug}/notifications")
        assert page.status_code in (200, 403)
        assert "samira" not in page.text.lower()
    assert (await deliveries(user, SMS))[0]["status"] == FAILED
    # The right coordinator, double-clicking: one retry, one line in the journal.
    await sign_in(client, u["coordinator_a"])
    url = f"/organisations/avec-nous/notifications/{row['id']}/retry"
    first, second = await post_form(client, url, {}), await post_form(client, url, {})
    assert first.headers["location"].endswith(f"?retried={row['id']}")
    assert "retried" not in second.headers["location"]


async def test_a_message_sent_twice_with_one_form_is_one_event(
    client: AsyncClient, clock: Clock
) -> None:
    world = await build_world()
    meeting = await add_meeting(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    form = {"text": "Réunion déplacée", "channels": "sms", "action": "send", "token": "b" * 32}
    url = f"/meetings/{meeting}/message"
    answers = await asyncio.gather(post_form(client, url, form), post_form(client, url, form))
    assert [a.status_code for a in answers] == [303, 303]
    assert await Event.count().where(Event.kind == "message") == 1
    assert await Notification.count() == 1  # resident A only (the author is left out)


# Hostile texts -----------------------------------------------------------------------------


def test_hostile_names_never_break_an_e_mail_s_headers_and_sms_stay_one_segment() -> None:
    params = {
        "table": "Flamants\r\nBcc: victim@example.org",
        "title": "Réunion\nBcc: x@example.org\r\n" + "x" * 1000,
        "question": "Q" * 1000,
        "author": "Anim\r\nBcc: y@example.org",
        "text": "Bonjour\r\nBcc: z@example.org",
        "starts_at": "2026-12-02T17:00:00+00:00",
        "place": "Salle\r\n" + "p" * 1000,
    }
    for kind in messages.KINDS:
        for language in ("fr", "ar", "en"):
            event = {"kind": kind, "params": params, "path": "/meetings/1"}
            mail_ = messages.render(event, language, messages.EMAIL)
            assert "\r" not in mail_.subject, kind
            assert "\n" not in mail_.subject, kind
            short = messages.render(event, language, messages.SMS)
            assert short.text.endswith(messages.link("/meetings/1")), (kind, language)
            if kind != "message":
                most = messages.KEEP_WHOLE.get(kind, 1)
                assert sms.segments(short.text) <= most, (kind, language, short.text)


def test_gsm7_extension_characters_cost_two() -> None:
    assert sms.segments("€" * 80) == 1
    assert sms.segments("€" * 81) == 2
    assert sms.segments("ا" * 70) == 1
    assert sms.segments("ا" * 71) == 2


# Quiet hours at the changes of time ----------------------------------------------------------


def due(at: datetime, urgent_until: datetime | None = None) -> Due:
    utc = at.astimezone(UTC)
    return Due(
        id=1,
        user=1,
        channel=SMS,
        status=QUEUED,
        due_at=utc,
        created_at=utc,
        attempts=0,
        urgent_until=urgent_until,
        email_digest=False,
    )


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        # Spring forward (2027-03-28, 02:00 → 03:00): quiet until 08:00 CEST (06:00 UTC).
        (datetime(2027, 3, 27, 22, 0), datetime(2027, 3, 28, 6, 0, tzinfo=UTC)),
        (datetime(2027, 3, 28, 7, 59), datetime(2027, 3, 28, 6, 0, tzinfo=UTC)),
        # Fall back (2027-10-31, 03:00 → 02:00): 08:00 CET is 07:00 UTC.
        (datetime(2027, 10, 30, 21, 0), datetime(2027, 10, 31, 7, 0, tzinfo=UTC)),
        (datetime(2027, 10, 31, 2, 30), datetime(2027, 10, 31, 7, 0, tzinfo=UTC)),
        (datetime(2026, 12, 1, 8, 0), None),  # 08:00 sharp: it goes
        (datetime(2026, 12, 1, 20, 59), None),
    ],
)
def test_quiet_hours_hold_at_the_changes_of_time(
    local: datetime, expected: datetime | None
) -> None:
    now = local.replace(tzinfo=LOCAL_TIMEZONE).astimezone(UTC)
    decided = delivery.plan([due(now)], {}, now)
    if expected is None:
        assert decided.send == [1]
        assert not decided.defer
    else:
        assert decided.send == []
        assert decided.defer[1] == expected


def test_urgent_until_far_ahead_is_no_way_round_the_daily_limit() -> None:
    now = datetime(2026, 12, 1, 10, 0, tzinfo=LOCAL_TIMEZONE).astimezone(UTC)
    decided = delivery.plan([due(now, urgent_until=now + timedelta(days=365))], {1: 1}, now)
    assert decided.send == []
    assert 1 in decided.defer


# The header's count, and erasure ---------------------------------------------------------


async def test_one_hundred_and_fifty_unread_show_as_99_plus(
    client: AsyncClient, clock: Clock
) -> None:
    world = await build_world()
    reader = world.users["resident_a"]
    for number in range(150):
        await emit([reader], f"vote.opened:{number}")
    await sign_in(client, reader)
    for lang in ("fr", "ar", "en"):
        page = await client.get(f"/notifications?lang={lang}")
        assert page.status_code == 200
        assert unread_badge(page.text) == "99+"
    assert 'dir="rtl"' in (await client.get("/account/notifications?lang=ar")).text


async def test_erasure_leaves_nothing_of_the_person_in_the_notification_tables(
    client: AsyncClient, clock: Clock
) -> None:
    world = await build_world()
    user = await resident("samira", phone=NUMBER, email="s@example.org")
    await seat(user, world.table_a)
    await services.follow(user, "table", world.table_a["id"])
    meeting = await add_meeting(world.table_a)
    async with db.write_transaction():
        await services.set_rsvp(meeting, user, True, recorded_by=world.users["facilitator_a"])
    other = await resident("voisine", phone="07 00 00 00 01", email="v@example.org")
    await emit([user, other], "vote.opened:1")
    await sign_in(client, user)
    # The neighbour got the same event: the download holds no one else's rows.
    download = await client.get("/account/data.json")
    assert download.status_code == 200
    data = download.json()
    assert len(data["notifications"]) == 1
    assert len(data["meeting_answers"]) == 1
    assert len(data["notifications"][0]["deliveries"]) == 2  # hers: SMS and e-mail
    assert len(data["notification_preferences"]) == 1
    assert "07 00 00 00 01" not in download.text
    assert "v@example.org" not in download.text
    from accounts import rights
    from voix.permissions import Principal

    await rights.erase(
        Principal(user_id=user, display_name="samira", verified=True), None, confirmed=True
    )
    for model in (Delivery, Notification, Rsvp, Follow, Preference):
        assert await model.count().where(model.user == user) == 0, model
    assert await User.count().where(User.id == user) == 0


async def test_an_old_opt_out_link_does_not_reach_the_next_account_to_get_the_same_id(
    client: AsyncClient, clock: Clock
) -> None:
    """Links have no expiry and name an account by its id: an erased account's id must not
    come back (SQLite gives the highest rowid again once it is deleted), or the e-mail of the
    erased person stops a stranger's e-mails."""
    from accounts import rights
    from voix.permissions import Principal

    gone = await resident("erased-one", email="gone@example.org")
    link = await delivery.stop_path(gone, EMAIL)
    await rights.erase(
        Principal(user_id=gone, display_name="erased-one", verified=True), None, confirmed=True
    )
    newcomer = await resident("newcomer", email="new@example.org")
    assert (await client.get(link)).status_code == 404, (gone, newcomer)
    assert (await post_form(client, link, {})).status_code == 404
    row = await Preference.select().where(Preference.user == newcomer).first()
    assert row is not None
    assert row["email_consent_at"] is not None


async def test_a_follower_may_stop_following_a_proposal_hidden_since(
    client: AsyncClient, clock: Clock
) -> None:
    """Following is one's own: when moderation hides a proposal, its followers can still
    stop following it (else its news keeps reaching them, with no way out)."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    reader = world.users["resident_a"]
    await services.follow(reader, PROPOSAL, proposal)
    await Proposal.update({Proposal.hidden_at: datetime.now(UTC)}).where(Proposal.id == proposal)
    await sign_in(client, reader)
    answer = await post_form(client, f"/proposals/{proposal}/unfollow", {})
    assert answer.status_code == 303
    assert not await services.follows(reader, PROPOSAL, proposal)
    # Following it anew, though, stays for those who may see it.
    again = await post_form(client, f"/proposals/{proposal}/follow", {})
    assert again.status_code == 404
    assert not await services.follows(reader, PROPOSAL, proposal)


async def test_another_s_notification_is_not_found_and_stays_unread(
    client: AsyncClient, clock: Clock
) -> None:
    world = await build_world()
    await emit([world.users["resident_b"]], "vote.opened:1")
    (theirs,) = await Notification.select().where(Notification.user == world.users["resident_b"])
    for who in ("resident_a", "facilitator_b", "coordinator_b", "admin"):
        await sign_in(client, world.users[who])
        opened = await post_form(client, f"/notifications/{theirs['id']}/read", {})
        assert opened.status_code == 404, who
        assert "Repeindre" not in (await client.get("/notifications")).text
    for bad in ("abc", "99999999999999999999", "-1"):
        assert (await post_form(client, f"/notifications/{bad}/read", {})).status_code in (
            400,
            404,
        )
    assert (await client.get("/notifications?before=abc")).status_code == 200
    row = await Notification.select().where(Notification.id == theirs["id"]).first()
    assert row is not None
    assert row["read_at"] is None
