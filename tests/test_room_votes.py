"""Voting in the room: the shared tablet, paper batches entered twice, a show of hands, one
roll for every channel."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient, Response
from markupsafe import escape

from accounts.models import Session, Throttle
from audit.models import AuditEntry
from meetings import room as room_service
from meetings.models import PENDING, RoomCount, RoomCountEntry, Tablet
from meetings.services import WALK_IN_IS_MEMBER
from tests.conftest import DATABASE_KIND, make_client
from tests.factories import post_form, sign_in, t
from tests.room_world import (
    TABLET_PIN,
    Room,
    build_room,
    checked_in,
    device,
    fresh_code,
    hand_tablet,
    handover_of,
    start_tablet,
    unlock_tablet,
)
from voix import crypto
from voix.i18n import catalog
from voix.web import SESSION_COOKIE
from votes.closing import COUNT_PENDING
from votes.models import Participation, SealedBallot, Vote, VoteOption
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
    await start_tablet(client, room)
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
    handover = handover_of(ballot.text)
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
    # Karim is no longer on the list once the facilitator has taken the tablet back; the
    # walk-in votes next.
    await unlock_tablet(client, vote)
    listed = await client.get(f"/votes/{vote}/tablet")
    assert "Karim" not in listed.text
    assert "Fatou" in listed.text
    await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Fatou"]})
    ballot = await client.get(f"/votes/{vote}/tablet/ballot")
    assert 'lang="fr"' in ballot.text
    handover = handover_of(ballot.text)
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
    # Corrected, it is not compared with the first entry: both count again.
    fixed = await post_form(client, count_url, figures)
    assert fixed.status_code == 303
    (row,) = await RoomCount.select(RoomCount.status, RoomCount.round).where(RoomCount.vote == vote)
    assert row == {"status": PENDING, "round": 2}
    # The first counter sends theirs again: the two new entries agree and are recorded.
    await sign_in(client, room.world.users["facilitator_a"])
    again = await post_form(client, count_url, figures)
    assert again.status_code == 303
    shown = await client.get(count_url)
    assert (
        t("Recorded: both entries agree, and the figures are counted with the vote.") in shown.text
    )
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


# After the attack review


GIVE_BACK = "Thank you. Please give the tablet back to the facilitator."


def names_offered(page: str) -> list[str]:
    """The people a tablet page offers to hand the tablet to."""
    return re.findall(r'<input type="hidden" name="person" value="([^"]+)">', page)


def assert_locked(page: Response, vote: int, lang: str) -> None:
    """The tablet waits for the facilitator's PIN, in the last voter's language: no names."""
    assert page.headers["cache-control"] == "no-store"
    assert f'<html lang="{lang}"' in page.text
    assert t(GIVE_BACK, lang) in page.text
    assert f'action="/votes/{vote}/tablet/unlock"' in page.text
    assert f'action="/votes/{vote}/tablet/hand"' not in page.text
    assert names_offered(page.text) == []
    for name in ("Samira", "Karim", "Nadia", "Fatou"):
        assert name not in page.text


async def tablet_row(vote: int) -> dict:
    (row,) = await Tablet.select().where(Tablet.vote == vote)
    return row


async def test_the_voter_cannot_pick_the_next_name(client: AsyncClient) -> None:
    """Change 1: handed over, the tablet stays locked until the facilitator's PIN."""
    room = await build_room(client)
    vote = room.vote_id
    facilitator = room.world.users["facilitator_a"]
    # The PIN is 4 to 8 digits, asked for with the code; a wrong one starts nothing.
    for pin in ("", "123", "123456789", "12a4"):
        code = await fresh_code(room, facilitator)
        refused = await post_form(client, f"/votes/{vote}/tablet/start", {"code": code, "pin": pin})
        assert refused.status_code == 400, pin
        assert t(room_service.PIN_FORMAT) in refused.text
    assert not await Tablet.exists().where(Tablet.vote == vote)
    await start_tablet(client, room)
    row = await tablet_row(vote)
    assert row["locked"] is False
    assert len(row["pin_hash"]) == 64
    assert TABLET_PIN not in row["pin_hash"]
    listed = await client.get(f"/votes/{vote}/tablet")
    assert sorted(names_offered(listed.text)) == sorted(room.people.values())
    # Handed to Karim, who reads Arabic: he cancels, and the tablet shows no names.
    handed = await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Karim"]})
    assert handed.status_code == 303
    handover = handover_of((await client.get(f"/votes/{vote}/tablet/ballot")).text)
    cancel = await client.get(f"/votes/{vote}/tablet")
    assert_locked(cancel, vote, "ar")
    assert (await tablet_row(vote))["person"] == ""
    gone = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert gone.headers["location"] == f"/votes/{vote}/tablet"
    # Whoever holds the locked tablet finds no names: searching, live search, the ballot.
    for page in (
        await client.get(f"/votes/{vote}/tablet", params={"q": "Fatou"}),
        await client.get(f"/votes/{vote}/tablet", headers={"HX-Request": "true"}),
    ):
        assert_locked(page, vote, "ar")
    # Nor hand it to anyone: a name sent anyway is refused while it is locked.
    for name in ("Fatou", "Karim"):
        refused = await post_form(
            client, f"/votes/{vote}/tablet/hand", {"person": room.people[name]}
        )
        assert refused.status_code == 409, refused.text[-2000:]
        assert t(room_service.TABLET_LOCKED) in refused.text
        assert (await tablet_row(vote))["person"] == ""
        back = await client.get(f"/votes/{vote}/tablet/ballot")
        assert back.headers["location"] == f"/votes/{vote}/tablet"
    # A wrong PIN is said on the locked page; the names stay hidden.
    for pin in ("1357", "abcd", ""):
        wrong = await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": pin})
        assert wrong.status_code == 400, pin
        assert t(room_service.WRONG_PIN, "ar") in wrong.text
        assert_locked(wrong, vote, "ar")
        assert (await tablet_row(vote))["locked"] is True
    # The right PIN shows the names again, Karim's still among them (he did not vote).
    await unlock_tablet(client, vote)
    listed = await client.get(f"/votes/{vote}/tablet")
    assert sorted(names_offered(listed.text)) == sorted(room.people.values())
    # Karim votes this time: the thank-you screen, then the locked list again.
    handover = await hand_tablet(client, room, "Karim")
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
    )
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    assert (await client.get(f"/votes/{vote}/tablet/done")).status_code == 200
    assert_locked(await client.get(f"/votes/{vote}/tablet"), vote, "ar")
    # Five wrong PINs are refused as such; the sixth try, even the right PIN, is throttled.
    tablet_id = (await tablet_row(vote))["id"]
    for attempt in range(5):
        wrong = await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": f"000{attempt}"})
        assert wrong.status_code == 400
    for pin in ("9999", TABLET_PIN):
        throttled = await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": pin})
        assert throttled.status_code == 429, throttled.text[-2000:]
        assert (await tablet_row(vote))["locked"] is True
    assert await Throttle.exists().where(Throttle.key == f"tablet-pin:{tablet_id}")
    assert not await Throttle.exists().where(Throttle.key == f"totp:account:{facilitator}")
    assert await roll(vote) == {room.people["Karim"]: "tablet"}


