"""Proposals: submitting them, directly or on a resident's behalf, and reading them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar.exceptions import NotFoundException

from audit import services as audit
from maps.services import district_at, places_for_table, table_districts
from maps.svg import MAX_POINTS
from notifications import services as notify
from notifications.models import PROPOSAL as FOLLOWS_PROPOSAL
from proposals import search
from proposals.media import Source, clean_uploads, store
from proposals.models import (
    ADOPTED,
    ANSWERED,
    DISCUSSION,
    DONE,
    REFUSED,
    REJECTED,
    SUBMITTED,
    TRANSMITTED,
    VOTING,
    Proposal,
)
from proposals.themes import THEMES
from tables.services import NOT_A_MEMBER, is_member, scope_of
from tables.services import districts as table_districts_of
from voix import db
from voix.forms import Form, clean_text, parse_coordinate, parse_int, raw_limit
from voix.i18n import LANGUAGES, N_, current_language
from voix.permissions import Principal, can, require

UNKNOWN_PLACE = N_("Choose one of the places of this table's districts.")
OUTSIDE_DISTRICTS = N_("This point is outside the table's districts. Choose a place inside them.")
CONSENT_NEEDED = N_("Confirm that the resident agrees to this proposal being recorded for them.")
TITLE_MAX = 140
BODY_MAX = 4000
PAGE_SIZE = 20

_COLUMNS = (
    Proposal.id,
    Proposal.table,
    Proposal.title,
    Proposal.body,
    Proposal.theme,
    Proposal.language,
    Proposal.status,
    Proposal.created_at,
    Proposal.hidden_at,
    Proposal.hidden_reason,
    Proposal.merged_into,
    Proposal.supports,
    Proposal.transcription,
    Proposal.consent_recorded_at,
    Proposal.latitude,
    Proposal.longitude,
    Proposal.district.name.as_alias("district_name"),
    Proposal.author.display_name.as_alias("author_name"),
    Proposal.recorded_by.display_name.as_alias("recorded_by_name"),
)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    number: int
    total: int
    size: int
    # The search found more than `total`, which is as far as it counted (proposals/search.py).
    capped: bool = False

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.count else None


def page_number(raw: str | None) -> int:
    """A page number from a query string; anything odd is the first page."""
    return parse_int(raw, min=1, max=99_999) or 1


SORTS = ("recent", "supports")
LISTED_STATUSES = (
    SUBMITTED, DISCUSSION, VOTING, ADOPTED, REJECTED, TRANSMITTED, ANSWERED, DONE, REFUSED,
)  # fmt: skip
SEARCH_MAX = 100


@dataclass(frozen=True)
class Filters:
    """What a reader asked the list for; anything unknown falls back to the default."""

    q: str = ""
    theme: str = ""
    status: str = ""
    district: str = ""  # a district's slug; checked against the table's when listing
    sort: str = "recent"
    page: int = 1

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        q = clean_text((params.get("q") or "")[: raw_limit(SEARCH_MAX)])[:SEARCH_MAX]
        theme = params.get("theme") or ""
        status = params.get("status") or ""
        sort = params.get("sort") or ""
        district = params.get("district") or ""
        return cls(
            q=q,
            district=district if re.fullmatch(r"[a-z0-9-]{1,64}", district) else "",
            theme=theme if theme in THEMES else "",
            status=status if status in LISTED_STATUSES else "",
            sort=sort if sort in SORTS else "recent",
            page=page_number(params.get("page")),
        )

    def query(self, **changes: Any) -> str:
        """The query string of these filters (defaults left out), with some changed."""
        values = {**{name: getattr(self, name) for name in _FILTER_DEFAULTS}, **changes}
        return urlencode({k: v for k, v in values.items() if v != _FILTER_DEFAULTS[k]})


# Each filter's default, for query(): read once (dataclasses.asdict deep-copies every value,
# twice a call, several calls a page).
_FILTER_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Filters)}


async def list_for_table(
    table_id: int, theme: str | None = None, page: int | None = None, size: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """Newest first; all of them, or one page."""
    query = Proposal.select(*_COLUMNS).where(_filter(table_id, theme))
    query = query.order_by(Proposal.created_at, ascending=False).order_by(
        Proposal.id, ascending=False
    )
    if page is not None:
        query = query.limit(size).offset((page - 1) * size)
    return await query


def _listed(table_id: int, filters: Filters) -> Any:
    """The list's condition for these filters: theme, status, district, search."""
    condition = _filter(table_id, filters.theme or None)
    if filters.status:
        condition &= Proposal.status == filters.status
    if filters.district:
        condition &= Proposal.district.slug == filters.district
    if filters.q:
        condition &= _search(filters.q)
    return condition


