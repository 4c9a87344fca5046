"""A facilitator's message to a table's members (its preview, its sending once) and the
coordinators' page of deliveries that went wrong, through real HTTP on a real database."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta
from typing import Any

import httpx
from babel.numbers import format_currency
from httpx import AsyncClient

from accounts.models import User
from accounts.services import open_session
from audit.models import AuditEntry
from meetings.models import Meeting
from notifications import messages, services, sms
from notifications.message_controllers import NO_HTML
from notifications.models import (
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
from tests.conftest import make_client
from tests.factories import World, add_user, build_world, csrf_token, post_form, seat, sign_in
from voix.forms import REQUIRED, TOO_LONG
from voix.i18n import catalog
from voix.settings import get_settings
from voix.web import SESSION_COOKIE

TEXT = "Réunion de quartier jeudi à 18h30 au local : venez nombreux, on parle des ascenseurs."


def t(msgid: str, lang: str = "fr", **params: Any) -> str:
    text = catalog(lang).gettext(msgid)
    return html.escape(text % params if params else text, quote=False)


def n(singular: str, plural: str, count: int, lang: str = "fr") -> str:
    return html.escape(catalog(lang).ngettext(singular, plural, count) % {"num": count})


def shown(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities read, spaces single."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def add_meeting(table: dict[str, Any]) -> int:
    at = services.now() + timedelta(days=3)
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


async def resident(
    world: World,
    login: str,
    *,
    language: str = "fr",
    phone: str | None = None,
    email: str | None = None,
    sms_on: bool = False,
    email_on: bool = False,
    digest: bool = False,
    table: str = "table_a",
) -> int:
    user_id = await add_user(login, login.title())
    await User.update({User.language: language, User.phone: phone, User.email: email}).where(
        User.id == user_id
    )
    await seat(user_id, getattr(world, table))
    await services.set_channels(
        user_id, sms=sms_on, email=email_on, email_digest=digest, recorded_by=None
    )
    return user_id


async def members_with_channels(world: World) -> dict[str, int]:
    """Table A's members, each with other channels and languages (the facilitator sends)."""
    people = {
        "sms_fr": await resident(world, "sms-fr", phone="+33611111111", sms_on=True),
        "sms_ar": await resident(world, "sms-ar", language="ar", phone="+33622222222", sms_on=True),
        "mail_now": await resident(world, "mail-now", email="now@example.org", email_on=True),
        "mail_digest": await resident(
            world, "mail-digest", email="digest@example.org", email_on=True, digest=True
        ),
        # Consented, but no number: nothing can go by SMS.
        "no_phone": await resident(world, "no-phone", sms_on=True),
        # A phone, no consent.
        "no_consent": await resident(world, "no-consent", phone="+33633333333"),
    }
    # Said STOP: consent withdrawn (as the inbound STOP does), the STOP kept.
    stopped = await resident(world, "stopped", phone="+33644444444", sms_on=True)
    await services.set_channels(
        stopped, sms=False, email=False, email_digest=False, recorded_by=None
    )
    await Preference.update({Preference.sms_stopped_at: services.now()}).where(
        Preference.user == stopped
    )
    people["stopped"] = stopped
    return people


def dd(label: str, value: str) -> str:
    return f"<dt>{label}</dt><dd>{value}</dd>"


async def facilitator_client(client: AsyncClient, world: World) -> AsyncClient:
    await sign_in(client, world.users["facilitator_a"], verified=True)
    return client


