"""Throttling under concurrency: every attempt is counted before the secret is checked."""

from __future__ import annotations

import asyncio
from collections import Counter

import pyotp
import pytest
from httpx import AsyncClient

from accounts import throttle
from accounts.models import Throttle
from accounts.services import open_session
from accounts.throttle import Limit
from tests.conftest import make_client
from tests.factories import PASSWORD, build_world, csrf_token, post_form, sign_in
from tests.test_security import enrol
from voix.web import SESSION_COOKIE


async def concurrent_posts(
    app: object, url: str, forms: list[dict[str, str]], token: str, session: str | None = None
) -> list[int]:
    """The same form posted at once from as many browsers (one client address)."""

    async def post(data: dict[str, str]) -> int:
        async with make_client(app) as browser:
            browser.cookies.update({"csrftoken": token})
            if session:
                browser.cookies.update({SESSION_COOKIE: session})
            response = await browser.post(url, data={**data, "_csrf_token": token})
        return response.status_code

    return list(await asyncio.gather(*[post(data) for data in forms]))


async def test_sixty_concurrent_wrong_passwords_check_at_most_five(
    client: AsyncClient, app
) -> None:
    await build_world()
    token = await csrf_token(client)
    forms = [{"login": "resident-a", "password": f"wrong guess {n}"} for n in range(60)]
    statuses = await concurrent_posts(app, "/login", forms, token)
    # Checked (and wrong): at most the account's 5; the client's own count may refuse some first.
    assert 1 <= statuses.count(400) <= 5, Counter(statuses)
    assert statuses.count(400) + statuses.count(429) == 60, Counter(statuses)
    # The real password is refused too until the window ends.
    late = await post_form(client, "/login", {"login": "resident-a", "password": PASSWORD})
    assert late.status_code == 429


async def test_concurrent_wrong_codes_check_at_most_five(client: AsyncClient, app) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    secret, _codes = await enrol(client)
    session = await open_session(world.users["facilitator_a"], verified=False)
    token = await csrf_token(client)
    right = pyotp.TOTP(secret).now()
    wrong = [f"{n:06d}" for n in range(59) if f"{n:06d}" != right][:58]
    statuses = await concurrent_posts(
        app,
        "/login/verify",
        [{"code": code} for code in wrong],
        token,
        session=session,
    )
    assert 1 <= statuses.count(400) <= 5, Counter(statuses)
    assert statuses.count(400) + statuses.count(429) == len(wrong), Counter(statuses)


async def test_a_very_long_login_is_counted_and_never_crashes(client: AsyncClient) -> None:
    await build_world()
    login = "x" * 300
    statuses = [
        (await post_form(client, "/login", {"login": login, "password": "wrong one!"})).status_code
        for _ in range(6)
    ]
    assert statuses == [400] * 5 + [429]
    keys = [row["key"] for row in await Throttle.select(Throttle.key)]
    assert all(len(key) <= 200 for key in keys)
    assert not any(login[:100] in key for key in keys)  # a long key is stored as its digest
    assert throttle.storage_key(f"login:account:{login[:254]}") in keys


async def test_a_success_gives_the_attempt_back(client: AsyncClient) -> None:
    """Residents of one meeting sign in from one address: successes do not use up its limit."""
    await build_world()
    address = Limit("login:client:127.0.0.1", failures=30)  # the test client's address
    for _ in range(29):  # earlier failures from this address
        await throttle.attempt(address)
    for _ in range(3):
        signed = await post_form(
            client, "/login", {"login": "resident-a", "password": PASSWORD}, follow_redirects=False
        )
        assert signed.status_code == 303
        client.cookies.delete(SESSION_COOKIE)
    row = await Throttle.select(Throttle.failures).where(Throttle.key == address.key).first()
    assert row["failures"] == 29


async def test_a_refused_attempt_does_not_push_the_window_back(client: AsyncClient) -> None:
    await build_world()
    limit = Limit("test:key", failures=2)
    await throttle.attempt(limit)
    await throttle.attempt(limit)
    started = (await Throttle.select(Throttle.window_started_at).first())["window_started_at"]
    await asyncio.sleep(0.01)
    for _ in range(3):
        with pytest.raises(throttle.Throttled) as refused:
            await throttle.attempt(limit)
        assert 0 < refused.value.retry_after_seconds <= 15 * 60
    row = await Throttle.select(Throttle.window_started_at).first()
    assert row["window_started_at"] == started
