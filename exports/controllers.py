"""A brief's published versions: the page, and its files (PDF/UA, PDF/A, DOCX) in each language.

Composing and publishing: exports.compose.
"""

from __future__ import annotations

import re

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from exports import services, stored
from proposals.themes import THEMES
from tables.services import scope_of
from voix.i18n import LANGUAGES, N_, current_language
from voix.permissions import Principal, can
from voix.web import ObjectId, Slug, page

_FILE = re.compile(r"^(?P<lang>[a-z]{2})(?P<archive>-pdfa)?\.(?P<ext>pdf|docx)$")
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "pdfa": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
VARIANT_LABELS = {
    "pdf": N_("PDF"),
    "pdfa": N_("PDF/A (archives)"),
    "docx": N_("Word (DOCX, editable)"),
}


def _file_name(lang: str, variant: str) -> str:
    return (
        f"{lang}-pdfa.pdf"
        if variant == "pdfa"
        else f"{lang}.{'docx' if variant == 'docx' else 'pdf'}"
    )


@get("/briefs/{slug:str}", name="brief")
async def newest(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    brief = await services.get_brief(slug)
    if brief["version"] < 1:
        # A draft has no public page: its managers are taken to it, others find nothing.
        if can(principal, "briefs.manage", scope_of(brief["table"])):
            return Redirect(f"/briefs/{slug}/edit")
        raise NotFoundException()
    return await _version_page(request, principal, slug, None)


@get("/briefs/{slug:str}/v/{number:int}", name="brief_version")
async def version_page(
    request: Request, principal: NamedDependency[Principal], slug: Slug, number: ObjectId
) -> Template:
    return await _version_page(request, principal, slug, number)


async def _version_page(
    request: Request, principal: Principal, slug: str, number: int | None
) -> Template:
    brief, row = await services.version(slug, number)
    reader = current_language.get()
    doc, shown = await services.read(
        row, reader, original=request.query_params.get("original") == "1", count=True
    )
    keys = [stored.version_key(slug, row["number"], variant) for variant in stored.VARIANTS]
    made = await stored.stored_sha256(keys)
    downloads = [
        {
            "label": VARIANT_LABELS[variant],
            "lang": lang,
            "kind": variant,
            "url": f"/briefs/{slug}/v/{row['number']}/{_file_name(lang, variant)}",
            "sha256": made.get((stored.version_key(slug, row["number"], variant), lang)),
        }
        for variant in stored.VARIANTS
        for lang in LANGUAGES
    ]
    return page(
        request,
        "exports/brief.html",
        doc=doc,
        shown=shown,
        brief=brief,
        version=row,
        preview=False,
        versions=await services.versions_of(brief["id"]),
        downloads=downloads,
        manage=can(principal, "briefs.manage", scope_of(brief["table"])),
        themes=THEMES,
    )


async def _file(slug: str, number: int | None, lang: str, variant: str) -> Response[bytes]:
    if lang not in LANGUAGES or variant not in stored.VARIANTS:
        raise NotFoundException()
    _brief, row = await services.version(slug, number)
    doc, _shown = await services.read(row, lang)
    content = await stored.version_file(
        slug, row["number"], doc, lang, variant, await services.photos(row["id"])
    )
    name = f"{slug}-v{row['number']}-{_file_name(lang, variant)}"
    return Response(
        content,
        media_type=MEDIA_TYPES[variant],
        headers={
            "content-disposition": f'{"attachment" if variant == "docx" else "inline"}; filename="{name}"',
            # The same bytes until a translation of the version is corrected or one of its
            # proposals hidden: caches ask again, and the fingerprint tells them if it changed.
            "cache-control": "public, no-cache",
            "etag": f'"{services.sha256(content)}"',
        },
    )


@get("/briefs/{slug:str}/v/{number:int}/{file:str}", name="brief_file")
async def version_file(slug: Slug, number: ObjectId, file: FromPath[str]) -> Response[bytes]:
    matched = _FILE.match(file)
    if matched is None:
        raise NotFoundException()
    variant = "pdfa" if matched["archive"] else matched["ext"]
    if matched["archive"] and matched["ext"] != "pdf":
        raise NotFoundException()
    return await _file(slug, number, matched["lang"], variant)


@get("/briefs/{slug:str}/v/{number:int}/photos/{media_id:int}", name="brief_photo")
async def photo(slug: Slug, number: ObjectId, media_id: ObjectId) -> Response[bytes]:
    """A photo as the version printed it: its own copy, re-encoded without metadata when the
    proposal was written (proposals.media), kept even if the proposal's photo goes."""
    _brief, row = await services.version(slug, number)
    # What the version's page shows: not the photo of a proposal hidden since.
    shown, _ = await services.read(row, current_language.get())
    if media_id not in {item["photo"] for item in shown["items"]}:
        raise NotFoundException()
    found = await services.photos(row["id"], [media_id])
    if media_id not in found:
        raise NotFoundException()
    content_type, content = found[media_id]
    return Response(
        content,
        media_type=content_type,
        headers={"cache-control": "public, no-cache", "x-content-type-options": "nosniff"},
    )


@get("/briefs/{slug:str}/pdf/{lang:str}", name="brief_pdf")
async def pdf(slug: Slug, lang: FromPath[str]) -> Response[bytes]:
    """The newest version's PDF (the address earlier documents and posters printed)."""
    return await _file(slug, None, lang, "pdf")


ROUTES = [newest, version_page, version_file, photo, pdf]
