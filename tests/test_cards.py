"""Residents registered at the table and their login cards."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
from httpx import AsyncClient
from pypdf import PdfReader

from accounts import cards
from accounts.cards import CONSENT_REQUIRED
from accounts.controllers import CARD_REFUSED
from accounts.models import LoginCard, Session, User
from accounts.services import create_user, open_session
from audit.models import AuditEntry
from tables.models import FACILITATOR, Coordinator, Membership
from tests.conftest import make_client
from tests.factories import add_user, build_world, post_form, seat, sign_in, t
from tests.servers import free_port, wait_ready
from voix import crypto, db, i18n, logs, workers
from voix.permissions import CardHolder, Principal, Scope, can
from voix.settings import PROJECT_ROOT
from voix.static import static_url
from voix.web import SESSION_COOKIE, absolute_url

RESIDENT = {"display_name": "Fatou", "language": "fr", "consent": "yes"}
CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


def card_code(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    match = CODE.search(text)
    assert match, text
    return match.group(0)


async def register(client: AsyncClient, **changes: str) -> tuple[int, str]:
    response = await post_form(client, "/tables/flamants-iris/residents", {**RESIDENT, **changes})
    assert response.status_code == 200, response.text[-400:]
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment")
    user = (
        await User.select(User.id)
        .where(User.display_name == changes.get("display_name", "Fatou"))
        .first()
    )
    return user["id"], card_code(response.content)


async def test_a_facilitator_registers_a_resident_and_prints_a_card(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, code = await register(client, phone="06 12 34 56 78")
    user = await User.select().where(User.id == user_id).first()
    assert user["email"] is None
    assert user["phone"] == "06 12 34 56 78"
    assert user["consent_at"] is not None
    assert user["consent_recorded_by"] == world.users["facilitator_a"]
    assert await Membership.exists().where(Membership.user == user_id)
    stored = await LoginCard.select(LoginCard.code_hash).first()
    assert code.replace("-", "") not in stored["code_hash"]  # only a keyed hash is kept
    actions = {row["action"] for row in await AuditEntry.select(AuditEntry.action)}
    assert {"resident.registered", "card.issued"} <= actions


async def test_the_card_signs_the_resident_in(client: AsyncClient, app) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    _, code = await register(client)
    async with make_client(app) as phone:
        link = await phone.get(f"/card/{code.replace('-', '')}")
        assert link.status_code == 200
        assert SESSION_COOKIE not in phone.cookies  # a GET never signs in
        signed = await post_form(
            phone, "/card", {"code": code.lower().replace("-", " ")}, follow_redirects=False
        )
        assert signed.status_code == 303
        assert "Fatou" in (await phone.get("/")).text


async def test_no_consent_no_registration(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    before = await User.count()
    response = await post_form(
        client, "/tables/flamants-iris/residents", {**RESIDENT, "consent": ""}
    )
    assert response.status_code == 400
    assert t(CONSENT_REQUIRED) in response.text
    assert await User.count() == before


async def test_a_new_card_or_a_revocation_ends_the_old_one_everywhere(
    client: AsyncClient, app
) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, first = await register(client)
    async with make_client(app) as phone:
        await post_form(phone, "/card", {"code": first})
        assert "Fatou" in (await phone.get("/")).text
        reprint = await post_form(
            client, f"/tables/flamants-iris/residents/{user_id}/card", {"reason": "carte perdue"}
        )
        second = card_code(reprint.content)
        assert second != first
        assert "Fatou" not in (await phone.get("/")).text  # its session ended with the old card
        refused = await post_form(phone, "/card", {"code": first})
        assert refused.status_code == 400
        assert t(CARD_REFUSED) in refused.text
        revoke = await post_form(
            client,
            f"/tables/flamants-iris/residents/{user_id}/card/revoke",
            {},
            follow_redirects=False,
        )
        assert revoke.status_code == 303
        assert (await post_form(phone, "/card", {"code": second})).status_code == 400


async def test_a_card_that_could_not_be_printed_changes_nothing(
    client: AsyncClient, app, monkeypatch
) -> None:
    """The code exists only in the PDF: when the server is too busy to print it, the old card
    must still work and no new card, resident or journal entry may be stored."""
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, first = await register(client)
    cards_before, users_before = await LoginCard.count(), await User.count()
    journal_before = await AuditEntry.count()
    monkeypatch.setenv("VOIX_CPU_QUEUE", "1")
    blocker = asyncio.create_task(workers.run(time.sleep, 2))
    await asyncio.sleep(0)  # the sleeping job holds the only slot
    try:
        reprint = await post_form(
            client, f"/tables/flamants-iris/residents/{user_id}/card", {"reason": "carte perdue"}
        )
        register_busy = await post_form(
            client, "/tables/flamants-iris/residents", {**RESIDENT, "display_name": "Nadia"}
        )
    finally:
        await blocker
    assert reprint.status_code == 503
    assert register_busy.status_code == 503
    assert reprint.headers["retry-after"]
    assert (await LoginCard.count(), await User.count()) == (cards_before, users_before)
    assert await AuditEntry.count() == journal_before
    async with make_client(app) as phone:
        signed = await post_form(phone, "/card", {"code": first}, follow_redirects=False)
        assert signed.status_code == 303  # the old card still opens the door


async def test_other_tables_cannot_touch_these_residents(client: AsyncClient) -> None:
    world = await build_world()
    for role in ("facilitator_b", "coordinator_b", "resident_a"):
        await sign_in(client, world.users[role])
        assert (await client.get("/tables/flamants-iris/residents")).status_code == 403, role
        response = await post_form(client, "/tables/flamants-iris/residents", RESIDENT)
        assert response.status_code == 403, role
        card = await post_form(
            client,
            f"/tables/flamants-iris/residents/{world.users['resident_a']}/card",
            {"reason": "carte perdue"},
        )
        assert card.status_code == 403, role
    # A resident of another table, through this table's URL: not found, no card.
    await sign_in(client, world.users["facilitator_a"])
    other = await post_form(
        client,
        f"/tables/flamants-iris/residents/{world.users['resident_b']}/card",
        {"reason": "carte perdue"},
    )
    assert other.status_code == 404
    assert await LoginCard.count() == 0


async def test_unverified_facilitators_must_confirm_first(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    response = await post_form(client, "/tables/flamants-iris/residents", RESIDENT)
    assert response.status_code == 401
    assert await LoginCard.count() == 0


async def test_guessing_card_codes_is_throttled(client: AsyncClient) -> None:
    await build_world()
    statuses = [
        (await post_form(client, "/card", {"code": f"AAAA-BBBB-CCCC-{n:04d}"})).status_code
        for n in range(11)
    ]
    assert statuses == [400] * 10 + [429]


# Nobody becomes someone else with a card (issue 9, item 9).


async def print_card(client: AsyncClient, user_id: int, reason: str = "carte perdue") -> object:
    return await post_form(
        client, f"/tables/flamants-iris/residents/{user_id}/card", {"reason": reason}
    )


async def test_no_card_for_anyone_with_a_password_or_who_runs_a_table(client: AsyncClient) -> None:
    world = await build_world()
    co_facilitator = await add_user("co-facilitator")
    await seat(co_facilitator, world.table_a, FACILITATOR)
    # A resident here who coordinates elsewhere, without a password: still no card.
    coordinating = (await create_user("h-coordinating", "Leila", "")).id
    await seat(coordinating, world.table_a)
    await Coordinator.insert(
        Coordinator(user=coordinating, organisation=world.table_b["organisation"])
    )
    for printer in ("facilitator_a", "coordinator_a", "admin"):
        await sign_in(client, world.users[printer])
        for target in (
            world.users["resident_a"],  # a resident who has a password (and maybe an e-mail)
            co_facilitator,
            world.users["facilitator_a"],  # the facilitator themselves
            coordinating,
        ):
            refused = await print_card(client, target)
            assert refused.status_code == 403, (printer, target)
            assert t(cards.NO_CARD_FOR_THEM) in refused.text
    assert await LoginCard.count() == 0
    page = await client.get("/tables/flamants-iris/residents")
    assert f'/residents/{world.users["resident_a"]}/card"' not in page.text
    assert t("Signs in with a password: no login card.") in page.text


def test_the_card_rule_sees_the_person() -> None:
    scope = Scope(table_id=1, organisation_id=10)
    facilitator = Principal(user_id=3, table_roles={1: FACILITATOR}, verified=True)
    card_only = CardHolder(user_id=20, has_password=False, manages=False)
    assert can(facilitator, "cards.print", scope, card_only)
    assert not can(facilitator, "cards.print", scope, replace(card_only, has_password=True))
    assert not can(facilitator, "cards.print", scope, replace(card_only, manages=True))
    assert not can(facilitator, "cards.print", scope, replace(card_only, user_id=3))
    unverified = replace(facilitator, verified=False)
    assert not can(unverified, "cards.print", scope, card_only)


async def test_a_card_stops_working_when_its_holder_comes_to_run_a_table(
    client: AsyncClient, app
) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, code = await register(client)
    async with make_client(app) as phone:
        assert (await post_form(phone, "/card", {"code": code})).status_code == 303
        assert "Fatou" in (await phone.get("/")).text
        # The role page refuses this promotion (tests/test_roles.py); a role can still come
        # another way (coordinator of an organisation, a table's seat given from the CLI).
        await Coordinator.insert(
            Coordinator(user=user_id, organisation=world.table_a["organisation"])
        )
        # The session the card opened is over: whoever holds it cannot enrol a second factor.
        assert (await phone.get("/account", follow_redirects=False)).status_code in (302, 303)
        assert "Fatou" not in (await phone.get("/")).text
        refused = await post_form(phone, "/card", {"code": code})
        assert refused.status_code == 400
        assert t(CARD_REFUSED) in refused.text


async def test_a_card_printed_for_someone_with_a_password_does_not_sign_in(
    client: AsyncClient,
) -> None:
    """Cards printed before the rule, for a resident who has a password: they sign in no more."""
    world = await build_world()
    code = cards.new_card_code()
    await LoginCard.insert(
        LoginCard(
            user=world.users["resident_a"],
            code_hash=crypto.keyed_hash(code, cards.CARD),
            issued_by=world.users["facilitator_a"],
        )
    )
    refused = await post_form(client, "/card", {"code": code})
    assert refused.status_code == 400
    assert SESSION_COOKIE not in client.cookies
    # And a session such a card opened earlier is no longer honoured.
    client.cookies.set(SESSION_COOKIE, await open_session(world.users["resident_a"], by_card=True))
    assert "Resident-A" not in (await client.get("/")).text
    assert await Session.count() == 0


async def test_the_migration_revokes_cards_that_break_the_rule(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    card_only, _code = await register(client)
    for user_id in (world.users["facilitator_a"], world.users["resident_a"], card_only):
        if user_id != card_only:
            await LoginCard.insert(
                LoginCard(user=user_id, code_hash=crypto.keyed_hash(str(user_id), cards.CARD))
            )
        await open_session(user_id)
    migration = importlib.import_module(
        "accounts.piccolo_migrations.accounts_2026_11_29t22_55_00_000001"
    )
    await migration.revoke_cards_of_those_who_may_not_hold_one()
    live = await LoginCard.select(LoginCard.user).where(LoginCard.revoked_at.is_null())
    assert [row["user"] for row in live] == [card_only]
    with_sessions = {row["user"] for row in await Session.select(Session.user)}
    # The password holders' sessions end (a card may have opened them); the card-only
    # resident's stay, now known as opened with a card.
    assert with_sessions == {card_only}
    assert all(row["by_card"] for row in await Session.select(Session.by_card))


async def test_a_reprint_needs_a_reason_which_the_resident_and_the_journal_see(
    client: AsyncClient, app
) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, first = await register(client)
    for reason in ("", "  ", "ok"):
        refused = await print_card(client, user_id, reason)
        assert refused.status_code == 400, reason
        assert refused.headers["content-type"].startswith("text/html")
    assert await LoginCard.count() == 1  # nothing printed, the first card still works
    page = await client.get("/tables/flamants-iris/residents")
    assert f'action="/tables/flamants-iris/residents/{user_id}/card"' in page.text

    reason = "Carte perdue au marché"
    reprint = await print_card(client, user_id, reason)
    assert reprint.headers["content-type"] == "application/pdf"
    second = card_code(reprint.content)
    stored = await LoginCard.select(LoginCard.reason).where(LoginCard.revoked_at.is_null())
    assert stored == [{"reason": reason}]
    async with make_client(app) as phone:
        assert (await post_form(phone, "/card", {"code": first})).status_code == 400
        assert (await post_form(phone, "/card", {"code": second})).status_code == 303
        account = await phone.get("/account")
    issued_at = (await LoginCard.select(LoginCard.issued_at).where(LoginCard.reason == reason))[0]
    # Each user-written part isolated, so a French reason reads right in an Arabic sentence.
    shown = i18n.catalog("fr").gettext("Card reprinted on %(date)s by %(name)s: %(reason)s") % {
        "date": f"<bdi>{i18n.date(db.utc(issued_at['issued_at']), 'medium')}</bdi>",
        "name": "<bdi>Facilitator-A</bdi>",
        "reason": f"<bdi>{reason}</bdi>",
    }
    assert shown in account.text
    assert t("Two-step sign-in") not in account.text  # a card-only resident has no password

    entry = await AuditEntry.select(AuditEntry.details).where(AuditEntry.action == "card.reprinted")
    assert len(entry) == 1
    details = entry[0]["details"]
    assert (json.loads(details) if isinstance(details, str) else details) == {"reason": reason}
    await sign_in(client, world.users["coordinator_a"])
    journal = await client.get("/organisations/avec-nous/audit")
    assert t("Login card reprinted") in journal.text
    # The reason as typed, isolated (a French reason in an Arabic journal reads right).
    isolated = f'<bdi dir="ltr">{reason}</bdi>'
    assert i18n.catalog("fr").gettext("reason: %(reason)s") % {"reason": isolated} in journal.text


# Card codes stay out of URLs the server logs (issue 9, item 10).


def test_the_qr_code_carries_the_code_in_the_fragment_only() -> None:
    code = cards.new_card_code()
    url = urlsplit(absolute_url(cards.card_path(code)))
    assert url.path == "/card"
    assert code not in url.path
    assert code not in url.query
    assert url.fragment == code


async def test_the_card_page_reads_the_fragment_with_a_script_and_works_without(
    client: AsyncClient,
) -> None:
    page = await client.get("/card")
    assert page.status_code == 200
    assert f'<script src="{static_url("card.js")}" defer></script>' in page.text
    assert 'name="code"' in page.text  # typed by hand without JavaScript
    script = await client.get("/static/card.js")
    assert script.status_code == 200
    assert "location.hash" in script.text
    old_card = await client.get("/card/ABCD-EFGH-JKMN-PQRS")
    assert 'value="ABCDEFGHJKMNPQRS"' in old_card.text  # cards printed before still lead here


def test_the_access_log_filter_hides_codes_and_tokens(caplog) -> None:
    logs.install()
    logs.install()  # twice: still one filter
    access = logging.getLogger(logs.ACCESS_LOGGER)
    assert sum(isinstance(f, logs.RedactSecretPaths) for f in access.filters) == 1
    app_logger = logging.getLogger("voix")  # an unhandled error logs the request's path
    assert sum(isinstance(f, logs.RedactSecretPaths) for f in app_logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=logs.ACCESS_LOGGER):
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/card/7F3KQ2MABCDEFGHJ", "1.1", 200
        )
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/password/reset/12.1790000000.0123456789abcdef0123456789abcdef?x=1",
            "1.1",
            200,
        )
    assert "7F3KQ2MABCDEFGHJ" not in caplog.text
    assert "0123456789abcdef" not in caplog.text
    assert '"GET /card/… HTTP/1.1" 200' in caplog.text
    assert "/password/reset/…?x=1" in caplog.text


def test_a_real_server_logs_no_card_code() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    code = "7F3KQ2MABCDEFGHJ"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voix.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(url, process, log)
            assert httpx.get(f"{url}/card/{code}").status_code == 200
            assert httpx.get(f"{url}/card").status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=15)
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert '"GET /card/… HTTP/1.1" 200' in output, output[-2000:]
    assert code not in output
