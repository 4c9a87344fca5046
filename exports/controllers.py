"""Brief pages: publishing one, reading it, and downloading it as PDF."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from exports import services, stored
from proposals import services as proposals
from proposals.themes import THEMES
from tables import services as tables
from voix.forms import FormErrors
from voix.i18n import LANGUAGES, current_language
from voix.permissions import Principal, require
from voix.web import Slug, form_data, page, redirect


async def _form_page(
    request: Request,
    principal: NamedDependency[Principal],
    table: dict,
    status_code: int = 200,
    **context: Any,
) -> Template:
    require(principal, "briefs.manage", tables.scope_of(table))
    return page(
        request,
        "exports/brief_form.html",
        status_code=status_code,
        table=table,
        adopted=await proposals.list_adopted(table["id"]),
        **context,
    )


@get("/tables/{slug:str}/briefs/new", name="brief_new")
async def new(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    return await _form_page(request, principal, await tables.get_table(slug))


@post("/tables/{slug:str}/briefs", name="brief_publish")
async def publish(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    data = await form_data(request)
    try:
        brief_slug = await services.publish(principal, table, dict(data))
    except FormErrors as invalid:
        return await _form_page(
            request, principal, table, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/briefs/{brief_slug}", flash="brief_published")


@get("/briefs/{slug:str}", name="brief")
async def detail(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    document, shown = await services.localised(
        await services.load(slug),
        current_language.get(),
        original=request.query_params.get("original") == "1",
    )
    return page(
        request,
        "exports/brief.html",
        brief=document,
        shown=shown,
        themes=THEMES,
        pdf_languages=LANGUAGES,
    )


@get("/briefs/{slug:str}/pdf/{lang:str}", name="brief_pdf")
async def pdf(slug: Slug, lang: FromPath[str]) -> Response[bytes]:
    if lang not in LANGUAGES:
        raise NotFoundException()
    document, _shown = await services.localised(await services.load(slug), lang)
    content = await stored.brief_pdf(document, lang)
    return Response(
        content,
        media_type="application/pdf",
        headers={"content-disposition": f'inline; filename="{slug}-{lang}.pdf"'},
    )


ROUTES = [new, publish, detail, pdf]