async def test_a_tablet_started_again_after_a_throttled_pin_unlocks_with_its_own_pin(
    client: AsyncClient,
) -> None:
    """Whoever typed wrong PINs until the tablet refused them all cannot keep the room from
    voting: the facilitator stops the tablet with their code and starts it again."""
    room = await build_room(client)
    vote = room.vote_id
    facilitator = room.world.users["facilitator_a"]
    await start_tablet(client, room)
    await hand_tablet(client, room, "Samira")
    assert_locked(await client.get(f"/votes/{vote}/tablet"), vote, "fr")
    first = (await tablet_row(vote))["id"]
    for attempt in range(6):
        await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": f"111{attempt}"})
    throttled = await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": TABLET_PIN})
    assert throttled.status_code == 429
    quit_ = await post_form(
        client, f"/votes/{vote}/tablet/quit", {"code": await fresh_code(room, facilitator)}
    )
    assert quit_.headers["location"] == f"/votes/{vote}/room"
    await start_tablet(client, room, pin="97531")
    assert (await tablet_row(vote))["locked"] is False
    # (SQLite gives the new row the id of the one just deleted: `first` again.)
    assert (await tablet_row(vote))["id"] != first or DATABASE_KIND == "sqlite"
    handed = await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Nadia"]})
    assert handed.status_code == 303
    assert_locked(await client.get(f"/votes/{vote}/tablet"), vote, "fr")
    # The new tablet has its own PIN, and its own count of wrong ones.
    old_pin = await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": TABLET_PIN})
    assert old_pin.status_code == 400, old_pin.text[-2000:]
    await unlock_tablet(client, vote, pin="97531")
    assert "Nadia" in (await client.get(f"/votes/{vote}/tablet")).text


