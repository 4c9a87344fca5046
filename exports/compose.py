"""Composing a brief: the draft's pages (title, addressees, context, proposals, photos,
signatories), its preview, and publishing it.

Everything here is for the table's facilitators (and its organisation's coordinators, admins:
"briefs.manage"), checked on the draft's own table, except a photo's consent to publication,
which its author gives (or a facilitator records for them).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from exports import drafts, services, snapshot, stored
from exports.models import BriefItem
from proposals import services as proposals
from proposals.controllers import proposal_page
from proposals.models import Media
from proposals.themes import THEMES
from tables import services as tables
from voix import jobs
from voix.forms import FormErrors
from voix.i18n import LANGUAGES, current_language
from voix.permissions import Principal, can, require
from voix.web import LONG_FORM_BODY_MAX, ObjectId, Slug, form_data, page, redirect


async def _new_page(
    request: Request,
    principal: Principal,
    table: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    require(principal, "briefs.manage", tables.scope_of(table))
    context.setdefault("values", {"language": current_language.get()})
    return page(
        request,
        "exports/brief_new.html",
        status_code=status_code,
        table=table,
        adopted=await proposals.list_adopted(table["id"]),
        **context,
    )


@get("/tables/{slug:str}/briefs/new", name="brief_draft_new")
async def new(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    return await _new_page(request, principal, await tables.get_table(slug))


@post("/tables/{slug:str}/briefs", name="brief_draft_create")
async def create(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    data = await form_data(request)
    try:
        brief_slug = await drafts.create_draft(principal, table, data)
    except FormErrors as invalid:
        return await _new_page(
            request, principal, table, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/briefs/{brief_slug}/edit")


async def _draft_and_table(
    principal: Principal, slug: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The draft and its table, once the principal may manage the table's briefs."""
    brief = await drafts.get_draft(slug)
    table = await tables.get_table_by_id(brief["table"])
    require(principal, "briefs.manage", tables.scope_of(table))
    return brief, table