async def test_the_preview_counts_each_channel_and_prices_the_sms(client: AsyncClient) -> None:
    world = await build_world()
    await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)

    form = await client.get(f"/meetings/{meeting}/message")
    assert form.status_code == 200
    token = re.search(r'name="token" value="([0-9a-f]{32})"', form.text)
    assert token

    answer = await post_form(
        client,
        f"/meetings/{meeting}/message",
        {"text": TEXT, "channels": [SMS, EMAIL], "action": "preview", "token": token[1]},
    )
    assert answer.status_code == 200
    page = answer.text
    # Table A: resident_a, the facilitator (who sends, so not counted) and the seven above.
    assert dd(t("On the site"), n("%(num)d member", "%(num)d members", 8)) in page
    assert dd(t("By SMS"), n("%(num)d member", "%(num)d members", 2)) in page
    assert (
        dd(
            t("By e-mail"),
            n("%(num)d member now", "%(num)d members now", 1)
            + ", "
            + n("%(num)d in the daily digest", "%(num)d in the daily digest", 1),
        )
        in page
    )
    # The SMS in French and in Arabic, as the delivery will send them.
    event = {
        "kind": "message",
        "params": {"table": world.table_a["name"], "author": "Facilitator-A", "text": TEXT},
        "path": f"/tables/{world.table_a['slug']}",
    }
    texts = {lang: sms.fit(messages.render(event, lang, "sms").text) for lang in ("fr", "ar")}
    for text in texts.values():
        assert html.escape(text, quote=False) in page
        assert sms.encoding(text) in page
        assert n("%(num)d segment", "%(num)d segments", sms.segments(text)) in page
        assert n("%(num)d character", "%(num)d characters", sms.length(text)) in page
    # One French reader and one Arabic reader: the cost is their segments at the set price.
    segments = sms.segments(texts["fr"]) + sms.segments(texts["ar"])
    cost = format_currency(segments * get_settings().sms_segment_price, "EUR", locale="fr")
    assert html.escape(cost) in page
    # A preview changes nothing.
    assert await Event.count() == 0
    assert await Notification.count() == 0


async def test_the_preview_without_sms_costs_nothing_and_says_so_in_arabic(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)
    answer = await post_form(
        client,
        f"/meetings/{meeting}/message?lang=ar",
        {"text": TEXT, "channels": [EMAIL], "action": "preview", "token": "a" * 32},
    )
    assert answer.status_code == 200
    assert '<html lang="ar" dir="rtl">' in answer.text
    assert dd(t("By SMS", "ar"), t("not chosen", "ar")) in answer.text
    assert t("Estimated cost of the SMS: %(cost)s", "ar", cost="").split(":")[0] not in answer.text
    assert await Event.count() == 0


async def test_sending_notifies_every_member_but_the_sender_by_the_chosen_channels(
    client: AsyncClient,
) -> None:
    world = await build_world()
    people = await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)
    token = "b" * 32
    answer = await post_form(
        client,
        f"/meetings/{meeting}/message",
        {"text": TEXT, "channels": [SMS], "action": "send", "token": token},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/meetings/{meeting}/message?sent={token}"

    events = await Event.select().output(load_json=True)
    assert len(events) == 1
    assert events[0]["key"] == f"message:{token}"
    assert events[0]["kind"] == "message"
    assert events[0]["table"] == world.table_a["id"]
    assert events[0]["path"] == "/tables/flamants-iris"
    notified = {row["user"] for row in await Notification.select(Notification.user)}
    members = {world.users["resident_a"], *people.values()}
    assert notified == members  # everyone of table A but the facilitator who wrote
    assert world.users["facilitator_a"] not in notified
    deliveries = await Delivery.select(Delivery.user, Delivery.channel, Delivery.status)
    assert sorted((d["user"], d["channel"]) for d in deliveries) == sorted(
        [(people["sms_fr"], SMS), (people["sms_ar"], SMS)]
    )
    assert {d["status"] for d in deliveries} == {QUEUED}
    # The journal says a message went, to how many, by what; not what it said.
    entry = await (
        AuditEntry.select()
        .where(AuditEntry.action == "notification.message")
        .output(load_json=True)
        .first()
    )
    assert entry is not None
    assert entry["actor"] == world.users["facilitator_a"]
    assert entry["table_id"] == world.table_a["id"]
    assert entry["details"]["recipients"] == len(members)
    assert entry["details"]["sms"] == 2
    assert entry["details"]["email"] == 0
    assert entry["details"]["length"] == len(TEXT)
    assert "ascenseurs" not in str(entry["details"])

    after = await client.get(answer.headers["location"])
    assert after.status_code == 200
    assert (
        n("Your message is sent to %(num)d member.", "Your message is sent to %(num)d members.", 8)
        in after.text
    )
    assert token not in re.findall(r'name="token" value="([0-9a-f]{32})"', after.text)


async def test_channels_left_unticked_get_no_delivery(client: AsyncClient) -> None:
    world = await build_world()
    people = await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)
    answer = await post_form(
        client,
        f"/meetings/{meeting}/message",
        {"text": TEXT, "action": "send", "token": "c" * 32},
    )
    assert answer.status_code == 303
    assert await Notification.count() == len(people) + 1  # the site always
    assert await Delivery.count() == 0

    answer = await post_form(
        client,
        f"/meetings/{meeting}/message",
        {"text": TEXT, "channels": [EMAIL], "action": "send", "token": "d" * 32},
    )
    assert answer.status_code == 303
    deliveries = await Delivery.select(Delivery.user, Delivery.channel)
    assert sorted((d["user"], d["channel"]) for d in deliveries) == sorted(
        [(people["mail_now"], EMAIL), (people["mail_digest"], EMAIL)]
    )


