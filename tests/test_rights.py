"""A resident downloads their data and erases their account; what they did stays, unlinked."""

from __future__ import annotations

from httpx import AsyncClient

from accounts import rights
from accounts.models import User
from proposals.models import Proposal
from tests.factories import PASSWORD, add_proposal, build_world, post_form, sign_in, t
from tests.test_cards import register
from votes import services as votes
from votes.models import Participation


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
    assert (await votes.tallies([vote_id]))[vote_id] == {"yes": 1}
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
