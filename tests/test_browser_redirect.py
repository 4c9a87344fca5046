"""`next` as a real browser reads it: Chromium drops tabs and newlines from a URL before it
follows it, so "/<tab>/evil.example" in a link is "//evil.example", another site. The link
that ends TOTP enrolment ("Continue") must stay on this one."""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest

from tests.factories import PASSWORD, build_world
from tests.servers import replica
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, fr

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="NOTICE: Chromium is not installed (apt-get install chromium): "
        "the open-redirect check in a real browser was skipped",
    ),
]


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0D%0A/evil.example"])
async def test_the_continue_link_after_totp_enrolment_stays_on_the_site(target: str) -> None:
    from playwright.async_api import Route, async_playwright

    await build_world()
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            context = await browser.new_context(locale="fr-FR")
            elsewhere: list[str] = []

            async def this_site_only(route: Route) -> None:
                if route.request.url.startswith(base):
                    await route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    await route.abort()

            await context.route("**/*", this_site_only)
            page = await context.new_page()
            await page.goto(f"{base}/login?next={target}")
            await page.get_by_label(fr("Login or e-mail")).fill("facilitator-a")
            await page.get_by_label(fr("Password")).fill(PASSWORD)
            await page.get_by_role("button", name=fr("Sign in")).click()
            await page.wait_for_load_state()
            assert "/account" in page.url  # a facilitator enrols first
            secret = (await page.locator("#totp-secret").inner_text()).replace(" ", "")
            await page.get_by_label(fr("Code"), exact=True).fill(pyotp.TOTP(secret).now())
            await page.get_by_role("button", name=fr("Confirm and turn on")).click()
            await page.wait_for_load_state()

            await page.get_by_role("link", name=fr("Continue")).click()
            await page.wait_for_load_state()
            assert elsewhere == [], f"the browser was sent to {elsewhere}"
            assert page.url == f"{base}/"
            await browser.close()
