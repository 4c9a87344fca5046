"""The interactive maps' points: one compact JSON document per (tables, filters), cached.

The map page itself is static (see maps/controllers.py); its script fetches the points from
`…/map/points`. A request first reads the revision of the tables concerned (tables/revision.py:
the database moves it with any change to their proposals); the same as when the cached document
was made, the cached bytes and their ETag are served at once. When it moved (a support, a
comment move it too), one aggregate query reads the fingerprint of the points it would send
(how many, the largest id, two sums of ids, the latest creation): the same, the cache stays,
and the ETag with it, so browsers keep getting 304; different, the document is made again.

A point is never edited in place: its title, theme and place are set when it is created. What
changes a map is which proposals are on it (a new one, one hidden or shown again, merged, or
moving in or out of a status filter), and that changes the fingerprint. The creation time
tells apart two databases whose ids happen to coincide (a restored backup, the test suite).

The document is columns, far smaller than GeoJSON once compressed (10,000 points with varied
titles: GeoJSON 281 KB gzip, 215 KB brotli, past the 250 KB budget; rows of arrays 249 and 225;
columns 204 and 193 — numbers beside numbers, text beside text):

    {"themes": ["housing", …], "id": [12, …], "lat": [43.32912, …], "lon": [5.41003, …],
     "theme": [0, …], "title": ["Un abri à l'arrêt de bus", …]}

the i-th point being the i-th of each list; `theme` indexes `themes`; coordinates rounded to
five decimals (about a metre). The database writes the lists itself (titles escaped as JSON
strings by it), so no row goes through Python. Titles are the proposals' own, as written: the
page's script puts them in the page with `textContent`, never as HTML. The same bytes serve
every language.
"""

# ruff: noqa: S608 — the SQL is this module's constants and clauses; every value is bound

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import brotli

from proposals.models import MERGED, Proposal
from proposals.themes import THEMES
from tables.models import Table
from voix.db import SQLite, engine, planned_for_values

FORMAT = "3"  # changes the ETags when the document's shape changes
MEDIA_TYPE = "application/json"
CACHED = 64  # documents kept per process (a table × a theme × a status each)
# Compressed once per change of the data, off the event loop: brotli's quality 9 gives within
# 10 % of its best for a tenth of the time (about 0.2 s for 10,000 points).
BROTLI_QUALITY = 9
GZIP_LEVEL = 6


@dataclass(frozen=True)
class Scope:
    """Which points: those of these tables (None: every table), of a theme, of a status."""

    tables: tuple[int, ...] | None
    theme: str = ""
    status: str = ""


@dataclass(frozen=True)
class Document:
    revision: str  # of the tables (tables/revision.py) when last checked
    fingerprint: str
    etag: str  # the identity's; the encodings add "-br" and "-gz" inside the quotes
    raw: bytes
    br: bytes
    gz: bytes


_cache: OrderedDict[Scope, Document] = OrderedDict()
builds = 0  # documents encoded by this process (the tests count them)


_PRINT = (
    "COUNT(*) AS n, MAX(id) AS top, SUM(id) AS ids,"
    " SUM(CAST(id AS BIGINT) * id) AS squares, MAX(created_at) AS latest"
)


def _where(scope: Scope) -> tuple[str, list[Any]]:
    clauses = ["hidden_at IS NULL", "status <> {}", "latitude IS NOT NULL"]
    args: list[Any] = [MERGED]
    if scope.tables is not None:
        if not scope.tables:
            clauses.append("1 = 0")
        else:
            clauses.append(f'"table" IN ({", ".join("{}" for _ in scope.tables)})')
            args += list(scope.tables)
    if scope.theme:
        clauses.append("theme = {}")
        args.append(scope.theme)
    if scope.status:
        clauses.append("status = {}")
        args.append(scope.status)
    return " AND ".join(clauses), args


async def fingerprint(scope: Scope) -> str:
    """What the points of this scope are, in one aggregate query (no row leaves the database)."""
    where, args = _where(scope)
    sql = f"SELECT {_PRINT} FROM proposal WHERE {where}"
    rows = await Proposal.raw(sql, *args)
    row = rows[0]
    return "|".join(str(row[key]) for key in ("n", "top", "ids", "squares", "latest"))


