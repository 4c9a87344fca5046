"""Pages of the tables: the list, and each table with its proposals, votes and briefs."""

from __future__ import annotations

import functools
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from itertools import count, groupby
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from markupsafe import Markup

from accounts import cards
from exports import drafts as brief_drafts
from exports import services as briefs
from exports.pdf import render_login_card
from followup import services as followup
from maps import services as maps
from maps import static as maps_static
from meetings import services as meetings
from notifications import services as notifications
from proposals import discussion
from proposals import services as proposals
from proposals.themes import THEMES
from tables import services
from tables.services import organisation_scope
from translations import services as content
from voix import cache, db, workers
from voix.forms import FormErrors, UserError
from voix.i18n import N_, current_language, gettext, language
from voix.permissions import Principal, can, require
from voix.web import ObjectId, Slug, absolute_url, environment, form_data, page, redirect
from votes import services as votes


@get("/", name="home")
async def home(request: Request, principal: NamedDependency[Principal]) -> Template:
    tables = await services.list_tables(principal.revisions)
    managed = [t["id"] for t in tables if can(principal, "briefs.manage", services.scope_of(t))]
    organisations = [
        (name, list(group)) for name, group in groupby(tables, key=lambda t: t["organisation_name"])
    ]
    my_meetings = await _my_meetings(principal, {t["id"]: t["revision"] for t in tables})
    return page(
        request,
        "tables/home.html",
        organisations=organisations,
        # The list of tables is rendered once for what it shows (voix.fragments): the tables,
        # their revisions and organisations, and whose journals the reader may open.
        tables_key=tuple((t["id"], t["revision"], t["organisation_name"]) for t in tables),
        audited=tuple(
            group[0]["organisation"]
            for _, group in organisations
            if can(principal, "audit.read", organisation_scope(group[0]["organisation"]))
        ),
        my_meetings=my_meetings,
        # The meetings shown and their tables' revisions: what the rendered list depends on.
        meetings_key=(
            tuple((t["id"], t["revision"]) for t in tables if t["id"] in principal.table_roles),
            tuple(m["id"] for m in my_meetings),
        ),
        # For those who manage tables: the institutions late with an answer to their briefs.
        overdue=await followup.overdue(managed),
    )


async def _my_meetings(principal: Principal, revisions: dict[int, int]) -> list[dict[str, Any]]:
    """The next meetings of the reader's tables, in their language: kept (voix.cache) under
    those tables' revisions (home has just read them) until one of the meetings starts or ends,
    or SIDE_SECONDS pass."""
    if not principal.table_roles:
        return []
    reader = current_language.get()
    mine = sorted(principal.table_roles)
    key = ("my-meetings", tuple((i, revisions.get(i)) for i in mine), reader)

    async def read() -> list[dict[str, Any]]:
        return await content.apply_all("meeting", await meetings.upcoming_for_user(mine), reader)

    def seconds(found: list[dict[str, Any]]) -> float:
        now = datetime.now(UTC)
        moments = [m[k] for m in found for k in ("starts_at", "ends_at") if m[k] > now]
        return max(
            0.0, min([SIDE_SECONDS, *((moment - now).total_seconds() for moment in moments)])
        )

    kept = await cache.pages.get_or_build(key, read, seconds=seconds)
    return [dict(meeting) for meeting in kept]


# What a table's page shows to everyone is kept (voix.cache) until the table's revision changes
# (tables/revision.py), or SIDE_SECONDS pass: time alone moves meetings and overdue answers on.
SIDE_SECONDS = 60.0
# Each build of a table's side gets its own number: the parts of the page rendered from it
# (voix.fragments) are kept under it, so they go when it goes, by revision or by time.
_SIDE_BUILDS = count(1)
MAP_OF_DISTRICTS = N_("Map of the districts of %(table)s")


