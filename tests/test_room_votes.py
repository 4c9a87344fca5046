"""Voting in the room: the shared tablet, paper batches entered twice, a show of hands, one
roll for every channel."""

from __future__ import annotations

import json

from httpx import AsyncClient

from audit.models import AuditEntry
from meetings import room as room_service
from meetings.models import RoomCount
from tests.factories import post_form, sign_in, t
from tests.room_world import build_room, fresh_code
from votes.models import Participation, VoteOption
from votes.services import ON_ROLL


async def roll(vote_id: int) -> dict[str, str]:
    rows = await Participation.select(Participation.person, Participation.channel).where(
        Participation.vote == vote_id
    )
    return {row["person"]: row["channel"] for row in rows}


async def test_the_tablet_goes_from_hand_to_hand_and_forgets_each_ballot(
    client: AsyncClient,
) -> None:
    room = await build_room(client)
    facilitator = room.world.users["facilitator_a"]
    vote = room.vote_id
    start = await post_form(
        client, f"/votes/{vote}/tablet/start", {"code": await fresh_code(room, facilitator)}
    )
    assert start.status_code == 303, start.text[-2000:]
    listed = await client.get(f"/votes/{vote}/tablet")
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    for name in ("Samira", "Karim", "Nadia", "Fatou"):
        assert name in listed.text
    # Karim's language is Arabic: the ballot is in Arabic.
    handed = await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Karim"]})
    assert handed.status_code == 303
    ballot = await client.get(f"/votes/{vote}/tablet/ballot")
    assert ballot.status_code == 200, ballot.text[-2000:]
    assert 'lang="ar" dir="rtl"' in ballot.text
    assert ballot.headers["cache-control"] == "no-store"
    # Anything else leads back to the tablet.
    for elsewhere in ("/", "/account", f"/votes/{vote}", "/tables/flamants-iris"):
        away = await client.get(elsewhere, follow_redirects=False)
        assert away.status_code == 303, elsewhere
        assert away.headers["location"] == f"/votes/{vote}/tablet"
    escape = await post_form(client, "/logout", {}, follow_redirects=False)
    assert escape.headers["location"] == f"/votes/{vote}/tablet"
    handover = ballot.text.split('name="handover" value="', 1)[1].split('"', 1)[0]
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert sent.status_code == 303, sent.text[-2000:]
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    done = await client.get(f"/votes/{vote}/tablet/done")
    assert done.status_code == 200
    assert done.headers["cache-control"] == "no-store"
    # Reloading, or going back to the ballot, shows nothing of it.
    again = await client.get(f"/votes/{vote}/tablet/done", follow_redirects=False)
    assert again.headers["location"] == f"/votes/{vote}/tablet"
    back = await client.get(f"/votes/{vote}/tablet/ballot", follow_redirects=False)
    assert back.headers["location"] == f"/votes/{vote}/tablet"
    # The same form sent again records nothing.
    twice = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
    )
    assert twice.status_code == 303
    assert twice.headers["location"] == f"/votes/{vote}/tablet"
    assert (await roll(vote)) == {room.people["Karim"]: "tablet"}
    journal = await AuditEntry.select(AuditEntry.action, AuditEntry.subject).where(
        AuditEntry.action == "vote.cast_on_tablet"
    )
    assert len(journal) == 1
    assert journal[0]["subject"].startswith("participation:")
    # Karim is no longer on the list; the walk-in votes next.
    listed = await client.get(f"/votes/{vote}/tablet")
    assert "Karim" not in listed.text
    assert "Fatou" in listed.text
    await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Fatou"]})
    ballot = await client.get(f"/votes/{vote}/tablet/ballot")
    assert 'lang="fr"' in ballot.text
    handover = ballot.text.split('name="handover" value="', 1)[1].split('"', 1)[0]
    await post_form(client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover})
    assert (await roll(vote))[room.people["Fatou"]] == "tablet"
    # A wrong code does not end tablet mode; the right one does.
    wrong = await post_form(client, f"/votes/{vote}/tablet/quit", {"code": "000000"})
    assert wrong.status_code == 400
    assert (await client.get("/account", follow_redirects=False)).status_code == 303
    quit_ = await post_form(
        client, f"/votes/{vote}/tablet/quit", {"code": await fresh_code(room, facilitator)}
    )
    assert quit_.status_code == 303
    assert quit_.headers["location"] == f"/votes/{vote}/room"
    assert (await client.get("/account", follow_redirects=False)).status_code == 200


