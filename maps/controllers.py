"""The interactive maps: one per table, one for all tables, filtered by theme and status.

A map is two documents. The page (folium's shell: tiles, districts, controls) depends only on
the districts, the title, the language, the tiles and the filters its script passes on; it is
built once in a worker process and kept in this process, keyed on all of that (the districts
by a digest read in one query). The points are JSON at `…/map/points` with the same filters
(maps/points.py): cached while the data is unchanged, with an ETag, compressed once.

Without JavaScript the page shows a link to the table's page (its list and its static map),
filters kept; the filters themselves are query parameters, so a filtered map is a plain link.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException

from maps import interactive
from maps import points as map_points
from maps import services as maps
from proposals import services as proposals
from tables.models import Table
from voix import i18n, workers
from voix.i18n import N_, gettext
from voix.settings import get_settings
from voix.web import Slug

MAP_TITLE = N_("Map of the proposals of %(table)s")
ALL_TITLE = N_("Map of the proposals of every table")
WITHOUT_SCRIPT = N_("The proposals and their map, without JavaScript")
EVERY_TABLE_WITHOUT_SCRIPT = N_("The tables and their proposals, without JavaScript")

PAGES_CACHED = 128  # pages kept per process: a table × a language × a theme × a status each
# Points change often, the page rarely: the browser asks again each time (304 when unchanged).
POINTS_CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class _PageKey:
    table: int | None  # None: the map of every table
    slug: str
    name: str
    language: str
    query: str
    districts: str  # their digest
    tiles_url: str
    attribution: str


_pages: OrderedDict[_PageKey, interactive.MapPage] = OrderedDict()
builds = 0  # pages built by folium for this process (the tests count them)


def forget() -> None:
    """Empties this process's caches of pages and points."""
    _pages.clear()
    map_points.forget()


def _filters_query(request: Request) -> str:
    """The filters a map honours (theme and status), as a query string; others dropped."""
    filters = proposals.Filters.from_query(request.query_params)
    return urlencode(
        {
            key: value
            for key, value in (("theme", filters.theme), ("status", filters.status))
            if value
        }
    )


def _scope(request: Request, tables: tuple[int, ...] | None) -> map_points.Scope:
    filters = proposals.Filters.from_query(request.query_params)
    return map_points.Scope(tables, filters.theme, filters.status)


async def _page(
    table: dict[str, Any] | None,
    query: str,
    title: str,
    points_path: str,
    fallback: tuple[str, str],
) -> Response[str]:
    global builds  # noqa: PLW0603 - a per-process counter
    settings = get_settings()
    lang = i18n.language(i18n.current_language.get())
    districts, digest = await maps.districts_for_map([table["id"]] if table else None)
    key = _PageKey(
        table["id"] if table else None,
        table["slug"] if table else "",
        table["name"] if table else "",
        lang.code,
        query,
        digest,
        settings.tile_url,
        settings.tile_attribution,
    )
    page = _pages.get(key)
    if page is None:
        suffix = f"?{query}" if query else ""
        # folium holds the GIL for the whole build: in a worker process, once per key.
        built = await workers.run(
            interactive.build,  # imports folium there, not here
            maps.parsed(districts),
            title=title,
            tiles_url=settings.tile_url,
            attribution=settings.tile_attribution,
            points_url=points_path + suffix,
            fallback_url=fallback[0] + suffix,
            fallback_text=fallback[1],
        )
        builds += 1
        page = interactive.MapPage(
            built.html.replace("<html>", f'<html lang="{lang.code}" dir="{lang.direction}">', 1),
            built.content_security_policy,
        )
        _pages[key] = page
        while len(_pages) > PAGES_CACHED:
            _pages.popitem(last=False)
    else:
        _pages.move_to_end(key)
    return Response(
        page.html,
        status_code=200,
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": page.content_security_policy},
    )


async def _table(slug: str) -> dict[str, Any]:
    """The table's id, slug, name and revision, or 404, in one query."""
    table = (
        await Table.select(Table.id, Table.slug, Table.name, Table.revision)
        .where(Table.slug == slug)
        .first()
    )
    if table is None:
        raise NotFoundException()
    return table


@get("/tables/{slug:str}/map", name="table_map")
async def table_map(request: Request, slug: Slug) -> Response[str]:
    table = await _table(slug)
    return await _page(
        table,
        _filters_query(request),
        gettext(MAP_TITLE, table=table["name"]),
        f"/tables/{slug}/map/points",
        (f"/tables/{slug}", gettext(WITHOUT_SCRIPT)),
    )


@get("/map", name="map")
async def all_tables_map(request: Request) -> Response[str]:
    return await _page(
        None,
        _filters_query(request),
        gettext(ALL_TITLE),
        "/map/points",
        ("/", gettext(EVERY_TABLE_WITHOUT_SCRIPT)),
    )


def _points_response(request: Request, document: map_points.Document) -> Response[bytes]:
    headers = {"cache-control": POINTS_CACHE_CONTROL, "vary": "accept-encoding"}
    if map_points.matches(request.headers.get("if-none-match"), document.etag):
        return Response(b"", status_code=304, headers={**headers, "etag": document.etag})
    encoding = map_points.encoding_for(request.headers.get("accept-encoding"))
    if encoding == "br":
        body, headers["content-encoding"], tag = document.br, "br", "-br"
    elif encoding == "gzip":
        body, headers["content-encoding"], tag = document.gz, "gzip", "-gz"
    else:
        body, tag = document.raw, ""
    headers["etag"] = document.etag[:-1] + tag + '"'
    return Response(body, status_code=200, media_type=map_points.MEDIA_TYPE, headers=headers)


@get("/tables/{slug:str}/map/points", name="table_map_points")
async def table_map_points(request: Request, slug: Slug) -> Response[bytes]:
    """The points of the table's map, as the page's script reads them."""
    table = await _table(slug)
    scope = _scope(request, (int(table["id"]),))
    return _points_response(
        request, await map_points.document(scope, map_points.table_revision(table))
    )


@get("/map/points", name="map_points")
async def all_tables_map_points(request: Request) -> Response[bytes]:
    """The points of every table's map."""
    return _points_response(request, await map_points.document(_scope(request, None)))


@get("/tables/{slug:str}/districts.geojson", name="table_districts")
async def table_districts_geojson(slug: Slug) -> Response[dict[str, Any]]:
    """The table's district boundaries, for the map that places a proposal."""
    table = await _table(slug)
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


ROUTES = [
    table_map,
    all_tables_map,
    table_map_points,
    all_tables_map_points,
    table_districts_geojson,
]