@get("/tables/{slug:str}", name="table")
async def table_page(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Response[str]:
    table = await services.get_table(slug, principal.revisions)
    filters = proposals.Filters.from_query(request.query_params)
    reader = current_language.get()
    listing = await _listing(table, filters, reader)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "proposals":
        return Response(listing, media_type="text/html; charset=utf-8")
    scope = services.scope_of(table)
    key = ("table-side", table["id"], table["revision"], table["name"], reader)
    side = await cache.pages.get_or_build(key, lambda: _side(table, reader), seconds=_side_seconds)
    table_votes, voted = await votes.with_live_turnout(side["votes"], principal.user_id)
    return page(
        request,
        "tables/table.html",
        table=table,
        scope=scope,
        filters=filters,
        themes=THEMES,
        statuses=proposals.LISTED_STATUSES,
        listing=listing,
        votes=table_votes,
        voted=voted,
        briefs=side["briefs"],
        # Drafts never published: for those who compose them only.
        drafts=side["drafts"] if can(principal, "briefs.manage", scope) else [],
        meetings=side["meetings"],
        # Only for a side that is kept: the parts rendered from one that is not (too big, or
        # at its time limit) could never be found again.
        **({"side_build": side["build"]} if cache.pages.holds(key, side) else {}),
        map=side["map"],
        overdue=side["overdue"],
        following=await notifications.follows(principal.user_id, notifications.TABLE, table["id"]),
    )


def _side_seconds(side: dict[str, Any]) -> float:
    """Kept SIDE_SECONDS, or until the first coming meeting ends or open vote closes."""
    now = datetime.now(UTC)
    moments = [m["ends_at"] for m in side["meetings"]] + [
        v["closes_at"] for v in side["votes"] if v["status"] == votes.OPEN and v["closes_at"]
    ]
    soonest = min(((db.utc(m) - now).total_seconds() for m in moments), default=SIDE_SECONDS)
    return max(0.0, min(SIDE_SECONDS, soonest))


async def _side(table: dict[str, Any], reader: str) -> dict[str, Any]:
    """What the table's page shows beside its proposals, the same for every reader of a
    language: votes (their live turnout aside), meetings, documents, the map."""
    drawing = functools.partial(
        maps_static.render,
        await maps.table_districts(table["id"]),
        await proposals.placed(table["id"]),
        map_id="table",
        title=gettext(MAP_OF_DISTRICTS, table=table["name"]),
        lang=reader,
    )
    try:
        static_map = await workers.run_now(drawing)
    except (workers.Busy, BrokenProcessPool):
        # The workers are taken (documents being printed) or one died: the page neither
        # waits nor is refused for its map, which is drawn here then.
        static_map = drawing()
    table_votes = await votes.with_results(await votes.for_table(table["id"]))
    coming = await meetings.for_table(table["id"], upcoming=True)
    table_briefs = await briefs.for_table(table["id"])
    # Questions, answers, titles in the reader's language where a facilitator translated them.
    await content.apply("vote", table_votes, reader)
    await content.apply("meeting", coming[:3], reader)
    await content.apply("brief", table_briefs, reader, key="version_id")
    # A closed vote's summary no longer changes: rendered once (an open one shows its live
    # turnout, so each page renders it).
    summary = environment().get_template("votes/macros.html").module.vote_summary  # type: ignore[attr-defined]
    for vote in table_votes:
        if vote["status"] != votes.OPEN:
            vote["summary_html"] = Markup(summary(vote, limit=3, link=False))  # noqa: S704
    return {
        "build": next(_SIDE_BUILDS),
        "votes": table_votes,
        "meetings": coming,
        "briefs": table_briefs,
        "drafts": await brief_drafts.drafts_for_table(table["id"]),
        # The map's HTML (an autoescaped template's output) and whether a district's boundary
        # is approximate; None: no map.
        "map": (Markup(static_map[0]), static_map[1]) if static_map else None,  # noqa: S704
        # Institutions late with an answer (none to wait for before a brief is published).
        "overdue": await followup.overdue([table["id"]]) if table_briefs else [],
    }


async def _listing(table: dict[str, Any], filters: proposals.Filters, reader: str) -> Markup:
    """The list of proposals as these filters ask, rendered: the same for every reader of a
    language, kept until the table's revision changes."""

    async def render() -> Markup:
        listed = await proposals.page_for_table(table["id"], filters)
        return Markup(  # noqa: S704 — an autoescaped template's output
            environment()
            .get_template("tables/proposals.html")
            .render(
                table=table,
                filters=filters,
                proposals=listed,
                themes=THEMES,
                lang=language(reader),
                # Titles in the reader's language, where a facilitator translated them.
                translated=await discussion.translations([p["id"] for p in listed.items], reader),
            )
        )

    key = ("table-list", table["id"], table["revision"], reader, filters)
    return await cache.pages.get_or_build(key, render)


@post("/tables/{slug:str}/join", name="table_join")
async def join(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Redirect:
    await form_data(request)
    table = await services.get_table(slug)
    await services.join(principal, table)
    return redirect(f"/tables/{slug}", flash="joined")


ROUTES = [home, table_page, join]


async def _residents_page(
    request: Request,
    principal: Principal,
    table: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    require(principal, "residents.register", services.scope_of(table))
    return page(
        request,
        "tables/residents.html",
        status_code=status_code,
        table=table,
        residents=await cards.residents_with_cards(table["id"]),
        scope=services.scope_of(table),
        **context,
    )


def _card_printer(table: dict[str, Any]) -> cards.PrintCard:
    async def print_card(code: str, name: str, language: str) -> bytes:
        return await workers.run(
            render_login_card,
            name=name,
            table_name=table["name"],
            organisation=table["organisation_name"],
            code=cards.printed(code),
            url=absolute_url(cards.card_path(code)),
            lang=language,
        )

    return print_card


def _card_download(content: bytes) -> Response[bytes]:
    # The code is printed once, here; the server keeps only its hash.
    return Response(
        content,
        status_code=200,
        media_type="application/pdf",
        headers={
            "content-disposition": 'attachment; filename="carte-voix-des-quartiers.pdf"',
            "cache-control": "no-store",
        },
    )


@get("/tables/{slug:str}/residents", name="residents")
async def residents(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    return await _residents_page(request, principal, await services.get_table(slug))


@post("/tables/{slug:str}/residents", name="resident_register")
async def register_resident(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Response[bytes]:
    table = await services.get_table(slug)
    data = await form_data(request)
    try:
        _, card = await cards.register_resident(principal, table, data, _card_printer(table))
    except FormErrors as invalid:
        return await _residents_page(
            request, principal, table, status_code=400, errors=invalid.errors, values=data
        )
    return _card_download(card)


# Printing a new card and revoking one cannot be taken back: the list's buttons lead to the GET
# of the act's address, a page saying what will happen (the current card stops working), whose
# POST button does it. Without JavaScript, the same for everyone.


async def _card_page(
    request: Request,
    principal: Principal,
    table: dict[str, Any],
    user_id: int,
    act: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    scope = services.scope_of(table)
    require(principal, "cards.print" if act == "print" else "residents.register", scope)
    resident = await cards.card_of(table, user_id)
    if act == "print" and not can(principal, "cards.print", scope, resident["holder"]):
        raise UserError(cards.NO_CARD_FOR_THEM, status_code=403)
    return page(
        request,
        "tables/card.html",
        status_code=status_code,
        table=table,
        resident=resident,
        act=act,
        **context,
    )


@get("/tables/{slug:str}/residents/{user_id:int}/card", name="card_issue_confirm")
async def issue_card_confirm(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Template:
    return await _card_page(request, principal, await services.get_table(slug), user_id, "print")


@post("/tables/{slug:str}/residents/{user_id:int}/card", name="card_issue")
async def issue_card(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Template | Response[bytes]:
    data = await form_data(request)
    table = await services.get_table(slug)
    try:
        card = await cards.issue_card(principal, table, user_id, data, _card_printer(table))
    except FormErrors as invalid:
        return await _card_page(
            request,
            principal,
            table,
            user_id,
            "print",
            status_code=400,
            errors=invalid.errors,
            values={"reason": str(data.get("reason") or "")[: cards.REASON_MAX * 2]},
        )
    return _card_download(card)


@get("/tables/{slug:str}/residents/{user_id:int}/card/revoke", name="card_revoke_confirm")
async def revoke_card_confirm(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Template:
    return await _card_page(request, principal, await services.get_table(slug), user_id, "revoke")


@post("/tables/{slug:str}/residents/{user_id:int}/card/revoke", name="card_revoke")
async def revoke_card(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Redirect:
    await form_data(request)
    table = await services.get_table(slug)
    await cards.revoke_cards(principal, table, user_id)
    return redirect(f"/tables/{slug}/residents", flash="card_revoked")


@post("/tables/{slug:str}/residents/{user_id:int}/role", name="member_role")
async def change_role(
    request: Request, principal: NamedDependency[Principal], slug: Slug, user_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    table = await services.get_table(slug)
    try:
        await services.change_role(principal, table, user_id, str(data.get("role") or ""))
    except FormErrors as invalid:
        errors = {f"role-{user_id}": message for message in invalid.errors.values()}
        return await _residents_page(request, principal, table, status_code=400, errors=errors)
    return redirect(f"/tables/{slug}/residents", flash="role_changed")


ROUTES += [
    residents,
    register_resident,
    issue_card_confirm,
    issue_card,
    revoke_card_confirm,
    revoke_card,
    change_role,
]
