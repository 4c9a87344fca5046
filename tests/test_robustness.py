"""Odd requests get clear refusals, never a crash (found in review, kept fixed here)."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from exports.models import Brief
from proposals.models import ADOPTED, Proposal
from tables.models import Membership
from tests.factories import add_proposal, add_table, build_world, post_form, sign_in, t


@pytest.mark.parametrize(
    "url",
    [
        "/votes/2147483648",
        "/votes/99999999999999999999",
        "/proposals/9223372036854775808",
        "/api/v1/votes/2147483648",
        "/votes/0",
        "/tables/%00",
        "/briefs/a%00b",
        "/api/v1/tables/%00/proposals",
        "/tables/UPPER",
    ],
)
async def test_out_of_range_ids_and_odd_slugs_are_refused_cleanly(
    client: AsyncClient, url: str
) -> None:
    response = await client.get(url)
    assert response.status_code in (400, 404), response.text[:300]


async def test_nul_bytes_in_a_login_are_a_wrong_login(client: AsyncClient) -> None:
    await build_world()
    response = await post_form(client, "/login", {"login": "resident-a\x00", "password": "x" * 10})
    assert response.status_code == 400
    assert t("This login and password do not match.") in response.text


async def test_on_behalf_of_an_absurd_person_id_is_a_form_error(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    data = {
        "title": "Des bancs devant l'école",
        "body": "Les parents attendent debout.",
        "theme": "public_space",
        "author": "999999999999",
    }
    response = await post_form(client, "/tables/flamants-iris/proposals", data)
    assert response.status_code == 400
    assert await Proposal.count() == 0


async def test_csrf_protection_holds_whatever_the_slug_contains(client: AsyncClient) -> None:
    """The exclusions for /api and /schema once matched anywhere in a path."""
    world = await build_world()
    await add_table("schema-saint-louis", "avec-nous")
    await add_table("api-campagne", "avec-nous")
    await sign_in(client, world.users["outsider"])
    await client.get("/login")
    for slug in ("schema-saint-louis", "api-campagne"):
        response = await client.post(f"/tables/{slug}/join", data={})
        assert response.status_code == 403, slug
    assert not await Membership.exists().where(Membership.user == world.users["outsider"])


async def test_language_links_stay_on_this_site(client: AsyncClient) -> None:
    response = await client.get("//evil.example/phish")
    assert "//evil.example" not in response.text
    page = await client.get("/login?next=/x")
    assert 'href="?next=%2Fx&amp;lang=ar"' in page.text


async def test_anonymous_form_posts_say_to_sign_in(client: AsyncClient) -> None:
    await build_world()
    response = await post_form(client, "/tables/flamants-iris/join", {})
    assert response.status_code == 401
    assert t("Please sign in first.") in response.text


async def test_publishing_twice_makes_one_brief(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs", status=ADOPTED)
    await sign_in(client, world.users["facilitator_a"])
    brief = {"title": "Nos priorités", "addressed_to": "Conseil citoyen du 14e"}
    first = await post_form(client, "/tables/flamants-iris/briefs", brief, follow_redirects=False)
    second = await post_form(client, "/tables/flamants-iris/briefs", brief, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"] == "/briefs/nos-priorites"
    assert await Brief.count() == 1
    other = {**brief, "addressed_to": "Métropole Aix-Marseille-Provence"}
    third = await post_form(client, "/tables/flamants-iris/briefs", other, follow_redirects=False)
    assert third.headers["location"] == "/briefs/nos-priorites-2"
