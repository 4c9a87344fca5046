"""Pages on a phone with the text at 200 %, targets a finger can hit, and a static map that
assistive technology can use (issue 12; WCAG 1.4.4, 1.4.10, 2.5.5, 4.1.2).

The browser tests set the text size as a person does, in Chromium's settings (its default
font size, 16 px, doubled: rem and em grow, and so do the rem breakpoints), then load the
pages a resident and a facilitator use at 390 px wide, in French and in Arabic (right to left):
nothing may scroll sideways, no button may stick out of its panel nor break its words one
letter or syllable per line. At normal size, the header's links, the footer's links, the
agenda's chips and the buttons of the page take 44 × 44 px, and so do the maps' zoom buttons
and the popup's close button. The static map is checked over HTTP: no link inside an image, the
proposals of its numbered dots listed beside it, numbered alike, each title in its language;
dots that would cover one another are fanned out, inside the picture (the brief's map too).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from accounts.services import open_session
from exports.services import brief_map
from maps import svg
from meetings import services as meetings
from proposals.models import Proposal
from tests.factories import FLAMANTS_SQUARE, add_proposal, build_world, draw_district
from tests.routes_world import build_route_world
from tests.servers import replica
from voix.middleware import LANGUAGE_COOKIE
from voix.settings import PROJECT_ROOT
from voix.web import SESSION_COOKIE
from votes import closing
from votes import services as votes

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
OUTPUT = PROJECT_ROOT / "test-output" / os.environ.get("VOIX_TEST_DATABASE", "sqlite") / "reflow"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LANGUAGES = ("fr", "ar")
ROOT_SIZE = 17  # px: app.css sets the root at 106.25 % of the browser's 16 px
TARGET = 44  # px

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="NOTICE: Chromium is not installed (apt-get install chromium): "
    "the reflow and touch-target checks were skipped",
)

# Who sees which page. {names} are objects of the world below.
PAGES = {
    "anonymous": [
        "/",
        "/tables/{slug}",
        "/meetings/{meeting}",
        "/votes/{vote_closed}",
        "/votes/{vote_ranked}",
        "/briefs/{brief}",
    ],
    "resident_a": ["/tables/{slug}", "/meetings/{meeting}", "/votes/{vote_open}"],
    "facilitator_a": [
        "/tables/{slug}/residents",
        "/tables/{slug}/meetings/new",
        "/meetings/{meeting}",
        "/meetings/{meeting_room}/attendance",
        "/meetings/{meeting}/control",
        "/votes/{vote_open}",
    ],
}

# What overflows the page sideways, and the buttons (or cells) whose words break across lines:
# a word of a button on two lines or more is the "one letter per line" the issue saw. Lines
# are counted from the text's own boxes (an icon's box is no line); words break at spaces,
# hyphens, slashes and the middle dot of "habitant·e·s", where a line may end.
REFLOW = r"""
() => {
  const hidden = el => !!el.closest('.visually-hidden, [hidden], [aria-hidden="true"]');
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && !hidden(el) && getComputedStyle(el).visibility !== 'hidden'; };
  const label = el => { const parts = []; for (let e = el; e && e !== document.body && parts.length < 3; e = e.parentElement)
    parts.unshift(e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '')); return parts.join(' > '); };
  const outside = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el) || el.closest('.table-scroll, .skip-link')) continue;
    const r = el.getBoundingClientRect();
    const parent = el.parentElement.getBoundingClientRect();
    if ((r.right > innerWidth + 1 || r.left < -1) && !(parent.right > innerWidth + 1 || parent.left < -1))
      outside.push(`${label(el)} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
  }
  // A button wider than its panel sticks out of it, even where the page does not scroll.
  const beyond = [];
  for (const el of document.querySelectorAll('main button, main .button')) {
    const panel = el.closest('.panel, .card');
    if (!panel || !shown(el) || el.closest('.table-scroll')) continue;
    const r = el.getBoundingClientRect(), box = panel.getBoundingClientRect();
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5)
      beyond.push(`${label(el)} "${el.innerText.trim().slice(0, 30)}" [${Math.round(r.left)}, ${Math.round(r.right)}] out of [${Math.round(box.left)}, ${Math.round(box.right)}]`);
  }
  const broken = [];
  for (const el of document.querySelectorAll('main button, main .button, main td, main th, .site-header a, .site-header button')) {
    if (!shown(el)) continue;
    const text = el.innerText.trim();
    const words = text.split(/[\s\-\u2010-\u2014\/\u00b7]+/).filter(Boolean).length;
    if (!words) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    const tops = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || hidden(node.parentElement)) continue;
      const range = document.createRange(); range.selectNodeContents(node);
      for (const box of range.getClientRects()) if (box.width > 0) tops.push(box.top);
    }
    tops.sort((a, b) => a - b);
    let lines = 0, last = -Infinity;
    for (const top of tops) if (top > last + 0.6 * size) { lines += 1; last = top; }
    if (lines > words) broken.push(`${label(el)} "${text.slice(0, 40)}": ${lines} lines for ${words} words`);
  }
  return {
    rootSize: parseFloat(getComputedStyle(document.documentElement).fontSize),
    overflow: document.documentElement.scrollWidth - innerWidth,
    outside, beyond, broken,
  };
}
"""

# Targets: the size of each box, and, for a chip (its box may stay small on screen), whether a
# tap anywhere in the 44 × 44 px square around its centre lands on it.
TARGETS = r"""
target => {
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && !el.closest('.visually-hidden, [hidden]'); };
  const name = el => `${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).trim().split(/\s+/).join('.') : ''} "${el.innerText.trim().slice(0, 30)}"`;
  const small = [];
  const boxes = 'header.site-header a, header.site-header button, footer.site-footer nav a, footer.site-footer p > a:only-child, main button, main a.button, main .static-map-list a';
  for (const el of document.querySelectorAll(boxes)) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width < target - 0.5 || r.height < target - 0.5) small.push(`${name(el)} ${r.width.toFixed(1)} × ${r.height.toFixed(1)}`);
  }
  const chips = [...document.querySelectorAll('main a.tag')].filter(shown);
  for (const el of chips) {
    el.scrollIntoView({block: 'center', inline: 'center'});
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2, h = target / 2 - 1;
    for (const [dx, dy] of [[0, 0], [-h, -h], [h, -h], [-h, h], [h, h]]) {
      const hit = document.elementFromPoint(x + dx, y + dy);
      if (!hit || hit.closest('a.tag') !== el) { small.push(`${name(el)}: a tap at (${dx}, ${dy}) from its centre misses it`); break; }
    }
  }
  window.scrollTo(0, 0);
  const header = document.querySelector('header.site-header').getBoundingClientRect();
  return {small, chips: chips.length, header: header.height};
}
"""


def profile(directory: Path, default_font_size: int) -> Path:
    """A Chromium profile whose text size setting is `default_font_size` px (16: normal)."""
    (directory / "Default").mkdir(parents=True)
    preferences = {"webkit": {"webprefs": {"default_font_size": default_font_size}}}
    (directory / "Default" / "Preferences").write_text(json.dumps(preferences))
    return directory


async def reflow_world() -> tuple[dict[str, Any], dict[str, str]]:
    """The route walk's world, with what these pages show at their fullest: table A's district
    drawn and proposals placed in it (the static map), a proposal and a vote on the agenda of
    the meeting being held (its chips), a closed vote ranking three proposals; and a session
    for each person (the facilitator's past the code step)."""
    world = await build_route_world()
    table, manager = world.table_a, world.manager
    await draw_district(table, FLAMANTS_SQUARE)
    await Proposal.update({Proposal.latitude: 43.329, Proposal.longitude: 5.41}).where(
        Proposal.id == world.objects["proposal"]
    )
    await add_proposal(
        table, "إصلاح المصاعد في البرج", language="ar", latitude=43.327, longitude=5.408
    )
    meeting = await meetings.get(world.objects["meeting"])
    await meetings.add_item(manager, table, meeting, {"proposal": str(world.objects["proposal"])})
    await meetings.add_item(manager, table, meeting, {"vote": str(world.objects["vote_open"])})
    ranked = [
        await add_proposal(table, title)
        for title in (
            "Sécuriser la traversée de l'avenue devant l'école",
            "Une permanence de médecin généraliste au centre social",
            "Des cours de soutien scolaire gratuits après l'école",
        )
    ]
    world.objects["vote_ranked"] = await votes.open_vote(
        manager,
        table,
        ranked,
        {"question": "Quelles priorités porter en premier ?", "method": "majority_judgment"},
    )
    await closing.close_vote(manager, table, world.objects["vote_ranked"])
    sessions = {
        "resident_a": await open_session(world.users["resident_a"]),
        "facilitator_a": await open_session(world.users["facilitator_a"], verified=True),
    }
    return world.objects, sessions


async def browse(playwright: Any, user_data: Path, viewport: dict[str, int]) -> Any:
    """A browser with its own profile (its text size setting), at this size."""
    return await playwright.chromium.launch_persistent_context(
        str(user_data), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, viewport=viewport
    )


async def sign_as(
    context: Any, base: str, person: str, sessions: dict[str, str], lang: str
) -> None:
    await context.clear_cookies()
    cookies = [{"name": LANGUAGE_COOKIE, "value": lang, "url": base}]
    if person in sessions:
        cookies.append({"name": SESSION_COOKIE, "value": sessions[person], "url": base})
    await context.add_cookies(cookies)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", LANGUAGES)
async def test_pages_reflow_on_a_phone_with_the_text_at_200_percent(tmp_path, lang) -> None:
    from playwright.async_api import async_playwright

    objects, sessions = await reflow_world()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            context = await browse(playwright, profile(tmp_path / "text-200", 32), PHONE)
            page = await context.new_page()
            for person, paths in PAGES.items():
                await sign_as(context, base, person, sessions, lang)
                for template in paths:
                    path = template.format_map(objects)
                    response = await page.goto(base + path)
                    assert response is not None, (person, path)
                    assert response.status == 200, (person, path)
                    assert await page.locator("html").get_attribute("lang") == lang, path
                    found = await page.evaluate(REFLOW)
                    # The setting took: the page's text is twice its size (2 × 17 px).
                    assert found["rootSize"] == 2 * ROOT_SIZE, (path, found["rootSize"])
                    where = f"{path} ({person}, {lang})"
                    shot = f"{person}{path.replace('/', '-')}-{lang}.png"
                    if found["overflow"] > 1:
                        failures.append(
                            f"{where} is {found['overflow']} px wider than the phone: "
                            + "; ".join(found["outside"][:5])
                        )
                    failures += [f"{where}: {line}" for line in found["broken"]]
                    failures += [f"{where}: sticks out of its panel: {b}" for b in found["beyond"]]
                    await page.screenshot(path=OUTPUT / shot, full_page=True)
            # The breakpoints are in rem and follow the text size: a 1000 px window with the
            # text at 200 % (a tablet) shows a table of people one block a row, as a phone does.
            await page.set_viewport_size({"width": 1000, "height": 800})
            await page.goto(base + "/tables/{slug}/residents".format_map(objects))
            row = page.locator("table.stack tbody tr").first
            assert await row.evaluate("tr => getComputedStyle(tr).display") == "block"
            await context.close()
    assert not failures, "\n".join(failures)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_header_footer_chips_and_buttons_are_44_px_targets(tmp_path, viewport) -> None:
    from playwright.async_api import async_playwright

    objects, sessions = await reflow_world()
    failures: list[str] = []
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            context = await browse(playwright, profile(tmp_path / "text-100", 16), viewport)
            page = await context.new_page()
            chips = 0
            for lang in LANGUAGES:
                for person, template in (
                    ("anonymous", "/"),
                    ("anonymous", "/meetings/{meeting}"),
                    ("resident_a", "/meetings/{meeting}"),
                    ("resident_a", "/tables/{slug}"),
                ):
                    await sign_as(context, base, person, sessions, lang)
                    path = template.format_map(objects)
                    await page.goto(base + path)
                    found = await page.evaluate(TARGETS, TARGET)
                    chips += found["chips"]
                    failures += [f"{path} ({person}, {lang}): {line}" for line in found["small"]]
                    if viewport == DESKTOP:
                        # The targets grow inside the header's band: one row, no taller.
                        assert found["header"] <= 60, (path, lang, found["header"])
            await context.close()
    assert chips >= 2 * len(LANGUAGES), "the meeting's agenda shows no chip to check"
    assert not failures, "\n".join(failures)


@pytest.mark.browser
@needs_chromium
async def test_the_maps_zoom_buttons_and_popup_close_button_are_44_px_targets(tmp_path) -> None:
    """On a phone: the interactive map's zoom buttons and its popup's close button (in sight,
    once the map has moved to show the popup), and the place map's zoom buttons on the form."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright

    objects, sessions = await reflow_world()
    sizes: dict[str, Any] = {}
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            context = await browse(playwright, profile(tmp_path / "text-100", 16), PHONE)
            # Nothing from elsewhere (the map's tiles): the test does not wait on the network.
            await context.route(
                re.compile(r"^(?!" + re.escape(base) + ")"), lambda route: route.abort()
            )
            page = await context.new_page()
            await sign_as(context, base, "resident_a", sessions, "fr")
            await page.goto(base + "/tables/{slug}/map".format_map(objects))
            await page.locator(".leaflet-control-zoom-in").wait_for()
            await page.wait_for_timeout(800)  # the map fits the district
            for name in ("zoom-in", "zoom-out"):
                sizes[name] = await page.locator(f".leaflet-control-{name}").bounding_box()
            for _ in range(6):  # into the clusters until a proposal's marker shows
                if await page.locator(".map-marker-icon").count():
                    break
                await page.locator(".marker-cluster").first.click()
                await page.wait_for_timeout(600)
            # A loaded machine may still be animating the last zoom: a click that lands
            # during it opens nothing, so it is made again (the popup is what is measured).
            for attempt in range(4):
                await page.locator(".map-marker-icon").first.click()
                try:
                    await page.locator(".leaflet-popup-close-button").wait_for(timeout=8000)
                    break
                except PlaywrightTimeout:
                    if attempt == 3:
                        raise
            await page.wait_for_timeout(1000)  # the map moves to show the popup
            sizes["popup close"] = await page.locator(".leaflet-popup-close-button").bounding_box()
            await page.goto(base + "/tables/{slug}/proposals/new".format_map(objects))
            await page.locator("#place-map .leaflet-control-zoom-in").wait_for()
            for name in ("zoom-in", "zoom-out"):
                box = await page.locator(f"#place-map .leaflet-control-{name}").bounding_box()
                sizes[f"place map {name}"] = box
            await page.screenshot(path=OUTPUT / "place-map-phone.png", full_page=True)
            await context.close()
    for name, box in sizes.items():
        assert box is not None, name
        assert box["width"] >= TARGET - 0.5, (name, box)
        assert box["height"] >= TARGET - 0.5, (name, box)
        assert box["x"] >= 0, (name, box)  # in sight
        assert box["x"] + box["width"] <= PHONE["width"] + 0.5, (name, box)


# The static map, over HTTP


VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    def all(self, test: Any = lambda e: True) -> list[Element]:
        found = []
        for child in self.children:
            if isinstance(child, Element):
                if test(child):
                    found.append(child)
                found += child.all(test)
        return found

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children).strip()

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Document(HTMLParser):
    """The page as a tree (SVG's self-closed tags included)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.stack = [self.root]
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}, self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if any(element.tag == tag for element in self.stack[1:]):
            while self.stack.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


FOCUSABLE = {"a", "button", "input", "select", "textarea", "summary"}


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_static_map_holds_no_link_in_an_image_and_lists_its_proposals_beside_it(
    client: AsyncClient, lang: str
) -> None:
    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    titles = ["Un abri à l'arrêt de bus", "إصلاح المصاعد في البرج", "Des bancs sur la place"]
    written_in = {title: "ar" if title.startswith("إ") else "fr" for title in titles}
    for n, title in enumerate(titles):  # the first two at one place
        await add_proposal(
            world.table_a,
            title,
            language=written_in[title],
            latitude=43.327 + n // 2 / 1000,
            longitude=5.41,
        )
    hidden = await add_proposal(world.table_a, "Cachée", latitude=43.33, longitude=5.41)
    await Proposal.update({Proposal.hidden_at: Proposal.created_at}).where(Proposal.id == hidden)

    response = await client.get(f"/tables/flamants-iris?lang={lang}")
    assert response.status_code == 200
    page = Document(response.text).root

    # Nothing focusable inside anything that is an image to assistive technology.
    for image in page.all(lambda e: e.attrs.get("role") == "img"):
        inside = image.all(lambda e: e.tag in FOCUSABLE or "tabindex" in e.attrs)
        assert not inside, f"{image.tag} role=img holds {[e.tag for e in inside]}"

    (figure,) = page.all(lambda e: "static-map-figure" in e.classes())
    (drawing,) = figure.all(lambda e: e.tag == "svg" and "static-map" in e.classes())
    assert drawing.attrs.get("role") == "group"
    labels = drawing.attrs["aria-labelledby"].split()
    assert all(page.all(lambda e, i=i: e.attrs.get("id") == i) for i in labels)
    # The dots: shortcuts for a mouse or a finger, out of the tab order and of the tree.
    dots = drawing.all(lambda e: e.tag == "a")
    assert len(dots) == len(titles)  # the hidden proposal is on neither
    for dot in dots:
        assert dot.attrs.get("tabindex") == "-1"
        assert dot.attrs.get("aria-hidden") == "true"
    numbered = {
        int(dot.all(lambda e: "point-number" in e.classes())[0].text()): dot.attrs["href"]
        for dot in dots
    }
    assert sorted(numbered) == list(range(1, len(titles) + 1))
    # The two at one place are drawn apart, each tied to it by a line.
    circles = [
        (float(c.attrs["cx"]), float(c.attrs["cy"]), float(c.attrs["r"]))
        for c in drawing.all(lambda e: "point" in e.classes())
    ]
    for n, (x, y, r) in enumerate(circles):
        assert all(math.dist((x, y), (x2, y2)) >= r + r2 for x2, y2, r2 in circles[n + 1 :])
    assert len(drawing.all(lambda e: e.tag == "line")) == 2

    # Beside it, the same proposals as a real list of links, numbered as the dots.
    (listing,) = figure.all(lambda e: e.tag == "ol" and "static-map-list" in e.classes())
    assert listing.attrs.get("aria-label")
    items = listing.all(lambda e: e.tag == "li")
    links = [item.all(lambda e: e.tag == "a")[0] for item in items]
    assert [link.attrs["href"] for link in links] == [numbered[n] for n in sorted(numbered)]
    assert sorted(link.text() for link in links) == sorted(titles)
    # Each title said to be in its proposal's language, whatever the page's.
    for link in links:
        (span,) = link.all(lambda e: e.tag == "span" and "lang" in e.attrs)
        assert span.attrs["lang"] == written_in[span.text()]
    assert "Cachée" not in figure.text()
    # The numbers are said once, in the caption the figure is named by.
    (caption,) = figure.all(lambda e: e.tag == "figcaption")
    assert figure.attrs["aria-labelledby"] == caption.attrs["id"]


def test_dots_that_would_cover_one_another_are_fanned_out_inside_the_picture() -> None:
    """Twelve proposals at one named place by the picture's corner, two a few metres apart,
    one elsewhere: fifteen dots, none covering another, all inside the picture, the twelve tied
    to their place, the two to theirs. On the site's map and on the brief's (on paper, where a
    dot is larger)."""
    district = {"boundary": FLAMANTS_SQUARE, "name": "Les Flamants-Iris", "approximate": False}
    corner = {"latitude": 43.3329, "longitude": 5.4051, "theme": "housing", "title": "x"}
    points = [{**corner, "id": n} for n in range(12)]
    points += [
        {**corner, "id": 12, "latitude": 43.328, "longitude": 5.41},
        {**corner, "id": 13, "latitude": 43.32803, "longitude": 5.41003},
        {**corner, "id": 14, "latitude": 43.33, "longitude": 5.413},
    ]
    site, paper = svg.layout([district], points), brief_map([district], points)
    assert paper is not None
    assert paper["dot"] > svg.DOT  # larger on paper, in the map's units: fanned out wider
    for drawn in (site, paper):
        assert drawn is not None
        dots, r = drawn["points"], drawn["dot"]
        assert [dot["id"] for dot in dots] == list(range(15))  # numbered as the list, still
        for n, a in enumerate(dots):
            assert r <= a["x"] <= drawn["width"] - r, a
            assert r <= a["y"] <= drawn["height"] - r, a
            for b in dots[n + 1 :]:
                assert math.dist((a["x"], a["y"]), (b["x"], b["y"])) >= 2 * r, (a["id"], b["id"])
        (place,) = {dot["at"] for dot in dots[:12]}
        assert place is not None
        assert None not in (dots[12]["at"], dots[13]["at"])
        assert len({place, dots[12]["at"], dots[13]["at"]}) == 3
        assert dots[14]["at"] is None  # alone: where it is, no line


def test_a_districts_name_is_not_drawn_under_a_dot() -> None:
    """The name goes in the middle of its district, unless dots sit there: then elsewhere
    inside the district, where no dot covers it (in the demo, a numbered dot hid Flamants-Iris)."""
    district = {"boundary": FLAMANTS_SQUARE, "name": "Les Flamants-Iris", "approximate": False}
    alone = svg.layout([district], [])
    assert alone is not None
    (shape,) = alone["districts"]
    middle = shape["label"]
    near = {"theme": "housing", "title": "x"}
    (lon0, lat0), (lon1, lat1) = (
        FLAMANTS_SQUARE["coordinates"][0][0],
        FLAMANTS_SQUARE["coordinates"][0][2],
    )
    centre = {**near, "longitude": (lon0 + lon1) / 2, "latitude": (lat0 + lat1) / 2}
    points = [{**centre, "id": 1}, {**centre, "id": 2, "longitude": centre["longitude"] + 0.0004}]
    for drawn in (svg.layout([district], points), brief_map([district], points)):
        assert drawn is not None
        (shape,) = drawn["districts"]
        x, y = shape["label"]
        assert (x, y) != middle
        half = svg.LABEL_GLYPH * svg.LABEL_SIZE * len(district["name"]) / 2
        top, bottom = y - 0.75 * svg.LABEL_SIZE, y + 0.25 * svg.LABEL_SIZE
        for dot in drawn["points"]:
            closest = (min(max(dot["x"], x - half), x + half), min(max(dot["y"], top), bottom))
            assert math.dist((dot["x"], dot["y"]), closest) >= drawn["dot"], dot
        assert 0 < x < drawn["width"]
        assert 0 < y < drawn["height"]


async def test_the_interactive_map_lets_people_zoom_the_page(client: AsyncClient) -> None:
    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    await add_proposal(world.table_a, "Un abri à l'arrêt de bus", latitude=43.329, longitude=5.41)
    for path in ("/tables/flamants-iris/map", "/map"):
        html = (await client.get(path)).text
        viewports = [
            e.attrs.get("content", "")
            for e in Document(html).root.all(lambda e: e.attrs.get("name") == "viewport")
        ]
        assert viewports == ["width=device-width, initial-scale=1"], (path, viewports)
