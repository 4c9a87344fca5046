"""The facilitators' translation desk: what still needs translating, and the form for one text."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from tables import services as tables
from translations import services
from translations.kinds import KINDS, Original
from voix import i18n
from voix.forms import FormErrors
from voix.permissions import Principal, require
from voix.web import LONG_FORM_BODY_MAX, ObjectId, Slug, form_data, page, redirect


def _into(raw: object, default: str) -> str:
    return raw if isinstance(raw, str) and raw in i18n.LANGUAGES else default


def _other_language(reader: str) -> str:
    """The list opens on a language other than French when the reader reads French."""
    return reader if reader != i18n.DEFAULT_LANGUAGE else "ar"


@get("/tables/{slug:str}/translations", name="translations")
async def to_translate(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    table = await tables.get_table(slug)
    require(principal, "content.translate", tables.scope_of(table))
    into = _into(request.query_params.get("into"), _other_language(i18n.current_language.get()))
    return page(
        request,
        "translations/to_translate.html",
        table=table,
        into=i18n.language(into),
        todo=await services.to_translate(table["id"], into),
        kinds=KINDS,
    )


async def _found(kind: str, object_id: int) -> tuple[Original, dict[str, Any]]:
    original = await services.get_original(kind, object_id)
    if original is None:
        raise NotFoundException()
    return original, await tables.get_table_by_id(original.table_id)


async def _editor(
    request: Request,
    original: Original,
    table: dict[str, Any],
    into: str,
    *,
    status_code: int = 200,
    errors: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    written_in = await services.origin_of(original)
    existing = await services.current(original.kind, original.id, into)
    if values is None:
        fields = json.loads(existing["fields"]) if existing else {}
        values = {f"field-{key}": fields.get(key, "") for key in original.fields}
        values["written_in"] = written_in
    return page(
        request,
        "translations/translate.html",
        status_code=status_code,
        table=table,
        original=original,
        kind=KINDS[original.kind],
        written_in=written_in,
        into=i18n.language(into),
        existing=existing,
        stale=existing is not None and existing["source"] != original.fingerprint,
        errors=errors or {},
        values=values,
    )


@get("/translate/{kind:str}/{object_id:int}", name="translate")
async def translate(
    request: Request, principal: NamedDependency[Principal], kind: Slug, object_id: ObjectId
) -> Template:
    original, table = await _found(kind, object_id)
    require(principal, "content.translate", tables.scope_of(table))
    written_in = await services.origin_of(original)
    into = _into(request.query_params.get("into"), _other_language(written_in))
    return await _editor(request, original, table, into)


@post(
    "/translate/{kind:str}/{object_id:int}",
    name="translate_save",
    request_max_body_size=LONG_FORM_BODY_MAX,
)
async def translate_save(
    request: Request, principal: NamedDependency[Principal], kind: Slug, object_id: ObjectId
) -> Template | Redirect:
    original, table = await _found(kind, object_id)
    require(principal, "content.translate", tables.scope_of(table))
    data = await form_data(request)
    try:
        await services.save(principal, table, original, data)
    except FormErrors as invalid:
        return await _editor(
            request,
            original,
            table,
            _into(data.get("language"), i18n.DEFAULT_LANGUAGE),
            status_code=400,
            errors=invalid.errors,
            values=data,
        )
    return redirect(
        f"/tables/{table['slug']}/translations?into={data.get('language')}", "translated"
    )


ROUTES = [to_translate, translate, translate_save]
