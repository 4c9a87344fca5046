"""Pages of the tables: the list, and each table with its proposals, votes and briefs."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from accounts import cards
from exports import drafts as brief_drafts
from exports import services as briefs
from exports.pdf import render_login_card
from followup import services as followup
from maps import services as maps
from maps import svg
from meetings import services as meetings
from proposals import discussion
from proposals import services as proposals
from proposals.themes import THEMES
from tables import services
from translations import services as content
from voix import workers
from voix.forms import FormErrors, UserError
from voix.i18n import current_language
from voix.permissions import Principal, can, require
from voix.web import ObjectId, Slug, absolute_url, form_data, page, redirect
from votes import services as votes


@get("/", name="home")
async def home(request: Request, principal: NamedDependency[Principal]) -> Template:
    tables = await services.list_tables()
    managed = [t["id"] for t in tables if can(principal, "briefs.manage", services.scope_of(t))]
    organisations = [
        (name, list(group)) for name, group in groupby(tables, key=lambda t: t["organisation_name"])
    ]
    return page(
        request,
        "tables/home.html",
        organisations=organisations,
        my_meetings=await content.apply_all(
            "meeting", await meetings.upcoming_for_user(principal.user_id), current_language.get()
        ),
        # For those who manage tables: the institutions late with an answer to their briefs.
        overdue=await followup.overdue(managed),
    )


@get("/tables/{slug:str}", name="table")
async def table_page(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    table = await services.get_table(slug)
    filters = proposals.Filters.from_query(request.query_params)
    listed = await proposals.page_for_table(table["id"], filters)
    context: dict[str, Any] = {
        "table": table,
        "scope": services.scope_of(table),
        "proposals": listed,
        "themes": THEMES,
        "filters": filters,
        "statuses": proposals.LISTED_STATUSES,
        # Titles in the reader's language, where a facilitator translated them.
        "translated": await discussion.translations(
            [p["id"] for p in listed.items], current_language.get()
        ),
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "proposals":
        return page(request, "tables/table.html", block="proposals", **context)
    static_map = svg.layout(
        await maps.table_districts(table["id"]), await proposals.placed(table["id"])
    )
    table_votes = await votes.with_results(await votes.for_table(table["id"]))
    coming = await meetings.for_table(table["id"], upcoming=True)
    table_briefs = await briefs.for_table(table["id"])
    # Questions, answers, titles in the reader's language where a facilitator translated them.
    reader = current_language.get()
    await content.apply("vote", table_votes, reader)
    await content.apply("meeting", coming[:3], reader)
    await content.apply("brief", table_briefs, reader, key="version_id")
    return page(
        request,
        "tables/table.html",
        votes=table_votes,
        voted=await votes.voted_in(principal.user_id, [v["id"] for v in table_votes]),
        briefs=table_briefs,
        # Drafts never published: for those who compose them only.
        drafts=await brief_drafts.drafts_for_table(table["id"])
        if can(principal, "briefs.manage", context["scope"])
        else [],
        meetings=coming,
        map=static_map,
        # Institutions late with an answer (none to wait for before a brief is published).
        overdue=await followup.overdue([table["id"]]) if table_briefs else [],
        **context,
    )


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
