"""The organisation's list of institutions: kept by its coordinators, never duplicated, archived
and never deleted."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from httpx import AsyncClient

from accounts.services import open_session
from audit.models import AuditEntry
from tables.models import Institution
from voix.web import SESSION_COOKIE

from .conftest import make_client
from .factories import build_world, csrf_token, post_form, sign_in, sign_out, t

CONSEIL = {
    "name": "Conseil citoyen du 14e",
    "service": "Commission cadre de vie",
    "address": "12 avenue Salengro\n13014 Marseille",
    "contact": "conseil14@example.org",
}
ALREADY = "This institution is already on the list (same name and service)."


def url(world) -> str:
    return f"/organisations/{world.table_a['organisation_slug']}/institutions"


async def test_a_coordinator_adds_edits_and_archives_an_institution(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    listing = await client.get(url(world))
    assert listing.status_code == 200
    added = await post_form(client, url(world), CONSEIL, follow_redirects=False)
    assert added.status_code == 303
    row = await Institution.select().first()
    assert row["organisation"] == world.table_a["organisation"]
    assert row["address"] == CONSEIL["address"]
    page = await client.get(url(world))
    assert "Conseil citoyen du 14e" in page.text
    assert "Commission cadre de vie" in page.text

    changed = await post_form(
        client,
        f"/institutions/{row['id']}",
        {**CONSEIL, "name": "Conseil citoyen des 13e et 14e"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert (await Institution.select(Institution.name).first())["name"] == (
        "Conseil citoyen des 13e et 14e"
    )

    archived = await post_form(client, f"/institutions/{row['id']}/archive", {})
    assert archived.status_code == 303
    assert (await Institution.select(Institution.archived_at).first())["archived_at"]
    assert await Institution.count() == 1  # archived, never deleted
    await post_form(client, f"/institutions/{row['id']}/archive", {"restore": "yes"})
    assert (await Institution.select(Institution.archived_at).first())["archived_at"] is None
    actions = [row["action"] for row in await AuditEntry.select(AuditEntry.action)]
    assert actions.count("institution.added") == 1
    assert "institution.changed" in actions
    assert "institution.archived" in actions
    assert "institution.restored" in actions


async def test_bad_input_is_refused_translated_and_changes_nothing(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    refused = await post_form(client, f"{url(world)}?lang=fr", {"name": "", "contact": "x" * 300})
    assert refused.status_code == 400
    assert t("This field is required.") in refused.text
    assert t("Please keep it under %(max)d characters.", max=254) in refused.text
    assert 'aria-describedby="f-new.name-error"' in refused.text
    assert await Institution.count() == 0

    await post_form(client, url(world), CONSEIL)
    row = await Institution.select().first()
    refused = await post_form(
        client, f"/institutions/{row['id']}?lang=fr", {**CONSEIL, "name": " "}
    )
    assert refused.status_code == 400
    assert t("This field is required.") in refused.text
    assert (await Institution.select(Institution.name).first())["name"] == CONSEIL["name"]


async def test_a_duplicate_is_a_form_error_and_an_edit_into_a_duplicate_too(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    await post_form(client, url(world), CONSEIL)
    again = await post_form(client, url(world), CONSEIL)
    assert again.status_code == 400
    assert t(ALREADY) in again.text
    assert await Institution.count() == 1
    # The same name with another service is another institution.
    other = {**CONSEIL, "service": ""}
    assert (await post_form(client, url(world), other, follow_redirects=False)).status_code == 303
    second = await Institution.select().where(Institution.service == "").first()
    clash = await post_form(client, f"/institutions/{second['id']}", CONSEIL)
    assert clash.status_code == 400
    assert t(ALREADY) in clash.text
    assert (await Institution.select().where(Institution.id == second["id"]).first())[
        "service"
    ] == ""
    assert await AuditEntry.count().where(AuditEntry.action == "institution.changed") == 0


async def test_two_coordinators_adding_the_same_institution_at_once_make_one_row(
    app: object, client: AsyncClient
) -> None:
    world = await build_world()
    token = await csrf_token(client)
    sessions = [await open_session(world.users["coordinator_a"], verified=True) for _ in range(6)]

    async def add(session: str) -> httpx.Response:
        async with make_client(app) as browser:  # each click from its own browser tab
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await browser.post(url(world), data={**CONSEIL, "_csrf_token": token})

    responses = await asyncio.gather(*(add(session) for session in sessions))
    assert sorted(r.status_code for r in responses) == [303] + [400] * 5
    assert await Institution.count() == 1
    for refused in (r for r in responses if r.status_code == 400):
        assert t(ALREADY) in refused.text
    assert await AuditEntry.count().where(AuditEntry.action == "institution.added") == 1


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("coordinator_b", 403),
        ("facilitator_a", 403),
        ("resident_a", 403),
        ("admin", 200),
        ("coordinator_a", 200),
    ],
)
async def test_only_the_organisations_coordinators_and_admins_keep_the_list(
    client: AsyncClient, role: str, status: int
) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    await post_form(client, url(world), CONSEIL)
    row = await Institution.select().first()
    sign_out(client)
    await sign_in(client, world.users[role])
    assert (await client.get(url(world))).status_code == status
    added = await post_form(client, url(world), {**CONSEIL, "name": "Métropole"})
    assert added.status_code == (303 if status == 200 else 403)
    edited = await post_form(client, f"/institutions/{row['id']}", {**CONSEIL, "name": "Autre"})
    archived = await post_form(client, f"/institutions/{row['id']}/archive", {})
    if status == 403:
        assert edited.status_code == archived.status_code == 403
        assert await Institution.count() == 1
        assert (await Institution.select().first())["archived_at"] is None
        assert (await Institution.select().first())["name"] == CONSEIL["name"]


async def test_anonymous_is_sent_to_sign_in_and_an_unverified_session_to_confirm(
    client: AsyncClient,
) -> None:
    world = await build_world()
    listing = await client.get(url(world), follow_redirects=False)
    assert listing.status_code == 303
    assert listing.headers["location"].startswith("/login?next=")
    assert (await post_form(client, url(world), CONSEIL)).status_code == 401
    await sign_in(client, world.users["coordinator_a"], verified=False)
    assert (await post_form(client, url(world), CONSEIL)).status_code == 401
    assert await Institution.count() == 0
    assert (await client.get("/organisations/nowhere/institutions")).status_code == 404
    assert (await post_form(client, "/institutions/999999", CONSEIL)).status_code == 404
