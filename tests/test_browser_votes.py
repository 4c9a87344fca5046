"""A vote on several proposals in a real browser (Debian's Chromium, driven by Playwright).

The facilitator opens a majority-judgment vote on five proposals; a resident grades four of
them on a phone in Arabic (one with the keyboard only), is warned of the one left ungraded,
sends the ballot as it is and keeps the receipt; another resident does the same without
JavaScript; two more vote through the service layer so the result means something. The
facilitator closes; the resident finds the receipt; `voix export ballots` and
`voix recount --json` agree with the results page, its fingerprint and ballots.json.
Screenshots land in test-output/<database>/votes-*.png.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
from pathlib import Path

import pyotp
import pytest
from PIL import Image

from accounts.services import load_principal, open_session
from proposals import media
from proposals.models import DISCUSSION, PHOTO
from tests.factories import PASSWORD, World, add_proposal, add_user, build_world, run_voix, seat
from tests.servers import replica
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, OUTPUT, fr
from voix.i18n import catalog
from votes import services
from votes.scales import GRADE_LABELS, SCALES, SEVEN

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="NOTICE: Chromium is not installed (apt-get install chromium): browser vote skipped",
    ),
]

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
TITLES = (
    "Des bancs à l'ombre devant l'école",
    "Réparer les ascenseurs de la tour G",
    "Un abri à l'arrêt de bus du boulevard",
    "Un composteur collectif au pied des immeubles",
    "Éclairer le passage sous la voie ferrée",
)
GRADES = SCALES[SEVEN]  # best first: a ballot's value is the index
UNGRADED = (
    "%(num)d proposal not graded will count as “%(grade)s”.",
    "%(num)d proposals not graded will count as “%(grade)s”.",
)


def ar(msgid: str) -> str:
    return catalog("ar").gettext(msgid)


def ungraded_sentence(lang: str, count: int) -> str:
    """What the page says of `count` ungraded proposals, as the server renders it."""
    messages = catalog(lang)
    return messages.ngettext(*UNGRADED, count) % {
        "num": count,
        "grade": messages.gettext("To reject"),
    }


async def sign_in(page, base: str, login: str) -> None:
    """The login form; a facilitator's first sign-in enrols TOTP with a real pyotp code."""
    await page.goto(f"{base}/login?lang=fr")
    await page.get_by_label(fr("Login or e-mail")).fill(login)
    await page.get_by_label(fr("Password")).fill(PASSWORD)
    await page.get_by_role("button", name=fr("Sign in")).click()
    await page.wait_for_load_state()
    if "/account" in page.url:
        secret = (await page.locator("#totp-secret").inner_text()).replace(" ", "")
        await page.get_by_label(fr("Code"), exact=True).fill(pyotp.TOTP(secret).now())
        await page.get_by_role("button", name=fr("Confirm and turn on")).click()
        await page.wait_for_load_state()
        await page.get_by_role("link", name=fr("Continue")).click()
        await page.wait_for_load_state()
    assert "/login" not in page.url, f"{login} is not signed in: {page.url}"


async def with_photo(proposal_id: int) -> None:
    """A small photo on one proposal, so the ballot shows one."""
    image = Image.new("RGB", (160, 120), (46, 125, 50))
    out = io.BytesIO()
    image.save(out, "JPEG")
    await media.store(proposal_id, media.Upload(PHOTO, out.getvalue(), "image/jpeg"))


async def setting(world: World) -> tuple[list[int], dict[str, int]]:
    """Five proposals in discussion, and two more residents who will vote through services."""
    voters = {}
    for login in ("resident-c", "resident-d", "resident-e"):
        voters[login] = await add_user(login)
        await seat(voters[login], world.table_a)
    proposals = [
        await add_proposal(world.table_a, title, status=DISCUSSION, theme="public_space")
        for title in TITLES
    ]
    await with_photo(proposals[1])
    return proposals, voters


async def cast_by_service(world: World, user_id: int, vote_id: int, grades: dict[int, int]) -> str:
    who = await load_principal(await open_session(user_id, verified=True))
    data = {f"grade-{option}": str(grade) for option, grade in grades.items()}
    return await services.cast(who, world.table_a, vote_id, data)


async def grade(page, option_id: int, value: int) -> None:
    """A tap on the grade's label, the large target a thumb aims at."""
    await page.locator(f'#option-{option_id} label.grade:has(input[value="{value}"])').click()


