"""Proposal pages: the form (for oneself or on a resident's behalf) and each proposal."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from proposals import services
from proposals.themes import THEMES
from tables import services as tables
from voix.forms import FormErrors
from voix.i18n import current_language
from voix.permissions import Principal, can, require
from voix.web import ObjectId, Slug, form_data, page, redirect
from votes import services as votes


async def _form_page(
    request: Request,
    principal: NamedDependency[Principal],
    table: dict,
    status_code: int = 200,
    **context: Any,
) -> Template:
    scope = tables.scope_of(table)
    on_behalf = can(principal, "proposals.create_on_behalf", scope)
    if not on_behalf:
        require(principal, "proposals.create", scope)
    return page(
        request,
        "proposals/form.html",
        status_code=status_code,
        table=table,
        themes=THEMES,
        residents=await tables.residents(table["id"]) if on_behalf else [],
        on_behalf=on_behalf,
        **context,
    )


@get("/tables/{slug:str}/proposals/new", name="proposal_new")
async def new(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    table = await tables.get_table(slug)
    values = {"language": current_language.get(), "theme": request.query_params.get("theme", "")}
    return await _form_page(request, principal, table, values=values)


@post("/tables/{slug:str}/proposals", name="proposal_create")
async def create(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    data = await form_data(request)
    try:
        proposal_id = await services.create(principal, table, data)
    except FormErrors as invalid:
        return await _form_page(
            request, principal, table, status_code=400, errors=invalid.errors, values=data
        )
    flash = "proposal_recorded" if "author" in data else "proposal_created"
    return redirect(f"/proposals/{proposal_id}", flash=flash)


@get("/proposals/{proposal_id:int}", name="proposal")
async def detail(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Template:
    return await proposal_page(request, principal, proposal_id)


async def proposal_page(
    request: Request, principal: Principal, proposal_id: int, status_code: int = 200, **context: Any
) -> Template:
    """The proposal, its votes and, for facilitators, the forms acting on it."""
    proposal, table = await services.get_with_table(proposal_id)
    proposal_votes = await votes.for_proposal(proposal_id)
    vote_ids = [v["id"] for v in proposal_votes]
    return page(
        request,
        "proposals/detail.html",
        proposal=proposal,
        table=table,
        theme=THEMES.get(proposal["theme"]),
        votes=proposal_votes,
        tallies=await votes.tallies(vote_ids),
        voted=await votes.voted_in(principal.user_id, vote_ids),
        scope=tables.scope_of(table),
        status_code=status_code,
        **context,
    )


ROUTES = [new, create, detail]
