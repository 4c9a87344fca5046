"""Help pages (static, translated by the catalogs) and the legal pages of each organisation."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from help import services
from help.content import ACCESSIBILITY_CHECK, LEGAL_KINDS, TOPICS
from tables import services as tables
from tables.services import organisation_scope
from voix import i18n
from voix.forms import FormErrors
from voix.permissions import Principal, require
from voix.web import LONG_FORM_BODY_MAX, Slug, form_data, page, redirect


@get("/help", name="help")
async def help_index(request: Request) -> Template:
    return page(
        request,
        "help/index.html",
        topics=TOPICS,
        legal=LEGAL_KINDS,
    )


@get("/help/{topic:str}", name="help_topic")
async def help_topic(request: Request, topic: Slug) -> Template:
    if topic not in TOPICS:
        raise NotFoundException()
    return page(
        request,
        f"help/topics/{topic}.html",
        topic=TOPICS[topic],
        topics=TOPICS,
        legal=LEGAL_KINDS,
        organisations=await services.organisations(),
    )


@get("/legal/{kind:str}", name="legal")
async def legal(request: Request, kind: Slug) -> Template:
    services.kind_or_404(kind)
    return page(
        request,
        "help/legal.html",
        kind=kind,
        title=LEGAL_KINDS[kind].title,
        topics=TOPICS,
        legal=LEGAL_KINDS,
        sections=await services.page_sections(kind, i18n.current_language.get()),
        audit=ACCESSIBILITY_CHECK,
    )


async def _editor(
    request: Request,
    principal: Principal,
    organisation: dict[str, Any],
    kind: str,
    language: str,
    *,
    status_code: int = 200,
    errors: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    state = await services.editor(organisation, kind, language)
    # The default text names the organisation's tables.
    organisation = next(o for o in await services.organisations() if o["id"] == organisation["id"])
    if values is None:
        values = {"body": state["current"]["body"] if state["current"] else ""}
    return page(
        request,
        "help/legal_edit.html",
        status_code=status_code,
        organisation=organisation,
        kind=kind,
        title=LEGAL_KINDS[kind].title,
        editing=i18n.language(language),
        versions=state["versions"],
        errors=errors or {},
        values=values,
    )


def _language(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in i18n.LANGUAGES else i18n.current_language.get()


@get("/organisations/{slug:str}/legal/{kind:str}/edit", name="legal_edit")
async def legal_edit(
    request: Request, principal: NamedDependency[Principal], slug: Slug, kind: Slug
) -> Template:
    services.kind_or_404(kind)
    organisation = await tables.get_organisation(slug)
    require(principal, "pages.edit", organisation_scope(organisation["id"]))
    language = _language(request.query_params.get("language"))
    return await _editor(request, principal, organisation, kind, language)


@post(
    "/organisations/{slug:str}/legal/{kind:str}/edit",
    name="legal_save",
    request_max_body_size=LONG_FORM_BODY_MAX,  # 30,000 characters, url-encoded
)
async def legal_save(
    request: Request, principal: NamedDependency[Principal], slug: Slug, kind: Slug
) -> Template | Redirect:
    services.kind_or_404(kind)
    organisation = await tables.get_organisation(slug)
    data = await form_data(request)
    try:
        language, _version = await services.save(principal, organisation, kind, data)
    except FormErrors as invalid:
        return await _editor(
            request,
            principal,
            organisation,
            kind,
            _language(data.get("language")),
            status_code=400,
            errors=invalid.errors,
            values=data,
        )
    return redirect(f"/organisations/{slug}/legal/{kind}/edit?language={language}", "legal_saved")


ROUTES = [help_index, help_topic, legal, legal_edit, legal_save]
