"""Password reset by e-mail: the link works once, within the hour, and says nothing to strangers."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace

import pytest
from httpx import AsyncClient

from accounts import mail
from accounts.models import Session, User
from accounts.services import authenticate
from tests.conftest import make_client
from tests.factories import build_world, csrf_token, post_form, sign_in, t
from voix import jobs
from voix.settings import get_settings

LINK = re.compile(r"http://testserver\.local(/password/reset/[0-9.a-f]+)")


async def ask(client: AsyncClient, email: str, caplog: pytest.LogCaptureFixture) -> str | None:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="voix.mail"):
        response = await post_form(client, "/password/forgot", {"email": email})
        assert response.status_code == 200
        await jobs.Runner().run_due()  # the e-mail leaves from the job queue
    match = LINK.search(caplog.text)
    return match.group(1) if match else None


async def test_reset_by_email_works_once(client: AsyncClient, caplog) -> None:
    world = await build_world()
    await User.update({User.email: "samira@example.org"}).where(
        User.id == world.users["resident_a"]
    )
    await sign_in(client, world.users["resident_a"])  # a session that the reset must end
    client.cookies.clear()
    link = await ask(client, "Samira@Example.org", caplog)
    assert link is not None
    assert (await client.get(link)).status_code == 200
    changed = await post_form(
        client, link, {"password": "un nouveau mot de passe"}, follow_redirects=False
    )
    assert changed.status_code == 303
    assert await Session.count() == 0
    signed = await post_form(
        client,
        "/login",
        {"login": "resident-a", "password": "un nouveau mot de passe"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    again = await post_form(client, link, {"password": "encore un autre mot"})
    assert again.status_code == 400  # the password changed: the link is dead


async def test_eight_concurrent_resets_with_one_link_change_the_password_once(
    client: AsyncClient, app, caplog
) -> None:
    world = await build_world()
    await User.update({User.email: "samira@example.org"}).where(
        User.id == world.users["resident_a"]
    )
    link = await ask(client, "samira@example.org", caplog)
    assert link is not None
    token = await csrf_token(client)
    passwords = [f"nouveau mot de passe {n}" for n in range(8)]

    async def reset(password: str) -> tuple[int, str]:
        async with make_client(app) as browser:
            browser.cookies.update({"csrftoken": token})
            response = await browser.post(
                link, data={"password": password, "_csrf_token": token}, follow_redirects=False
            )
        return response.status_code, response.text

    answers = await asyncio.gather(*[reset(password) for password in passwords])
    statuses = [status for status, _ in answers]
    assert statuses.count(303) == 1, statuses
    assert statuses.count(400) == 7, statuses
    for status, text in answers:
        if status == 400:
            assert t("This link has expired or was already used. Ask for a new one.") in text
    working = [p for p in passwords if await authenticate("resident-a", p) is not None]
    assert working == [passwords[statuses.index(303)]]


async def test_strangers_learn_nothing(client: AsyncClient, caplog) -> None:
    await build_world()
    assert await ask(client, "nobody@example.org", caplog) is None
    assert "nobody@example.org" not in caplog.text


async def test_tampered_or_short_passwords_are_refused(client: AsyncClient, caplog) -> None:
    world = await build_world()
    await User.update({User.email: "samira@example.org"}).where(
        User.id == world.users["resident_a"]
    )
    link = await ask(client, "samira@example.org", caplog)
    assert link is not None
    _user_id, expires, signature = link.rsplit("/", 1)[1].split(".")
    forged = f"/password/reset/{world.users['resident_b']}.{expires}.{signature}"
    assert (await client.get(forged)).status_code == 400
    short = await post_form(client, link, {"password": "court"})
    assert short.status_code == 400
    assert (await client.get("/password/reset/not-a-token")).status_code == 400


async def test_without_smtp_production_has_no_email_features(
    client: AsyncClient, monkeypatch
) -> None:
    assert replace(get_settings(), env="production", smtp_url=None).mail_mode is None
    assert (
        replace(get_settings(), env="production", smtp_url="smtps://u:p@mail:465").mail_mode
        == "smtp"
    )
    monkeypatch.setattr(mail, "available", lambda: False)
    assert (await client.get("/password/forgot")).status_code == 404
    assert "/password/forgot" not in (await client.get("/login")).text
