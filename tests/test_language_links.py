"""The language links work from every page, a form's answer included (issue 12)."""

from __future__ import annotations

import re

from httpx import AsyncClient

from tests.factories import add_proposal, build_world, post_form, sign_in
from tests.test_votes import open_vote_on

LINK = re.compile(r'<a href="([^"]+)" lang="ar" hreflang="ar"')


async def test_after_a_refused_ballot_the_arabic_link_leads_to_the_vote_in_arabic(
    client: AsyncClient,
) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"], verified=False)
    refused = await post_form(
        client,
        f"/votes/{vote_id}/ballot",
        {"choice": "peut-être"},
        headers={"referer": f"http://testserver.local/votes/{vote_id}"},
    )
    assert refused.status_code == 400
    (link,) = LINK.findall(refused.text)
    assert link == f"/votes/{vote_id}?lang=ar"
    followed = await client.get(link.replace("&amp;", "&"))
    assert followed.status_code == 200
    assert '<html lang="ar" dir="rtl">' in followed.text


async def test_a_form_answer_without_referer_offers_home_and_never_another_site(
    client: AsyncClient,
) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"], verified=False)
    for referer, expected in (
        (None, "/?lang=ar"),
        ("https://evil.example//evil.example/x", "/?lang=ar"),
        (f"https://evil.example/votes/{vote_id}?lang=fr&x=1", f"/votes/{vote_id}?x=1&lang=ar"),
    ):
        headers = {"referer": referer} if referer else {}
        refused = await post_form(
            client, f"/votes/{vote_id}/ballot", {"choice": "?"}, headers=headers
        )
        (link,) = LINK.findall(refused.text)
        assert link.replace("&amp;", "&") == expected, referer


async def test_pages_read_by_get_keep_their_query_only_links(client: AsyncClient) -> None:
    await build_world()
    page = await client.get("/tables/flamants-iris?theme=housing")
    (link,) = LINK.findall(page.text)
    assert link.replace("&amp;", "&") == "?theme=housing&lang=ar"