async def test_residents_grade_five_proposals_and_anyone_can_recount(tmp_path) -> None:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright, expect

    world = await build_world()
    proposals, voters = await setting(world)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )

            # The facilitator, on a desktop, opens a vote on the five proposals.
            desk = await browser.new_context(locale="fr-FR", viewport=DESK)
            facilitator = await desk.new_page()
            await sign_in(facilitator, base, "facilitator-a")
            await facilitator.goto(f"{base}/tables/flamants-iris/votes/new")
            ticks = facilitator.locator("form.open-vote input[name=proposals]")
            assert await ticks.count() == 5
            for n in range(5):
                assert await ticks.nth(n).is_checked()
            await facilitator.locator("input[name=method][value=majority_judgment]").check()
            await facilitator.screenshot(path=OUTPUT / "votes-new-fr.png", full_page=True)
            await facilitator.get_by_role("button", name=fr("Open the vote")).click()
            await facilitator.wait_for_load_state()
            match = re.search(r"/votes/(\d+)$", facilitator.url)
            assert match, facilitator.url
            vote_id = int(match.group(1))
            vote_url = f"{base}/votes/{vote_id}"
            option_of = {
                o["proposal"]: o["id"] for o in (await services.options([vote_id]))[vote_id]
            }
            first, second, third, fourth, fifth = (option_of[p] for p in proposals)

            # Two residents vote through the service layer (one leaves two proposals ungraded).
            receipts = [
                await cast_by_service(
                    world,
                    voters["resident-d"],
                    vote_id,
                    {first: 0, second: 2, third: 3, fourth: 4, fifth: 6},
                ),
                await cast_by_service(
                    world, voters["resident-e"], vote_id, {first: 1, second: 1, third: 4}
                ),
            ]

            # The resident, on a phone, in Arabic.
            phone = await browser.new_context(locale="fr-FR", viewport=PHONE)
            resident = await phone.new_page()
            await sign_in(resident, base, "resident-a")
            await resident.goto(f"{vote_url}?lang=ar")
            html = resident.locator("html")
            assert (await html.get_attribute("dir"), await html.get_attribute("lang")) == (
                "rtl",
                "ar",
            )
            counter = resident.locator(".ungraded-count")
            await counter.wait_for()  # ballot.js shows it: all five are ungraded yet
            assert await counter.inner_text() == ungraded_sentence("ar", 5)
            label = resident.locator(f'#option-{first} label.grade:has(input[value="0"])')
            box = await label.bounding_box()
            assert box["height"] >= 24, f"a grade's label is {box['height']} px high"
            # Newest first on the list the facilitator ticked, so on the ballot.
            order = await resident.locator("fieldset.option").evaluate_all(
                "sets => sets.map(set => Number(set.id.slice('option-'.length)))"
            )
            assert order == [fifth, fourth, third, second, first], order
            await grade(resident, first, 0)
            await grade(resident, fifth, 5)
            await grade(resident, third, 2)
            # The second with the keyboard only: Tab from the third's grade into the second's
            # group, where the checked radio ("Not graded", the last) takes the focus; up six.
            await resident.keyboard.press("Tab")
            focused = await resident.evaluate(
                "() => [document.activeElement.name, document.activeElement.value]"
            )
            assert focused == [f"grade-{second}", ""], focused
            for _ in range(len(GRADES) - 1):
                await resident.keyboard.press("ArrowUp")
            await resident.keyboard.press("Space")
            chosen = resident.locator(f"#option-{second} input:checked")
            assert await chosen.get_attribute("value") == str(GRADES.index("Très bien"))
            assert await chosen.evaluate("radio => radio === document.activeElement")
            assert await counter.inner_text() == ungraded_sentence("ar", 1)
            assert await counter.is_visible()
            await resident.screenshot(path=OUTPUT / "votes-ballot-ar.png", full_page=True)

            # Sent with one ungraded: the server warns and asks again, the grades kept.
            await resident.locator("form.ballot button[type=submit]").click()
            await resident.wait_for_load_state()
            warning = resident.get_by_role("alert")
            assert ungraded_sentence("ar", 1) in await warning.inner_text()
            assert (
                await resident.locator(f"#option-{second} input:checked").get_attribute("value")
                == "1"
            )
            assert (await services.turnout([vote_id]))[vote_id] == 2  # nothing stored yet
            await resident.screenshot(path=OUTPUT / "votes-warning-ar.png", full_page=True)
            # Right under the warning, where the eye is, not four screens down.
            send = warning.get_by_role("button", name=ar("Send my ballot as it is"))
            async with resident.expect_response(
                lambda r: r.request.method == "POST" and r.url.endswith("/ballot")
            ) as answer:
                await send.click()
            headers = await (await answer.value).all_headers()
            assert "no-store" in headers.get("cache-control", ""), headers
            code = resident.locator(".receipt strong.code")
            receipt = await code.inner_text()
            assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", receipt), receipt
            receipts.append(receipt)
            await resident.screenshot(path=OUTPUT / "votes-receipt-ar.png", full_page=True)

            # Back and forth in history: neither the grades (the warning page, before the
            # receipt) nor the receipt are shown again from a cache: both answers were
            # no-store, so the browser must resend the POST, which it does not do by itself.
            for move in (resident.go_back, resident.go_forward):
                refused = ""
                try:
                    await move()
                except PlaywrightError as error:
                    refused = str(error)
                assert not refused or "ERR_CACHE_MISS" in refused, refused
                await expect(resident.locator(".receipt")).to_have_count(0)
                await expect(resident.locator(".grade input:checked")).to_have_count(0)
            assert receipt not in resident.url

            # Another resident, without JavaScript: the server does the counting and warns.
            plain = await browser.new_context(
                locale="fr-FR", viewport=PHONE, java_script_enabled=False
            )
            other = await plain.new_page()
            await sign_in(other, base, "resident-c")
            await other.goto(vote_url)
            assert await other.locator(".ungraded-count").is_hidden()
            await grade(other, first, 1)
            await grade(other, second, 0)
            await grade(other, third, 1)
            await other.get_by_role("button", name=fr("Check my ballot before sending it")).click()
            await other.wait_for_load_state()
            assert ungraded_sentence("fr", 2) in await other.get_by_role("alert").inner_text()
            assert await other.locator(".receipt").count() == 0
            assert (
                await other.locator(f"#option-{second} input:checked").get_attribute("value") == "0"
            )
            await other.screenshot(path=OUTPUT / "votes-warning-nojs-fr.png", full_page=True)
            await (
                other.get_by_role("alert")
                .get_by_role("button", name=fr("Send my ballot as it is"))
                .click()
            )
            await other.wait_for_load_state()
            receipts.append(await other.locator(".receipt strong.code").inner_text())
            assert len(set(receipts)) == 4

            # The facilitator closes the vote.
            await facilitator.goto(vote_url)
            cast_so_far = catalog("fr").ngettext(
                "%(num)d ballot cast so far", "%(num)d ballots cast so far", 4
            )
            assert cast_so_far % {"num": 4} in await facilitator.locator("p.total").inner_text()
            # Closing asks first, on a page of its own: then the button that closes.
            await facilitator.get_by_role(
                "link", name=fr("Close the vote and publish the results")
            ).click()
            await facilitator.wait_for_url(re.compile(rf"/votes/{vote_id}/close$"))
            await facilitator.get_by_role("button", name=fr("Close the vote"), exact=True).click()
            await facilitator.wait_for_load_state()
            await facilitator.locator("table.ranking").wait_for()
            await facilitator.screenshot(path=OUTPUT / "votes-results-fr.png", full_page=True)

            # The resident finds the receipt in the ballot box; a wrong code is not found.
            await resident.goto(vote_url)
            box_input = resident.get_by_label(ar("Your receipt code"))
            await box_input.fill(receipt.lower())  # as typed from the paper, in small letters
            await resident.get_by_role("button", name=ar("Check"), exact=True).click()
            await resident.wait_for_load_state()
            found = resident.locator("p.found[role=status]")
            assert await found.inner_text() == ar(
                "Found: the ballot with this receipt is in the ballot box, and it was counted."
            )
            wrong = next(c for c in ("ZZZZZZZZ", "YYYYYYYY") if c not in receipts)
            await resident.get_by_label(ar("Your receipt code")).fill(wrong)
            await resident.get_by_role("button", name=ar("Check"), exact=True).click()
            await resident.wait_for_load_state()
            assert await resident.locator("p.not-found[role=status]").count() == 1
            assert await resident.locator("p.found").count() == 0

            # The ranking as the page shows it, and the fingerprint.
            await resident.goto(vote_url)
            await resident.screenshot(path=OUTPUT / "votes-results-ar.png", full_page=True)
            rows = resident.locator("table.ranking tbody tr")
            page_ranking, page_grades, page_adopted = {}, {}, set()
            for n in range(await rows.count()):
                row = rows.nth(n)
                key = f"p{proposals[TITLES.index(await row.locator('th bdi').inner_text())]}"
                page_ranking[key] = int(await row.locator("td").first.inner_text())
                page_grades[key] = await row.locator(".grade-chip").inner_text()
                if await row.locator(".badge.adopted").count():
                    page_adopted.add(key)
            fingerprint = await resident.locator("code.sha").inner_text()
            published = await resident.request.get(f"{vote_url}/ballots.json")
            assert published.ok
            published_bytes = await published.body()
            await browser.close()

    # Anyone can recount: the command line agrees with the page, byte for byte.
    exported = tmp_path / f"vote-{vote_id}-ballots.json"
    done = await asyncio.to_thread(
        run_voix, "export", "ballots", str(vote_id), "--output", str(exported)
    )
    assert done.returncode == 0, done.stderr
    assert exported.read_bytes() == published_bytes
    assert hashlib.sha256(exported.read_bytes()).hexdigest() == fingerprint
    assert fingerprint in done.stdout
    done = await asyncio.to_thread(run_voix, "recount", str(exported), "--json")
    assert done.returncode == 0, done.stderr
    recounted = json.loads(done.stdout)
    assert recounted["participants"] == recounted["ballots"] == 4
    assert {entry["option"]: entry["rank"] for entry in recounted["ranking"]} == page_ranking
    assert {
        entry["option"]: ar(GRADE_LABELS[entry["majority_grade"]]) for entry in recounted["ranking"]
    } == page_grades
    assert {entry["option"] for entry in recounted["ranking"] if entry["adopted"]} == page_adopted
    assert sorted(page_ranking.values()) == [1, 2, 3, 4, 5]  # no tie: the order means something
    assert page_ranking[f"p{proposals[0]}"] == 1
    assert page_ranking[f"p{proposals[4]}"] == 5
