"""The interactive maps: served whole by the app, with escaped user text and a strict policy."""

from __future__ import annotations

import base64
import hashlib
import re

from proposals.models import Proposal

from .factories import FLAMANTS_SQUARE, add_proposal, build_world, draw_district

HOSTILE = "<script>alert('x')</script>`${alert(2)}`"


async def placed_world():
    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE, name="Flamants `${x}`")
    ids = {}
    for title, theme in ((HOSTILE, "housing"), ("Un bus le soir", "transport"), ("Caché", "youth")):
        ids[title] = await add_proposal(
            world.table_a, title, theme=theme, latitude=43.329, longitude=5.41
        )
    await Proposal.update({Proposal.hidden_at: Proposal.created_at}).where(
        Proposal.id == ids["Caché"]
    )
    return world, ids


def inline_hashes(html: str, kind: str) -> set[str]:
    bodies = re.findall(rf"<{kind}(?![^>]*\bsrc=)[^>]*>(.*?)</{kind}>", html, re.DOTALL)
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    }


async def test_the_table_map_uses_local_assets_and_escapes_every_text(client) -> None:
    await placed_world()
    response = await client.get("/tables/flamants-iris/map")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="fr" dir="ltr">' in html
    assert 'src="/static/leaflet-1.9.4/leaflet.js"' in html
    assert 'src="/static/leaflet.markercluster-1.5.3/leaflet.markercluster.js"' in html
    # Nothing from elsewhere but the tiles.
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []
    assert "tile.openstreetmap.org" in html
    # User text only as inert data.
    assert "<script>alert" not in html
    assert "\\u003cscript\\u003ealert" in html
    # The only "${…}" is inside a double-quoted JSON string of the data, where it is text.
    assert html.count("${alert(2)}") == 1
    assert '\\u003c/script\\u003e`${alert(2)}`"' in html
    assert "${x}" not in html  # the district name, in folium's template literal, as entities
    assert "Un bus le soir" in html
    assert "Caché" not in html  # hidden proposals stay off the map
    # A policy of its own: exactly these inline scripts and styles, no 'unsafe-inline'.
    policy = response.headers["content-security-policy"]
    assert response.headers.get_list("content-security-policy") == [policy]
    assert "unsafe-inline" not in policy
    for digest in inline_hashes(html, "script"):
        assert digest in policy.split("style-src")[0]
    for digest in inline_hashes(html, "style"):
        assert digest in policy.split("style-src")[1]
    assert "img-src 'self' data: https://tile.openstreetmap.org" in policy


async def test_maps_filter_by_theme_and_cover_every_table(client) -> None:
    world, _ = await placed_world()
    await add_proposal(world.table_b, "Aux Aygalades", latitude=43.36, longitude=5.36)
    themed = await client.get("/tables/flamants-iris/map?theme=transport")
    assert "Un bus le soir" in themed.text
    assert "\\u003cscript" not in themed.text
    everything = await client.get("/map")
    assert "Un bus le soir" in everything.text
    assert "Aux Aygalades" in everything.text
    for asset in (
        "/static/leaflet-1.9.4/leaflet.js",
        "/static/leaflet-1.9.4/leaflet.css",
        "/static/map.css",
    ):
        assert (await client.get(asset)).status_code == 200


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
