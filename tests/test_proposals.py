"""Submitting proposals, directly and on a resident's behalf, and every refusal."""

from __future__ import annotations

import json
import re

from httpx import AsyncClient

from audit.models import AuditEntry
from proposals.models import Proposal
from tables.services import NOT_A_MEMBER
from tests.factories import build_world, post_form, sign_in, t
from voix.forms import REQUIRED, TOO_LONG, TOO_SHORT, UNKNOWN_CHOICE

VALID = {
    "title": "Éclairer le chemin de l'école",
    "body": "Le passage est plongé dans le noir dès 17 heures en hiver.",
    "theme": "public_space",
    "language": "fr",
}


async def count() -> int:
    return await Proposal.count()


async def test_resident_proposes_to_their_table(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    response = await post_form(
        client, "/tables/flamants-iris/proposals", VALID, follow_redirects=False
    )
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert "Éclairer le chemin de l&#39;école" in page.text
    assert t("Thank you! Your proposal has been added.") in page.text
    stored = await Proposal.select().first()
    assert stored["author"] == world.users["resident_a"]
    assert stored["recorded_by"] is None
    listing = await client.get("/tables/flamants-iris")
    assert "Éclairer le chemin" in listing.text


async def test_facilitator_records_a_proposal_on_a_residents_behalf(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    form = await client.get("/tables/flamants-iris/proposals/new")
    assert 'name="author"' in form.text
    assert "Resident-A" in form.text
    data = {**VALID, "author": str(world.users["resident_a"]), "consent": "yes"}
    response = await post_form(
        client, "/tables/flamants-iris/proposals", data, follow_redirects=False
    )
    assert response.status_code == 303
    stored = await Proposal.select().first()
    assert stored["author"] == world.users["resident_a"]
    assert stored["recorded_by"] == world.users["facilitator_a"]
    (entry,) = await AuditEntry.select(AuditEntry.action, AuditEntry.subject, AuditEntry.details)
    assert (entry["action"], entry["subject"]) == (
        "proposal.recorded_on_behalf",
        f"proposal:{stored['id']}",
    )
    details = entry["details"]  # JSON: text on SQLite, decoded on PostgreSQL
    details = json.loads(details) if isinstance(details, str) else details
    assert details == {"resident": world.users["resident_a"]}
    # The resident's own data says who wrote it down for them, and when they agreed.
    await sign_in(client, world.users["resident_a"])
    (exported,) = (await client.get("/account/data.json")).json()["proposals"]
    assert exported["recorded_by"] == "Facilitator-A"
    assert exported["consent_recorded_at"]
    await sign_in(client, world.users["facilitator_a"])
    page = await client.get(response.headers["location"])
    assert (
        t(
            "Proposed by %(author)s, recorded by %(facilitator)s",
            author="Resident-A",
            facilitator="Facilitator-A",
        )
        in re.sub(r"<[^>]+>", "", page.text)  # the names sit in <bdi> isolates
    )


async def test_facilitator_records_for_a_resident_without_account(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        "/tables/flamants-iris/proposals",
        {**VALID, "author": "", "consent": "yes"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert (
        t(
            "Proposed by %(author)s, recorded by %(facilitator)s",
            author=t("a resident"),
            facilitator="Facilitator-A",
        )
        in re.sub(r"<[^>]+>", "", page.text)  # the names sit in <bdi> isolates
    )


async def test_on_behalf_of_someone_from_another_table_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    data = {**VALID, "author": str(world.users["resident_b"]), "consent": "yes"}
    response = await post_form(client, "/tables/flamants-iris/proposals", data)
    assert response.status_code == 400
    assert t(NOT_A_MEMBER) in response.text
    assert await count() == 0


async def test_anonymous_visitor_is_sent_to_sign_in(client: AsyncClient) -> None:
    await build_world()
    response = await client.get("/tables/flamants-iris/proposals/new", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"].startswith("/login?next=/tables/flamants-iris")
    posted = await post_form(client, "/tables/flamants-iris/proposals", VALID)
    assert posted.status_code == 401
    assert await count() == 0


async def test_proposal_to_a_table_one_does_not_belong_to_is_forbidden(client: AsyncClient) -> None:
    world = await build_world()
    for role in ("resident_b", "facilitator_b", "coordinator_b", "outsider"):
        await sign_in(client, world.users[role])
        response = await post_form(client, "/tables/flamants-iris/proposals", VALID)
        assert response.status_code == 403, role
        assert t("You are not allowed to do this.") in response.text
    assert await count() == 0


async def test_invalid_fields_are_explained_and_nothing_is_stored(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    cases = [
        ({"title": ""}, t(REQUIRED)),
        ({"title": "   \u200b  "}, t(REQUIRED)),
        ({"title": "x" * 141}, t(TOO_LONG, max=140)),
        ({"body": "court"}, t(TOO_SHORT, min=10)),
        ({"body": "y" * 4001}, t(TOO_LONG, max=4000)),
        ({"theme": "weather"}, t(UNKNOWN_CHOICE)),
        ({"theme": ""}, t(REQUIRED)),
        ({"language": "de"}, t(UNKNOWN_CHOICE)),
    ]
    for change, message in cases:
        response = await post_form(client, "/tables/flamants-iris/proposals", {**VALID, **change})
        assert response.status_code == 400, change
        assert message in response.text, change
        if {"title", "body"} & set(change):
            assert 'aria-invalid="true"' in response.text
    assert await count() == 0


async def test_arabic_error_messages(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    response = await post_form(
        client, "/tables/flamants-iris/proposals?lang=ar", {**VALID, "title": ""}
    )
    assert response.status_code == 400
    assert 'dir="rtl"' in response.text
    assert t(REQUIRED, "ar") in response.text


async def test_missing_or_wrong_csrf_token_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    await client.get("/login")
    missing = await client.post("/tables/flamants-iris/proposals", data=VALID)
    assert missing.status_code == 403
    assert t("This form has expired. Go back, reload the page and try again.") in missing.text
    wrong = await client.post(
        "/tables/flamants-iris/proposals", data={**VALID, "_csrf_token": "forged"}
    )
    assert wrong.status_code == 403
    assert await count() == 0


async def test_markup_in_a_proposal_is_shown_as_text(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    data = {**VALID, "title": "<script>alert('x')</script> lampadaires"}
    response = await post_form(
        client, "/tables/flamants-iris/proposals", data, follow_redirects=False
    )
    page = await client.get(response.headers["location"])
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text
