"""A page of their own (issue 12): what a resident did, on their account page and on the
readable page of their data; never how they voted, never anyone else's; lists that stay short
however much a person does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import AsyncClient

from accounts import mine
from accounts.models import User
from meetings.models import Attendance
from proposals.discussion import STATUS_LABELS
from proposals.models import Comment, Proposal, Support
from tests.factories import add_proposal, build_world, post_form, sign_in, t
from tests.test_meetings import schedule, start
from tests.test_queries import queries_for
from voix import db
from votes.models import Participation

VOTE_QUESTION = "Adopter la réparation des ascenseurs ?"
OPEN_QUESTION = "Adopter le jardin partagé ?"
MEETING_TITLE = "Réunion de printemps des Flamants"
MY_COMMENT = "Le jardin pourrait avoir un composteur."
THEIR_TITLE = "Un banc devant l’école des Aygalades"
THEIR_COMMENT = "Et des arbres pour l’ombre."
# What a choice reads as on a page: none of them may appear on the page of one who voted.
CHOICE_LABELS = ("For", "Against", "Abstain")


async def open_vote(client: AsyncClient, world: Any, proposal: int, question: str) -> int:
    await sign_in(client, world.users["facilitator_a"])
    opened = await post_form(
        client, f"/proposals/{proposal}/votes", {"question": question}, follow_redirects=False
    )
    assert opened.status_code == 303, opened.text[-500:]
    return int(opened.headers["location"].rsplit("/", 1)[1])


async def busy_world(client: AsyncClient) -> dict[str, Any]:
    """Resident A proposes, supports, comments, comes to a meeting and votes twice (once in a
    vote still open); resident B does the same kind of things at the other table."""
    world = await build_world()
    a, b = world.users["resident_a"], world.users["resident_b"]
    mine_ = await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G", author=a)
    garden = await add_proposal(world.table_a, "Un jardin partagé au pied de la tour")
    theirs = await add_proposal(world.table_b, THEIR_TITLE, author=b)
    bench = await add_proposal(world.table_b, "Des bancs au square")

    await sign_in(client, a)
    assert (await post_form(client, f"/proposals/{garden}/support", {})).status_code == 303
    await post_form(client, f"/proposals/{garden}/comments", {"body": MY_COMMENT})
    await sign_in(client, b)
    assert (await post_form(client, f"/proposals/{bench}/support", {})).status_code == 303
    await post_form(client, f"/proposals/{bench}/comments", {"body": THEIR_COMMENT})

    meeting = await schedule(client, world, title=MEETING_TITLE)
    await start(client, meeting)
    await sign_in(client, a)
    assert (await post_form(client, f"/meetings/{meeting}/check-in", {})).status_code == 303

    closed = await open_vote(client, world, mine_, VOTE_QUESTION)
    still_open = await open_vote(client, world, garden, OPEN_QUESTION)
    await sign_in(client, a)
    assert (await post_form(client, f"/votes/{closed}/ballot", {"choice": "no"})).status_code in (
        200,
        303,
    )
    assert (
        await post_form(client, f"/votes/{still_open}/ballot", {"choice": "abstain"})
    ).status_code in (200, 303)
    await sign_in(client, world.users["facilitator_a"])
    assert (await post_form(client, f"/votes/{closed}/close", {})).status_code == 303
    assert await Participation.count().where(Participation.user == a) == 2
    assert await Attendance.count().where(Attendance.user == a) == 1
    return {
        "world": world,
        "mine": mine_,
        "garden": garden,
        "theirs": theirs,
        "meeting": meeting,
        "closed": closed,
        "open": still_open,
    }


def section(html: str, slug: str) -> str:
    """The part of the account page that lists one kind of thing."""
    found = re.search(
        rf'<section class="panel mine" aria-labelledby="{slug}-title">(.*?)</section>', html, re.S
    )
    assert found, slug
    return found.group(1)


async def test_a_resident_sees_what_they_did_and_never_how_they_voted(client: AsyncClient) -> None:
    made = await busy_world(client)
    world = made["world"]
    await sign_in(client, world.users["resident_a"])
    page = await client.get("/account")
    assert page.status_code == 200
    html = page.text

    proposals = section(html, "proposals")
    assert "Réparer les ascenseurs de la tour G" in proposals
    assert f'href="/proposals/{made["mine"]}"' in proposals
    status = (await Proposal.select(Proposal.status).where(Proposal.id == made["mine"]).first())[
        "status"
    ]
    assert t(STATUS_LABELS[status]) in proposals

    supports = section(html, "supports")
    assert "Un jardin partagé au pied de la tour" in supports
    assert f'href="/proposals/{made["garden"]}"' in supports
    comments = section(html, "comments")
    assert MY_COMMENT in comments
    meetings = section(html, "meetings")
    assert MEETING_TITLE in meetings
    assert f'href="/meetings/{made["meeting"]}"' in meetings

    votes = section(html, "votes")
    assert VOTE_QUESTION in votes
    assert OPEN_QUESTION in votes
    assert f'href="/votes/{made["closed"]}">{t("See the result")}</a>' in votes
    assert f'href="/votes/{made["open"]}">{t("See the vote")}</a>' in votes
    assert t("online") in votes  # the channel: how one took part, not what one chose
    # How they voted is nowhere: no label of any choice, on the page or in the data.
    for label in CHOICE_LABELS:
        assert t(label) not in html, label
    data = await client.get("/account/data")
    for label in CHOICE_LABELS:
        assert t(label) not in data.text, label
    assert VOTE_QUESTION in data.text
    assert t("online") in data.text


async def test_another_residents_items_never_appear(client: AsyncClient) -> None:
    made = await busy_world(client)
    world = made["world"]
    await sign_in(client, world.users["resident_a"])
    for url in ("/account", "/account/data", "/account/data.json"):
        text = (await client.get(url)).text
        assert THEIR_TITLE not in text, url
        assert THEIR_COMMENT not in text, url
        assert "Des bancs au square" not in text, url
        assert "Resident-B" not in text, url

    await sign_in(client, world.users["resident_b"])
    page = (await client.get("/account")).text
    assert THEIR_TITLE in section(page, "proposals")
    assert THEIR_COMMENT in section(page, "comments")
    for theirs_not in (MY_COMMENT, VOTE_QUESTION, OPEN_QUESTION, MEETING_TITLE, "tour G"):
        assert theirs_not not in page, theirs_not
    assert t(mine.BY_KEY["votes_taken_part_in"].empty) in section(page, "votes")
    assert t(mine.BY_KEY["meetings_attended"].empty) in section(page, "meetings")
    for slug in ("votes", "meetings", "proposals", "supports", "comments"):
        data = (await client.get(f"/account/data/{slug}")).text
        for theirs_not in (MY_COMMENT, VOTE_QUESTION, MEETING_TITLE, "tour G", "jardin"):
            assert theirs_not not in data, (slug, theirs_not)


async def test_every_list_has_an_empty_state(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["outsider"])
    page = (await client.get("/account")).text
    for key in mine.ACTIVITY:
        listed = mine.BY_KEY[key]
        assert t(listed.empty) in section(page, listed.slug), key
    assert t(mine.BY_KEY["login_cards"].empty) in page
    data = (await client.get("/account/data")).text
    for listed in mine.SECTIONS:
        if listed.key != "sessions":  # the reader's own session is there
            assert t(listed.empty) in data, listed.key


def data_sections(html: str) -> dict[str, tuple[int, int]]:
    """Each list of the readable data page: (the total it says, the rows it shows)."""
    found = {}
    for slug, total, body in re.findall(
        r'<section class="panel data-section" id="data-([a-z]+)"[^>]*data-total="(\d+)">(.*?)'
        r"</section>",
        html,
        re.S,
    ):
        found[slug] = (int(total), body.count('<li class="data-item">'))
    return found


async def test_the_readable_data_page_holds_what_the_download_holds(client: AsyncClient) -> None:
    made = await busy_world(client)
    world = made["world"]
    await sign_in(client, world.users["resident_a"])
    download = (await client.get("/account/data.json")).json()
    page = await client.get("/account/data")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert 'href="/account/data.json"' in page.text
    shown = data_sections(page.text)
    assert set(shown) == {s.slug for s in mine.SECTIONS}
    for listed in mine.SECTIONS:
        rows = download[listed.key]
        assert shown[listed.slug] == (len(rows), min(len(rows), mine.LATEST)), listed.key
    assert len(download["proposals"]) == 1
    assert len(download["votes_taken_part_in"]) == 2
    assert len(download["meetings_attended"]) == 1
    assert len(download["comments"]) == 1
    # The same content, not only as many rows.
    for row in download["proposals"]:
        assert row["title"] in page.text
        assert row["body"] in page.text
    for row in download["comments"]:
        assert row["body"] in page.text
    for row in download["votes_taken_part_in"]:
        assert row["question"] in page.text
        assert f'href="/votes/{row["vote"]}"' in page.text
    for row in download["meetings_attended"]:
        assert row["title"] in page.text
    assert download["account"]["login"] in page.text

    # Each list on a page of its own says the same total.
    for listed in mine.SECTIONS:
        part = await client.get(f"/account/data/{listed.slug}")
        assert part.status_code == 200, listed.slug
        assert data_sections(part.text) == {
            listed.slug: (len(download[listed.key]), len(download[listed.key]))
        }, listed.slug
    assert (await client.get("/account/data/ballots")).status_code == 404
    assert (await client.get("/account/data/proposals?page=2")).status_code == 404


async def test_long_lists_show_the_latest_and_a_way_to_all(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build_world()
    resident = world.users["resident_a"]
    for i in range(mine.LATEST + 5):
        await add_proposal(world.table_a, f"Proposition numéro {i:02d}", author=resident)
    await sign_in(client, resident)
    page = (await client.get("/account")).text
    listed = section(page, "proposals")
    assert listed.count("<li>") == mine.LATEST
    assert f"Proposition numéro {mine.LATEST + 4:02d}" in listed  # the newest first
    assert "Proposition numéro 00" not in listed
    assert 'href="/account/data/proposals"' in listed
    assert t("See all %(num)d", num=mine.LATEST + 5) in listed

    monkeypatch.setattr(mine, "PAGE_SIZE", 10)
    seen: list[str] = []
    for number in (1, 2, 3):
        part = (await client.get(f"/account/data/proposals?page={number}")).text
        seen += re.findall(r"Proposition numéro (\d\d)", part)
        assert t("Page %(page)d of %(pages)d", page=number, pages=3) in part
    assert sorted(seen) == [f"{i:02d}" for i in range(mine.LATEST + 5)]
    assert (await client.get("/account/data/proposals?page=4")).status_code == 404


async def test_the_account_pages_do_not_grow_their_queries_with_the_rows(
    client: AsyncClient,
) -> None:
    world = await build_world()
    resident = world.users["resident_a"]
    garden = await add_proposal(world.table_a, "Un jardin partagé")

    async def grow(n: int) -> None:
        for _ in range(n):
            proposal = await add_proposal(world.table_a, author=resident)
            await Support.insert(Support(proposal=proposal, user=resident))
            await Comment.insert(Comment(proposal=garden, author=resident, body="Oui."))

    await sign_in(client, resident)
    urls = ["/account", "/account/data", "/account/data/comments"]
    await grow(mine.LATEST + 1)
    small = {url: await queries_for(client, url) for url in urls}
    await grow(60)
    large = {url: await queries_for(client, url) for url in urls}
    assert all(small.values()), "the query counter counted nothing"
    assert large == small


async def test_two_step_sign_in_is_for_those_who_manage_a_table(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    page = (await client.get("/account")).text
    assert t("Two-step sign-in") not in page
    assert 'action="/account/totp"' not in page
    assert 'id="totp-secret"' not in page
    # No key is made for someone who is not asked to set it up.
    stored = await User.select(User.totp_secret).where(User.id == world.users["resident_a"])
    assert stored[0]["totp_secret"] is None

    for manager in ("facilitator_a", "coordinator_a", "admin"):
        await sign_in(client, world.users[manager], verified=False)
        page = (await client.get("/account")).text
        assert t("Two-step sign-in") in page, manager
        assert 'id="totp-secret"' in page, manager
        assert 'action="/account/totp"' in page, manager


async def test_a_resident_chooses_their_language(client: AsyncClient) -> None:
    world = await build_world()
    resident = world.users["resident_a"]
    await sign_in(client, resident)
    page = (await client.get("/account")).text
    assert 'action="/account/language"' in page
    assert '<option value="fr" lang="fr" selected>' in page

    saved = await post_form(client, "/account/language", {"language": "ar"}, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/account?lang=ar")
    stored = await User.select(User.language).where(User.id == resident).first()
    assert stored["language"] == "ar"
    page = await client.get(saved.headers["location"])
    assert page.headers["content-language"] == "ar"
    assert '<html lang="ar" dir="rtl">' in page.text
    assert '<option value="ar" lang="ar" selected>' in page.text
    assert client.cookies.get("lang") == "ar"  # the site remembers it on this device

    refused = await post_form(client, "/account/language", {"language": "xx"})
    assert refused.status_code == 400
    assert (await User.select(User.language).where(User.id == resident).first())["language"] == "ar"


async def test_the_account_pages_are_for_the_signed_in(client: AsyncClient) -> None:
    await build_world()
    for url in ("/account", "/account/data", "/account/data/proposals"):
        response = await client.get(url, follow_redirects=False)
        assert response.status_code in (302, 303), url
        assert response.headers["location"].startswith("/login?next=")
    assert db.engine() is not None