THEME_ORDER = tuple(THEMES)
# A theme's slug as its index in THEME_ORDER (unknown ones as "other"). Slugs: our constants.
_THEME_NUMBER = (
    "CASE theme "
    + " ".join(f"WHEN '{slug}' THEN {n}" for n, slug in enumerate(THEME_ORDER))
    + f" ELSE {THEME_ORDER.index('other')} END"
)
# The document's columns, written by the database as strings: nothing per row on the event
# loop (reading 10,000 rows into Python and encoding them stalled it some 0.4 s). Titles are
# escaped as JSON strings by the database.
_SQLITE_COLUMNS = (
    "SELECT group_concat(id, ',') AS id, group_concat(round(latitude, 5), ',') AS lat,"
    " group_concat(round(longitude, 5), ',') AS lon, group_concat(theme_number, ',') AS theme,"
    " json_group_array(title) AS title FROM ("
    f"SELECT id, latitude, longitude, {_THEME_NUMBER} AS theme_number, title"
    " FROM proposal WHERE {where} ORDER BY id)"
)
_POSTGRES_COLUMNS = (
    "SELECT string_agg(id::text, ',' ORDER BY id) AS id,"
    " string_agg(round(latitude::numeric, 5)::float8::text, ',' ORDER BY id) AS lat,"
    " string_agg(round(longitude::numeric, 5)::float8::text, ',' ORDER BY id) AS lon,"
    f" string_agg(({_THEME_NUMBER})::text, ',' ORDER BY id) AS theme,"
    " '[' || COALESCE(string_agg(to_json(title)::text, ',' ORDER BY id), '') || ']' AS title"
    " FROM proposal WHERE {where}"
)
COLUMNS = ("id", "lat", "lon", "theme", "title")


async def _columns(scope: Scope) -> dict[str, str]:
    where, args = _where(scope)
    template = _SQLITE_COLUMNS if isinstance(engine(), SQLite) else _POSTGRES_COLUMNS
    (row,) = await Proposal.raw(template.replace("{where}", where), *args)
    return row


def encode(columns: dict[str, Any]) -> bytes:
    """The document's bytes (UTF-8 JSON) around the columns as the database wrote them."""
    parts = [b'{"themes":' + json.dumps(THEME_ORDER).encode()]
    for name in COLUMNS:
        value = columns[name] or ""
        # The titles come as a JSON array already; the others as comma-separated numbers.
        parts.append(f'"{name}":{value if name == "title" else f"[{value}]"}'.encode())
    return b",".join(parts) + b"}"


def _compress(raw: bytes) -> tuple[bytes, bytes]:
    return (
        brotli.compress(raw, quality=BROTLI_QUALITY),
        gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0),
    )


def _etag(scope: Scope, print_: str) -> str:
    digest = hashlib.sha256(f"{FORMAT}|{scope!r}|{print_}".encode()).hexdigest()[:32]
    return f'"{digest}"'


async def revision(scope: Scope) -> str:
    """The revisions of the scope's tables (tables/revision.py), in one query: unchanged, nothing
    on their maps changed. (Other changes move them too: then the fingerprint decides.)"""
    if scope.tables is None:
        rows = await Table.raw(
            "SELECT COUNT(*) AS n, SUM(revision) AS total, MAX(id) AS top FROM neighbourhood_table"
        )
        return "all|{n}|{total}|{top}".format(**rows[0])
    rows = await Table.select(Table.id, Table.revision).where(Table.id.is_in(list(scope.tables)))
    return "|".join(f"{row['id']}:{row['revision']}" for row in sorted(rows, key=_by_id))


def _by_id(row: dict[str, Any]) -> int:
    return int(row["id"])


@planned_for_values
async def document(scope: Scope, known_revision: str | None = None) -> Document:
    """The points of this scope: from the cache while the tables' revision is the same, or,
    when it moved, while the points' fingerprint is."""
    global builds  # noqa: PLW0603 - a per-process counter
    current_revision = known_revision or await revision(scope)
    cached = _cache.get(scope)
    if cached is not None and cached.revision == current_revision:
        _cache.move_to_end(scope)
        return cached
    current = await fingerprint(scope)
    if cached is not None and cached.fingerprint == current:
        made = replace(cached, revision=current_revision)
    else:
        raw = encode(await _columns(scope))
        br, gz = await asyncio.to_thread(_compress, raw)
        builds += 1
        # Keyed on what was read before the data: a change in between is seen next time.
        made = Document(current_revision, current, _etag(scope, current), raw, br, gz)
    _cache[scope] = made
    _cache.move_to_end(scope)
    while len(_cache) > CACHED:
        _cache.popitem(last=False)
    return made


def table_revision(table: dict[str, Any]) -> str:
    """What `revision` says of a table's map, from its row (id and revision)."""
    return f"{table['id']}:{table['revision']}"


def forget() -> None:
    """Empties this process's cache (the tests start from nothing)."""
    _cache.clear()


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether the client's copy (any encoding of it) is this one."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    base = etag.strip('"')
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        if tag in (base, f"{base}-br", f"{base}-gz"):
            return True
    return False


def encoding_for(accept_encoding: str | None) -> str:
    """ "br", "gzip" or "" (identity), from the request's Accept-Encoding."""
    offered: dict[str, float] = {}
    for part in (accept_encoding or "").lower().split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name:
            offered[name.strip()] = quality
    for name in ("br", "gzip"):
        if offered.get(name, offered.get("*", 0.0)) > 0:
            return name
    return ""
