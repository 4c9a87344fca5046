"""The residents' notification pages through real HTTP on a real database: the header's count,
the list and marking read, the channels (one's own, or recorded by a facilitator with the
resident), following, and "I'll come" / "I can't"."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from babel.dates import format_date
from httpx import AsyncClient

from accounts.models import User
from audit.models import AuditEntry
from meetings.models import Meeting
from notifications import controllers, messages, services
from notifications.controllers import NO_PHONE, NOT_AGREED, PAGE_SIZE
from notifications.models import PROPOSAL, TABLE, Event, Follow, Notification, Preference, Rsvp
from proposals.models import Proposal
from voix import db
from voix.i18n import LOCAL_TIMEZONE, catalog
from voix.settings import get_settings

from .factories import World, add_proposal, build_world, post_form, sign_in, sign_out

CSRF_EXPIRED = "This form has expired. Go back, reload the page and try again."


def t(msgid: str, lang: str = "fr", **params: Any) -> str:
    text = catalog(lang).gettext(msgid)
    return html.escape(text % params if params else text, quote=False)


def n(singular: str, plural: str, count: int, lang: str = "fr") -> str:
    return html.escape(catalog(lang).ngettext(singular, plural, count) % {"num": count})


def header(page: str) -> str:
    return page.split('<header class="site-header">')[1].split("</header>", maxsplit=1)[0]


def unread_badge(page: str) -> str | None:
    found = re.search(r'<span class="unread-count" aria-hidden="true">([^<]+)</span>', header(page))
    return found.group(1) if found else None


async def emit(world: World, number: int, *, to: tuple[str, ...] = ("resident_a",)) -> int:
    """A meeting scheduled at table A, for these people; the event's id."""
    at = services.now() + timedelta(days=5)
    async with db.write_transaction():
        event = await services.emit(
            "meeting.scheduled",
            f"meeting.scheduled:{number}",
            audience=services.Audience(users=tuple(world.users[who] for who in to)),
            params={
                "table": world.table_a["name"],
                "title": f"Réunion numéro {number}",
                "starts_at": at.isoformat(),
                "place": "Centre social",
                "address": "12 avenue Salvador Allende",
            },
            path=f"/tables/{world.table_a['slug']}",
            table_id=world.table_a["id"],
        )
    assert event is not None
    return event


async def one(query: Any) -> dict[str, Any]:
    row = await query.first()
    assert row is not None
    return dict(row)


async def notification_of(event: int, user: int) -> dict[str, Any]:
    return await one(
        Notification.select().where((Notification.event == event) & (Notification.user == user))
    )


async def add_meeting(table: dict[str, Any], days: float = 3) -> int:
    at = services.now() + timedelta(days=days)
    rows = await Meeting.insert(
        Meeting(
            table=table["id"],
            title="Assemblée de décembre",
            starts_at=at,
            ends_at=at + timedelta(hours=2),
            place="Local associatif",
            address="12 rue des Flamants",
            languages="fr ar",
            created_at=services.now(),
        )
    ).returning(Meeting.id)
    return int(rows[0]["id"])


async def audit_entries(action: str) -> list[dict[str, Any]]:
    rows = await AuditEntry.select(
        AuditEntry.actor, AuditEntry.table_id, AuditEntry.subject, AuditEntry.details
    ).where(AuditEntry.action == action)
    for row in rows:  # JSON text on SQLite, a document on PostgreSQL
        if isinstance(row["details"], str):
            row["details"] = json.loads(row["details"])
    return rows


# The header and the list ------------------------------------------------------------------


