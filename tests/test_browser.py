"""The main journey in a real browser (Debian's Chromium, driven by Playwright).

A resident signs in and proposes; the facilitator opens a vote; the resident votes; the
facilitator closes it, records the adoption, publishes the brief and downloads its PDF.
Screenshots land in test-output/ (French and Arabic) for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pyotp
import pytest

from tests.factories import (
    FLAMANTS_SQUARE,
    PASSWORD,
    add_institution,
    add_proposal,
    build_world,
    draw_district,
)
from tests.servers import replica
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
    pytest.mark.skipif(
        shutil.which("pdftotext") is None,
        reason="NOTICE: pdftotext is not installed (apt-get install poppler-utils): browser journey skipped",
    ),
]


def fr(msgid: str) -> str:
    return catalog("fr").gettext(msgid)


def ar(msgid: str) -> str:
    return catalog("ar").gettext(msgid)


TITLE = "Des bancs à l'ombre devant l'école"


RECOVERY_CODES: list[str] = []


async def sign_in(page, base: str, login: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label(fr("Login or e-mail")).fill(login)
    await page.get_by_label(fr("Password")).fill(PASSWORD)
    await page.get_by_role("button", name=fr("Sign in")).click()
    await page.wait_for_load_state()
    if "/account" in page.url:  # first sign-in of a facilitator: enrol TOTP
        secret = (await page.locator("#totp-secret").inner_text()).replace(" ", "")
        await page.screenshot(path=OUTPUT / "totp-enrolment-fr.png", full_page=True)
        await page.get_by_label(fr("Code"), exact=True).fill(pyotp.TOTP(secret).now())
        await page.get_by_role("button", name=fr("Confirm and turn on")).click()
        await page.wait_for_load_state()
        RECOVERY_CODES.extend(await page.locator(".recovery-codes code").all_inner_texts())
        assert len(RECOVERY_CODES) == 10
        await page.get_by_role("link", name=fr("Continue")).click()
    elif "/login/verify" in page.url:  # later sign-ins: a recovery code (TOTP would be a replay)
        await page.get_by_label(fr("Code"), exact=True).fill(RECOVERY_CODES.pop())
        await page.get_by_role("button", name=fr("Confirm"), exact=True).click()
    await page.wait_for_load_state()


async def sign_out(page) -> None:
    await page.get_by_role("button", name=fr("Sign out")).click()
    await page.wait_for_load_state()


async def test_resident_proposes_and_votes_facilitator_exports_the_pdf(tmp_path) -> None:
    from playwright.async_api import async_playwright

    world = await build_world()
    await add_institution(world.table_a, "Conseil citoyen du 14e")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            context = await browser.new_context(
                locale="fr-FR", viewport={"width": 390, "height": 844}, accept_downloads=True
            )
            page = await context.new_page()
            blocked = []
            page.on("request", lambda r: None if r.url.startswith(base) else blocked.append(r.url))

            # A resident proposes.
            await sign_in(page, base, "resident-a")
            await page.goto(f"{base}/tables/flamants-iris")
            await page.get_by_role("link", name=fr("Make a proposal")).click()
            await page.get_by_label(fr("Your idea in one sentence")).fill(TITLE)
            await page.get_by_label(
                fr("Explain it: what is the problem, what would you change?")
            ).fill("Les parents attendent en plein soleil à la sortie.")
            await page.get_by_label(fr("Public space")).check()
            await page.get_by_role("button", name=fr("Send my proposal")).click()
            await page.wait_for_load_state()
            assert TITLE in await page.locator("h1").inner_text()
            proposal_url = page.url
            await page.screenshot(path=OUTPUT / "proposal-fr.png", full_page=True)
            await sign_out(page)

            # The facilitator opens a vote.
            await sign_in(page, base, "facilitator-a")
            await page.goto(proposal_url)
            await page.get_by_role("button", name=fr("Open a vote")).click()
            await page.wait_for_load_state()
            vote_url = page.url
            await sign_out(page)

            # The resident votes, in Arabic this time, and keeps the receipt.
            await sign_in(page, base, "resident-a")
            await page.goto(f"{vote_url}?lang=ar")
            assert await page.locator("html").get_attribute("dir") == "rtl"
            await page.locator("input[name=choice][value=yes]").check()
            await page.screenshot(path=OUTPUT / "ballot-ar.png", full_page=True)
            await page.locator("form.ballot button[type=submit]").click()
            await page.wait_for_load_state()
            # One look before sending for good: the choice, then "send".
            assert ar("For") in await page.locator(".review-choices").inner_text()
            await page.screenshot(path=OUTPUT / "review-ar.png", full_page=True)
            await page.get_by_role("button", name=ar("Send my ballot"), exact=True).click()
            await page.wait_for_load_state()
            receipt = await page.locator(".receipt .code").inner_text()
            assert len(receipt) == 8
            await page.screenshot(path=OUTPUT / "receipt-ar.png", full_page=True)
            await page.goto(f"{base}/?lang=fr")
            await sign_out(page)

            # The facilitator closes (the result adopts it: one for, none against), publishes
            # and downloads the PDF.
            await sign_in(page, base, "facilitator-a")
            await page.goto(vote_url)
            await page.get_by_role(
                "link", name=fr("Close the vote and publish the results")
            ).click()
            # Closing asks first, on a page of its own: then the button that closes.
            await page.wait_for_url(re.compile(r"/votes/\d+/close$"))
            await page.get_by_role("button", name=fr("Close the vote"), exact=True).click()
            await page.wait_for_url(re.compile(r"/votes/\d+$"))
            await page.goto(proposal_url)
            assert await page.locator(".meta .badge.adopted").inner_text() == fr("Adopted")
            await page.goto(f"{base}/tables/flamants-iris")
            await page.screenshot(path=OUTPUT / "table-fr.png", full_page=True)
            # The brief: a draft, composed, previewed, then published as its version 1.
            await page.get_by_role("link", name=fr("Prepare a position document")).click()
            await page.get_by_label(fr("Title")).fill("Nos priorités pour l'école")
            await page.get_by_role("button", name=fr("Create the draft")).click()
            await page.wait_for_url(re.compile(r"/briefs/[\w-]+/edit$"))
            await page.get_by_label("Conseil citoyen du 14e").check()
            await page.get_by_label(fr("Context")).fill("La table a voté ces propositions.")
            await page.get_by_role("button", name=fr("Save and preview")).click()
            await page.wait_for_url(re.compile(r"/briefs/[\w-]+/preview$"))
            await page.screenshot(path=OUTPUT / "brief-preview-fr.png", full_page=True)
            publish = fr("Publish version %(number)d") % {"number": 1}
            await page.get_by_role("button", name=publish).click()
            await page.wait_for_url(re.compile(r"/briefs/[\w-]+/v/1$"))
            await page.screenshot(path=OUTPUT / "brief-fr.png", full_page=True)
            pdf_link = page.locator("a[href$='/v/1/fr.pdf']")
            response = await page.request.get(base + await pdf_link.get_attribute("href"))
            assert response.ok
            assert response.headers["content-type"] == "application/pdf"
            pdf = tmp_path / "brief.pdf"
            pdf.write_bytes(await response.body())
            await browser.close()
            assert blocked == [], f"the pages asked for other hosts: {blocked}"

    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert TITLE in text
    assert "Conseil citoyen du 14e" in text


async def test_a_facilitator_registers_a_resident_who_signs_in_with_the_card(tmp_path) -> None:
    from playwright.async_api import async_playwright

    await build_world()
    RECOVERY_CODES.clear()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            desk = await browser.new_context(locale="fr-FR", accept_downloads=True)
            page = await desk.new_page()
            await sign_in(page, base, "facilitator-a")  # enrols TOTP with a real pyotp code
            await page.goto(f"{base}/tables/flamants-iris")
            await page.get_by_role("link", name=fr("Residents and login cards")).click()
            await page.get_by_label(fr("Name shown to others")).fill("Fatou")
            await page.get_by_label(fr("Preferred language")).select_option("ar")
            await page.get_by_label(
                fr("I have read the privacy notice to the resident, who agrees to it.")
            ).check()
            await page.screenshot(path=OUTPUT / "residents-fr.png", full_page=True)
            # The card saves as a file: its code is printed once, and must survive a viewer failure.
            async with page.expect_download() as download_info:
                await page.get_by_role("button", name=fr("Register and print the card")).click()
            card = tmp_path / "card.pdf"
            await (await download_info.value).save_as(card)

            text = subprocess.run(
                ["pdftotext", str(card), "-"], capture_output=True, text=True, check=True
            ).stdout
            code = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", text).group(0)

            phone = await browser.new_context(locale="ar", viewport={"width": 390, "height": 844})
            resident = await phone.new_page()
            await resident.goto(f"{base}/card/{code.replace('-', '')}")  # what the QR code opens
            await resident.screenshot(path=OUTPUT / "card-sign-in-ar.png", full_page=True)
            await resident.locator("main form button[type=submit]").click()
            await resident.wait_for_load_state()
            assert "Fatou" in await resident.locator("header").inner_text()
            await browser.close()


async def test_a_facilitator_runs_a_meeting_from_the_agenda_to_the_minutes(tmp_path) -> None:
    """Schedule on a phone, start, tick and add people, run the speakers' queue while the
    room screen follows live, print the sign-in sheet, close, publish the minutes."""
    from datetime import datetime, timedelta

    from playwright.async_api import async_playwright, expect

    from voix.i18n import LOCAL_TIMEZONE

    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    RECOVERY_CODES.clear()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    day = (datetime.now(LOCAL_TIMEZONE) + timedelta(days=3)).date().isoformat()
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            phone = await browser.new_context(
                locale="fr-FR", viewport={"width": 390, "height": 844}
            )
            page = await phone.new_page()
            blocked = []
            page.on("request", lambda r: None if r.url.startswith(base) else blocked.append(r.url))

            # Scheduling, on the facilitator's phone.
            await sign_in(page, base, "facilitator-a")
            await page.goto(f"{base}/tables/flamants-iris")
            await page.get_by_role("link", name=fr("Schedule a meeting")).first.click()
            await page.get_by_label(fr("Title")).fill("Réunion de la table — ascenseurs")
            await page.get_by_label(fr("Date")).fill(day)
            await page.get_by_label(fr("Starts at")).fill("18:30")
            await page.get_by_label(fr("Ends at")).fill("20:30")
            await page.get_by_label(fr("Place"), exact=True).fill("Centre social Flamants-Iris")
            await page.get_by_label(fr("Address")).fill("Avenue Alexandre Ansaldi, 13014 Marseille")
            await page.locator("input[name=languages][value=ar]").check()
            await page.get_by_label(fr("Agenda")).fill("Accueil\nQuestions diverses")
            await page.screenshot(path=OUTPUT / "meeting-schedule-fr.png", full_page=True)
            await page.get_by_role("button", name=fr("Schedule the meeting")).click()
            await page.wait_for_load_state()
            meeting_url = page.url
            assert re.search(r"/meetings/\d+$", meeting_url)
            await page.get_by_text(fr("Add an item to the agenda")).click()
            await page.get_by_label(fr("A proposal of the table")).select_option(
                label="Réparer les ascenseurs de la tour G"
            )
            await page.get_by_role("button", name=fr("Add to the agenda")).click()
            await page.wait_for_load_state()
            assert await page.locator("ol.agenda > li").count() == 3
            await page.screenshot(path=OUTPUT / "meeting-fr.png", full_page=True)

            # The meeting starts; the room screen opens on the projector's laptop.
            await page.get_by_role("button", name=fr("Start the meeting")).click()
            await page.wait_for_load_state()
            assert page.url.endswith("/control")
            projector = await phone.new_page()  # same signed-in browser, a wide window
            await projector.set_viewport_size({"width": 1280, "height": 720})
            await projector.goto(meeting_url + "/screen")
            assert "Accueil" in await projector.locator(".screen-item").inner_text()

            # Attendance: a member ticked, a walk-in by name; a resident checks in on her phone.
            await page.goto(meeting_url + "/attendance")
            await (
                page.locator("ul.tick-list form")
                .filter(has_text="Resident-A")
                .get_by_role("button")
                .click()
            )
            await page.get_by_label(fr("Name (a first name is enough)")).fill("Mme Benali")
            await page.get_by_role("button", name=fr("Add to the attendance")).click()
            await page.wait_for_load_state()
            await page.screenshot(path=OUTPUT / "attendance-fr.png", full_page=True)
            await projector.locator(".screen-present .number", has_text="2").wait_for()

            # The speakers' queue, on the phone; the screen follows without being reloaded.
            await page.goto(meeting_url + "/control")
            for name in ("Nadia", "Karim"):
                field = page.get_by_label(fr("Name (a first name is enough)"))
                await field.fill(name)
                await page.get_by_role("button", name=fr("Add to the queue")).click()
                # The boosted answer replaces the page, the field emptied with it: typing the
                # next name before that would type it into the page being replaced. (The room
                # block, refreshed by its own event, can show the name a moment earlier.)
                await expect(field).to_have_value("")
                await page.locator(".control-list li", has_text=name).wait_for()
            await page.get_by_role("button", name=fr("Give the floor")).first.click()
            await projector.locator(".screen-speaker", has_text="Nadia").wait_for(timeout=10_000)
            await projector.locator(".screen-queue", has_text="Karim").wait_for()
            await (
                page.locator(".control-list li", has_text="Réparer les ascenseurs")
                .get_by_role("button", name=fr("Show on screen"))
                .click()
            )
            await projector.locator(".screen-item", has_text="Réparer les ascenseurs").wait_for()
            await page.screenshot(path=OUTPUT / "control-fr.png", full_page=True)
            await projector.screenshot(path=OUTPUT / "room-screen-fr.png")
            await projector.goto(meeting_url + "/screen?lang=ar")
            assert await projector.locator("html").get_attribute("dir") == "rtl"
            await projector.screenshot(path=OUTPUT / "room-screen-ar.png")

            # The sign-in sheet, for the funders.
            response = await page.request.get(meeting_url + "/sign-in-sheet.pdf?lang=fr")
            assert response.headers["content-type"] == "application/pdf"
            sheet = tmp_path / "sheet.pdf"
            sheet.write_bytes(await response.body())
            response = await page.request.get(meeting_url + "/sign-in-sheet.pdf?lang=ar")
            (tmp_path / "sheet-ar.pdf").write_bytes(await response.body())
            await page.request.get(meeting_url + "?lang=fr")  # ?lang= is remembered: back

            # Closing, then the minutes.
            await page.goto(meeting_url + "/control")
            await page.get_by_role("button", name=fr("Close the meeting")).click()
            await page.wait_for_load_state()
            # Closing asks first, on a page saying what will happen (issue 12).
            await page.screenshot(path=OUTPUT / "close-confirm-fr.png", full_page=True)
            await page.get_by_role("button", name=fr("Yes, close the meeting")).click()
            await page.wait_for_load_state()
            await page.get_by_role("link", name=fr("Write the minutes")).click()
            await page.get_by_label(fr("Minutes"), exact=True).fill(
                "## Ouverture\n\nLa séance est **ouverte** à 18h30.\n\n- Ascenseurs : courrier au bailleur"
            )
            await page.get_by_role("button", name=fr("Publish")).click()
            await page.wait_for_load_state()
            assert "ouverte" in await page.locator(".minutes-body strong").inner_text()
            await page.screenshot(path=OUTPUT / "minutes-fr.png", full_page=True)
            await browser.close()
            assert blocked == [], f"the pages asked for other hosts: {blocked}"

    text = subprocess.run(
        ["pdftotext", "-layout", str(sheet), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Mme Benali" in text
    assert "Resident-A" in text
    assert fr("Sign-in sheet") in text
    for name, pdf in (("sign-in-sheet-fr", sheet), ("sign-in-sheet-ar", tmp_path / "sheet-ar.pdf")):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(OUTPUT / name)],
            check=True,
        )


async def test_a_resident_places_a_proposal_on_the_map_and_finds_it_again(tmp_path) -> None:
    """A click on the districts' map places the proposal; the filters find it (htmx); the
    interactive map shows it; nothing but tiles is asked of other hosts."""
    from playwright.async_api import async_playwright

    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VOIX_TILE_URL": "https://tiles.invalid/{z}/{x}/{y}.png"}
    with replica(env) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            context = await browser.new_context(
                locale="fr-FR", viewport={"width": 390, "height": 844}
            )
            asked: set[str] = set()

            async def only_this_site(route) -> None:
                if route.request.url.startswith(base):
                    await route.continue_()
                else:
                    asked.add(route.request.url.split("/")[2])
                    await route.abort()

            await context.route("**/*", only_this_site)
            page = await context.new_page()
            await sign_in(page, base, "resident-a")
            await page.goto(f"{base}/tables/flamants-iris/proposals/new")
            map_box = page.locator("#place-map")
            await map_box.wait_for(state="visible")
            await page.locator("#place-map path.leaflet-interactive").wait_for()
            await map_box.click()  # the middle of the district
            assert await page.locator("#f-latitude").input_value() != ""
            await page.get_by_label(fr("Your idea in one sentence")).fill(
                "Un abri à l'arrêt de bus"
            )
            await page.get_by_label(
                fr("Explain it: what is the problem, what would you change?")
            ).fill("On attend sous la pluie le matin.")
            await page.get_by_label(fr("Transport")).check()
            await page.screenshot(path=OUTPUT / "place-on-map-fr.png", full_page=True)
            await page.get_by_role("button", name=fr("Send my proposal")).click()
            await page.wait_for_load_state()
            assert "Un abri" in await page.locator("h1").inner_text()
            assert "Quartier flamants-iris" in await page.locator(".where").inner_text()

            # The filters find it, without reloading the page.
            await page.goto(f"{base}/tables/flamants-iris")
            await add_proposal_via_db(world)
            await page.get_by_label(fr("Search")).fill("abri")
            await page.locator("#proposals h3", has_text="Un abri").wait_for()
            await page.get_by_label(fr("Theme")).select_option("transport")
            await page.locator("#proposals h3", has_text="Un abri").wait_for()
            assert await page.locator("#proposals h3").count() == 1
            await page.wait_for_url(re.compile(r"q=abri.*theme=transport|theme=transport.*q=abri"))
            await page.screenshot(path=OUTPUT / "filters-fr.png", full_page=True)

            # And the interactive map shows it.
            await page.goto(f"{base}/tables/flamants-iris/map?theme=transport")
            await page.locator(".map-marker").first.wait_for()
            assert await page.locator(".map-marker").count() == 1
            await page.set_viewport_size({"width": 800, "height": 600})
            await page.screenshot(path=OUTPUT / "map-fr.png")
            await browser.close()
    assert asked <= {"tiles.invalid"}, asked


async def add_proposal_via_db(world) -> None:
    """Another proposal, elsewhere in the list, that the search must leave out."""
    await add_proposal(world.table_a, "Des bancs dans le square", theme="public_space")