def _by_theme(offered: list[dict[str, Any]]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The proposals offered, grouped by theme in the themes' order (an unknown theme last)."""
    groups: list[tuple[Any, list[dict[str, Any]]]] = [
        (theme, found)
        for slug, theme in THEMES.items()
        if (found := [row for row in offered if row["theme"] == slug])
    ]
    if others := [row for row in offered if row["theme"] not in THEMES]:
        groups.append((None, others))
    return groups


async def _edit_page(
    request: Request,
    principal: Principal,
    brief: dict[str, Any],
    table: dict[str, Any],
    state: dict[str, Any],
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    institutions = await drafts.institutions_of(table["organisation"])
    # Those chosen first, in the draft's order; then the others, by name.
    chosen = {row["id"]: row for row in institutions if row["id"] in state["addressees"]}
    ordered = [chosen[i] for i in state["addressees"] if i in chosen]
    ordered += [row for row in institutions if row["id"] not in chosen]
    return page(
        request,
        "exports/brief_edit.html",
        status_code=status_code,
        brief=brief,
        table=table,
        state=state,
        institutions=ordered,
        groups=_by_theme(await drafts.sendable_proposals(table["id"])),
        signatories=await drafts.signatories_of(brief["id"]),
        members=await tables.residents(table["id"]),
        manage_institutions=can(
            principal, "institutions.manage", tables.organisation_scope(table["organisation"])
        ),
        **context,
    )


@get("/briefs/{slug:str}/edit", name="brief_edit")
async def edit(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    brief, table = await _draft_and_table(principal, slug)
    return await _edit_page(request, principal, brief, table, await drafts.saved_state(brief))


@post(
    "/briefs/{slug:str}/edit",
    name="brief_save",
    request_max_body_size=LONG_FORM_BODY_MAX,  # a context of 8,000 characters, url-encoded
)
async def save(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    brief, table = await _draft_and_table(principal, slug)
    data = await form_data(request, "addressee", "include", "remove")
    try:
        await drafts.save(principal, brief, table, data)
    except FormErrors as invalid:
        stale = "updated_at" in invalid.errors
        return await _edit_page(
            request,
            principal,
            brief,
            table,
            drafts.submitted_state(data),
            status_code=409 if stale else 400,
            errors=invalid.errors,
        )
    if data.get("then") == "preview":
        return redirect(f"/briefs/{slug}/preview")
    return redirect(f"/briefs/{slug}/edit", flash="brief_saved")


async def _photo_urls(brief_id: int) -> dict[int, str]:
    """The draft's chosen photos at their usual address (a published version serves its own
    copies instead: exports.models.BriefPhoto)."""
    chosen = [
        row["photo"]
        for row in await BriefItem.select(BriefItem.photo).where(BriefItem.brief == brief_id)
        if row["photo"]
    ]
    if not chosen:
        return {}
    rows = await Media.select(Media.id, Media.token).where(Media.id.is_in(chosen))
    return {row["id"]: f"/media/{row['token']}" for row in rows}


@get("/briefs/{slug:str}/preview", name="brief_preview")
async def preview(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    brief, _table = await _draft_and_table(principal, slug)
    document = snapshot.localised(await snapshot.build(brief["id"]), current_language.get())
    return page(
        request,
        "exports/brief.html",
        doc=document,
        brief=brief,
        preview=True,
        versions=[],
        downloads=[],
        manage=True,
        themes=THEMES,
        photo_urls=await _photo_urls(brief["id"]),
    )


@post("/briefs/{slug:str}/publish", name="brief_publish_version")
async def publish(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Redirect:
    await form_data(request)
    await _draft_and_table(principal, slug)
    number = await services.publish_version(principal, await services.get_brief(slug))
    # The PDF in the language it was written in, made now: the version's page shows its
    # SHA-256 from the start (the other files are made at their first download).
    _brief, version = await services.version(slug, number)
    document, _shown = await services.read(version, version["language"])
    await stored.version_file(
        slug,
        number,
        document,
        version["language"],
        "pdf",
        await services.photos(version["id"]),
    )
    # Its other files (languages, PDF/A, DOCX) are made in the background, once, so that
    # the first reader of each does not wait for it.
    for lang in LANGUAGES:
        for variant in stored.VARIANTS:
            if (lang, variant) != (version["language"], "pdf"):
                await jobs.enqueue(
                    RENDER_VERSION_FILE,
                    {"slug": slug, "number": number, "lang": lang, "variant": variant},
                    key=f"{stored.version_key(slug, number, variant)}:{lang}",
                )
    return redirect(f"/briefs/{slug}/v/{number}", flash="brief_published")


RENDER_VERSION_FILE = "exports.version_file"


@jobs.handler(RENDER_VERSION_FILE)
async def render_version_file(payload: dict[str, Any]) -> None:
    """One file of a published version, as its download makes it (exports.controllers)."""
    slug, lang = payload["slug"], payload["lang"]
    _brief, version = await services.version(slug, payload["number"])
    document, _shown = await services.read(version, lang)
    photos = await services.photos(version["id"])
    await stored.version_file(slug, version["number"], document, lang, payload["variant"], photos)


@post("/proposals/{proposal_id:int}/media/{media_id:int}/publication", name="photo_publication")
async def photo_publication(
    request: Request,
    principal: NamedDependency[Principal],
    proposal_id: ObjectId,
    media_id: ObjectId,
) -> Template | Redirect:
    data = await form_data(request)
    proposal, table = await proposals.get_with_table(proposal_id)
    try:
        await drafts.set_photo_consent(principal, proposal, table, media_id, data)
    except FormErrors as invalid:
        return await proposal_page(
            request, principal, proposal_id, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/proposals/{proposal_id}#photo-publication", flash="photo_consent_saved")


ROUTES: list = [new, create, edit, save, preview, publish, photo_publication]