def _ordered(query: Any, filters: Filters) -> Any:
    if filters.sort == "supports":
        query = query.order_by(Proposal.supports, ascending=False)
    return query.order_by(Proposal.created_at, ascending=False).order_by(
        Proposal.id, ascending=False
    )


@db.planned_for_values
async def page_for_table(table_id: int, filters: Filters, size: int = PAGE_SIZE) -> Page:
    """One page of the table's proposals, filtered, searched and sorted in the database."""
    if search.by_index_order(filters.q, filters.sort):
        return await _searched_page(table_id, filters, size)
    condition = _listed(table_id, filters)
    query = _ordered(Proposal.select(*_COLUMNS).where(condition), filters)
    items = await query.limit(size).offset((filters.page - 1) * size)
    if filters.q:  # a search counts as far as its cap (proposals/search.py)
        cap = search.count_cap(filters.page, size)
        matches = await Proposal.select(Proposal.id).where(condition).limit(cap + 1)
        total = len(matches)
        return Page(items, filters.page, min(total, cap), size, total > cap)
    return Page(items, filters.page, await Proposal.count().where(condition), size)


async def _searched_page(table_id: int, filters: Filters, size: int) -> Page:
    """A search's newest first, read in the order of the search index (proposals/search.py),
    then the page's rows as every list reads them."""
    offset = (filters.page - 1) * size
    ids, total, capped = await search.newest_matching(
        table_id, filters.q, size, offset, theme=filters.theme, status=filters.status,
        district=filters.district,
    )  # fmt: skip
    rows = await Proposal.select(*_COLUMNS).where(Proposal.id.is_in(ids)) if ids else []
    by_id = {row["id"]: row for row in rows}
    return Page([by_id[i] for i in ids if i in by_id], filters.page, total, size, capped)


async def votable(
    table_id: int, filters: Filters, chosen: list[int], limit: int = 200
) -> list[dict[str, Any]]:
    """What a vote may be opened on, as the list filters it, and those already chosen."""
    still_open = Proposal.status.is_in([SUBMITTED, DISCUSSION])
    condition = _listed(table_id, replace(filters, status="")) & still_open
    if chosen:
        condition |= _filter(table_id, None) & still_open & Proposal.id.is_in(chosen)
    return await _ordered(Proposal.select(*_COLUMNS).where(condition), filters).limit(limit)


def _filter(table_id: int, theme: str | None) -> Any:
    """What lists show: neither hidden proposals nor merged duplicates."""
    # Written as the partial indexes' own condition (proposals/search.py), so plans use them.
    condition = (Proposal.table == table_id) & search.listed()
    return condition & (Proposal.theme == theme) if theme else condition


# Words in the title or the text, indexed on both databases (proposals/search.py).
_search = search.condition


async def get(proposal_id: int) -> dict[str, Any]:
    proposal = await Proposal.select(*_COLUMNS).where(Proposal.id == proposal_id).first()
    if proposal is None:
        raise NotFoundException()
    return proposal


# The table of a proposal, read with it (tables.services._TABLE_COLUMNS, as "table_…").
_TABLE_FIELDS = {
    "slug": Proposal.table.slug,
    "name": Proposal.table.name,
    "postcode": Proposal.table.postcode,
    "description": Proposal.table.description,
    "organisation": Proposal.table.organisation,
    "organisation_name": Proposal.table._.organisation._.name,
    "organisation_slug": Proposal.table._.organisation._.slug,
    "revision": Proposal.table.revision,
}


_WITH_TABLE = db.Prepared(  # every proposal's page and action: compiled once
    lambda proposal_id: Proposal.select(
        *_COLUMNS, *(column.as_alias(f"table_{name}") for name, column in _TABLE_FIELDS.items())
    ).where(Proposal.id == proposal_id)
)


