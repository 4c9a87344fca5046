"""Signing up, in and out, and `voix user add`."""

from __future__ import annotations

import asyncio
import time

from httpx import AsyncClient

from accounts.models import Session, User
from accounts.services import LOGIN_TAKEN, authenticate
from tables.models import FACILITATOR, Membership
from tests.conftest import make_client
from tests.factories import (
    PASSWORD,
    add_table,
    add_user,
    build_world,
    csrf_token,
    post_form,
    run_voix,
    t,
)
from voix.web import SESSION_COOKIE

SIGNUP = {
    "display_name": "Samira",
    "login": "samira13",
    "password": "un mot de passe",
    "table": "flamants-iris",
    "language": "fr",
}


async def test_resident_signs_up_without_email_and_joins_a_table(client: AsyncClient) -> None:
    await build_world()
    response = await post_form(client, "/signup", SIGNUP, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/tables/flamants-iris"
    user = await User.select().where(User.login == "samira13").first()
    assert user["email"] is None
    assert user["password_hash"].startswith("$argon2id$")
    assert await Membership.exists().where(Membership.user == user["id"])
    page = await client.get("/tables/flamants-iris")
    assert "Samira" in page.text
    assert t("Make a proposal") in page.text


async def test_signup_refusals_change_nothing(client: AsyncClient) -> None:
    await build_world()
    before = await User.count()
    cases = [
        {"login": "resident-a"},  # taken
        {"login": "Sam ira!"},
        {"password": "court"},
        {"display_name": ""},
        {"table": "nowhere"},
        {"email": "not-an-address"},
    ]
    for change in cases:
        response = await post_form(client, "/signup", {**SIGNUP, **change})
        assert response.status_code == 400, change
        assert "un mot de passe" not in response.text  # the password is never echoed back
    assert await User.count() == before
    taken = await post_form(client, "/signup", {**SIGNUP, "login": "RESIDENT-A"})
    assert t(LOGIN_TAKEN) in taken.text


async def test_login_and_logout(client: AsyncClient) -> None:
    await build_world()
    wrong = await post_form(client, "/login", {"login": "resident-a", "password": "wrong password"})
    assert wrong.status_code == 400
    assert t("This login and password do not match.") in wrong.text
    assert SESSION_COOKIE not in client.cookies

    ok = await post_form(
        client,
        "/login",
        {"login": "Resident-A", "password": PASSWORD, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert await Session.count() == 1
    assert "Resident-A" in (await client.get("/")).text

    out = await post_form(client, "/logout", {}, follow_redirects=False)
    assert out.status_code == 303
    assert await Session.count() == 0


async def test_a_forged_session_cookie_is_anonymous(client: AsyncClient) -> None:
    await build_world()
    client.cookies.set(SESSION_COOKIE, "forged-token")
    page = await client.get("/")
    assert page.status_code == 200
    assert t("Sign in") in page.text


async def test_passwords_are_checked_with_argon2() -> None:
    await build_world()
    assert await authenticate("resident-a", PASSWORD) is not None
    assert await authenticate("resident-a", PASSWORD + "x") is None
    assert await authenticate("nobody", PASSWORD) is None


async def test_sign_ins_leave_the_event_loop_free(client: AsyncClient, app) -> None:
    """argon2 runs beside the loop: while 10 sign-ins are checked, other requests still answer."""
    logins = [f"neighbour-{n}" for n in range(10)]
    for login in logins:
        await add_user(login)
    token = await csrf_token(client)
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def sign_in_once(login: str) -> int:
        async with make_client(app) as browser:
            browser.cookies.update({"csrftoken": token})
            response = await browser.post(
                "/login",
                data={"login": login, "password": PASSWORD, "_csrf_token": token},
                follow_redirects=False,
            )
        return response.status_code

    async def health_while_busy() -> float:
        await asyncio.sleep(0.05)  # once the sign-ins are under way
        started = time.perf_counter()
        assert (await client.get("/health")).status_code == 200
        return time.perf_counter() - started

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    *statuses, health_seconds = await asyncio.gather(
        *[sign_in_once(login) for login in logins],
        health_while_busy(),
    )
    elapsed = time.perf_counter() - started
    running = False
    await ticking
    assert statuses == [303] * 10
    assert elapsed > 0.3  # argon2 did run: the gaps below were measured while it worked
    assert max(gaps) < 0.2, f"the loop stalled {max(gaps):.3f} s"
    assert health_seconds < 0.3, health_seconds


async def test_cli_adds_a_facilitator_with_a_password_from_stdin() -> None:
    table = await add_table("flamants-iris", "avec-nous")
    result = run_voix(
        "user",
        "add",
        "mehdi@avec-nous.example",
        "--name",
        "Mehdi",
        "--role",
        "facilitator",
        "--table",
        "flamants-iris",
        stdin="a long enough password\n",
    )
    assert result.returncode == 0, result.stderr
    user = await authenticate("mehdi@avec-nous.example", "a long enough password")
    assert user is not None
    assert user.email == "mehdi@avec-nous.example"
    seat = await Membership.select().where(Membership.user == user.id).first()
    assert seat["table"] == table["id"]
    assert seat["role"] == FACILITATOR

    again = run_voix(
        "user",
        "add",
        "mehdi@avec-nous.example",
        "--name",
        "Mehdi",
        "--role",
        "resident",
        "--table",
        "flamants-iris",
        stdin="another password\n",
    )
    assert again.returncode == 2
    assert "login" in again.stderr
    no_table = run_voix(
        "user",
        "add",
        "x@y.example",
        "--name",
        "X",
        "--role",
        "resident",
        "--table",
        "nowhere",
        stdin="a long enough password\n",
    )
    assert no_table.returncode == 2
    assert "nowhere" in no_table.stderr
    assert await User.count() == 1