async def test_the_same_form_sent_twice_at_once_sends_once(
    app: object, client: AsyncClient
) -> None:
    world = await build_world()
    people = await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    csrf = await csrf_token(client)
    session = await open_session(world.users["facilitator_a"], verified=True)
    token = "e" * 32

    async def click() -> httpx.Response:
        async with make_client(app) as browser:  # each from its own tab
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": csrf})
            return await browser.post(
                f"/meetings/{meeting}/message",
                data={
                    "text": TEXT,
                    "channels": [SMS, EMAIL],
                    "action": "send",
                    "token": token,
                    "_csrf_token": csrf,
                },
            )

    answers = await asyncio.gather(click(), click())
    assert [a.status_code for a in answers] == [303, 303]
    assert await Event.count() == 1
    assert await Notification.count() == len(people) + 1
    assert await Delivery.count() == 4  # two SMS, two e-mails: once each
    assert await AuditEntry.count().where(AuditEntry.action == "notification.message") == 1
    # And once more, later (the browser's back button and "send" again): still one.
    client.cookies.set(SESSION_COOKIE, session)
    again = await post_form(
        client,
        f"/meetings/{meeting}/message",
        {"text": TEXT, "channels": [SMS], "action": "send", "token": token},
    )
    assert again.status_code == 303
    assert await Event.count() == 1
    assert await Delivery.count() == 4


async def test_bad_text_comes_back_with_its_error_and_sends_nothing(client: AsyncClient) -> None:
    world = await build_world()
    await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)
    url = f"/meetings/{meeting}/message"
    cases = [
        ("x" * 301, t(TOO_LONG, max=300)),
        ("   ", t(REQUIRED)),
        ("Venez <b>nombreux</b>", t(NO_HTML)),
    ]
    for text, error in cases:
        answer = await post_form(
            client, url, {"text": text, "channels": [SMS], "action": "send", "token": "f" * 32}
        )
        assert answer.status_code == 400
        assert error in answer.text
        assert 'aria-invalid="true"' in answer.text
        assert 'value="f' + "f" * 31 + '"' in answer.text  # the same form, its token kept
    # 300 characters are fine, and so is a "<" that opens no tag.
    for text in ("x" * 300, "Entre 18h < 19h, au local <3"):
        answer = await post_form(
            client, url, {"text": text, "action": "preview", "token": "f" * 32}
        )
        assert answer.status_code == 200
    assert await Event.count() == 0
    assert await Notification.count() == 0


async def test_a_send_without_its_token_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)
    answer = await post_form(
        client, f"/meetings/{meeting}/message", {"text": TEXT, "action": "send", "token": "x"}
    )
    assert answer.status_code == 400
    assert await Event.count() == 0


