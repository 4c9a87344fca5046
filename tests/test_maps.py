"""The interactive maps: a static page (folium's shell, built once and cached) with a strict
policy, and its points as cached JSON with an ETag, escaped nowhere because never HTML."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import brotli
import pytest

from maps import controllers as map_pages
from maps import points as map_points
from proposals.models import MERGED, Proposal
from tables.models import Table

from .factories import FLAMANTS_SQUARE, add_proposal, build_world, draw_district

HOSTILE = "<script>alert('x')</script>`${alert(2)}`"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    """Each test starts with nothing cached in this process."""
    map_pages.forget()


async def placed_world():
    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE, name="Flamants `${x}`")
    ids = {}
    for title, theme in (
        (HOSTILE, "housing"),
        ("Un bus le soir", "transport"),
        ("Caché", "youth"),
        ("Fusionnée", "housing"),
    ):
        ids[title] = await add_proposal(
            world.table_a, title, theme=theme, latitude=43.329, longitude=5.41
        )
    await Proposal.update({Proposal.hidden_at: Proposal.created_at}).where(
        Proposal.id == ids["Caché"]
    )
    await Proposal.update({Proposal.status: MERGED, Proposal.merged_into: ids[HOSTILE]}).where(
        Proposal.id == ids["Fusionnée"]
    )
    return world, ids


def inline_hashes(html: str, kind: str) -> set[str]:
    bodies = re.findall(rf"<{kind}(?![^>]*\bsrc=)[^>]*>(.*?)</{kind}>", html, re.DOTALL)
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    }


def listed(policy: str, directive: str) -> set[str]:
    (sources,) = [d.strip() for d in policy.split(";") if d.strip().startswith(directive + " ")]
    return {s for s in sources.split()[1:] if s.startswith("'sha256-")}


def titles(body: bytes) -> dict[str, str]:
    document = json.loads(body)
    assert {len(document[c]) for c in ("id", "lat", "lon", "theme", "title")} == {
        len(document["id"])
    }
    return {
        title: document["themes"][theme]
        for title, theme in zip(document["title"], document["theme"], strict=True)
    }


async def test_the_table_map_is_a_shell_with_local_assets_and_a_strict_policy(client) -> None:
    await placed_world()
    response = await client.get("/tables/flamants-iris/map")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="fr" dir="ltr">' in html
    assert 'src="/static/leaflet-1.9.4/leaflet.js"' in html
    assert 'src="/static/leaflet.markercluster-1.5.3/leaflet.markercluster.js"' in html
    assert '<script src="/static/map-points.js" defer></script>' in html
    # The points are fetched (asked for at once), not in the page.
    assert 'data-points="/tables/flamants-iris/map/points"' in html
    assert '<link rel="preload" href="/tables/flamants-iris/map/points" as="fetch"' in html
    assert "Un bus le soir" not in html
    assert "alert" not in html
    # Without JavaScript: the table's page, with its list and its static map.
    assert '<noscript><p class="map-fallback"><a href="/tables/flamants-iris">' in html
    # Nothing from elsewhere but the tiles.
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []
    assert "tile.openstreetmap.org" in html
    assert "${x}" not in html  # the district name, in folium's template literal, as entities
    # A policy of its own: exactly these inline scripts and styles, no 'unsafe-inline'.
    policy = response.headers["content-security-policy"]
    assert response.headers.get_list("content-security-policy") == [policy]
    assert "unsafe-inline" not in policy
    assert listed(policy, "script-src") == inline_hashes(html, "script") != set()
    assert listed(policy, "style-src") == inline_hashes(html, "style") != set()
    assert "img-src 'self' data: https://tile.openstreetmap.org" in policy
    assert "connect-src 'self'" in policy
    for asset in ("/static/map-points.js", "/static/map.css", "/static/leaflet-1.9.4/leaflet.js"):
        assert (await client.get(asset)).status_code == 200, asset


async def test_the_points_are_json_text_without_hidden_or_merged_proposals(client) -> None:
    world, ids = await placed_world()
    await add_proposal(world.table_b, "Aux Aygalades", latitude=43.36, longitude=5.36)
    await add_proposal(world.table_a, "Sans lieu")  # not placed: not on the map
    response = await client.get("/tables/flamants-iris/map/points")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    # Titles as written, as JSON strings: the page's script sets them as textContent.
    assert titles(response.content) == {HOSTILE: "housing", "Un bus le soir": "transport"}
    document = json.loads(response.content)
    assert document["id"] == sorted([ids[HOSTILE], ids["Un bus le soir"]])
    assert document["lat"] == [43.329, 43.329]
    assert document["lon"] == [5.41, 5.41]
    themed = await client.get("/tables/flamants-iris/map/points?theme=transport")
    assert titles(themed.content) == {"Un bus le soir": "transport"}
    nothing = await client.get("/tables/flamants-iris/map/points?status=adopted")
    assert titles(nothing.content) == {}
    everything = await client.get("/map/points")
    assert set(titles(everything.content)) == {HOSTILE, "Un bus le soir", "Aux Aygalades"}
    assert (await client.get("/tables/nowhere/map/points")).status_code == 404


async def test_the_points_revalidate_with_their_etag_and_come_compressed(client) -> None:
    world, ids = await placed_world()
    first = await client.get("/tables/flamants-iris/map/points", headers={"accept-encoding": ""})
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["cache-control"] == "no-cache"
    assert "accept-encoding" in first.headers["vary"].lower()
    again = await client.get("/tables/flamants-iris/map/points", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # The same bytes, compressed ahead of time (and their own ETag, the same as far as 304 goes).
    for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        async with client.stream(
            "GET", "/tables/flamants-iris/map/points", headers={"accept-encoding": encoding}
        ) as packed:
            assert packed.headers["content-encoding"] == encoding
            wire = b"".join([chunk async for chunk in packed.aiter_raw()])
        assert decode(wire) == first.content
        assert len(wire) < len(first.content)
        assert packed.headers["etag"] != etag
        revalidated = await client.get(
            "/tables/flamants-iris/map/points",
            headers={"if-none-match": packed.headers["etag"], "accept-encoding": encoding},
        )
        assert revalidated.status_code == 304
    # A new proposal, one hidden: another ETag each time, and the points follow.
    await add_proposal(world.table_a, "Un nouveau banc", latitude=43.33, longitude=5.41)
    changed = await client.get("/tables/flamants-iris/map/points", headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert "Un nouveau banc" in titles(changed.content)
    await Proposal.update({Proposal.hidden_at: Proposal.created_at}).where(
        Proposal.id == ids["Un bus le soir"]
    )
    hidden = await client.get(
        "/tables/flamants-iris/map/points", headers={"if-none-match": changed.headers["etag"]}
    )
    assert hidden.status_code == 200
    assert "Un bus le soir" not in titles(hidden.content)
    assert len({etag, changed.headers["etag"], hidden.headers["etag"]}) == 3


async def test_unchanged_points_are_served_from_the_cache(client) -> None:
    world, _ = await placed_world()
    before = map_points.builds
    for _ in range(3):
        response = await client.get("/tables/flamants-iris/map/points")
        assert "Un bus le soir" in titles(response.content)
    assert map_points.builds == before + 1
    await client.get("/tables/flamants-iris/map/points?theme=transport")
    assert map_points.builds == before + 2
    await add_proposal(world.table_b, "Ailleurs", latitude=43.36, longitude=5.36)
    await client.get("/tables/flamants-iris/map/points")  # another table's: nothing changed here
    assert map_points.builds == before + 2
    # A change the map does not show (a support counted) moves the table's revision, not the
    # points: the same document, the same ETag.
    etag = (await client.get("/tables/flamants-iris/map/points")).headers["etag"]
    revision = await table_revision()
    await Proposal.update({Proposal.supports: 3}).where(Proposal.title == "Un bus le soir")
    assert await table_revision() != revision
    supported = await client.get("/tables/flamants-iris/map/points")
    assert supported.headers["etag"] == etag
    assert map_points.builds == before + 2
    await add_proposal(world.table_a, "Ici", latitude=43.33, longitude=5.41)
    assert "Ici" in titles((await client.get("/tables/flamants-iris/map/points")).content)
    assert map_points.builds == before + 3


async def table_revision() -> int:
    row = await Table.select(Table.revision).where(Table.slug == "flamants-iris").first()
    return int(row["revision"])


async def test_the_page_is_built_once_per_table_language_and_filter(client) -> None:
    world, _ = await placed_world()
    before = map_pages.builds
    first = await client.get("/tables/flamants-iris/map")
    for _ in range(2):
        again = await client.get("/tables/flamants-iris/map")
        assert again.text == first.text
        assert (
            again.headers["content-security-policy"] == (first.headers["content-security-policy"])
        )
    assert map_pages.builds == before + 1
    # New points do not change the page.
    await add_proposal(world.table_a, "Un nouveau banc", latitude=43.33, longitude=5.41)
    await client.get("/tables/flamants-iris/map")
    assert map_pages.builds == before + 1
    # A filter is passed on to the points (and to the page without JavaScript).
    themed = await client.get("/tables/flamants-iris/map?theme=transport&q=ignored")
    assert 'data-points="/tables/flamants-iris/map/points?theme=transport"' in themed.text
    assert 'href="/tables/flamants-iris?theme=transport"' in themed.text
    assert map_pages.builds == before + 2
    arabic = await client.get("/tables/flamants-iris/map?lang=ar")
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert map_pages.builds == before + 3
    # The districts drawn change: the page follows.
    await draw_district(world.table_a, FLAMANTS_SQUARE, name="Les Flamants")
    redrawn = await client.get("/tables/flamants-iris/map?lang=fr")
    assert "Les Flamants" in redrawn.text
    assert map_pages.builds == before + 4


async def test_the_map_of_every_table_names_its_points(client) -> None:
    world, _ = await placed_world()
    await add_proposal(world.table_b, "Aux Aygalades", latitude=43.36, longitude=5.36)
    page = await client.get("/map?theme=housing")
    assert 'data-points="/map/points?theme=housing"' in page.text
    assert titles((await client.get("/map/points?theme=housing")).content) == {
        HOSTILE: "housing",
        "Aux Aygalades": "housing",
    }


async def test_the_tile_url_is_a_setting(client, monkeypatch) -> None:
    from voix.settings import get_settings

    await placed_world()
    monkeypatch.setenv("VOIX_TILE_URL", "https://tiles.example.org/{z}/{x}/{y}.png")
    get_settings.cache_clear()
    try:
        response = await client.get("/tables/flamants-iris/map")
    finally:
        monkeypatch.delenv("VOIX_TILE_URL")
        get_settings.cache_clear()
    assert "tiles.example.org" in response.text
    assert "https://tiles.example.org" in response.headers["content-security-policy"]


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="NOTICE: Chromium is not installed")
async def test_the_browser_shows_every_point_and_a_title_as_text(tmp_path) -> None:
    from playwright.async_api import async_playwright

    from tests.servers import replica

    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    # One statement both databases run: 2,000 points spread over the district.
    await Proposal.raw(
        "INSERT INTO proposal"
        ' ("table", title, body, theme, language, status, created_at, latitude, longitude)'
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999)"
        " SELECT {}, 'Point ' || i, 'Texte.', 'housing', 'fr', 'submitted', CURRENT_TIMESTAMP,"
        " 43.325 + (i % 40) * 0.0002, 5.405 + (i / 40) * 0.0002 FROM n",
        world.table_a["id"],
    )
    await add_proposal(world.table_a, HOSTILE, theme="transport", latitude=43.33, longitude=5.41)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            context = await browser.new_context()
            await context.route(
                re.compile(r"^(?!" + re.escape(base) + ")"), lambda route: route.abort()
            )
            page = await context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            await page.goto(f"{base}/tables/flamants-iris/map")
            drawn = page.locator("html[data-points-drawn]")
            await drawn.wait_for(state="attached", timeout=60_000)
            assert await page.get_attribute("html", "data-points-drawn") == "2001"
            assert await page.locator(".marker-cluster").count() >= 1
            # Filtered: the one transport proposal, its marker, its popup with the title as text.
            await page.goto(f"{base}/tables/flamants-iris/map?theme=transport")
            await drawn.wait_for(state="attached", timeout=60_000)
            assert await page.get_attribute("html", "data-points-drawn") == "1"
            marker = page.locator(".map-marker-icon")
            await marker.first.wait_for()
            assert await marker.count() == 1
            assert await marker.first.get_attribute("title") == HOSTILE
            await marker.first.click()
            link = page.locator(".leaflet-popup-content a")
            await link.wait_for()
            assert await link.inner_text() == HOSTILE
            assert await page.locator(".leaflet-popup-content script").count() == 0
            assert dialogs == []
            await browser.close()