async def get_with_table(proposal_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The proposal and the table it belongs to: what every permission check needs. One query
    (the table's districts are kept until its revision changes)."""
    proposal = await _WITH_TABLE.first(proposal_id)
    if proposal is None:
        raise NotFoundException()
    table = {"id": proposal["table"]} | {
        name: proposal.pop(f"table_{name}") for name in _TABLE_FIELDS
    }
    table["districts"] = await table_districts_of(table)
    return proposal, table


async def list_adopted(table_id: int) -> list[dict[str, Any]]:
    """What a brief sends to an institution: never a proposal the facilitators hid."""
    return await (
        Proposal.select(*_COLUMNS)
        .where(
            (Proposal.table == table_id)
            & (Proposal.status == ADOPTED)
            & Proposal.hidden_at.is_null()
        )
        .order_by(Proposal.created_at)
    )


async def create(
    who: Principal,
    table: dict[str, Any],
    data: Mapping[str, Any],
    photo: Source | None = None,
    voice: Source | None = None,
) -> int:
    """A resident proposes; a facilitator may record it for someone (author field), with the
    resident's consent. A photo and a voice note are checked before anything is stored."""
    scope = scope_of(table)
    on_behalf = can(who, "proposals.create_on_behalf", scope)
    if not on_behalf:
        require(who, "proposals.create", scope)
    form = Form(data)
    title = form.text("title", max_length=TITLE_MAX, min_length=5)
    body = form.text("body", max_length=BODY_MAX, min_length=10, multiline=True)
    theme = form.choice("theme", THEMES)
    language = form.choice("language", LANGUAGES, required=False) or current_language.get()
    author: int | None = who.user_id
    recorded_by: int | None = None
    consent_at: datetime | None = None
    if on_behalf and "author" in data:
        # Blank: a resident with no account; otherwise a member of this very table.
        author = form.integer("author", required=False)
        recorded_by = who.user_id
        if author is not None and not await is_member(author, table["id"]):
            form.error("author", NOT_A_MEMBER)
        if data.get("consent") != "yes":
            form.error("consent", CONSENT_NEEDED)
        consent_at = datetime.now(UTC)
    location = await _location(form, table)
    form.validate()
    uploads = await clean_uploads(photo, voice)
    async with db.write_transaction():
        inserted = await Proposal.insert(
            Proposal(
                table=table["id"],
                title=title,
                body=body,
                theme=theme,
                language=language,
                status=SUBMITTED,
                author=author,
                recorded_by=recorded_by,
                consent_recorded_at=consent_at,
                **location,
            )
        ).returning(Proposal.id)
        proposal_id = int(inserted[0]["id"])
        for upload in uploads:
            await store(proposal_id, upload)
        if author is not None:  # its author hears of it (not the facilitator who wrote it)
            await notify.follow(author, FOLLOWS_PROPOSAL, proposal_id)
        if recorded_by is not None:  # as supports and comments recorded for someone are
            await audit.record(
                who,
                "proposal.recorded_on_behalf",
                scope,
                subject=f"proposal:{proposal_id}",
                resident=author,
            )
    return proposal_id


async def _location(form: Form, table: dict[str, Any]) -> dict[str, Any]:
    """Where the proposal is: a named place of the table's districts, or a point (from the map)
    that must lie inside one of them. Nothing is fine too."""
    place_id = form.integer("place", required=False)
    raw_lat, raw_lon = form.data.get("latitude"), form.data.get("longitude")
    if place_id is not None:
        place = next((p for p in await places_for_table(table["id"]) if p["id"] == place_id), None)
        if place is None:
            form.error("place", UNKNOWN_PLACE)
            return {}
        return {
            "latitude": place["latitude"],
            "longitude": place["longitude"],
            "district": place["district"],
        }
    if not raw_lat and not raw_lon:
        return {}
    latitude, longitude = parse_coordinate(raw_lat), parse_coordinate(raw_lon)
    if latitude is None or longitude is None:
        form.error("place", OUTSIDE_DISTRICTS)
        return {}
    district = (
        district_at(await table_districts(table["id"]), latitude, longitude)
        if -90 <= latitude <= 90 and -180 <= longitude <= 180
        else None
    )
    if district is None:
        form.error("place", OUTSIDE_DISTRICTS)
        return {}
    return {"latitude": latitude, "longitude": longitude, "district": district}


async def merge_candidates(proposal: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a duplicate may be merged: the table's other proposals still listed, newest first."""
    return await (
        Proposal.select(Proposal.id, Proposal.title)
        .where(_filter(proposal["table"], None) & (Proposal.id != proposal["id"]))
        .order_by(Proposal.created_at, ascending=False)
        .limit(200)
    )


@db.planned_for_values
async def placed(table_id: int, limit: int = MAX_POINTS) -> list[dict[str, Any]]:
    """The latest proposals of the table that have a place, for the static map; each with the
    language it is written in, that of its title in the list beside the map."""
    return await (
        Proposal.select(
            Proposal.id,
            Proposal.title,
            Proposal.language,
            Proposal.theme,
            Proposal.latitude,
            Proposal.longitude,
        )
        .where(_filter(table_id, None) & Proposal.latitude.is_not_null())
        .order_by(Proposal.created_at, ascending=False)
        .limit(limit)
    )


@db.planned_for_values
async def placed_filtered(table_ids: list[int], filters: Filters) -> list[dict[str, Any]]:
    """Every listed proposal of these tables that has a place, filtered: the interactive map."""
    if not table_ids:
        return []
    condition = Proposal.table.is_in(table_ids) & search.listed() & Proposal.latitude.is_not_null()
    if filters.theme:
        condition &= Proposal.theme == filters.theme
    if filters.status:
        condition &= Proposal.status == filters.status
    return await Proposal.select(
        Proposal.id, Proposal.title, Proposal.theme, Proposal.latitude, Proposal.longitude
    ).where(condition)
