"""Coordinators change roles at their organisation's tables; nobody else does."""

from __future__ import annotations

import json

from httpx import AsyncClient

from audit.models import AuditEntry
from tables.models import Membership
from tables.services import CARD_ONLY_CANNOT_RUN, get_table
from tests.factories import build_world, post_form, register_card_resident, sign_in, t
from voix.permissions import Principal


async def role_of(user_id: int) -> str:
    row = await Membership.select(Membership.role).where(Membership.user == user_id).first()
    return str(row["role"])


async def test_a_coordinator_makes_a_resident_facilitator(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    page = await client.get("/tables/flamants-iris/residents")
    assert f'action="/tables/flamants-iris/residents/{world.users["resident_a"]}/role"' in page.text
    url = f"/tables/flamants-iris/residents/{world.users['resident_a']}/role"
    response = await post_form(client, url, {"role": "facilitator"}, follow_redirects=False)
    assert response.status_code == 303
    assert await role_of(world.users["resident_a"]) == "facilitator"
    entry = (
        await AuditEntry.select(AuditEntry.action, AuditEntry.details)
        .where(AuditEntry.action == "role.changed")
        .first()
    )
    details = entry["details"]
    assert (json.loads(details) if isinstance(details, str) else details) == {"role": "facilitator"}


async def test_role_changes_by_anyone_else_are_refused(client: AsyncClient) -> None:
    world = await build_world()
    url = f"/tables/flamants-iris/residents/{world.users['resident_a']}/role"
    for role in ("facilitator_a", "resident_a", "coordinator_b", "facilitator_b"):
        await sign_in(client, world.users[role])
        response = await post_form(client, url, {"role": "facilitator"})
        assert response.status_code == 403, role
    await sign_in(client, world.users["coordinator_a"])
    bogus = await post_form(client, url, {"role": "admin"})
    assert bogus.status_code == 400
    other_table = f"/tables/flamants-iris/residents/{world.users['resident_b']}/role"
    assert (await post_form(client, other_table, {"role": "facilitator"})).status_code == 404
    assert await role_of(world.users["resident_a"]) == "resident"
    assert await role_of(world.users["resident_b"]) == "resident"
    assert not await AuditEntry.exists().where(AuditEntry.action == "role.changed")


async def test_a_card_only_resident_is_not_made_facilitator_and_is_told_why(
    client: AsyncClient,
) -> None:
    """Their card would stop working (cards never sign in those who run a table) and they have
    no password: promoted, they could not sign in at all."""
    world = await build_world()
    card_only, _ = await register_card_resident(
        Principal(
            user_id=world.users["facilitator_a"],
            table_roles={world.table_a["id"]: "facilitator"},
            verified=True,
        ),
        await get_table("flamants-iris"),
    )
    await sign_in(client, world.users["coordinator_a"])
    url = f"/tables/flamants-iris/residents/{card_only}/role"
    refused = await post_form(client, url, {"role": "facilitator"})
    assert refused.status_code == 400
    assert t(CARD_ONLY_CANNOT_RUN) in refused.text
    assert await role_of(card_only) == "resident"
    assert not await AuditEntry.exists().where(AuditEntry.action == "role.changed")
