"""Parts of pages rendered once and kept (voix.fragments, issue 15): the header each reader
sees, home's next meetings and a closed vote's results on a proposal follow what they show,
and nobody is ever served another reader's part."""

from __future__ import annotations

import re

from httpx import AsyncClient

from accounts.models import User
from meetings.models import Meeting
from tests.factories import add_proposal, build_world, sign_in
from tests.test_meetings import schedule
from tests.test_votes import close_by_hand, open_vote_on

WHO = re.compile(r'<a class="who" href="/account" dir="auto">([^<]*)</a>')
LOGOUT_TOKEN = re.compile(r'action="/logout" class="inline"><input[^>]*value="([^"]+)"')


async def test_each_reader_gets_their_own_header_with_their_own_token(
    client: AsyncClient,
) -> None:
    world = await build_world()
    first, second = world.users["resident_a"], world.users["resident_b"]
    names = {}
    for user_id in (first, second):
        row = await User.select(User.display_name).where(User.id == user_id).first()
        names[user_id] = row["display_name"]
    assert names[first] != names[second]
    for _ in range(2):  # the second round reads what the first kept
        for user_id in (first, second):
            client.cookies.clear()
            await sign_in(client, user_id)
            page = await client.get("/")
            assert WHO.findall(page.text) == [names[user_id]]
            (token,) = LOGOUT_TOKEN.findall(page.text)
            assert token == client.cookies["csrftoken"]  # this reader's, never the other's
    await User.update({User.display_name: "Samia B."}).where(User.id == first)
    client.cookies.clear()
    await sign_in(client, first)
    assert WHO.findall((await client.get("/")).text) == ["Samia B."]
    client.cookies.clear()
    anonymous = await client.get("/")
    assert WHO.findall(anonymous.text) == []
    assert 'href="/login"' in anonymous.text


async def test_home_s_next_meetings_follow_a_change_to_a_meeting(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    client.cookies.clear()
    await sign_in(client, world.users["resident_a"])
    assert "Réunion de la table — rénovation" in (await client.get("/")).text
    await Meeting.update({Meeting.title: "Réunion déplacée au gymnase"}).where(
        Meeting.id == meeting_id
    )
    home = (await client.get("/")).text
    assert "Réunion déplacée au gymnase" in home
    assert "Réunion de la table — rénovation" not in home


async def test_a_closed_vote_s_results_on_a_proposal_show_once_closed(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    vote = await open_vote_on(client, world, proposal)
    await sign_in(client, world.users["resident_a"])
    opened = (await client.get(f"/proposals/{proposal}")).text
    assert f'href="/votes/{vote}"' in opened
    assert 'class="badge closed"' not in opened
    await close_by_hand(client, world, vote)
    await sign_in(client, world.users["resident_a"])
    for _ in range(2):  # rendered, then kept
        closed = (await client.get(f"/proposals/{proposal}")).text
        assert 'class="badge closed"' in closed
        assert 'class="badge open"' not in closed


async def test_a_ballot_reads_its_vote_s_options_as_they_stand(client: AsyncClient) -> None:
    """Each ballot's options are kept under the table's revision (votes.services.ballot_options):
    an option hidden or relabelled while the vote is open is what the next ballot reads."""
    from proposals.models import Proposal
    from tests.test_votes import open_vote_over
    from votes import services as votes
    from votes.models import VoteOption

    world = await build_world()
    first = await add_proposal(world.table_a, "Un banc devant l'école")
    second = await add_proposal(world.table_a, "Des arbres rue Mistral")
    vote_id = await open_vote_over(client, world, [first, second])
    vote, table = await votes.get_for_ballot(vote_id)
    shown = await votes.ballot_options(vote, table)
    assert [o["withdrawn"] for o in shown["options"]] == [False, False]
    shown["options"][0]["label"] = "changed by a caller"  # a copy: the kept one stays
    again = await votes.ballot_options(vote, table)
    assert again["options"][0]["label"] != "changed by a caller"
    await Proposal.update({Proposal.hidden_at: Proposal.created_at}).where(Proposal.id == second)
    await VoteOption.update({VoteOption.label: "Un banc, devant l'école"}).where(
        (VoteOption.vote == vote_id) & (VoteOption.proposal == first)
    )
    vote, moved = await votes.get_for_ballot(vote_id)
    assert moved["revision"] != table["revision"]
    now = await votes.ballot_options(vote, moved)
    assert [o["withdrawn"] for o in now["options"]] == [False, True]
    assert now["options"][0]["label"] == "Un banc, devant l'école"


CURRENT = re.compile(r'<a href="([^"]*)" lang="(\w+)" hreflang="\w+" aria-current="true">')


async def test_the_kept_language_links_follow_the_address_and_the_readers_language(
    client: AsyncClient,
) -> None:
    """The language links are kept apart from the reader's own links: one part per address and
    language, whoever reads it; a reader signed in after an anonymous one, another language or
    another address gets the links of their own page, marked in their own language."""
    world = await build_world()
    for _ in range(2):  # the second round reads what the first kept
        client.cookies.clear()
        anonymous = await client.get("/tables/flamants-iris?theme=housing")
        assert CURRENT.findall(anonymous.text) == [("?theme=housing&amp;lang=fr", "fr")]
        await sign_in(client, world.users["resident_a"])
        arabic = await client.get("/tables/flamants-iris?theme=housing&lang=ar")
        assert CURRENT.findall(arabic.text) == [("?theme=housing&amp;lang=ar", "ar")]
        assert WHO.findall(arabic.text), "the reader's own links, beside the kept language links"
        other = await client.get("/tables/flamants-iris?theme=transport&lang=en")
        assert CURRENT.findall(other.text) == [("?theme=transport&amp;lang=en", "en")]
        client.cookies.clear()
        elsewhere = await client.get("/tables/flamants-iris?theme=transport")
        assert CURRENT.findall(elsewhere.text) == [("?theme=transport&amp;lang=fr", "fr")]