async def database_text() -> str:
    """Every row of every table, as text: what someone who copied the database would read."""
    if DATABASE_KIND == "postgres":
        tables = await Tablet.raw(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
    else:
        tables = await Tablet.raw("SELECT name FROM sqlite_master WHERE type = 'table'")
    dumped = []
    for table in tables:
        rows = await Tablet.raw(f'SELECT * FROM "{table["name"]}"')
        dumped.append(f"{table['name']}: {rows!r}")
    return "\n".join(dumped)


def receipt_on(page: str) -> str:
    found = re.search(r'<strong class="code">([0-9A-Z]{8})</strong>', page)
    assert found is not None, page[-2000:]
    return found.group(1)


async def test_the_tablet_receipt_is_never_in_the_database(
    client: AsyncClient, app: object
) -> None:
    """Change 2: the receipt goes to the thank-you screen in a short-lived encrypted cookie."""
    room = await build_room(client)
    vote = room.vote_id
    await start_tablet(client, room)
    (row,) = await Tablet.raw("SELECT * FROM tablet")
    assert "receipt" not in row
    assert "receipt" not in [column._meta.name for column in Tablet._meta.columns]
    handover = await hand_tablet(client, room, "Karim")
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    # Right after the ballot, before the thank-you screen: what the database holds.
    after_ballot = await database_text()
    tablet_after = await tablet_row(vote)
    (cookie,) = [c for c in sent.headers.get_list("set-cookie") if c.startswith("voix_tablet")]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert f"path=/votes/{vote}/tablet/done" in attributes
    assert "max-age=120" in attributes
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    sealed = client.cookies["voix_tablet_receipt"]
    done = await client.get(f"/votes/{vote}/tablet/done")
    assert done.status_code == 200
    assert done.headers["cache-control"] == "no-store"
    assert 'lang="ar"' in done.text
    receipt = receipt_on(done.text)
    assert receipt not in after_ballot
    assert receipt not in repr(tablet_after)
    assert receipt not in sealed
    assert receipt not in await database_text()
    # Shown once: the screen deletes the cookie; reloading finds the locked tablet.
    assert "voix_tablet_receipt" not in client.cookies
    again = await client.get(f"/votes/{vote}/tablet/done")
    assert again.status_code == 303
    assert again.headers["location"] == f"/votes/{vote}/tablet"
    assert receipt not in (await client.get(f"/votes/{vote}/tablet")).text
    # The same cookie sent again by hand shows it only to this tablet, for two minutes.
    session = client.cookies[SESSION_COOKIE]
    done_url = f"/votes/{vote}/tablet/done"

    async def done_with(session: str, sealed: str) -> Response:
        async with make_client(app) as replay:
            replay.cookies.update({SESSION_COOKIE: session, "voix_tablet_receipt": sealed})
            return await replay.get(done_url)

    assert receipt_on((await done_with(session, sealed)).text) == receipt
    stale = crypto.encrypt(f"{tablet_after['id']}:{receipt}", "tablet-receipt", undated=True)
    expired = await done_with(session, stale)
    assert expired.headers["location"] == f"/votes/{vote}/tablet"
    async with device(app, room.world.users["coordinator_a"]) as other:
        await start_tablet(other, room, manager="coordinator_a")
        elsewhere = await done_with(other.cookies[SESSION_COOKIE], sealed)
        assert elsewhere.headers["location"] == f"/votes/{vote}/tablet"
        assert receipt not in elsewhere.text
    # A thank-you screen skipped: the list, or the next handover, clears the receipt.
    for skipped_to in ("list", "hand"):
        name = {"list": "Fatou", "hand": "Nadia"}[skipped_to]
        handover = await hand_tablet(client, room, name)
        sent = await post_form(
            client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
        )
        assert sent.headers["location"] == done_url
        assert "voix_tablet_receipt" in client.cookies
        if skipped_to == "list":
            assert_locked(await client.get(f"/votes/{vote}/tablet"), vote, "fr")
        else:
            await hand_tablet(client, room, "Samira")
        assert "voix_tablet_receipt" not in client.cookies
        skipped = await client.get(done_url)
        assert skipped.headers["location"] == f"/votes/{vote}/tablet"


async def test_a_refused_tablet_ballot_is_said_on_the_tablet_in_the_voters_language(
    client: AsyncClient, app: object
) -> None:
    """Change 3: Karim, who reads Arabic, holds the tablet while another facilitator hands
    him a paper ballot; his tablet ballot is refused on the tablet, in Arabic."""
    room = await build_room(client)
    vote = room.vote_id
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    async with device(app, room.world.users["coordinator_a"]) as other:
        paper = await post_form(
            other, f"/votes/{vote}/room/paper", {"person": [room.people["Karim"]]}
        )
        assert paper.status_code == 303, paper.text[-2000:]
    refused = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert refused.status_code == 409, refused.text[-2000:]
    assert 'lang="ar" dir="rtl"' in refused.text
    assert t(ON_ROLL["paper"], "ar") in refused.text
    assert '<p class="error" role="alert">' in refused.text
    assert_locked(refused, vote, "ar")
    assert "voix_tablet_receipt" not in client.cookies
    assert await roll(vote) == {room.people["Karim"]: "paper"}
    assert await SealedBallot.count().where(SealedBallot.vote == vote) == 0
    row = await tablet_row(vote)
    assert (row["person"], row["handover"], row["locked"]) == ("", "", True)
    # The facilitator takes the tablet back; Karim is no longer on the list.
    await unlock_tablet(client, vote)
    listed = await client.get(f"/votes/{vote}/tablet")
    assert room.people["Karim"] not in names_offered(listed.text)
    assert room.people["Samira"] in names_offered(listed.text)


async def paper_count(client: AsyncClient, room: Room, names: tuple[str, ...]) -> tuple[str, int]:
    """Paper handed out to these people and a batch opened: (its address, the option)."""
    vote = room.vote_id
    people = [room.people[name] for name in names]
    handed = await post_form(client, f"/votes/{vote}/room/paper", {"person": people})
    assert handed.status_code == 303, handed.text[-2000:]
    batch = await post_form(client, f"/votes/{vote}/room/batches", {})
    assert batch.status_code == 303, batch.text[-2000:]
    (option,) = await VoteOption.select(VoteOption.id).where(VoteOption.vote == vote)
    return str(batch.headers["location"]), int(option["id"])


def paper(option: int, ballots: int, blank: int = 0, spoilt: int = 0, *marks: int) -> dict:
    figures = {"ballots": str(ballots), "blank": str(blank), "spoilt": str(spoilt)}
    return {**figures, **{f"o{option}-g{g}": str(n) for g, n in enumerate(marks)}}


async def test_a_count_that_cannot_be_finished_is_dropped(client: AsyncClient, app: object) -> None:
    """Change 5: an unrecorded count goes with its entries, audited; a recorded one stays."""
    room = await build_room(client)
    vote = room.vote_id
    url, option = await paper_count(client, room, ("Samira", "Nadia", "Fatou"))
    count_id = int(url.rsplit("/", 1)[1])
    page = await client.get(url)
    assert f'action="{url}/discard"' in page.text
    entered = await post_form(client, url, paper(option, 3, 0, 0, 2, 1, 0))
    assert entered.status_code == 303
    # Half entered, it keeps the vote from closing.
    closing = await post_form(client, f"/votes/{vote}/close", {})
    assert closing.status_code == 409
    assert t(COUNT_PENDING) in closing.text
    # A resident cannot drop it; nor can a facilitator of another table.
    for outsider in ("resident_a", "facilitator_b"):
        async with device(app, room.world.users[outsider]) as other:
            denied = await post_form(other, f"{url}/discard", {})
            assert denied.status_code in (403, 404), (outsider, denied.status_code)
    assert await RoomCount.exists().where(RoomCount.id == count_id)
    dropped = await post_form(client, f"{url}/discard", {})
    assert dropped.status_code == 303, dropped.text[-2000:]
    assert dropped.headers["location"] == f"/votes/{vote}/room"
    assert not await RoomCount.exists().where(RoomCount.id == count_id)
    assert not await RoomCountEntry.exists().where(RoomCountEntry.count == count_id)
    (journal,) = await AuditEntry.select(AuditEntry.actor, AuditEntry.subject).where(
        AuditEntry.action == "vote.count_discarded"
    )
    assert journal == {
        "actor": room.world.users["facilitator_a"],
        "subject": f"room_count:{count_id}",
    }
    assert (await client.get(url)).status_code == 404
    again = await post_form(client, f"{url}/discard", {})
    assert again.status_code == 409
    # The ballots it covered are counted in another batch, recorded, and that one stays.
    url, _ = await paper_count(client, room, ("Samira",))
    for manager in ("facilitator_a", "coordinator_a"):
        async with device(app, room.world.users[manager]) as counter:
            done = await post_form(counter, url, paper(option, 3, 0, 0, 2, 1, 0))
            assert done.status_code == 303, done.text[-2000:]
    kept = await post_form(client, f"{url}/discard", {})
    assert kept.status_code == 409
    assert t(room_service.COUNT_CLOSED) in kept.text
    assert await RoomCount.exists().where(RoomCount.id == int(url.rsplit("/", 1)[1]))
    assert await AuditEntry.count().where(AuditEntry.action == "vote.count_discarded") == 1
    closed = await post_form(client, f"/votes/{vote}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]
    data = json.loads((await client.get(f"/votes/{vote}/ballots.json")).text)
    assert data["vote"]["participants"] == 3
    assert list(data["tallies"].values()) == [[2, 1, 0]]


async def test_a_show_of_hands_leaves_the_tablet_voter_to_the_tablet(
    client: AsyncClient, app: object
) -> None:
    """Change 6: whoever holds the tablet when the hands are counted votes on the tablet."""
    room = await build_room(client)
    vote = room.vote_id
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    async with device(app, room.world.users["coordinator_a"]) as other:
        hands = await post_form(other, f"/votes/{vote}/room/hands", {})
        assert hands.status_code == 303, hands.text[-2000:]
        count_url = hands.headers["location"]
        assert await roll(vote) == {room.people[n]: "hands" for n in ("Samira", "Nadia", "Fatou")}
        sent = await post_form(
            client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
        )
        assert sent.status_code == 303, sent.text[-2000:]
        assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
        assert (await roll(vote))[room.people["Karim"]] == "tablet"
        # Started again, the show of hands does not take him either: he has voted.
        again = await post_form(other, f"/votes/{vote}/room/hands", {})
        assert again.headers["location"] == count_url
        assert (await roll(vote))[room.people["Karim"]] == "tablet"
        (option,) = await VoteOption.select(VoteOption.id).where(VoteOption.vote == vote)
        too_many = {f"o{option['id']}-g0": "3", f"o{option['id']}-g1": "1"}
        over = await post_form(other, count_url, too_many)
        assert over.status_code in (400, 409)
        assert t(room_service.MORE_HANDS_THAN_PEOPLE, hands=4, people=3) in over.text
        figures = {f"o{option['id']}-g0": "2", f"o{option['id']}-g1": "1"}
        assert (await post_form(other, count_url, figures)).status_code == 303
    async with device(app, room.world.users["facilitator_a"]) as counter:
        assert (await post_form(counter, count_url, figures)).status_code == 303
        assert (await post_form(counter, f"/votes/{vote}/close", {})).status_code == 303
        data = json.loads((await counter.get(f"/votes/{vote}/ballots.json")).text)
    assert data["vote"]["participants"] == 4
    assert [ballot["choices"] for ballot in data["ballots"]] == [
        {next(iter(data["tallies"])): "no"}
    ]


async def test_wrong_codes_on_the_tablet_do_not_lock_the_facilitator_out(
    client: AsyncClient, app: object
) -> None:
    """Change 7: quitting the tablet counts its codes apart from signing in."""
    room = await build_room(client)
    vote = room.vote_id
    facilitator = room.world.users["facilitator_a"]
    await start_tablet(client, room)
    tablet_id = (await tablet_row(vote))["id"]
    for attempt in range(5):
        wrong = await post_form(client, f"/votes/{vote}/tablet/quit", {"code": f"00000{attempt}"})
        assert wrong.status_code == 400
        assert t(room_service.WRONG_CODE) in wrong.text
    code = await fresh_code(room, facilitator)
    throttled = await post_form(client, f"/votes/{vote}/tablet/quit", {"code": code})
    assert throttled.status_code == 429
    assert await Tablet.exists().where(Tablet.id == tablet_id)
    assert await Throttle.exists().where(Throttle.key == f"totp:tablet:{tablet_id}")
    assert not await Throttle.exists().where(Throttle.key == f"totp:account:{facilitator}")
    # Elsewhere, the facilitator still signs in with their code: a wrong one is only wrong.
    async with device(app, facilitator, verified=False) as phone:
        wrong = await post_form(phone, "/login/verify", {"code": "000000", "next": "/account"})
        assert wrong.status_code == 400, wrong.text[-2000:]
        verified = await post_form(
            phone, "/login/verify", {"code": await fresh_code(room, facilitator), "next": "/"}
        )
        assert verified.status_code == 303, verified.text[-2000:]
    # Once the tablet's window is over, the right code ends tablet mode.
    await Throttle.update(
        {Throttle.window_started_at: datetime.now(UTC) - timedelta(minutes=16)}
    ).where(Throttle.key == f"totp:tablet:{tablet_id}")
    quit_ = await post_form(
        client, f"/votes/{vote}/tablet/quit", {"code": await fresh_code(room, facilitator)}
    )
    assert quit_.headers["location"] == f"/votes/{vote}/room"
    assert not await Tablet.exists().where(Tablet.id == tablet_id)


def nt(singular: str, plural: str, num: int, lang: str = "fr") -> str:
    """A plural message as the catalog of `lang` renders it for `num`, escaped as pages are."""
    return str(escape(catalog(lang).ngettext(singular, plural, num) % {"num": num}))


async def test_the_channels_add_up_to_the_participants(client: AsyncClient, app: object) -> None:
    """Change 8: online + tablet + paper (ballots less spoilt, blank among them) + hands make
    the participants; the spoilt paper ballot is said apart."""
    room = await build_room(client, walk_ins=("Fatou", "Omar", "Lina", "Yann"))
    vote = room.vote_id
    async with device(app, room.users["Samira"], verified=False) as phone:
        online = await post_form(phone, f"/votes/{vote}/ballot", {"choice": "yes"})
        assert online.status_code == 200, online.text[-2000:]
    async with device(app, room.world.users["coordinator_a"]) as tablet:
        await start_tablet(tablet, room, manager="coordinator_a")
        handover = await hand_tablet(tablet, room, "Karim")
        sent = await post_form(
            tablet, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
        )
        assert sent.status_code == 303
    # Three paper ballots: one for, one blank, one spoilt. Two hands: one for, one against.
    url, option = await paper_count(client, room, ("Nadia", "Fatou", "Omar"))
    hands = await post_form(client, f"/votes/{vote}/room/hands", {})
    assert hands.status_code == 303, hands.text[-2000:]
    hands_url = hands.headers["location"]
    assert sorted(p for p, c in (await roll(vote)).items() if c == "hands") == [
        "name:lina",
        "name:yann",
    ]
    for manager in ("facilitator_a", "coordinator_a"):
        async with device(app, room.world.users[manager]) as counter:
            entered = await post_form(counter, url, paper(option, 3, 1, 1, 1, 0, 0))
            assert entered.status_code == 303, entered.text[-2000:]
            raised = {f"o{option}-g0": "1", f"o{option}-g1": "1", f"o{option}-g2": "0"}
            assert (await post_form(counter, hands_url, raised)).status_code == 303
    closed = await post_form(client, f"/votes/{vote}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]
    channels = (await room_service.channel_counts([vote]))[vote]
    assert channels == {
        "online": 1,
        "tablet": 1,
        "handed": 3,
        "paper": 2,
        "blank": 1,
        "spoilt": 1,
        "hands": 2,
    }
    (closed_vote,) = await Vote.select(Vote.participants).where(Vote.id == vote)
    assert closed_vote["participants"] == 6
    assert sum(channels[k] for k in ("online", "tablet", "paper", "hands")) == 6
    page = (await client.get(f"/votes/{vote}")).text
    sentence = (
        ", ".join(
            [
                nt("%(num)d online", "%(num)d online", 1),
                nt("%(num)d on the tablet", "%(num)d on the tablet", 1),
                nt("%(num)d on paper", "%(num)d on paper", 2)
                + f" ({nt('%(num)d blank', '%(num)d blank', 1)})",
                nt("%(num)d by show of hands", "%(num)d by show of hands", 2),
            ]
        )
        + ". "
        + nt(
            "%(num)d spoilt paper ballot, not counted.",
            "%(num)d spoilt paper ballots, not counted.",
            1,
        )
    )
    assert sentence in page, page.split('<p class="channels">', 1)[-1][:600]
    assert nt("%(num)d person took part", "%(num)d people took part", 6) in page
    shown = page.split('<p class="channels">', 1)[1].split(". ", 1)[0]
    # The figures said before the first full stop, blank ones (in brackets) left aside.
    assert [int(n) for n in re.findall(r"\d+", re.sub(r"\([^)]*\)", "", shown))] == [1, 1, 2, 2]
    data = json.loads((await client.get(f"/votes/{vote}/ballots.json")).text)
    assert data["vote"]["participants"] == 6


async def test_a_walk_in_cannot_take_a_members_name(client: AsyncClient) -> None:
    """Change 9: a member is ticked on the list, not checked in again as a walk-in; a
    namesake adds an initial."""
    room = await build_room(client)
    meeting = room.meeting_id
    before = await checked_in(meeting)
    # Samira, Karim: members in the room; Resident-A: a member who is not; any case.
    for name in ("Samira", "karim", "  SAMIRA ", "resident-a", "Facilitator-A"):
        refused = await post_form(client, f"/meetings/{meeting}/attendance/walk-in", {"name": name})
        assert refused.status_code in (400, 409), (name, refused.status_code)
        assert t(WALK_IN_IS_MEMBER, name=name.strip()) in refused.text, name
    assert await checked_in(meeting) == before
    # An initial, a member of another table, or someone who runs the organisation: welcome.
    for name in ("Samira B.", "Resident-B", "Coordinator-A"):
        came = await post_form(client, f"/meetings/{meeting}/attendance/walk-in", {"name": name})
        assert came.status_code == 303, (name, came.text[-2000:])
    added = set(await checked_in(meeting)) - set(before)
    assert added == {"name:samira b.", "name:resident-b", "name:coordinator-a"}


async def test_a_facilitator_made_resident_again_no_longer_runs_their_tablet(
    client: AsyncClient, app: object
) -> None:
    """Change 10: their tablet's session ends; their other sessions go on, as a resident's."""
    room = await build_room(client)
    vote = room.vote_id
    facilitator = room.world.users["facilitator_a"]
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    (tablet,) = await Tablet.select(Tablet.id, Tablet.session).where(Tablet.vote == vote)
    async with (
        device(app, facilitator) as own_phone,
        device(app, room.world.users["coordinator_a"]) as coordinator,
    ):
        changed = await post_form(
            coordinator,
            f"/tables/flamants-iris/residents/{facilitator}/role",
            {"role": "resident"},
        )
        assert changed.status_code == 303, changed.text[-2000:]
        assert not await Session.exists().where(Session.id == tablet["session"])
        assert not await Tablet.exists().where(Tablet.vote == vote)
        # The tablet is signed out: no ballot, no list, nothing of the facilitator's account.
        sent = await post_form(
            client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
        )
        assert sent.status_code in (303, 401, 403), sent.status_code
        assert sent.headers.get("location") != f"/votes/{vote}/tablet/done"
        for path in ("/account", f"/votes/{vote}/tablet", f"/votes/{vote}/room"):
            away = await client.get(path)
            assert away.status_code != 200, path
            assert "Facilitator-A" not in away.text, path
        assert await roll(vote) == {}
        # Their own phone stays signed in, as a resident: the room is no longer theirs.
        assert (await own_phone.get("/account")).status_code == 200
        assert (await own_phone.get(f"/votes/{vote}/room")).status_code == 403
    roles = await AuditEntry.select(AuditEntry.subject).where(AuditEntry.action == "role.changed")
    assert roles == [{"subject": f"user:{facilitator}"}]
