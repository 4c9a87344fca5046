"""The interactive maps: one per table, one for all tables, filtered by theme and status."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from maps import interactive
from maps import services as maps
from proposals import services as proposals
from tables import services as tables
from voix import i18n, workers
from voix.i18n import N_, gettext
from voix.settings import get_settings
from voix.web import Slug

MAP_TITLE = N_("Map of the proposals of %(table)s")
ALL_TITLE = N_("Map of the proposals of every table")


async def _page(
    districts: list[dict[str, Any]], points: list[dict[str, Any]], title: str
) -> Response[str]:
    settings = get_settings()
    # folium holds the GIL for the whole build (a second or more for 10,000 points).
    page = await workers.run(
        interactive.build,
        districts,
        points,
        title=title,
        tiles_url=settings.tile_url,
        attribution=settings.tile_attribution,
    )
    lang = i18n.language(i18n.current_language.get())
    html = page.html.replace("<html>", f'<html lang="{lang.code}" dir="{lang.direction}">', 1)
    return Response(
        html,
        status_code=200,
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": page.content_security_policy},
    )


@get("/tables/{slug:str}/map", name="table_map")
async def table_map(request: Request, slug: Slug) -> Response[str]:
    table = await tables.get_table(slug)
    filters = proposals.Filters.from_query(request.query_params)
    points = await proposals.placed_filtered([table["id"]], filters)
    return await _page(
        await maps.districts_of([table["id"]]), points, gettext(MAP_TITLE, table=table["name"])
    )


@get("/map", name="map")
async def all_tables_map(request: Request) -> Response[str]:
    filters = proposals.Filters.from_query(request.query_params)
    every = await tables.list_tables()
    ids = [t["id"] for t in every]
    return await _page(
        await maps.districts_of(ids),
        await proposals.placed_filtered(ids, filters),
        gettext(ALL_TITLE),
    )


@get("/tables/{slug:str}/districts.geojson", name="table_districts")
async def table_districts_geojson(slug: Slug) -> Response[dict[str, Any]]:
    """The table's district boundaries, for the map that places a proposal."""
    table = await tables.get_table(slug)
    return Response(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": d["name"], "approximate": d["approximate"]},
                    "geometry": d["boundary"],
                }
                for d in await maps.districts_of([table["id"]])
            ],
        },
        status_code=200,
        media_type="application/geo+json",
    )


ROUTES = [table_map, all_tables_map, table_districts_geojson]
