"""Two-step sign-in, sessions, throttling and the audit journal, through the real app."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
from httpx import AsyncClient

from accounts import mfa
from accounts.models import RecoveryCode, Session, User
from accounts.services import open_session
from accounts.throttle import TOO_MANY
from audit.models import AuditEntry
from tests.conftest import make_client
from tests.factories import PASSWORD, add_proposal, build_world, post_form, sign_in, t
from voix import crypto
from voix.web import SESSION_COOKIE
from votes.models import Vote


async def enrol(client: AsyncClient) -> tuple[str, list[str]]:
    """Enrols the signed-in user as a person would: read the key, type the current code."""
    page = await client.get("/account")
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    assert 'src="data:image/svg+xml' in page.text  # the QR code, served inline
    done = await post_form(client, "/account/totp", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200, done.text[-500:]
    codes = re.findall(r'<code class="code">([0-9A-Z]{5}-[0-9A-Z]{5})</code>', done.text)
    return secret, codes


async def test_a_facilitator_must_enrol_before_managing(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    login = await post_form(
        client, "/login", {"login": "facilitator-a", "password": PASSWORD}, follow_redirects=False
    )
    assert login.headers["location"].startswith("/account")  # sent to set up TOTP
    refused = await post_form(client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"})
    assert refused.status_code == 401
    assert (
        t("Confirm your identity with the code of your authentication app first.") in refused.text
    )
    assert await Vote.count() == 0

    secret, codes = await enrol(client)
    assert len(codes) == 10
    stored = (
        await User.select(User.totp_secret).where(User.id == world.users["facilitator_a"]).first()
    )
    assert secret not in stored["totp_secret"]  # encrypted at rest
    assert crypto.decrypt(stored["totp_secret"], mfa.TOTP) == secret
    assert await RecoveryCode.count() == 10
    opened = await post_form(
        client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"}, follow_redirects=False
    )
    assert opened.status_code == 303
    assert await AuditEntry.exists().where(AuditEntry.action == "totp.enabled")


async def test_a_wrong_first_code_enrols_nothing(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    await client.get("/account")
    response = await post_form(client, "/account/totp", {"code": "000000"})
    assert response.status_code == 400
    assert t(mfa.WRONG_CODE) in response.text
    row = (
        await User.select(User.totp_enabled_at)
        .where(User.id == world.users["facilitator_a"])
        .first()
    )
    assert row["totp_enabled_at"] is None


async def test_sign_in_with_code_once_and_never_twice(client: AsyncClient, app) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    secret, _ = await enrol(client)
    await User.update({User.totp_last_step: None}).where(User.id == world.users["facilitator_a"])

    async with make_client(app) as phone, make_client(app) as laptop:
        for browser in (phone, laptop):
            step = await post_form(
                browser,
                "/login",
                {"login": "facilitator-a", "password": PASSWORD},
                follow_redirects=False,
            )
            assert step.headers["location"].startswith("/login/verify")
        code = pyotp.TOTP(secret).now()
        first = await post_form(
            phone, "/login/verify", {"code": code, "next": "/"}, follow_redirects=False
        )
        assert first.status_code == 303
        old_cookie = phone.cookies.get(SESSION_COOKIE)
        replay = await post_form(laptop, "/login/verify", {"code": code, "next": "/"})
        assert replay.status_code == 400  # the same code, from another browser
    assert old_cookie is not None


async def test_the_session_identifier_changes_when_privilege_does(client: AsyncClient) -> None:
    world = await build_world()
    await post_form(client, "/login", {"login": "facilitator-a", "password": PASSWORD})
    before = client.cookies[SESSION_COOKIE]
    await enrol(client)
    after = client.cookies[SESSION_COOKIE]
    assert before != after
    old = await make_client_request_as(client, before)
    assert "Facilitator-A" not in old  # the old identifier opens nothing any more
    assert world


async def make_client_request_as(client: AsyncClient, token: str) -> str:
    client.cookies.set(SESSION_COOKIE, token)
    return (await client.get("/")).text


async def test_recovery_codes_work_once(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    _, codes = await enrol(client)
    await sign_in(client, world.users["facilitator_a"], verified=False)
    used = await post_form(
        client, "/login/verify", {"code": codes[0].lower(), "next": "/"}, follow_redirects=False
    )
    assert used.status_code == 303
    await sign_in(client, world.users["facilitator_a"], verified=False)
    again = await post_form(client, "/login/verify", {"code": codes[0], "next": "/"})
    assert again.status_code == 400


async def test_removing_totp_needs_password_and_code(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    _secret, codes = await enrol(client)
    wrong = await post_form(client, "/account/totp/reset", {"password": "nope", "code": codes[1]})
    assert wrong.status_code == 400
    assert t(mfa.WRONG_PASSWORD) in wrong.text
    assert await RecoveryCode.count() == 10
    removed = await post_form(
        client,
        "/account/totp/reset",
        {"password": PASSWORD, "code": codes[1]},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    row = (
        await User.select(User.totp_enabled_at, User.totp_secret)
        .where(User.id == world.users["facilitator_a"])
        .first()
    )
    assert row == {"totp_enabled_at": None, "totp_secret": None}
    assert await AuditEntry.exists().where(AuditEntry.action == "totp.reset")


async def test_failed_logins_are_throttled_and_say_when_to_retry(client: AsyncClient) -> None:
    await build_world()
    for _ in range(5):
        response = await post_form(
            client, "/login", {"login": "resident-a", "password": "wrong one!"}
        )
        assert response.status_code == 400
    blocked = await post_form(client, "/login", {"login": "resident-a", "password": PASSWORD})
    assert blocked.status_code == 429
    assert t(TOO_MANY, minutes=15) in blocked.text
    assert int(blocked.headers["retry-after"]) > 800
    assert SESSION_COOKIE not in client.cookies


async def test_wrong_codes_are_throttled(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    await enrol(client)
    await sign_in(client, world.users["facilitator_a"], verified=False)
    statuses = [
        (await post_form(client, "/login/verify", {"code": "123456"})).status_code for _ in range(6)
    ]
    assert statuses == [400] * 5 + [429]


async def test_idle_and_old_sessions_end(client: AsyncClient) -> None:
    world = await build_world()
    token = await open_session(world.users["resident_a"])
    client.cookies.set(SESSION_COOKIE, token)
    assert "Resident-A" in (await client.get("/")).text
    await Session.update({Session.last_seen_at: datetime.now(UTC) - timedelta(days=15)}, force=True)
    assert "Resident-A" not in (await client.get("/")).text
    await Session.update(
        {
            Session.last_seen_at: datetime.now(UTC),
            Session.created_at: datetime.now(UTC) - timedelta(days=61),
        },
        force=True,
    )
    assert "Resident-A" not in (await client.get("/")).text


async def test_verification_lapses_after_idle_time(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    await Session.update({Session.last_seen_at: datetime.now(UTC) - timedelta(hours=3)}, force=True)
    response = await post_form(client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"})
    assert response.status_code == 401


async def test_sign_out_everywhere(client: AsyncClient, app) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    async with make_client(app) as other:
        await sign_in(other, world.users["resident_a"])
        await post_form(client, "/account/sign-out-everywhere", {})
        assert "Resident-A" not in (await other.get("/")).text
    assert await Session.count() == 0


async def test_coordinators_read_their_organisation_journal_only(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"})
    await sign_in(client, world.users["coordinator_a"])
    journal = await client.get("/organisations/avec-nous/audit")
    assert journal.status_code == 200
    assert t("Vote opened") in journal.text
    assert "Facilitator-A" in journal.text
    for role in ("coordinator_b", "facilitator_a", "resident_a"):
        await sign_in(client, world.users[role])
        assert (await client.get("/organisations/avec-nous/audit")).status_code == 403, role