async def test_only_those_who_run_the_table_may_write_to_it(client: AsyncClient) -> None:
    world = await build_world()
    await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    url = f"/meetings/{meeting}/message"
    form = {"text": TEXT, "channels": [SMS], "action": "send", "token": "1" * 32}
    refused = {
        "facilitator_b": (True, 403),
        "coordinator_b": (True, 403),
        "resident_a": (True, 403),
        "resident_b": (True, 403),
        "facilitator_a": (False, None),  # not verified: asked for the code first
    }
    for person, (verified, status) in refused.items():
        await sign_in(client, world.users[person], verified=verified)
        for answer in (await client.get(url), await post_form(client, url, form)):
            if status is not None:
                assert answer.status_code == status, person
            else:
                assert answer.status_code in (303, 401), person
                assert answer.status_code != 200
    client.cookies.delete(SESSION_COOKIE)
    assert (await client.get(url)).status_code in (302, 303, 401)
    assert await Event.count() == 0
    for person in ("coordinator_a", "admin"):
        await sign_in(client, world.users[person], verified=True)
        assert (await client.get(url)).status_code == 200, person
    assert await Event.count() == 0


async def test_the_message_form_needs_its_csrf_token(client: AsyncClient) -> None:
    world = await build_world()
    await members_with_channels(world)
    meeting = await add_meeting(world.table_a)
    await facilitator_client(client, world)
    await csrf_token(client)
    answer = await client.post(
        f"/meetings/{meeting}/message",
        data={"text": TEXT, "channels": [SMS], "action": "send", "token": "2" * 32},
    )
    assert answer.status_code == 403
    assert await Event.count() == 0


# The coordinators' page


async def failed_delivery(world: World, table: str, name: str, status: str = FAILED) -> int:
    """A message to one member of `table`, its SMS in `status` after three attempts."""
    user_id = await resident(world, name.lower(), phone="+33655555555", sms_on=True, table=table)
    await User.update({User.display_name: name}).where(User.id == user_id)
    event = await services.emit(
        "message",
        f"message:{name}",
        audience=services.Audience(users=(user_id,)),
        params={"table": "T", "author": "A", "text": "Bonjour"},
        path="/",
        table_id=getattr(world, table)["id"],
    )
    row = await Delivery.select(Delivery.id).where(Delivery.notification.event == event).first()
    assert row is not None
    await Delivery.update(
        {
            Delivery.status: status,
            Delivery.attempts: 3,
            Delivery.last_error: "HTTP 502 from the provider " + "x" * 300,
        }
    ).where(Delivery.id == row["id"])
    return int(row["id"])


async def test_coordinators_see_their_organisations_failures_only(client: AsyncClient) -> None:
    world = await build_world()
    ours = await failed_delivery(world, "table_a", "Nadia Flamants")
    uncertain = await failed_delivery(world, "table_a", "Karim Flamants", UNCERTAIN)
    theirs = await failed_delivery(world, "table_b", "Amina Aygalades")
    on_time = await failed_delivery(world, "table_a", "Josiane Flamants", QUEUED)
    late = await failed_delivery(world, "table_a", "Youssef Flamants", QUEUED)
    await Delivery.update({Delivery.due_at: services.now()}).where(Delivery.id == on_time)
    await Delivery.update({Delivery.due_at: services.now() - timedelta(minutes=11)}).where(
        Delivery.id == late
    )
    sent = await failed_delivery(world, "table_a", "Samira Flamants", SENT)
    assert sent
    await sign_in(client, world.users["coordinator_a"], verified=True)
    answer = await client.get("/organisations/avec-nous/notifications")
    assert answer.status_code == 200
    page = answer.text
    assert f'id="delivery-{ours}"' in page
    assert "Nadia Flamants" in page
    assert f'id="delivery-{uncertain}"' in page
    assert f'id="delivery-{late}"' in page
    assert f'id="delivery-{on_time}"' not in page
    assert f'id="delivery-{theirs}"' not in page
    assert "Amina" not in page
    assert "+336" not in page  # names, never numbers
    assert "HTTP 502 from the provider" in page
    assert "x" * 200 not in page
    assert page.count(f"/notifications/{ours}/retry") == 1
    assert f"/notifications/{late}/retry" not in page  # only failed and uncertain ones
    assert dd(t("Sent"), "1") in page
    assert dd(t("Failed"), "1") in page
    assert dd(t("Uncertain"), "1") in page