async def test_a_paper_batch_counts_when_two_entries_agree(client: AsyncClient) -> None:
    room = await build_room(client)
    vote = room.vote_id
    people = [room.people[name] for name in ("Samira", "Nadia", "Fatou")]
    handed = await post_form(client, f"/votes/{vote}/room/paper", {"person": people})
    assert handed.status_code == 303, handed.text[-2000:]
    assert set((await roll(vote)).values()) == {"paper"}
    # Samira got paper: she cannot vote online now.
    await sign_in(client, room.users["Samira"], verified=False)
    online = await post_form(client, f"/votes/{vote}/ballot", {"choice": "yes"})
    assert online.status_code == 409, online.text[-2000:]
    assert t(ON_ROLL["paper"]) in online.text
    await sign_in(client, room.world.users["facilitator_a"])
    batch = await post_form(client, f"/votes/{vote}/room/batches", {})
    assert batch.status_code == 303
    count_url = batch.headers["location"]
    page = await client.get(count_url)
    field = page.text.split('name="o', 1)[1].split("-g0", 1)[0]
    figures = {
        "ballots": "3",
        "blank": "1",
        "spoilt": "0",
        f"o{field}-g0": "1",
        f"o{field}-g1": "1",
        f"o{field}-g2": "0",
    }
    first = await post_form(client, count_url, figures)
    assert first.status_code == 303, first.text[-3000:]
    # A second facilitator (the coordinator) enters different figures: nothing is counted.
    await sign_in(client, room.world.users["coordinator_a"])
    other = await post_form(
        client, count_url, {**figures, f"o{field}-g0": "2", f"o{field}-g1": "0"}
    )
    assert other.status_code == 303
    shown = await client.get(count_url)
    assert (
        t(
            "The two entries differ on these lines. Count them again and correct your entry; nothing is counted until both agree."
        )
        in shown.text
    )
    # Corrected, it agrees and is recorded.
    fixed = await post_form(client, count_url, figures)
    assert fixed.status_code == 303
    shown = await client.get(count_url)
    assert (
        t("Recorded: both entries agree, and the figures are counted with the vote.") in shown.text
    )
    await sign_in(client, room.world.users["facilitator_a"])
    closed = await post_form(client, f"/votes/{vote}/close", {}, follow_redirects=False)
    assert closed.status_code == 303, closed.text[-2000:]
    box = await client.get(f"/votes/{vote}/ballots.json")
    data = json.loads(box.text)
    assert data["tallies"] == {next(iter(data["tallies"])): [1, 1, 0]}
    assert data["vote"]["participants"] == 3


async def test_a_show_of_hands_is_only_for_a_vote_for_or_against(client: AsyncClient) -> None:
    room = await build_room(client, method="majority_judgment")
    refused = await post_form(client, f"/votes/{room.vote_id}/room/hands", {})
    assert refused.status_code == 409
    assert t(room_service.HANDS_YES_NO_ONLY) in refused.text
    assert await roll(room.vote_id) == {}
    assert not await RoomCount.exists().where(RoomCount.vote == room.vote_id)


async def test_a_show_of_hands_takes_everyone_present_who_has_not_voted(
    client: AsyncClient,
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    facilitator = room.world.users["facilitator_a"]
    await sign_in(client, room.users["Samira"], verified=False)
    online = await post_form(client, f"/votes/{vote}/ballot", {"choice": "no"})
    assert online.status_code == 200, online.text[-2000:]
    await sign_in(client, facilitator)
    hands = await post_form(client, f"/votes/{vote}/room/hands", {})
    assert hands.status_code == 303, hands.text[-2000:]
    count_url = hands.headers["location"]
    assert await roll(vote) == {
        room.people["Samira"]: "online",
        room.people["Karim"]: "hands",
        room.people["Nadia"]: "hands",
        room.people["Fatou"]: "hands",
    }
    # A latecomer joins the same show of hands.
    came = await post_form(
        client, f"/meetings/{room.meeting_id}/attendance/walk-in", {"name": "Omar"}
    )
    assert came.status_code == 303
    again = await post_form(client, f"/votes/{vote}/room/hands", {})
    assert again.headers["location"] == count_url
    assert (await roll(vote))["name:omar"] == "hands"
    (option,) = [
        row["id"] for row in await VoteOption.select(VoteOption.id).where(VoteOption.vote == vote)
    ]
    too_many = {f"o{option}-g0": "4", f"o{option}-g1": "1", f"o{option}-g2": "0"}
    over = await post_form(client, count_url, too_many)
    assert over.status_code in (400, 409), over.text[-2000:]
    assert t(room_service.MORE_HANDS_THAN_PEOPLE, hands=5, people=4) in over.text
    figures = {f"o{option}-g0": "3", f"o{option}-g1": "1", f"o{option}-g2": "0"}
    assert (await post_form(client, count_url, figures)).status_code == 303
    await sign_in(client, room.world.users["coordinator_a"])
    assert (await post_form(client, count_url, figures)).status_code == 303
    assert (
        t("Recorded: both entries agree, and the figures are counted with the vote.")
        in (await client.get(count_url)).text
    )
    closed = await post_form(client, f"/votes/{vote}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]
    data = json.loads((await client.get(f"/votes/{vote}/ballots.json")).text)
    (key,) = data["tallies"]
    assert data["tallies"] == {key: [3, 1, 0]}
    assert [ballot["choices"][key] for ballot in data["ballots"]] == ["no"]
    assert data["vote"]["participants"] == 5
    (stored,) = await VoteOption.select(VoteOption.tally).where(VoteOption.id == option)
    assert json.loads(stored["tally"]) == [3, 2, 0]
