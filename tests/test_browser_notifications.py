"""A resident's notifications in a real browser (Debian's Chromium, driven by Playwright).

The resident signs in and sees the count in the header, opens the notifications, chooses SMS,
and, with JavaScript off, says "I'll come" on the meeting page. Screenshots of the two pages in
French and Arabic land in test-output/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from accounts.models import User
from meetings.models import Meeting
from notifications import services
from notifications.models import Preference
from tests.factories import PASSWORD, World, build_world
from tests.servers import replica
from voix import db
from voix.i18n import catalog
from voix.settings import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = PROJECT_ROOT / "test-output" / os.environ.get("VOIX_TEST_DATABASE", "sqlite")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="NOTICE: Chromium is not installed (apt-get install chromium): browser journey skipped",
    ),
]


def fr(msgid: str) -> str:
    return catalog("fr").gettext(msgid)


def ar(msgid: str) -> str:
    return catalog("ar").gettext(msgid)


async def news_for(world: World, count: int) -> None:
    """`count` meetings scheduled at table A, told to resident A."""
    at = services.now() + timedelta(days=5)
    for number in range(1, count + 1):
        async with db.write_transaction():
            await services.emit(
                "meeting.scheduled",
                f"meeting.scheduled:browser:{number}",
                audience=services.Audience(users=(world.users["resident_a"],)),
                params={
                    "table": world.table_a["name"],
                    "title": f"Réunion de quartier n° {number}",
                    "starts_at": (at + timedelta(days=number)).isoformat(),
                    "place": "Centre social Flamants-Iris",
                    "address": "12 avenue Salvador Allende",
                },
                path="/tables/flamants-iris",
                table_id=world.table_a["id"],
            )


async def sign_in(page, base: str, login: str) -> None:
    await page.goto(f"{base}/login?lang=fr")
    await page.get_by_label(fr("Login or e-mail")).fill(login)
    await page.get_by_label(fr("Password")).fill(PASSWORD)
    await page.get_by_role("button", name=fr("Sign in")).click()
    await page.wait_for_load_state()


async def test_a_resident_reads_chooses_sms_and_says_they_will_come() -> None:
    from playwright.async_api import async_playwright

    world = await build_world()
    resident = world.users["resident_a"]
    await User.update({User.phone: "06 12 34 56 78"}).where(User.id == resident)
    starts = services.now() + timedelta(days=3)
    rows = await Meeting.insert(
        Meeting(
            table=world.table_a["id"],
            title="Assemblée de décembre",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            place="Local associatif",
            address="12 rue des Flamants",
            languages="fr ar",
            created_at=services.now(),
        )
    ).returning(Meeting.id)
    meeting = rows[0]["id"]
    await news_for(world, 3)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            context = await browser.new_context(
                locale="fr-FR", viewport={"width": 390, "height": 844}
            )
            page = await context.new_page()
            blocked: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(base) else blocked.append(r.url))

            # The count, in the header, then the list.
            await sign_in(page, base, "resident-a")
            link = page.locator("header a.notifications-link")
            assert await link.locator(".unread-count").inner_text() == "3"
            await link.click()
            await page.wait_for_load_state()
            assert page.url.endswith("/notifications")
            assert await page.locator("li.notification.unread").count() == 3
            await page.screenshot(path=OUTPUT / "notifications-fr.png", full_page=True)
            await page.goto(f"{base}/notifications?lang=ar")
            assert await page.locator("html").get_attribute("dir") == "rtl"
            await page.screenshot(path=OUTPUT / "notifications-ar.png", full_page=True)
            await page.goto(f"{base}/notifications?lang=fr")
            await page.locator("li.notification form button").first.click()
            await page.wait_for_load_state()
            assert page.url.endswith("/tables/flamants-iris")
            assert await link.locator(".unread-count").inner_text() == "2"

            # SMS, chosen with its wording in view.
            await page.goto(f"{base}/notifications")
            await page.get_by_role("link", name=fr("How I receive them")).click()
            await page.wait_for_load_state()
            await page.get_by_label(fr("By SMS")).check()
            await page.get_by_role("button", name=fr("Save the choices")).click()
            await page.wait_for_load_state()
            assert fr("The choices are saved.") in await page.locator("[role=status]").inner_text()
            assert await page.get_by_label(fr("By SMS")).is_checked()
            await page.screenshot(path=OUTPUT / "channels-fr.png", full_page=True)
            await page.goto(f"{base}/account/notifications?lang=ar")
            assert await page.locator("html").get_attribute("dir") == "rtl"
            assert await page.get_by_label(ar("By SMS")).is_checked()
            await page.screenshot(path=OUTPUT / "channels-ar.png", full_page=True)
            await page.goto(f"{base}/?lang=fr")
            await context.close()

            # Without JavaScript: "I'll come", a plain form and a redirect.
            plain = await browser.new_context(
                locale="fr-FR", viewport={"width": 390, "height": 844}, java_script_enabled=False
            )
            page = await plain.new_page()
            page.on("request", lambda r: None if r.url.startswith(base) else blocked.append(r.url))
            await sign_in(page, base, "resident-a")
            await page.goto(f"{base}/meetings/{meeting}")
            await page.get_by_role("button", name=fr("I'll come")).click()
            await page.wait_for_load_state()
            assert fr("Your answer: you will come.") in await page.locator("#rsvp").inner_text()
            await page.screenshot(path=OUTPUT / "meeting-rsvp-fr.png", full_page=True)
            await browser.close()
            assert blocked == [], f"the pages asked for other hosts: {blocked}"

    assert await services.rsvp_of(meeting, resident) is True
    stored = await Preference.select().where(Preference.user == resident).first()
    assert stored is not None
    assert stored["sms_consent_at"] is not None
