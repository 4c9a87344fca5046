"""A resident's whole vote in Arabic, in a real browser (Debian's Chromium, driven by Playwright).

A facilitator opened a vote with a French question and translated it into Arabic. A resident,
on a phone, reads the question and the answer in Arabic, told it is a translation, the
original one link away; chooses, checks the ballot on the review page, sends it, keeps the
receipt; then finds the vote, by its Arabic question, in "Mon compte". Screenshots land in
test-output/<database>/arabic-*.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from accounts.services import load_principal, open_session
from proposals.models import DISCUSSION
from tests.factories import add_proposal, build_world
from tests.servers import replica
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, OUTPUT
from tests.test_browser_votes import PHONE, ar, sign_in
from translations import services as content
from voix.i18n import catalog
from votes import services as votes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="NOTICE: Chromium is not installed (apt-get install chromium): Arabic journey skipped",
    ),
]

QUESTION = "Faut-il réparer les ascenseurs de la tour G avant l'hiver ?"
QUESTION_AR = "هل يجب إصلاح مصاعد البرج G قبل الشتاء؟"


async def test_a_resident_votes_in_arabic_on_a_translated_question_and_finds_it_later() -> None:
    from playwright.async_api import async_playwright

    world = await build_world()
    proposal = await add_proposal(
        world.table_a, "Réparer les ascenseurs de la tour G", status=DISCUSSION
    )
    manager = await load_principal(await open_session(world.users["facilitator_a"], verified=True))
    vote_id = await votes.open_vote(manager, world.table_a, [proposal], {"question": QUESTION})
    original = await content.get_original("vote", vote_id)
    assert original is not None
    await content.save(
        manager,
        world.table_a,
        original,
        {
            "language": "ar",
            "written_in": "fr",
            # The question and its one answer (the proposal's title): a whole translation.
            **{
                f"field-{key}": QUESTION_AR if key == "question" else "إصلاح مصاعد البرج G"
                for key in original.fields
            },
        },
    )
    translated_from = catalog("ar").gettext("Translated from %(language)s by the facilitators.") % {
        "language": "الفرنسية"
    }

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            phone = await browser.new_context(locale="ar", viewport=PHONE)
            page = await phone.new_page()
            await sign_in(page, base, "resident-a")
            await page.goto(f"{base}/votes/{vote_id}?lang=ar")
            html = page.locator("html")
            assert (await html.get_attribute("dir"), await html.get_attribute("lang")) == (
                "rtl",
                "ar",
            )
            assert await page.locator("h1").inner_text() == QUESTION_AR
            notice = page.locator("p.translated").first
            assert translated_from in await notice.inner_text()
            assert await notice.get_by_role("link").get_attribute("href") == "?original=1"
            no_overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
            assert no_overflow, "the Arabic vote page scrolls sideways on a phone"
            await page.screenshot(path=OUTPUT / "arabic-vote.png", full_page=True)

            # Choose "for", then the review step: nothing is stored until "Send my ballot".
            await page.get_by_label(ar("For"), exact=True).check()
            await page.get_by_role("button", name=ar("Check my ballot before sending it")).click()
            await page.wait_for_load_state()
            assert await page.locator("h1").inner_text() == ar("Check your ballot")
            assert QUESTION_AR in await page.locator("main").inner_text()
            assert (await votes.turnout([vote_id]))[vote_id] == 0
            await page.screenshot(path=OUTPUT / "arabic-review.png", full_page=True)
            await page.get_by_role("button", name=ar("Send my ballot")).click()
            await page.wait_for_load_state()
            receipt = await page.locator(".receipt strong.code").inner_text()
            assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", receipt), receipt
            assert (await votes.turnout([vote_id]))[vote_id] == 1
            await page.screenshot(path=OUTPUT / "arabic-receipt.png", full_page=True)

            # "Mon compte": the vote is there, by its Arabic question.
            await page.goto(f"{base}/account")
            mine = page.locator(".mine-title", has_text=QUESTION_AR)
            assert await mine.count() == 1
            await page.screenshot(path=OUTPUT / "arabic-account.png", full_page=True)
            await browser.close()
