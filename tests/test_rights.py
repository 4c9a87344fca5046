"""A resident downloads their data and erases their account; what they did stays, unlinked."""

from __future__ import annotations

from httpx import AsyncClient

from accounts import rights
from accounts.models import Throttle, User
from accounts.throttle import storage_key
from meetings.models import Attendance, Speaker
from proposals.models import Comment, Proposal, Report, Support
from tests.factories import (
    PASSWORD,
    add_proposal,
    add_user,
    build_world,
    post_form,
    seat,
    sign_in,
    sign_out,
    t,
)
from tests.test_cards import register
from tests.test_meetings import schedule, start
from votes import services as votes
from votes.models import Ballot, Participation


async def vote_and_close(client: AsyncClient, world, proposal: int) -> int:
    await sign_in(client, world.users["facilitator_a"])
    opened = await post_form(
        client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"}, follow_redirects=False
    )
    vote_id = int(opened.headers["location"].rsplit("/", 1)[1])
    await sign_in(client, world.users["resident_a"])
    await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/votes/{vote_id}/close", {})
    return vote_id


async def test_download_holds_my_data_and_not_my_votes(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(
        world.table_a, "Réparer les ascenseurs", author=world.users["resident_a"]
    )
    vote_id = await vote_and_close(client, world, proposal)
    await sign_in(client, world.users["resident_a"])
    response = await client.get("/account/data.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["account"]["login"] == "resident-a"
    assert [p["title"] for p in data["proposals"]] == ["Réparer les ascenseurs"]
    assert [v["vote"] for v in data["votes_taken_part_in"]] == [vote_id]
    assert "yes" not in response.text  # the choice is nowhere linked to the person
    assert "password" not in response.text
    assert "totp_secret" not in response.text


async def test_erasing_keeps_proposals_and_counted_ballots(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(
        world.table_a, "Réparer les ascenseurs", author=world.users["resident_a"]
    )
    vote_id = await vote_and_close(client, world, proposal)
    await sign_in(client, world.users["resident_a"])
    refused = await post_form(client, "/account/erase", {"password": "wrong", "confirm": "yes"})
    assert refused.status_code == 400
    assert t(rights.WRONG_PASSWORD) in refused.text
    unconfirmed = await post_form(client, "/account/erase", {"password": PASSWORD})
    assert unconfirmed.status_code == 400
    assert await User.exists().where(User.id == world.users["resident_a"])

    erased = await post_form(
        client, "/account/erase", {"password": PASSWORD, "confirm": "yes"}, follow_redirects=False
    )
    assert erased.status_code == 303
    assert not await User.exists().where(User.id == world.users["resident_a"])
    stored = await Proposal.select(Proposal.author).where(Proposal.id == proposal).first()
    assert stored["author"] is None
    page = await client.get(f"/proposals/{proposal}")
    assert t("a resident") in page.text
    assert (await votes.yes_no_counts([vote_id]))[vote_id] == {"yes": 1, "no": 0, "abstain": 0}
    assert await Ballot.count() == 1
    assert await Participation.count() == 1  # still counted as having taken part, by nobody


async def test_a_card_resident_erases_without_a_password(client: AsyncClient, app) -> None:
    from tests.conftest import make_client

    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id, code = await register(client)
    async with make_client(app) as phone:
        await post_form(phone, "/card", {"code": code})
        account = await phone.get("/account")
        assert (
            'name="password"'
            not in account.text.split('action="/account/erase"')[1].split("</form>")[0]
        )
        erased = await post_form(
            phone, "/account/erase", {"confirm": "yes"}, follow_redirects=False
        )
        assert erased.status_code == 303
    assert not await User.exists().where(User.id == user_id)


async def test_erasing_leaves_nothing_of_the_person_in_discussions_meetings_or_throttles(
    client: AsyncClient,
) -> None:
    world = await build_world()
    login = "zoubida." + "l" * 110  # long enough for its throttle key to be stored as a digest
    email = "zoubida@example.org"
    user_id = await add_user(login, "Zoubida")
    await User.update({User.email: email}).where(User.id == user_id)
    await seat(user_id, world.table_a)
    proposal = await add_proposal(world.table_a, author=world.users["resident_a"])

    await sign_in(client, user_id)
    assert (await post_form(client, f"/proposals/{proposal}/support", {})).status_code in (302, 303)
    said = "Je suis d'accord, mon ascenseur est en panne au 5e."
    await post_form(client, f"/proposals/{proposal}/comments", {"body": said})
    comment_id = (await Comment.select(Comment.id).where(Comment.author == user_id))[0]["id"]
    await post_form(client, f"/proposals/{proposal}/report", {"reason": "Un doublon, je crois"})
    await sign_in(client, world.users["resident_a"])
    await post_form(client, f"/proposals/{proposal}/support", {})
    await post_form(
        client, f"/proposals/{proposal}/comments", {"body": "Moi aussi.", "parent": comment_id}
    )

    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    for name in ("Zoubida", "Karim"):
        await post_form(client, f"/meetings/{meeting_id}/speakers", {"name": name})
    for person in (user_id, world.users["resident_a"]):
        await sign_in(client, person)
        assert (await post_form(client, f"/meetings/{meeting_id}/check-in", {})).status_code == 303

    sign_out(client)
    failed = await post_form(client, "/login", {"login": login, "password": "pas le bon"})
    assert failed.status_code == 400
    await post_form(client, "/password/forgot", {"email": email})
    keys = {row["key"] for row in await Throttle.select(Throttle.key)}
    mine = {storage_key(f"login:account:{login}"), storage_key(f"reset:email:{email}")}
    assert mine <= keys

    await sign_in(client, user_id)
    data = (await client.get("/account/data.json")).json()
    assert [c["body"] for c in data["comments"]] == [said]
    assert [s["proposal"] for s in data["supports"]] == [proposal]
    assert [r["reason"] for r in data["reports"]] == ["Un doublon, je crois"]

    erased = await post_form(
        client, "/account/erase", {"password": PASSWORD, "confirm": "yes"}, follow_redirects=False
    )
    assert erased.status_code == 303

    keys = {row["key"] for row in await Throttle.select(Throttle.key)}
    assert not keys & mine
    assert not any(login[:20] in key or email in key for key in keys)
    speakers = [row["name"] for row in await Speaker.select(Speaker.name)]
    assert sorted(speakers) == sorted([rights.ERASED_NAME, "Karim"])  # the queue keeps its turns
    attendance = await Attendance.select(Attendance.user, Attendance.person, Attendance.name)
    assert len(attendance) == 2  # still counted
    assert all(row["user"] != user_id for row in attendance)
    assert f"user:{user_id}" not in {row["person"] for row in attendance}
    assert not any("Zoubida" in row["name"] for row in attendance)
    comment = await Comment.select().where(Comment.id == comment_id).first()
    assert comment["author"] is None
    assert comment["body"] == ""
    assert await Comment.count().where(Comment.parent == comment_id) == 1  # the thread stays
    assert await Report.count() == 0
    assert await Support.count() == 1
    stored = await Proposal.select(Proposal.supports).where(Proposal.id == proposal).first()
    assert stored["supports"] == 1
    page = await client.get(f"/proposals/{proposal}")
    assert said not in page.text
    assert t(rights.ERASED_COMMENT) in page.text
    assert "Moi aussi." in page.text


async def test_guessing_the_password_on_the_erasure_form_is_throttled(client: AsyncClient) -> None:
    """A borrowed session (a phone passed round at a meeting) must not guess the password here
    without limit: a right guess would erase the account."""
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    statuses = [
        (
            await post_form(client, "/account/erase", {"password": f"guess-{n}", "confirm": "yes"})
        ).status_code
        for n in range(6)
    ]
    assert statuses == [400] * 5 + [429]
    right = await post_form(client, "/account/erase", {"password": PASSWORD, "confirm": "yes"})
    assert right.status_code == 429
    assert await User.exists().where(User.id == world.users["resident_a"])
