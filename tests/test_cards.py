"""Residents registered at the table and their login cards."""

from __future__ import annotations

import io
import re

from httpx import AsyncClient
from pypdf import PdfReader

from accounts.cards import CONSENT_REQUIRED
from accounts.controllers import CARD_REFUSED
from accounts.models import LoginCard, User
from audit.models import AuditEntry
from tables.models import Membership
from tests.conftest import make_client
from tests.factories import build_world, post_form, sign_in, t
from voix.web import SESSION_COOKIE

RESIDENT = {"display_name": "Fatou", "language": "fr", "consent": "yes"}
CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


def card_code(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    match = CODE.search(text)
    assert match, text
    return match.group(0)


async def register(client: AsyncClient, **changes: str) -> tuple[int, str]:
    response = await post_form(client, "/tables/flamants-iris/residents", {**RESIDENT, **changes})
    assert response.status_code == 200, response.text[-400:]
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment")
    user = (
        await User.select(User.id)
        .where(User.display_name == changes.get("display_name", "Fatou"))
        .first()
    )
    return user["id"], card_code(response.content)


async def test_a_facilitator_registers_a_resident_and_prints_a_card(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, code = await register(client, phone="06 12 34 56 78")
    user = await User.select().where(User.id == user_id).first()
    assert user["email"] is None
    assert user["phone"] == "06 12 34 56 78"
    assert user["consent_at"] is not None
    assert user["consent_recorded_by"] == world.users["facilitator_a"]
    assert await Membership.exists().where(Membership.user == user_id)
    stored = await LoginCard.select(LoginCard.code_hash).first()
    assert code.replace("-", "") not in stored["code_hash"]  # only a keyed hash is kept
    actions = {row["action"] for row in await AuditEntry.select(AuditEntry.action)}
    assert {"resident.registered", "card.issued"} <= actions


async def test_the_card_signs_the_resident_in(client: AsyncClient, app) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    _, code = await register(client)
    async with make_client(app) as phone:
        link = await phone.get(f"/card/{code.replace('-', '')}")
        assert link.status_code == 200
        assert SESSION_COOKIE not in phone.cookies  # a GET never signs in
        signed = await post_form(
            phone, "/card", {"code": code.lower().replace("-", " ")}, follow_redirects=False
        )
        assert signed.status_code == 303
        assert "Fatou" in (await phone.get("/")).text


async def test_no_consent_no_registration(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    before = await User.count()
    response = await post_form(
        client, "/tables/flamants-iris/residents", {**RESIDENT, "consent": ""}
    )
    assert response.status_code == 400
    assert t(CONSENT_REQUIRED) in response.text
    assert await User.count() == before


async def test_a_new_card_or_a_revocation_ends_the_old_one_everywhere(
    client: AsyncClient, app
) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, first = await register(client)
    async with make_client(app) as phone:
        await post_form(phone, "/card", {"code": first})
        assert "Fatou" in (await phone.get("/")).text
        reprint = await post_form(client, f"/tables/flamants-iris/residents/{user_id}/card", {})
        second = card_code(reprint.content)
        assert second != first
        assert "Fatou" not in (await phone.get("/")).text  # its session ended with the old card
        refused = await post_form(phone, "/card", {"code": first})
        assert refused.status_code == 400
        assert t(CARD_REFUSED) in refused.text
        revoke = await post_form(
            client,
            f"/tables/flamants-iris/residents/{user_id}/card/revoke",
            {},
            follow_redirects=False,
        )
        assert revoke.status_code == 303
        assert (await post_form(phone, "/card", {"code": second})).status_code == 400


async def test_other_tables_cannot_touch_these_residents(client: AsyncClient) -> None:
    world = await build_world()
    for role in ("facilitator_b", "coordinator_b", "resident_a"):
        await sign_in(client, world.users[role])
        assert (await client.get("/tables/flamants-iris/residents")).status_code == 403, role
        response = await post_form(client, "/tables/flamants-iris/residents", RESIDENT)
        assert response.status_code == 403, role
        card = await post_form(
            client, f"/tables/flamants-iris/residents/{world.users['resident_a']}/card", {}
        )
        assert card.status_code == 403, role
    # A resident of another table, through this table's URL: not found, no card.
    await sign_in(client, world.users["facilitator_a"])
    other = await post_form(
        client, f"/tables/flamants-iris/residents/{world.users['resident_b']}/card", {}
    )
    assert other.status_code == 404
    assert await LoginCard.count() == 0


async def test_unverified_facilitators_must_confirm_first(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"], verified=False)
    response = await post_form(client, "/tables/flamants-iris/residents", RESIDENT)
    assert response.status_code == 401
    assert await LoginCard.count() == 0


async def test_guessing_card_codes_is_throttled(client: AsyncClient) -> None:
    await build_world()
    statuses = [
        (await post_form(client, "/card", {"code": f"AAAA-BBBB-CCCC-{n:04d}"})).status_code
        for n in range(11)
    ]
    assert statuses == [400] * 10 + [429]
