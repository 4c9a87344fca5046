"""The organisation's list of institutions briefs are addressed to, kept by its coordinators.

An institution is archived, never deleted: the briefs sent to it and the answers it gave keep
pointing to it. The database's unique index on (organisation, name, service) is what keeps the
list free of duplicates, so that two coordinators adding the same one at once (or a double
click) end with one row and a form error, never two rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from audit import services as audit
from tables import services as tables
from tables.models import Institution, Organisation
from voix import db
from voix.forms import Form, FormErrors, Message
from voix.i18n import N_
from voix.permissions import Principal, require
from voix.web import ObjectId, Slug, form_data, page, redirect

ALREADY_LISTED = N_("This institution is already on the list (same name and service).")
NAME_MAX = 160
SERVICE_MAX = 160
ADDRESS_MAX = 1000
CONTACT_MAX = 254
_FIELDS = ("name", "service", "address", "contact")
# What each database says when the unique index refuses a row.
_DUPLICATE = (sqlite3.IntegrityError, asyncpg.exceptions.UniqueViolationError)


def _read(data: Mapping[str, Any]) -> dict[str, str]:
    form = Form(data)
    values = {
        "name": form.text("name", max_length=NAME_MAX, min_length=2),
        "service": form.text("service", max_length=SERVICE_MAX, required=False),
        "address": form.text("address", max_length=ADDRESS_MAX, required=False, multiline=True),
        "contact": form.text("contact", max_length=CONTACT_MAX, required=False),
    }
    form.validate()
    return values


def _duplicate() -> FormErrors:
    return FormErrors({"name": Message(ALREADY_LISTED)})


async def list_for(organisation_id: int) -> list[dict[str, Any]]:
    """Every institution of the organisation, archived ones too (the page sets them apart)."""
    return await (
        Institution.select()
        .where(Institution.organisation == organisation_id)
        .order_by(Institution.name)
        .order_by(Institution.service)
    )


async def add(who: Principal, organisation: dict[str, Any], data: Mapping[str, Any]) -> int:
    scope = tables.organisation_scope(organisation["id"])
    require(who, "institutions.manage", scope)
    values = _read(data)
    async with db.write_transaction():
        inserted = await (
            Institution.insert(
                Institution(
                    organisation=organisation["id"],
                    name=values["name"],
                    service=values["service"],
                    address=values["address"],
                    contact=values["contact"],
                )
            )
            .on_conflict(action="DO NOTHING")
            .returning(Institution.id)
        )
        if not inserted:  # the unique index refused it: listed already, maybe a moment ago
            raise _duplicate()
        institution_id = int(inserted[0]["id"])
        await audit.record(who, "institution.added", scope, subject=f"institution:{institution_id}")
    return institution_id


async def get_institution(institution_id: int) -> dict[str, Any]:
    found = await Institution.select().where(Institution.id == institution_id).first()
    if found is None:
        raise NotFoundException()
    return found


async def change(who: Principal, institution: dict[str, Any], data: Mapping[str, Any]) -> None:
    scope = tables.organisation_scope(institution["organisation"])
    require(who, "institutions.manage", scope)
    values = _read(data)
    try:
        async with db.write_transaction():
            # The update is the transaction's one statement that may break the unique index:
            # refused, the whole transaction (the audit entry too) is undone.
            await audit.record(
                who, "institution.changed", scope, subject=f"institution:{institution['id']}"
            )
            await Institution.update(
                {getattr(Institution, key): value for key, value in values.items()}
            ).where(Institution.id == institution["id"])
    except _DUPLICATE as error:
        raise _duplicate() from error


async def archive(who: Principal, institution: dict[str, Any], *, restore: bool = False) -> None:
    scope = tables.organisation_scope(institution["organisation"])
    require(who, "institutions.manage", scope)
    async with db.write_transaction():
        await Institution.update(
            {Institution.archived_at: None if restore else datetime.now(UTC)}
        ).where(Institution.id == institution["id"])
        await audit.record(
            who,
            "institution.restored" if restore else "institution.archived",
            scope,
            subject=f"institution:{institution['id']}",
        )


# Pages.


async def _list_page(
    request: Request,
    principal: Principal,
    organisation: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    require(principal, "institutions.manage", tables.organisation_scope(organisation["id"]))
    rows = await list_for(organisation["id"])
    return page(
        request,
        "tables/institutions.html",
        status_code=status_code,
        organisation=organisation,
        institutions=[row for row in rows if row["archived_at"] is None],
        archived=[row for row in rows if row["archived_at"] is not None],
        **context,
    )


@get("/organisations/{slug:str}/institutions", name="institutions")
async def institutions(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    return await _list_page(request, principal, await tables.get_organisation(slug))


@post("/organisations/{slug:str}/institutions", name="institution_add")
async def institution_add(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    organisation = await tables.get_organisation(slug)
    data = await form_data(request)
    try:
        institution_id = await add(principal, organisation, data)
    except FormErrors as invalid:
        # The add form's fields are prefixed "new." on the page, as each edit form's are by id.
        return await _list_page(
            request,
            principal,
            organisation,
            status_code=400,
            errors={f"new.{key}": message for key, message in invalid.errors.items()},
            values={f"new.{key}": data.get(key) for key in _FIELDS},
        )
    return redirect(
        f"/organisations/{slug}/institutions#institution-{institution_id}",
        flash="institutions_saved",
    )


async def _organisation_of(institution: dict[str, Any]) -> dict[str, Any]:
    found = await Organisation.select().where(Organisation.id == institution["organisation"])
    return found[0]


@post("/institutions/{institution_id:int}", name="institution_change")
async def institution_change(
    request: Request, principal: NamedDependency[Principal], institution_id: ObjectId
) -> Template | Redirect:
    institution = await get_institution(institution_id)
    data = await form_data(request)
    organisation = await _organisation_of(institution)
    try:
        await change(principal, institution, data)
    except FormErrors as invalid:
        prefix = str(institution_id)
        return await _list_page(
            request,
            principal,
            organisation,
            status_code=400,
            errors={f"{prefix}.{key}": message for key, message in invalid.errors.items()},
            values={f"{prefix}.{key}": data.get(key) for key in _FIELDS},
            open_form=institution_id,
        )
    return redirect(
        f"/organisations/{organisation['slug']}/institutions#institution-{institution_id}",
        flash="institutions_saved",
    )


@post("/institutions/{institution_id:int}/archive", name="institution_archive")
async def institution_archive(
    request: Request, principal: NamedDependency[Principal], institution_id: ObjectId
) -> Redirect:
    institution = await get_institution(institution_id)
    data = await form_data(request)
    await archive(principal, institution, restore=data.get("restore") == "yes")
    organisation = await _organisation_of(institution)
    return redirect(
        f"/organisations/{organisation['slug']}/institutions", flash="institutions_saved"
    )


ROUTES: list = [institutions, institution_add, institution_change, institution_archive]