async def test_a_coordinator_puts_a_failed_delivery_back_in_the_queue(client: AsyncClient) -> None:
    world = await build_world()
    ours = await failed_delivery(world, "table_a", "Nadia Flamants")
    await sign_in(client, world.users["coordinator_a"], verified=True)
    url = f"/organisations/avec-nous/notifications/{ours}/retry"
    # Without the form's CSRF token: refused.
    await csrf_token(client)
    assert (await client.post(url)).status_code == 403
    assert (await Delivery.select(Delivery.status).where(Delivery.id == ours).first()) == {
        "status": FAILED
    }
    before = services.now()
    answer = await post_form(client, url, {})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/organisations/avec-nous/notifications?retried={ours}"
    row = await Delivery.select().where(Delivery.id == ours).first()
    assert row is not None
    assert row["status"] == RETRY
    assert row["attempts"] == 3
    assert row["due_at"] >= before - timedelta(seconds=1)
    assert await AuditEntry.count().where(AuditEntry.action == "notification.retry") == 1
    # A second click changes nothing more.
    assert (await post_form(client, url, {})).headers["location"] == (
        "/organisations/avec-nous/notifications"
    )
    assert await AuditEntry.count().where(AuditEntry.action == "notification.retry") == 1
    page = (await client.get(f"/organisations/avec-nous/notifications?retried={ours}")).text
    assert t("The message is back in the queue: it will be sent again shortly.") in page


async def test_another_organisations_coordinator_cannot_retry(client: AsyncClient) -> None:
    world = await build_world()
    ours = await failed_delivery(world, "table_a", "Nadia Flamants")
    await sign_in(client, world.users["coordinator_b"], verified=True)
    # Through their own organisation's address: not one of theirs.
    answer = await post_form(
        client, f"/organisations/collectif-des-femmes/notifications/{ours}/retry", {}
    )
    assert answer.status_code == 404
    # Through ours: not their organisation.
    answer = await post_form(client, f"/organisations/avec-nous/notifications/{ours}/retry", {})
    assert answer.status_code == 403
    assert (await client.get("/organisations/avec-nous/notifications")).status_code == 403
    for person in ("facilitator_a", "resident_a"):
        await sign_in(client, world.users[person], verified=True)
        assert (await client.get("/organisations/avec-nous/notifications")).status_code == 403
        answer = await post_form(client, f"/organisations/avec-nous/notifications/{ours}/retry", {})
        assert answer.status_code == 403
    row = await Delivery.select(Delivery.status).where(Delivery.id == ours).first()
    assert row == {"status": FAILED}
    assert await AuditEntry.count().where(AuditEntry.action == "notification.retry") == 0
    await sign_in(client, world.users["admin"], verified=True)
    assert (await client.get("/organisations/avec-nous/notifications")).status_code == 200


async def test_the_coordinators_page_turns_pages_of_fifty(client: AsyncClient) -> None:
    world = await build_world()
    user_id = await resident(world, "many", phone="+33666666666", sms_on=True)
    for number in range(51):
        await services.emit(
            "message",
            f"message:many-{number}",
            audience=services.Audience(users=(user_id,)),
            params={"table": "T", "author": "A", "text": "Bonjour"},
            path="/",
            table_id=world.table_a["id"],
        )
    await Delivery.update({Delivery.status: FAILED}).where(Delivery.user == user_id)
    await sign_in(client, world.users["coordinator_a"], verified=True)
    first = (await client.get("/organisations/avec-nous/notifications")).text
    assert len(re.findall(r'id="delivery-\d+"', first)) == 50
    assert 'rel="next" href="/organisations/avec-nous/notifications?page=2"' in first
    second = (await client.get("/organisations/avec-nous/notifications?page=2")).text
    assert len(re.findall(r'id="delivery-\d+"', second)) == 1
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second
