"""An organisation's settings, kept by its coordinators: the licence of its open data.

The licence applies to every download of its tables' rows (exports.data_controllers), and the
`/data` page names it. A change is kept in the audit journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from audit import services as audit
from exports.data_controllers import LICENCE_DETAILS, licence
from tables import services as tables
from tables.models import LICENCES, Organisation
from voix import db
from voix.forms import Form, FormErrors
from voix.permissions import Principal, require
from voix.web import Slug, form_data, page, redirect

# Who may change an organisation's settings: its coordinators (and administrators), as for
# the wording of its legal pages.
ACTION = "organisation.settings"


async def change_licence(
    who: Principal, organisation: Mapping[str, Any], data: Mapping[str, Any]
) -> str:
    """Sets the organisation's licence to one of LICENCES; audited. Returns the key."""
    scope = tables.organisation_scope(organisation["id"])
    require(who, ACTION, scope)
    form = Form(data)
    key = form.choice("licence", LICENCES)
    form.validate()
    if key == organisation["licence"]:
        return key
    async with db.write_transaction():
        await Organisation.update({Organisation.licence: key}).where(
            Organisation.id == organisation["id"]
        )
        await audit.record(
            who,
            "organisation.licence",
            scope,
            subject=f"organisation:{organisation['id']}",
            licence=key,
            was=organisation["licence"],
        )
    return key


def _settings_page(
    request: Request,
    organisation: dict[str, Any],
    *,
    status_code: int = 200,
    errors: Mapping[str, Any] | None = None,
    chosen: str | None = None,
) -> Template:
    return page(
        request,
        "data/settings.html",
        status_code=status_code,
        organisation=organisation,
        current=licence(organisation["licence"]),
        licences=list(LICENCE_DETAILS.values()),
        chosen=chosen or organisation["licence"],
        saved=request.query_params.get("saved") == "licence",
        errors=dict(errors or {}),
    )


@get("/organisations/{slug:str}/settings", name="organisation_settings")
async def settings(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    organisation = await tables.get_organisation(slug)
    require(principal, ACTION, tables.organisation_scope(organisation["id"]))
    return _settings_page(request, organisation)


@post("/organisations/{slug:str}/settings", name="organisation_settings_save")
async def settings_save(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    organisation = await tables.get_organisation(slug)
    data = await form_data(request)
    try:
        await change_licence(principal, organisation, data)
    except FormErrors as invalid:
        return _settings_page(request, organisation, status_code=400, errors=invalid.errors)
    return redirect(f"/organisations/{slug}/settings?saved=licence")


ROUTES: list = [settings, settings_save]
