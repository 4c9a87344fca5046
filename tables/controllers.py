"""Pages of the tables: the list, and each table with its proposals, votes and briefs."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from exports import services as briefs
from proposals import services as proposals
from proposals.themes import THEMES
from tables import services
from voix.permissions import Principal
from voix.web import Slug, form_data, page, redirect
from votes import services as votes


@get("/", name="home")
async def home(request: Request, principal: NamedDependency[Principal]) -> Template:
    tables = await services.list_tables()
    organisations = [
        (name, list(group)) for name, group in groupby(tables, key=lambda t: t["organisation_name"])
    ]
    return page(request, "tables/home.html", organisations=organisations)


@get("/tables/{slug:str}", name="table")
async def table_page(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    table = await services.get_table(slug)
    theme = request.query_params.get("theme") or ""
    theme = theme if theme in THEMES else ""
    listed = await proposals.page_for_table(
        table["id"], theme or None, proposals.page_number(request.query_params.get("page"))
    )
    context: dict[str, Any] = {
        "table": table,
        "scope": services.scope_of(table),
        "proposals": listed,
        "themes": THEMES,
        "theme": theme,
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "proposals":
        return page(request, "tables/table.html", block="proposals", **context)
    table_votes = await votes.for_table(table["id"])
    return page(
        request,
        "tables/table.html",
        votes=table_votes,
        tallies=await votes.tallies([v["id"] for v in table_votes]),
        voted=await votes.voted_in(principal.user_id, [v["id"] for v in table_votes]),
        briefs=await briefs.for_table(table["id"]),
        **context,
    )


@post("/tables/{slug:str}/join", name="table_join")
async def join(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Redirect:
    await form_data(request)
    table = await services.get_table(slug)
    await services.join(principal, table)
    return redirect(f"/tables/{slug}", flash="joined")


ROUTES = [home, table_page, join]