async def test_the_header_counts_what_is_unread_and_reading_lowers_it(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    page = await client.get("/?lang=fr")
    assert t("Notifications") in header(page.text)
    assert unread_badge(page.text) is None

    first = await emit(world, 1)
    second = await emit(world, 2)
    page = await client.get("/?lang=fr")
    assert unread_badge(page.text) == "2"
    assert n("(%(num)d unread)", "(%(num)d unread)", 2) in header(page.text)
    english = await client.get("/?lang=en")
    assert "(2 unread)" in header(english.text)

    # The list: newest first, each as messages.render says it in the reader's language.
    listing = await client.get("/notifications?lang=fr")
    assert listing.status_code == 200
    assert listing.headers["cache-control"] == "no-store"
    for event in (first, second):
        row = await one(Event.select().where(Event.id == event))
        said = messages.render(
            {"kind": row["kind"], "params": json.loads(row["params"]), "path": row["path"]},
            "fr",
            "site",
        )
        # What people typed is isolated on the page (U+2068 … U+2069): read without them.
        shown = listing.text.replace("\u2068", "").replace("\u2069", "")
        assert html.escape(said.subject, quote=False) in shown
    assert "\u2068" in listing.text
    ids = [int(i) for i in re.findall(r'action="/notifications/(\d+)/read"', listing.text)]
    newest = (await notification_of(second, world.users["resident_a"]))["id"]
    oldest = (await notification_of(first, world.users["resident_a"]))["id"]
    assert ids == [newest, oldest]
    assert listing.text.count('class="notification unread"') == 2

    # Opening one marks it read and goes where it points.
    opened = await post_form(client, f"/notifications/{newest}/read", {})
    assert opened.status_code == 303
    assert opened.headers["location"] == "/tables/flamants-iris"
    assert (await notification_of(second, world.users["resident_a"]))["read_at"] is not None
    assert unread_badge((await client.get("/")).text) == "1"
    listing = await client.get("/notifications")
    assert listing.text.count('class="notification unread"') == 1
    assert 'href="/tables/flamants-iris"' in listing.text  # the one read: a plain link

    everything = await post_form(client, "/notifications/read", {})
    assert everything.status_code == 303
    assert unread_badge((await client.get("/")).text) is None
    assert await Notification.count().where(Notification.read_at.is_null()) == 0


async def test_nobody_reads_or_marks_another_person_s_notifications(client: AsyncClient) -> None:
    world = await build_world()
    event = await emit(world, 1, to=("resident_a",))
    theirs = (await notification_of(event, world.users["resident_a"]))["id"]
    await sign_in(client, world.users["resident_b"])
    refused = await post_form(client, f"/notifications/{theirs}/read", {})
    assert refused.status_code == 404
    everything = await post_form(client, "/notifications/read", {})
    assert everything.status_code == 303
    assert (await notification_of(event, world.users["resident_a"]))["read_at"] is None
    listing = await client.get("/notifications?lang=fr")
    assert "Réunion numéro 1" not in listing.text
    assert t("No notifications yet. Follow a table or a proposal, or say you will come to a meeting: its news will appear here.") in listing.text  # fmt: skip
    sign_out(client)
    assert (await client.get("/notifications")).status_code in (302, 303)  # to sign in
    anonymous = await post_form(client, f"/notifications/{theirs}/read", {})
    assert anonymous.status_code == 401
    assert (await notification_of(event, world.users["resident_a"]))["read_at"] is None


async def test_a_hundred_unread_show_as_99_plus_and_the_list_goes_by_pages(
    client: AsyncClient,
) -> None:
    world = await build_world()
    user = world.users["resident_a"]
    at = services.now()
    events = await Event.insert(
        *[
            Event(
                key=f"meeting.scheduled:{i}",
                kind="meeting.scheduled",
                table=world.table_a["id"],
                params=json.dumps(
                    {
                        "table": "Flamants Iris",
                        "title": f"Réunion {i:03d}",
                        "starts_at": (at + timedelta(days=3)).isoformat(),
                        "place": "Local",
                        "address": "Rue",
                    }
                ),
                path="/tables/flamants-iris",
                created_at=at,
            )
            for i in range(101)
        ]
    ).returning(Event.id)
    await Notification.insert(
        *[Notification(event=e["id"], user=user, created_at=at) for e in events]
    )
    await sign_in(client, user)
    page = await client.get("/notifications?lang=fr")
    assert unread_badge(page.text) == "99+"
    assert t("(more than 99 unread)") in header(page.text)
    ids = [int(i) for i in re.findall(r'action="/notifications/(\d+)/read"', page.text)]
    assert len(ids) == PAGE_SIZE
    assert ids == sorted(ids, reverse=True)
    older = re.search(r'href="/notifications\?before=(\d+)"', page.text)
    assert older is not None
    seen = set(ids)
    before = older.group(1)
    while True:
        page = await client.get(f"/notifications?before={before}")
        ids = [int(i) for i in re.findall(r'action="/notifications/(\d+)/read"', page.text)]
        assert not seen & set(ids)
        seen |= set(ids)
        assert 'href="/notifications"' in page.text  # back to the newest
        found = re.search(r'href="/notifications\?before=(\d+)"', page.text)
        if found is None:
            break
        before = found.group(1)
    assert len(seen) == 101


# Channels ---------------------------------------------------------------------------------


async def test_a_resident_chooses_sms_with_its_consent_recorded(client: AsyncClient) -> None:
    world = await build_world()
    me = world.users["resident_a"]
    await sign_in(client, me)
    page = await client.get("/account/notifications?lang=fr")
    assert page.status_code == 200
    assert t("No phone number on file: SMS cannot be sent.") in page.text
    refused = await post_form(client, "/account/notifications?lang=fr", {"sms": "yes"})
    assert refused.status_code == 400
    assert t(NO_PHONE) in refused.text
    assert await Preference.count() == 0

    await User.update({User.phone: "06 12 34 56 78"}).where(User.id == me)
    saved = await post_form(client, "/account/notifications", {"sms": "yes", "rhythm": "each"})
    assert saved.status_code == 303
    stored = await one(Preference.select().where(Preference.user == me))
    assert stored["sms_consent_at"] is not None
    assert stored["sms_consent_by"] is None  # the resident's own choice
    assert stored["email_consent_at"] is None
    entries = await audit_entries("channels.changed")
    assert [(e["actor"], e["subject"]) for e in entries] == [(me, f"user:{me}")]
    assert entries[0]["details"] == {
        "sms": True,
        "email": False,
        "email_digest": False,
        "phone_changed": False,
        "email_changed": False,
    }
    assert stored["sms_consent_phone"] == "06 12 34 56 78"  # the number it was given for

    page = await client.get(saved.headers["location"] + "&lang=fr")
    assert t("The choices are saved.") in page.text
    assert 'name="sms" value="yes" id="f-sms"' in page.text
    assert re.search(r'name="sms" value="yes" id="f-sms"[^>]*checked', page.text)
    assert "06 12 34 56 78" in page.text
    today = format_date(stored["sms_consent_at"].astimezone(LOCAL_TIMEZONE), "long", locale="fr")
    assert t("Agreed on %(date)s.") % {"date": f"<bdi>{today}</bdi>"} in page.text

    # STOP received: said on the page; unticking withdraws.
    await Preference.update({Preference.sms_stopped_at: services.now()}).where(
        Preference.user == me
    )
    page = await client.get("/account/notifications?lang=en")
    assert "STOP received on" in page.text
    withdrawn = await post_form(client, "/account/notifications", {"rhythm": "digest"})
    assert withdrawn.status_code == 303
    stored = await one(Preference.select().where(Preference.user == me))
    assert stored["sms_consent_at"] is None
    assert stored["email_digest"] is True


async def test_a_facilitator_records_the_channels_with_a_resident_of_their_table(
    client: AsyncClient,
) -> None:
    world = await build_world()
    resident = world.users["resident_a"]
    await User.update({User.phone: "0612345678", User.email: "a@example.org"}).where(
        User.id == resident
    )
    url = f"/tables/flamants-iris/members/{resident}/notifications"
    await sign_in(client, world.users["facilitator_a"])
    page = await client.get(f"{url}?lang=fr")
    assert page.status_code == 200
    assert 'name="consent"' in page.text
    unagreed = await post_form(client, f"{url}?lang=fr", {"sms": "yes", "email": "yes"})
    assert unagreed.status_code == 400
    assert t(NOT_AGREED) in unagreed.text
    assert await Preference.count() == 0

    form = {"sms": "yes", "email": "yes", "rhythm": "digest", "consent": "yes"}
    saved = await post_form(client, url, form)
    assert saved.status_code == 303
    stored = await one(Preference.select().where(Preference.user == resident))
    assert stored["sms_consent_by"] == world.users["facilitator_a"]
    assert stored["email_consent_by"] == world.users["facilitator_a"]
    assert stored["email_digest"] is True
    entries = await audit_entries("channels.recorded_on_behalf")
    assert [(e["actor"], e["table_id"], e["subject"]) for e in entries] == [
        (world.users["facilitator_a"], world.table_a["id"], f"user:{resident}")
    ]

    # The resident sees who recorded it.
    await sign_in(client, resident)
    mine = await client.get("/account/notifications?lang=en")
    assert "recorded by <bdi>Facilitator-A</bdi>" in mine.text
    # A resident cannot open another's page of channels.
    assert (await client.get(url)).status_code == 403

    # A facilitator of another table: refused, for this table and for their own.
    await sign_in(client, world.users["facilitator_b"])
    assert (await post_form(client, url, form)).status_code == 403
    elsewhere = f"/tables/les-aygalades/members/{resident}/notifications"
    assert (await client.get(elsewhere)).status_code == 404
    assert (await post_form(client, elsewhere, form)).status_code == 404
    assert len(await audit_entries("channels.recorded_on_behalf")) == 1


# Following --------------------------------------------------------------------------------


async def test_following_and_no_longer_following_a_proposal_and_a_table(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    me = world.users["resident_b"]  # anyone signed in may follow what they can see
    await sign_in(client, me)
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert f'action="/proposals/{proposal}/follow"' in page.text
    assert t("Follow this proposal") in page.text

    followed = await post_form(client, f"/proposals/{proposal}/follow", {})
    assert followed.status_code == 303
    assert followed.headers["location"] == f"/proposals/{proposal}#follow"
    assert await services.follows(me, PROPOSAL, proposal)
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert f'action="/proposals/{proposal}/unfollow"' in page.text
    assert t("Stop following") in page.text
    assert (await post_form(client, f"/proposals/{proposal}/unfollow", {})).status_code == 303
    assert not await services.follows(me, PROPOSAL, proposal)

    table = world.table_a["id"]
    assert (
        'action="/tables/flamants-iris/follow"' in (await client.get("/tables/flamants-iris")).text
    )
    assert (await post_form(client, "/tables/flamants-iris/follow", {})).status_code == 303
    assert await services.follows(me, TABLE, table)
    page = await client.get("/tables/flamants-iris?lang=ar")
    assert 'action="/tables/flamants-iris/unfollow"' in page.text
    assert 'dir="rtl"' in page.text
    assert (await post_form(client, "/tables/flamants-iris/unfollow", {})).status_code == 303
    assert not await services.follows(me, TABLE, table)

    # A hidden proposal is not there for a resident to follow; nobody anonymous follows.
    await Proposal.update({Proposal.hidden_at: services.now(), Proposal.hidden_reason: "x"}).where(
        Proposal.id == proposal
    )
    assert (await post_form(client, f"/proposals/{proposal}/follow", {})).status_code == 404
    sign_out(client)
    assert "/follow" not in (await client.get("/tables/flamants-iris")).text
    assert (await post_form(client, "/tables/flamants-iris/follow", {})).status_code == 401
    assert await Follow.count() == 0


# "I'll come" / "I can't" ------------------------------------------------------------------


async def test_a_member_says_whether_they_come_and_others_see_the_counts(
    client: AsyncClient,
) -> None:
    world = await build_world()
    meeting = await add_meeting(world.table_a)
    me = world.users["resident_a"]
    await sign_in(client, me)
    page = await client.get(f"/meetings/{meeting}?lang=fr")
    assert f'action="/meetings/{meeting}/rsvp"' in page.text
    assert f'action="/meetings/{meeting}/on-behalf/rsvp"' not in page.text

    said = await post_form(client, f"/meetings/{meeting}/rsvp", {"coming": "yes"})
    assert said.status_code == 303
    assert said.headers["location"] == f"/meetings/{meeting}#rsvp"
    assert await services.rsvp_of(meeting, me) is True
    stored = await one(Rsvp.select())
    assert stored["recorded_by"] is None
    page = await client.get(f"/meetings/{meeting}?lang=fr")
    assert t("Your answer: you will come.") in page.text
    assert n("%(num)d coming", "%(num)d coming", 1) in page.text
    assert (
        await post_form(client, f"/meetings/{meeting}/rsvp", {"coming": "no"})
    ).status_code == 303
    assert await services.rsvp_of(meeting, me) is False
    bad = await post_form(client, f"/meetings/{meeting}/rsvp", {"coming": "maybe"})
    assert bad.status_code == 400

    # Someone of another table sees the counts, not the buttons, and is refused.
    await sign_in(client, world.users["resident_b"])
    page = await client.get(f"/meetings/{meeting}?lang=en")
    assert "1 can&#39;t come" in page.text or "1 can't come" in page.text
    assert f'action="/meetings/{meeting}/rsvp"' not in page.text
    refused = await post_form(client, f"/meetings/{meeting}/rsvp", {"coming": "yes"})
    assert refused.status_code == 403
    assert await services.rsvp_of(meeting, world.users["resident_b"]) is None
    sign_out(client)
    assert (
        await post_form(client, f"/meetings/{meeting}/rsvp", {"coming": "yes"})
    ).status_code == 401

    # A meeting already held takes no answer.
    past = await add_meeting(world.table_a, days=-2)
    await sign_in(client, me)
    late = await post_form(client, f"/meetings/{past}/rsvp", {"coming": "yes"})
    assert late.status_code == 409
    assert await services.rsvp_of(past, me) is None


async def test_a_facilitator_records_a_resident_s_answer(client: AsyncClient) -> None:
    world = await build_world()
    meeting = await add_meeting(world.table_a)
    resident = world.users["resident_a"]
    url = f"/meetings/{meeting}/on-behalf/rsvp"
    await sign_in(client, world.users["facilitator_a"])
    page = await client.get(f"/meetings/{meeting}?lang=fr")
    assert f'action="{url}"' in page.text
    assert f'<option value="{resident}" dir="auto">Resident-A</option>' in page.text
    assert f'href="/tables/flamants-iris/members/{resident}/notifications"' in page.text
    recorded = await post_form(client, url, {"member": str(resident), "coming": "yes"})
    assert recorded.status_code == 303
    stored = await one(Rsvp.select().where(Rsvp.user == resident))
    assert stored["coming"] is True
    assert stored["recorded_by"] == world.users["facilitator_a"]
    entries = await audit_entries("rsvp.recorded_on_behalf")
    assert [(e["actor"], e["subject"], e["details"]) for e in entries] == [
        (world.users["facilitator_a"], f"meeting:{meeting}", {"resident": resident, "coming": True})
    ]
    # Not someone outside the table's residents.
    outsider = await post_form(
        client, url, {"member": str(world.users["resident_b"]), "coming": "yes"}
    )
    assert outsider.status_code == 400
    # Not a facilitator of another table; not the resident themself by this form.
    for who in ("facilitator_b", "resident_a"):
        await sign_in(client, world.users[who])
        refused = await post_form(client, url, {"member": str(resident), "coming": "no"})
        assert refused.status_code == 403
    assert await services.rsvp_of(meeting, resident) is True
    assert await Rsvp.count() == 1


# Every form's CSRF token, and the three languages -------------------------------------------


async def test_every_form_needs_its_csrf_token(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    meeting = await add_meeting(world.table_a)
    resident = world.users["resident_a"]
    event = await emit(world, 1)
    mine = (await notification_of(event, resident))["id"]
    await User.update({User.phone: "0612345678"}).where(User.id == resident)
    forms = {
        "/notifications/read": {},
        f"/notifications/{mine}/read": {},
        "/account/notifications": {"sms": "yes"},
        f"/proposals/{proposal}/follow": {},
        "/tables/flamants-iris/follow": {},
        f"/meetings/{meeting}/rsvp": {"coming": "yes"},
    }
    await sign_in(client, resident)
    await client.get("/login")  # the CSRF cookie, as a page gives it
    for url, data in forms.items():
        for token in ({}, {"_csrf_token": "forged"}):
            refused = await client.post(f"{url}?lang=fr", data={**data, **token})
            assert refused.status_code == 403, url
            assert t(CSRF_EXPIRED) in refused.text
    await services.follow(resident, PROPOSAL, proposal)
    await services.follow(resident, TABLE, world.table_a["id"])
    await sign_in(client, world.users["facilitator_a"])
    for url, data in {
        f"/proposals/{proposal}/unfollow": {},
        "/tables/flamants-iris/unfollow": {},
        f"/tables/flamants-iris/members/{resident}/notifications": {"sms": "yes", "consent": "yes"},
        f"/meetings/{meeting}/on-behalf/rsvp": {"member": str(resident), "coming": "yes"},
    }.items():
        refused = await client.post(url, data=data)
        assert refused.status_code == 403, url
    assert await Notification.count().where(Notification.read_at.is_null()) == 1
    assert await Preference.count() == 0
    assert await Rsvp.count() == 0
    assert await Follow.count() == 2


async def test_the_pages_speak_french_arabic_and_english(client: AsyncClient) -> None:
    world = await build_world()
    meeting = await add_meeting(world.table_a)
    await emit(world, 1)
    resident = world.users["resident_a"]
    await sign_in(client, world.users["facilitator_a"])
    behalf = await client.get(f"/tables/flamants-iris/members/{resident}/notifications?lang=ar")
    assert 'dir="rtl"' in behalf.text
    assert t("Save the choices", "ar") in behalf.text
    await sign_in(client, resident)
    for lang, direction in (("fr", "ltr"), ("ar", "rtl"), ("en", "ltr")):
        for url in ("/notifications", "/account/notifications", f"/meetings/{meeting}", "/account"):
            page = await client.get(f"{url}?lang={lang}")
            assert page.status_code == 200, url
            assert f'<html lang="{lang}" dir="{direction}">' in page.text
            assert t("Notifications", lang) in header(page.text)
        channels = await client.get(f"/account/notifications?lang={lang}")
        assert t("How do you want to receive the news?", lang) in channels.text
        assert t("By SMS", lang) in channels.text
        assert t("One e-mail a day, in the evening (a digest)", lang) in channels.text
        meeting_page = await client.get(f"/meetings/{meeting}?lang={lang}")
        assert t("I'll come", lang) in meeting_page.text


async def test_channels_the_site_cannot_send_are_not_offered(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In production without an SMS provider nor SMTP, neither SMS nor e-mail is offered, and
    a consent given before is kept as it is (not withdrawn by a form that could not show it)."""
    world = await build_world()
    me = world.users["resident_a"]
    await User.update({User.phone: "0612345678"}).where(User.id == me)
    await services.set_channels(me, sms=True, email=False, email_digest=False, recorded_by=me)
    bare = dataclasses.replace(get_settings(), env="production", smtp_url=None, sms_provider=None)
    assert bare.sms_mode is None
    assert bare.mail_mode is None
    monkeypatch.setattr(controllers, "get_settings", lambda: bare)
    await sign_in(client, me)
    page = await client.get("/account/notifications?lang=fr")
    assert 'name="sms"' not in page.text
    assert 'name="email"' not in page.text
    assert t("On the site: always.") in page.text
    saved = await post_form(client, "/account/notifications", {"email": "yes"})
    assert saved.status_code == 303
    stored = await one(Preference.select().where(Preference.user == me))
    assert stored["sms_consent_at"] is not None
    assert stored["email_consent_at"] is None
    # The account page leads to both pages.
    account = await client.get("/account")
    assert 'href="/account/notifications"' in account.text
    assert 'href="/notifications"' in account.text


async def test_a_new_number_needs_consent_again_and_a_bad_one_changes_nothing(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consent to SMS is for the number it was given for: a number typed since (here, or by
    anyone) receives nothing until its channel is ticked again with it on file."""
    from datetime import UTC, datetime

    from notifications.models import SMS, Delivery

    afternoon = datetime.now(LOCAL_TIMEZONE).replace(hour=14).astimezone(UTC)
    monkeypatch.setattr(services, "now", lambda: afternoon)  # not in the quiet hours

    world = await build_world()
    me = world.users["resident_a"]
    await sign_in(client, me)
    saved = await post_form(
        client,
        "/account/notifications",
        {"phone": "06 12 34 56 78", "address": "", "sms": "yes", "rhythm": "each"},
    )
    assert saved.status_code == 303
    person = await one(User.select(User.phone, User.email).where(User.id == me))
    assert person == {"phone": "+33612345678", "email": None}
    stored = await one(Preference.select().where(Preference.user == me))
    assert stored["sms_consent_phone"] == "+33612345678"

    refused = await post_form(
        client,
        "/account/notifications?lang=fr",
        {"phone": "not a number", "address": "nope", "sms": "yes", "rhythm": "each"},
    )
    assert refused.status_code == 400
    assert t("This phone number does not look right.") in refused.text
    assert await one(User.select(User.phone, User.email).where(User.id == me)) == person

    async def emitted(key: str) -> int:
        async with db.write_transaction():
            await services.emit(
                "proposal.status",
                key,
                audience=services.Audience(users=(me,)),
                params={"table": "A", "title": "Un banc", "status": "adopted"},
                path="/proposals/1",
            )
        return await Delivery.count().where((Delivery.user == me) & (Delivery.channel == SMS))

    assert await emitted("one") == 1
    # Someone types another number on the account (no page of ours asked for consent).
    await User.update({User.phone: "+33699999999"}).where(User.id == me)
    assert await emitted("two") == 1  # nothing for a number nobody consented for
    # And the SMS queued before the change does not go to the new number either.
    from notifications import delivery
    from notifications.models import CANCELLED

    assert await delivery.dispatch() == 0
    (queued,) = await Delivery.select(Delivery.status).where(Delivery.user == me)
    assert queued["status"] == CANCELLED
    # The resident ticks SMS again with the new number on file: consent, for that number.
    await post_form(
        client,
        "/account/notifications",
        {"phone": "+33699999999", "sms": "yes", "rhythm": "each"},
    )
    stored = await one(Preference.select().where(Preference.user == me))
    assert stored["sms_consent_phone"] == "+33699999999"
    assert await emitted("three") == 2
