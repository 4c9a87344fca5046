"""Voting in the room in a real browser (Debian's Chromium, driven by Playwright), on a tablet.

A member votes online before the meeting. The facilitator signs in with the code of their
authentication app, opens the meeting's control view, puts the vote on screen, goes to
"Voting in the room" and turns the tablet into the shared voting tablet with a fresh code
and a PIN of their choosing. The tablet goes from hand to hand: a member whose language is
Arabic (the ballot comes in Arabic, right to left), a walk-in without an account, another
member; each checks their ballot before sending it, then sees the thanks and a receipt once. After each handover the tablet is locked:
it asks, in the last voter's language, to be given back, and shows no name until the
facilitator types the PIN (a wrong one keeps it locked). Back after a ballot shows no choice
and no name. The facilitator stops tablet voting with a fresh code, hands out paper ballots
to those left, and the facilitator and the coordinator each enter the same paper batch on
their own device: it is recorded. The vote is closed, after a page saying what that does, and
its result says how many voted online, on the tablet and on paper.
Screenshots land in test-output/<database>/room-*.png.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyotp
import pytest
from httpx import AsyncClient

from accounts.models import User
from tests.factories import PASSWORD, post_form, sign_in, t
from tests.room_world import Room, build_room
from tests.servers import replica
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, OUTPUT, fr
from voix.i18n import catalog
from votes import services
from votes.models import Participation

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="NOTICE: Chromium is not installed (apt-get install chromium): browser room vote skipped",
    ),
]

TABLET = {"width": 820, "height": 1180}
MEMBERS = (("Samira", "fr"), ("Karim", "ar"), ("Nadia", "fr"), ("Omar", "fr"), ("Louise", "fr"))
WALK_INS = ("Fatou", "Rachid")
ON_TABLET = ("Karim", "Fatou", "Nadia")  # Arabic, a walk-in, one more
ON_PAPER = ("Omar", "Louise", "Rachid")
PAPER_FIGURES = {"ballots": 3, "blank": 0, "spoilt": 0, "For": 2, "Against": 1, "Abstain": 0}
PIN = "482915"  # the facilitator's, chosen when starting the tablet
# Matched through t(): as the catalog renders them, or the msgid while untranslated.
PIN_LABEL = "A PIN of 4 to 8 digits, to take the tablet back between voters"
GIVE_BACK = "Thank you. Please give the tablet back to the facilitator."
WRONG_PIN = "This PIN is not the one chosen when the tablet was started."


def ar(msgid: str) -> str:
    return catalog("ar").gettext(msgid)


async def code_now(room: Room, user_id: int) -> str:
    """What the authentication app shows now. A code is taken once per 30 s step: the step
    last accepted is forgotten, as if the next step had come."""
    await User.update({User.totp_last_step: None}).where(User.id == user_id)
    return pyotp.TOTP(room.secrets[user_id]).now()


async def sign_in_with_code(page, base: str, login: str, room: Room, user_id: int) -> None:
    await page.goto(f"{base}/login?lang=fr")
    await page.get_by_label(fr("Login or e-mail")).fill(login)
    await page.get_by_label(fr("Password")).fill(PASSWORD)
    await page.get_by_role("button", name=fr("Sign in")).click()
    await page.wait_for_url(re.compile(r"/login/verify"))
    await page.get_by_label(fr("Code"), exact=True).fill(await code_now(room, user_id))
    await page.get_by_role("button", name=fr("Confirm"), exact=True).click()
    await page.wait_for_load_state()
    assert "/login" not in page.url, f"{login} is not signed in: {page.url}"


async def back(page) -> None:
    """The browser's Back button. A page sent as no-store is asked again, never shown from a
    cache; Chromium may refuse to resend what a form posted (ERR_CACHE_MISS): that is fine."""
    from playwright.async_api import Error as PlaywrightError

    refused = ""
    try:
        await page.go_back()
    except PlaywrightError as error:
        refused = str(error)
    assert not refused or "ERR_CACHE_MISS" in refused, refused
    await page.wait_for_load_state()


async def shot(page, name: str) -> None:
    await page.screenshot(path=OUTPUT / f"room-{name}.png", full_page=True)


async def expect_locked(page, vote_id: int, lang: str) -> None:
    """The tablet waits for the facilitator: the give-back request in `lang`, the PIN form,
    and not one name."""
    from playwright.async_api import expect

    assert re.search(rf"/votes/{vote_id}/tablet(/unlock)?$", page.url), page.url
    html = page.locator("html")
    assert await html.get_attribute("lang") == lang
    assert await html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    await expect(page.locator(".tablet-give-back")).to_have_text(t(GIVE_BACK, lang))
    await expect(page.locator("form.tablet-unlock #f-pin")).to_be_visible()
    await expect(page.locator(".tablet-name")).to_have_count(0)
    await expect(page.locator("#names")).to_have_count(0)


async def unlock(page, vote_id: int, pin: str = PIN) -> None:
    """The facilitator takes the tablet back and types their PIN: the names show again."""
    from playwright.async_api import expect

    await page.locator("form.tablet-unlock #f-pin").fill(pin)
    await page.locator("form.tablet-unlock button[type=submit]").click()
    await expect(page.locator("form.tablet-unlock")).to_have_count(0)
    await page.wait_for_load_state()
    assert page.url.endswith(f"/votes/{vote_id}/tablet"), page.url
    await expect(page.locator("button.tablet-name").first).to_be_visible()


async def vote_on_tablet(page, name: str, choice: str) -> str:
    """Hands the tablet to `name`, who votes; returns the receipt shown on the thank-you page."""
    await page.locator("button.tablet-name", has_text=name).click()
    await page.wait_for_url(re.compile(r"/tablet/ballot$"))
    assert name in await page.locator(".tablet-voter").inner_text()
    await page.locator(f"label.choice-{choice}").click()
    await page.locator("form.ballot button[type=submit]").click()
    # The ballot shown back before it is sent, as online: then "Send my ballot".
    await page.wait_for_url(re.compile(r"/tablet/ballot/review$"))
    assert name in await page.locator(".tablet-voter").inner_text()
    await send_reviewed(page)
    receipt = await page.locator(".receipt strong.code").inner_text()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", receipt), receipt
    return receipt


async def send_reviewed(page) -> None:
    """On the review of a tablet ballot, "Send my ballot": the thank-you page follows."""
    await page.locator('.review-actions form[action$="/tablet/ballot"] button[type=submit]').click()
    await page.wait_for_url(re.compile(r"/tablet/done$"))


async def enter_batch(page, count_url: str) -> None:
    await page.goto(count_url)
    for line, label in (
        ("ballots", "Ballots in the batch"),
        ("blank", "Blank ballots"),
        ("spoilt", "Spoilt ballots"),
        ("For", "For"),
        ("Against", "Against"),
        ("Abstain", "Abstain"),
    ):
        await page.get_by_label(fr(label), exact=True).fill(str(PAPER_FIGURES[line]))
    await page.get_by_role("button", name=fr("Save my entry")).click()
    await page.wait_for_load_state()


async def test_facilitators_hold_a_vote_on_the_tablet_and_on_paper(client: AsyncClient) -> None:
    from playwright.async_api import async_playwright, expect

    room = await build_room(client, members=MEMBERS, walk_ins=WALK_INS)
    vote_id = room.vote_id
    facilitator_id = room.world.users["facilitator_a"]
    coordinator_id = room.world.users["coordinator_a"]
    # Samira votes online, on her phone, before the room votes.
    await sign_in(client, room.users["Samira"], verified=False)
    online = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    assert online.status_code == 200, online.text[-2000:]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            context = await browser.new_context(locale="fr-FR", viewport=TABLET)
            tablet = await context.new_page()
            blocked: list[str] = []
            tablet.on(
                "request", lambda r: None if r.url.startswith(base) else blocked.append(r.url)
            )

            # The facilitator, on the tablet: the control view, the vote on screen, the room.
            await sign_in_with_code(tablet, base, "facilitator-a", room, facilitator_id)
            await tablet.goto(f"{base}/meetings/{room.meeting_id}/control")
            await tablet.get_by_role("button", name=fr("Show on screen")).last.click()
            to_room = tablet.get_by_role(
                "link", name=fr("Voting in the room: tablet, paper, show of hands")
            )
            await to_room.wait_for()
            await shot(tablet, "control-fr")
            await to_room.click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/room$"))
            await tablet.get_by_label(fr("Your authentication code")).fill(
                await code_now(room, facilitator_id)
            )
            await tablet.get_by_label(t(PIN_LABEL)).fill(PIN)
            assert await tablet.locator("#f-pin").get_attribute("type") == "password"
            await shot(tablet, "start-fr")
            await tablet.get_by_role(
                "button", name=fr("Turn this device into the voting tablet")
            ).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/tablet$"))
            names = tablet.locator("button.tablet-name")
            listed = await names.all_inner_texts()
            assert len(listed) == len(MEMBERS) - 1 + len(WALK_INS), listed  # Samira has voted
            assert not any("Samira" in name for name in listed), listed
            await shot(tablet, "list-fr")

            # Karim's language is Arabic: his ballot is in Arabic, right to left.
            await tablet.locator("button.tablet-name", has_text="Karim").click()
            await tablet.wait_for_url(re.compile(r"/tablet/ballot$"))
            html = tablet.locator("html")
            assert (await html.get_attribute("lang"), await html.get_attribute("dir")) == (
                "ar",
                "rtl",
            )
            assert await tablet.locator("label.choice-yes").inner_text() == ar("For")
            await tablet.locator("label.choice-yes").click()
            await shot(tablet, "ballot-ar")
            await tablet.locator("form.ballot button[type=submit]").click()
            # He checks his ballot, in Arabic, before sending it.
            await tablet.wait_for_url(re.compile(r"/tablet/ballot/review$"))
            await expect(tablet.locator("h1")).to_have_text(ar("Check your ballot"))
            await expect(tablet.locator(".review-choices dd")).to_have_text(ar("For"))
            await shot(tablet, "review-ar")
            await send_reviewed(tablet)
            assert await tablet.locator(".thanks").inner_text() == ar(
                "Your ballot has been counted. Thank you!"
            )
            receipts = [await tablet.locator(".receipt strong.code").inner_text()]
            await shot(tablet, "done-ar")

            # Back, as the next person might press it: never Karim's choice, nor his receipt,
            # nor a name to pick. His review answered a form: it is not shown again.
            await back(tablet)
            await expect(tablet.locator("input[name=choice]:checked")).to_have_count(0)
            await expect(tablet.locator(".receipt")).to_have_count(0)
            await expect(tablet.locator(".review-choices")).to_have_count(0)
            # Back once more, to his ballot: the tablet is locked, and asks in Arabic to be
            # given back.
            await back(tablet)
            await expect(tablet.locator("input[name=choice]:checked")).to_have_count(0)
            await expect(tablet.locator(".receipt")).to_have_count(0)
            assert tablet.url.endswith(f"/votes/{vote_id}/tablet"), tablet.url
            await expect_locked(tablet, vote_id, "ar")
            await shot(tablet, "locked-ar")
            # Back again, or reloading, does not open it either.
            await back(tablet)
            await expect(tablet.locator("input[name=choice]:checked")).to_have_count(0)
            await expect_locked(tablet, vote_id, "ar")
            await tablet.reload()
            await expect_locked(tablet, vote_id, "ar")
            # A wrong PIN keeps it locked; the facilitator's PIN shows the names, in French.
            await tablet.locator("form.tablet-unlock #f-pin").fill("0000")
            await tablet.locator("form.tablet-unlock button[type=submit]").click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/tablet/unlock$"))
            await expect_locked(tablet, vote_id, "ar")
            await expect(tablet.locator("#f-pin")).to_have_attribute("aria-invalid", "true")
            await expect(tablet.get_by_text(t(WRONG_PIN, "ar"))).to_be_visible()
            await shot(tablet, "locked-wrong-pin-ar")
            await unlock(tablet, vote_id)
            assert await tablet.locator("html").get_attribute("lang") == "fr"
            await expect(tablet.locator("button.tablet-name", has_text="Karim")).to_have_count(0)

            # The walk-in, without an account: her ballot in the meeting's first language.
            await tablet.locator("button.tablet-name", has_text="Fatou").click()
            await tablet.wait_for_url(re.compile(r"/tablet/ballot$"))
            assert await tablet.locator("html").get_attribute("lang") == "fr"
            await shot(tablet, "ballot-fr")
            # Back from the ballot gives the tablet back, sends nothing, and locks it.
            await tablet.go_back()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/tablet$"))
            await expect_locked(tablet, vote_id, "fr")
            await shot(tablet, "locked-fr")
            await unlock(tablet, vote_id)
            receipts.append(await vote_on_tablet(tablet, "Fatou", "no"))
            await shot(tablet, "done-fr")
            await tablet.get_by_role("link", name=fr("Done: give the tablet back")).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/tablet$"))
            await expect_locked(tablet, vote_id, "fr")
            # The receipt was shown once: Back finds the locked tablet, no choice, no receipt.
            await back(tablet)
            await expect(tablet.locator(".receipt")).to_have_count(0)
            await expect(tablet.locator("input[name=choice]:checked")).to_have_count(0)
            await expect_locked(tablet, vote_id, "fr")
            await tablet.goto(f"{base}/votes/{vote_id}/tablet")
            await unlock(tablet, vote_id)

            receipts.append(await vote_on_tablet(tablet, "Nadia", "yes"))
            await tablet.get_by_role("link", name=fr("Done: give the tablet back")).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/tablet$"))
            await expect_locked(tablet, vote_id, "fr")
            await unlock(tablet, vote_id)
            assert len(set(receipts)) == 3
            left = sorted(await names.all_inner_texts())
            assert [name.split(" ")[0] for name in left] == sorted(ON_PAPER), left

            # A wrong code does not end tablet voting; a fresh one does.
            await tablet.get_by_text(fr("For the facilitator: stop tablet voting")).click()
            await tablet.get_by_label(fr("Your authentication code")).fill("000000")
            await tablet.get_by_role("button", name=fr("Stop tablet voting")).click()
            await tablet.wait_for_load_state()
            assert tablet.url.endswith(f"/votes/{vote_id}/tablet/quit"), tablet.url
            await tablet.get_by_label(fr("Your authentication code")).fill(
                await code_now(room, facilitator_id)
            )
            await tablet.get_by_role("button", name=fr("Stop tablet voting")).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/room$"))

            # Paper for those left, counted by the facilitator and, apart, the coordinator.
            for name in ON_PAPER:
                await tablet.locator(
                    f'#paper input[name=person][value="{room.people[name]}"]'
                ).check()
            await tablet.get_by_role(
                "button", name=fr("Hand out paper ballots to the people ticked")
            ).click()
            await tablet.wait_for_load_state()
            await tablet.get_by_role("button", name=fr("Count a batch of paper ballots")).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/room/counts/\d+$"))
            count_url = tablet.url
            await shot(tablet, "count-empty-fr")
            await enter_batch(tablet, count_url)
            await expect(
                tablet.get_by_text(
                    fr(
                        "Your entry is saved. A second person now enters the same count on their own device."
                    )
                )
            ).to_be_visible()
            await shot(tablet, "count-first-entry-fr")

            other = await browser.new_context(locale="fr-FR", viewport=TABLET)
            coordinator = await other.new_page()
            await sign_in_with_code(coordinator, base, "coordinator-a", room, coordinator_id)
            await coordinator.goto(count_url)
            assert await coordinator.locator("input[name=ballots]").input_value() == ""
            await enter_batch(coordinator, count_url)
            await expect(
                coordinator.get_by_text(
                    fr("Recorded: both entries agree, and the figures are counted with the vote.")
                )
            ).to_be_visible()
            await shot(coordinator, "count-recorded-fr")
            await tablet.goto(f"{base}/votes/{vote_id}/room")
            await shot(tablet, "room-fr")

            # The facilitator closes the vote, once the page has said what that does: every
            # channel is in the result.
            await tablet.goto(f"{base}/votes/{vote_id}")
            await tablet.get_by_role(
                "link", name=fr("Close the vote and publish the results")
            ).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}/close$"))
            await shot(tablet, "close-fr")
            await tablet.get_by_role("button", name=fr("Close the vote"), exact=True).click()
            await tablet.wait_for_url(re.compile(rf"/votes/{vote_id}$"))
            messages = catalog("fr")
            parts = [
                messages.ngettext("%(num)d online", "%(num)d online", 1) % {"num": 1},
                messages.ngettext("%(num)d on the tablet", "%(num)d on the tablet", 3) % {"num": 3},
                messages.ngettext("%(num)d on paper", "%(num)d on paper", 3) % {"num": 3},
            ]
            assert await tablet.locator("p.channels").inner_text() == ", ".join(parts) + "."
            took_part = messages.ngettext(
                "%(num)d person took part", "%(num)d people took part", 7
            ) % {"num": 7}
            assert took_part in await tablet.locator("p.total").first.inner_text()
            await shot(tablet, "result-fr")
            published = await tablet.request.get(f"{base}/votes/{vote_id}/ballots.json")
            assert published.ok
            box = json.loads(await published.body())
            await browser.close()
    assert not blocked, blocked

    # One roll, each person once, through the channel they used.
    roll = {
        row["person"]: row["channel"]
        for row in await Participation.select(Participation.person, Participation.channel).where(
            Participation.vote == vote_id
        )
    }
    assert roll == {
        room.people["Samira"]: "online",
        **{room.people[name]: "tablet" for name in ON_TABLET},
        **{room.people[name]: "paper" for name in ON_PAPER},
    }
    # The public ballot box: four electronic ballots, the paper batch as tallies.
    assert len(box["ballots"]) == 4
    assert len(box["receipts"]) == 4
    assert set(receipts) <= set(box["receipts"])
    assert box["vote"]["participants"] == 7
    (option,) = (await services.options([vote_id]))[vote_id]
    assert box["tallies"] == {option["key"]: [2, 1, 0]}
    # Samira, Karim and Nadia for, Fatou against; the paper batch: 2 for, 1 against.
    assert option["tally"] == [3 + 2, 1 + 1, 0]
