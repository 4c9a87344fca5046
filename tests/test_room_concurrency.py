"""Voting in the room under pressure: one person tried through two channels at the same
moment, two counters entering at once, counts that disagree or exceed the paper handed out,
a shared tablet that must not let its voter wander off, come back, or vote after leaving it
idle, and who may vote at all.

Concurrent requests are real: each device is its own httpx client on the same app, with its
own session cookie, all sent together with asyncio.gather (as tests/test_votes.py does).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import combinations_with_replacement
from typing import Any

import pytest
from httpx import AsyncClient, Response

from accounts.models import Session, User
from accounts.services import open_session
from audit.models import AuditEntry
from meetings import room as room_service
from meetings.models import (
    HANDS_COUNT,
    MISMATCH,
    PENDING,
    RECORDED,
    AgendaItem,
    Attendance,
    Meeting,
    RoomCount,
    RoomCountEntry,
    Tablet,
)
from proposals.models import Proposal
from tests.conftest import make_client
from tests.factories import add_user, csrf_token, post_form, seat, t
from tests.room_world import (
    TABLET_PIN,
    Room,
    build_room,
    fresh_code,
    hand_tablet,
    handover_of,
    start_tablet,
    unlock_tablet,
)
from voix.web import SESSION_COOKIE
from votes.closing import COUNT_PENDING
from votes.models import Ballot, Participation, SealedBallot, Vote, VoteOption
from votes.scales import SCALES, SEVEN
from votes.services import JOINED_AFTER_OPENING, NOT_PRESENT, ON_ROLL

CHANNELS = ("online", "tablet", "paper", "hands")
ELECTRONIC = ("online", "tablet")
PAIRS = list(combinations_with_replacement(CHANNELS, 2))  # 10: every pair, and each with itself
# How the test counts what the room counts: every paper ballot abstains, every hand is for.
PAPER_CHOICE, HANDS_CHOICE = "abstain", "yes"
CHOICES = ("yes", "no", "abstain")
# A count refused: the count page again with the refusal (400), or the error page (409).
REFUSED = (400, 409)
GIVE_BACK = "Thank you. Please give the tablet back to the facilitator."


# Devices


async def send(
    app: object,
    token: str,
    session: str,
    url: str,
    data: dict | None = None,
    *,
    method: str = "POST",
) -> Response:
    """One request from a device of its own: its session cookie, the CSRF token of a page."""
    async with make_client(app) as device:
        device.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
        if method == "GET":
            return await device.get(url)
        return await device.post(url, data={**(data or {}), "_csrf_token": token})


def page_language(page: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', page)
    assert found is not None
    return found.group(1)


async def tablet_for(app: object, token: str, room: Room, manager: int, person: str) -> tuple:
    """A new session of this manager turned into the vote's tablet and handed to `person`:
    (the session, the handover code its ballot form carries, the ballot's language)."""
    vote = room.vote_id
    session = await open_session(manager, verified=True)
    code = await fresh_code(room, manager)
    started = await send(
        app, token, session, f"/votes/{vote}/tablet/start", {"code": code, "pin": TABLET_PIN}
    )
    assert started.status_code == 303, started.text[-2000:]
    assert started.headers["location"] == f"/votes/{vote}/tablet"
    handed = await send(app, token, session, f"/votes/{vote}/tablet/hand", {"person": person})
    assert handed.status_code == 303, handed.text[-2000:]
    ballot = await send(app, token, session, f"/votes/{vote}/tablet/ballot", method="GET")
    assert ballot.status_code == 200, ballot.text[-2000:]
    return session, handover_of(ballot.text), page_language(ballot.text)


# What the database holds


async def roll(vote_id: int) -> dict[str, str]:
    rows = await Participation.select(Participation.person, Participation.channel).where(
        Participation.vote == vote_id
    )
    return {row["person"]: row["channel"] for row in rows}


async def rows_for(vote_id: int, person: str) -> int:
    return await Participation.count().where(
        (Participation.vote == vote_id) & (Participation.person == person)
    )


async def entries_of(count_id: int) -> int:
    """How many people have entered this count (the model's `count` column hides count())."""
    rows = await RoomCountEntry.select(RoomCountEntry.id).where(RoomCountEntry.count == count_id)
    return len(rows)


async def only_option(vote_id: int) -> int:
    rows = await VoteOption.select(VoteOption.id).where(VoteOption.vote == vote_id)
    assert len(rows) == 1
    return int(rows[0]["id"])


def yes_no(option: int, yes: int = 0, no: int = 0, abstain: int = 0) -> dict[str, str]:
    return {f"o{option}-g0": str(yes), f"o{option}-g1": str(no), f"o{option}-g2": str(abstain)}


def paper_figures(
    option: int, ballots: int, blank: int = 0, spoilt: int = 0, **marks: int
) -> dict[str, str]:
    """A paper batch's entry: ballots, blank and spoilt, then for, against and abstain."""
    figures = {"ballots": str(ballots), "blank": str(blank), "spoilt": str(spoilt)}
    return {**figures, **yes_no(option, **marks)}


async def enter_twice(
    app: object, token: str, sessions: list[str], url: str, figures: dict
) -> None:
    """The same figures entered by two people, one after the other: the count is recorded."""
    for session in sessions:
        entered = await send(app, token, session, url, figures)
        assert entered.status_code == 303, entered.text[-3000:]
    count_id = int(url.rsplit("/", 1)[1])
    assert (await RoomCount.select(RoomCount.status).where(RoomCount.id == count_id))[0] == {
        "status": RECORDED
    }


# 1. One person, two channels, at the same moment


@dataclass
class Attempt:
    channel: str
    person: str
    choice: str  # what an electronic ballot says
    session: str
    url: str
    data: dict[str, Any]
    language: str = "fr"  # the language a refusal is said in
    response: Response | None = None


async def prepare(
    app: object, token: str, room: Room, *, channel: str, name: str, choice: str, manager: int
) -> Attempt:
    """A device ready to put `name` on the roll through `channel`, its request not yet sent."""
    vote, person = room.vote_id, room.people[name]
    language = "fr"
    if channel == "online":
        session = await open_session(room.users[name], verified=True)
        url, data = f"/votes/{vote}/ballot", {"choice": choice}
    elif channel == "tablet":
        session, handover, language = await tablet_for(app, token, room, manager, person)
        url, data = f"/votes/{vote}/tablet/ballot", {"choice": choice, "handover": handover}
    elif channel == "paper":
        session = await open_session(manager, verified=True)
        url, data = f"/votes/{vote}/room/paper", {"person": [person]}
    else:
        session = await open_session(manager, verified=True)
        url, data = f"/votes/{vote}/room/hands", {}
    return Attempt(channel, person, choice, session, url, data, language)


def went_through(attempt: Attempt, winner: str, vote: int) -> bool:
    """Whether this attempt's electronic ballot was recorded; a refusal must name the channel
    the person is on the roll by. Paper and hands always answer with the room (or count)."""
    response = attempt.response
    assert response is not None
    if attempt.channel in ELECTRONIC:
        success = 200 if attempt.channel == "online" else 303
        if response.status_code == success:
            if attempt.channel == "tablet":
                assert response.headers["location"] == f"/votes/{vote}/tablet/done"
            return True
        assert response.status_code == 409, response.text[-2000:]
        # The tablet says it in the voter's language, on its locked list.
        assert t(ON_ROLL[winner], attempt.language) in response.text
        if attempt.channel == "tablet":
            assert f'<html lang="{attempt.language}"' in response.text
            assert f'action="/votes/{vote}/tablet/unlock"' in response.text
            assert f'action="/votes/{vote}/tablet/hand"' not in response.text
        return False
    assert response.status_code == 303, response.text[-2000:]
    if attempt.channel == "paper":
        assert response.headers["location"] == f"/votes/{vote}/room#paper"
    else:
        assert response.headers["location"].startswith(f"/votes/{vote}/room/counts/")
    return False


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
async def test_one_person_tried_through_two_channels_at_once_is_on_the_roll_once(
    client: AsyncClient, app: object, first: str, second: str
) -> None:
    """Two people each tried through both channels at the same moment (in opposite orders):
    each ends on the roll once, by one of the two; the other attempt is refused (electronic)
    or skipped (paper, hands); and once counted and closed, the result adds up."""
    room = await build_room(client)
    vote = room.vote_id
    token = await csrf_token(client)
    managers = [room.world.users["facilitator_a"], room.world.users["coordinator_a"]]
    # Online needs an account; otherwise a walk-in and a member who reads Arabic.
    names = ("Samira", "Nadia") if "online" in (first, second) else ("Fatou", "Karim")
    pair = (first, second)
    attempts: list[Attempt] = []
    # Start order: X tries `first` then `second`, Y the other way round.
    for n, (name, position) in enumerate(
        ((names[0], 0), (names[1], 1), (names[0], 1), (names[1], 0))
    ):
        attempts.append(
            await prepare(
                app,
                token,
                room,
                channel=pair[position],
                name=name,
                choice=CHOICES[position],
                manager=managers[n % 2],
            )
        )
    assert await roll(vote) == {}

    responses = await asyncio.gather(
        *[send(app, token, a.session, a.url, a.data) for a in attempts]
    )
    for attempt, response in zip(attempts, responses, strict=True):
        attempt.response = response

    on_roll = await roll(vote)
    electronic_choices: Counter[str] = Counter()
    for name in names:
        person = room.people[name]
        assert await rows_for(vote, person) == 1, (name, on_roll)
        winner = on_roll[person]
        assert winner in pair, (name, winner)
        won = [a for a in attempts if a.person == person and went_through(a, winner, vote)]
        # Exactly one electronic ballot went through when the roll says so, by that channel.
        if winner in ELECTRONIC:
            assert [a.channel for a in won] == [winner], (name, winner, won)
            electronic_choices[won[0].choice] += 1
        else:
            assert won == [], (name, winner)

    # Bulk channels: each handed-out paper is said once, and all shows of hands are one count.
    handed_out = await AuditEntry.select(AuditEntry.details).where(
        AuditEntry.action == "vote.paper_handed_out"
    )
    paper_rows = sum(1 for channel in on_roll.values() if channel == "paper")
    details = [row["details"] for row in handed_out]
    details = [d if isinstance(d, dict) else json.loads(d) for d in details]
    assert sum(d["count"] for d in details) == paper_rows
    hands_counts = await RoomCount.select(RoomCount.id).where(
        (RoomCount.vote == vote) & (RoomCount.kind == HANDS_COUNT)
    )
    hands_attempts = [a for a in attempts if a.channel == "hands"]
    assert len(hands_counts) == (1 if hands_attempts else 0)
    assert {a.response.headers["location"] for a in hands_attempts} <= {  # type: ignore[union-attr]
        f"/votes/{vote}/room/counts/{row['id']}" for row in hands_counts
    }
    if not hands_attempts:
        assert set(on_roll) == {room.people[name] for name in names}

    # The sealed ballots are exactly the electronic rows of the roll.
    electronic_rows = sum(1 for channel in on_roll.values() if channel in ELECTRONIC)
    assert await SealedBallot.count().where(SealedBallot.vote == vote) == electronic_rows
    assert sum(electronic_choices.values()) == electronic_rows

    # Count what the room holds, twice, then close.
    option = await only_option(vote)
    counters = [await open_session(manager, verified=True) for manager in managers]
    hands_rows = sum(1 for channel in on_roll.values() if channel == "hands")
    if paper_rows:
        batch = await send(app, token, counters[0], f"/votes/{vote}/room/batches")
        assert batch.status_code == 303, batch.text[-2000:]
        figures = paper_figures(option, paper_rows, **{PAPER_CHOICE: paper_rows})
        await enter_twice(app, token, counters, batch.headers["location"], figures)
    if hands_counts:
        url = f"/votes/{vote}/room/counts/{hands_counts[0]['id']}"
        await enter_twice(app, token, counters, url, yes_no(option, **{HANDS_CHOICE: hands_rows}))
    closed = await send(app, token, counters[0], f"/votes/{vote}/close")
    assert closed.status_code == 303, closed.text[-2000:]

    assert await Ballot.count().where(Ballot.vote == vote) == electronic_rows
    box = await client.get(f"/votes/{vote}/ballots.json")
    assert box.status_code == 200
    data = json.loads(box.text)
    (key,) = [o["id"] for o in data["vote"]["options"]]
    assert data["vote"]["participants"] == len(on_roll)
    assert Counter(ballot["choices"][key] for ballot in data["ballots"]) == electronic_choices
    room_tally = [0, 0, 0]
    room_tally[CHOICES.index(PAPER_CHOICE)] += paper_rows
    room_tally[CHOICES.index(HANDS_CHOICE)] += hands_rows
    assert (data.get("tallies") or {}) == ({key: room_tally} if any(room_tally) else {})
    stored = await VoteOption.select(VoteOption.tally).where(VoteOption.id == option)
    assert json.loads(stored[0]["tally"]) == [
        electronic_choices[choice] + room_tally[n] for n, choice in enumerate(CHOICES)
    ]
    (closed_vote,) = await Vote.select(Vote.participants).where(Vote.id == vote)
    assert closed_vote["participants"] == len(on_roll)


# 2. Two counters at the same moment


async def paper_for_all(client: AsyncClient, room: Room, names: list[str] | None = None) -> None:
    people = [room.people[name] for name in (names or list(room.people))]
    handed = await post_form(client, f"/votes/{room.vote_id}/room/paper", {"person": people})
    assert handed.status_code == 303, handed.text[-2000:]


async def open_batch(client: AsyncClient, vote: int) -> str:
    batch = await post_form(client, f"/votes/{vote}/room/batches", {})
    assert batch.status_code == 303, batch.text[-2000:]
    return str(batch.headers["location"])


async def test_two_counters_entering_the_same_figures_at_once_record_each_count_once(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    await paper_for_all(client, room)  # 4 paper ballots
    option = await only_option(vote)
    token = await csrf_token(client)
    facilitator = await open_session(room.world.users["facilitator_a"], verified=True)
    coordinator = await open_session(room.world.users["coordinator_a"], verified=True)
    # One ballot a batch, four batches: three for, one against. Each batch is entered by both
    # counters at the same moment (a batch is opened once the previous one is entered).
    figures = [paper_figures(option, 1, yes=1) for _ in range(3)] + [paper_figures(option, 1, no=1)]
    urls = []
    for batch in figures:
        url = await open_batch(client, vote)
        assert url not in urls
        urls.append(url)
        sent = await asyncio.gather(
            *[send(app, token, session, url, batch) for session in (facilitator, coordinator)]
        )
        assert [r.status_code for r in sent] == [303, 303], [r.text[-1500:] for r in sent]
    ids = [int(url.rsplit("/", 1)[1]) for url in urls]
    counts = await RoomCount.select(
        RoomCount.id, RoomCount.status, RoomCount.figures, RoomCount.ballots
    ).where(RoomCount.vote == vote)
    assert {c["id"]: (c["status"], c["ballots"]) for c in counts} == dict.fromkeys(
        ids, (RECORDED, 1)
    )
    for count, batch in zip(sorted(counts, key=lambda c: c["id"]), figures, strict=True):
        recorded = json.loads(count["figures"])
        assert recorded["options"] == {
            str(option): [int(batch[f"o{option}-g{g}"]) for g in range(3)]
        }
        assert await entries_of(count["id"]) == 2
    # Each count was recorded once: one entry waited, the other recorded it.
    journal = await AuditEntry.select(AuditEntry.action, AuditEntry.subject).where(
        AuditEntry.action.like("vote.count_%")
    )
    for count_id in ids:
        actions = sorted(e["action"] for e in journal if e["subject"] == f"room_count:{count_id}")
        assert actions == ["vote.count_pending", "vote.count_recorded"], actions
    for session in (facilitator, coordinator):
        shown = await send(app, token, session, urls[0], method="GET")
        assert (
            t("Recorded: both entries agree, and the figures are counted with the vote.")
            in shown.text
        )
    closed = await post_form(client, f"/votes/{vote}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]
    data = json.loads((await client.get(f"/votes/{vote}/ballots.json")).text)
    assert data["vote"]["participants"] == 4
    assert list(data["tallies"].values()) == [[3, 1, 0]]


async def test_two_batches_that_together_exceed_the_paper_handed_out_record_one_at_most(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    await paper_for_all(client, room, ["Samira", "Nadia", "Fatou"])  # 3 paper ballots
    option = await only_option(vote)
    token = await csrf_token(client)
    facilitator = await open_session(room.world.users["facilitator_a"], verified=True)
    coordinator = await open_session(room.world.users["coordinator_a"], verified=True)
    batches = {}
    for figures in (paper_figures(option, 2, yes=2), paper_figures(option, 2, no=2)):
        url = await open_batch(client, vote)
        batches[url] = figures
        # 2 ≤ 3 each, alone: both batches wait for their second entry.
        waiting = await send(app, token, facilitator, url, figures)
        assert waiting.status_code == 303, waiting.text[-2000:]
    assert len(batches) == 2
    sent = await asyncio.gather(
        *[send(app, token, coordinator, url, figures) for url, figures in batches.items()]
    )
    statuses = {url: r.status_code for url, r in zip(batches, sent, strict=True)}
    assert sorted(statuses.values())[0] == 303, [r.text[-2000:] for r in sent]
    assert sorted(statuses.values())[1] in REFUSED, [r.text[-2000:] for r in sent]
    refused = next(r for r in sent if r.status_code != 303)
    assert t(room_service.MORE_THAN_HANDED, ballots=2, left=1) in refused.text
    rows = {
        row["id"]: row
        for row in await RoomCount.select(RoomCount.id, RoomCount.status, RoomCount.ballots).where(
            RoomCount.vote == vote
        )
    }
    for url, status in statuses.items():
        count_id = int(url.rsplit("/", 1)[1])
        entries = await entries_of(count_id)
        if status == 303:
            assert (rows[count_id]["status"], rows[count_id]["ballots"], entries) == (
                RECORDED,
                2,
                2,
            )
        else:  # the refused entry is not stored; the count still waits, and blocks the closing
            assert (rows[count_id]["status"], rows[count_id]["ballots"], entries) == (PENDING, 0, 1)
    closing = await post_form(client, f"/votes/{vote}/close", {})
    assert closing.status_code == 409
    assert t(COUNT_PENDING) in closing.text


# 3. Two entries that differ


async def test_two_entries_that_differ_count_nothing_and_show_each_only_the_lines(
    client: AsyncClient, app: object
) -> None:
    neighbours = tuple(f"Voisine {letter}" for letter in "BCDEFGHJKLMNPQRSTVWXYZ")
    room = await build_room(client, walk_ins=("Fatou", *neighbours))
    vote = room.vote_id
    await paper_for_all(client, room)
    handed = len(room.people)
    assert handed == 26
    url = await open_batch(client, vote)
    option = await only_option(vote)
    token = await csrf_token(client)
    facilitator = await open_session(room.world.users["facilitator_a"], verified=True)
    coordinator = await open_session(room.world.users["coordinator_a"], verified=True)
    blank_page = (await send(app, token, facilitator, url, method="GET")).text.replace(token, "")

    def absent(number: int, page: str) -> bool:
        """The number is nowhere a person reads or a form sends (addresses and element ids
        carry database ids, which a long-lived database makes any number)."""
        shown = re.sub(r'\s(?:href|action|id|for|name|aria-describedby|src)="[^"]*"', "", page)
        return re.search(rf"(?<![\w-]){number}(?![\w-])", shown.replace(token, "")) is None

    # Both count 26 ballots, none spoilt, nobody against or abstaining; they disagree on the
    # blank ballots, hence on those for. Four numbers that no page shows before the entries.
    a, b = next(
        (a, b)
        for a in range(10, 17)
        for b in range(a + 1, 17)
        if len({a, handed - a, b, handed - b, handed}) == 5
        and all(absent(n, blank_page) for n in (a, handed - a, b, handed - b))
    )
    mine = paper_figures(option, handed, blank=a, yes=handed - a)
    theirs = paper_figures(option, handed, blank=b, yes=handed - b)
    assert (await send(app, token, facilitator, url, mine)).status_code == 303
    assert (await send(app, token, coordinator, url, theirs)).status_code == 303

    (count,) = await RoomCount.select().where(RoomCount.id == int(url.rsplit("/", 1)[1]))
    assert count["status"] == MISMATCH
    assert (count["figures"], count["ballots"], count["blank"]) == ("", 0, 0)
    views = [
        (facilitator, (a, handed - a), (b, handed - b)),
        (coordinator, (b, handed - b), (a, handed - a)),
    ]
    for session, own, other in views:
        page = (await send(app, token, session, url, method="GET")).text
        assert (
            t(
                "The two entries differ on these lines. Count them again and correct your entry; "
                "nothing is counted until both agree."
            )
            in page
        )
        warning = page.split('<div class="warning" role="alert">', 1)[1].split("</div>", 1)[0]
        listed = re.findall(r'<li><a href="#f-([^"]+)">(.*?)</a></li>', warning, re.S)
        assert [name for name, _ in listed] == ["blank", f"o{option}-g0"]
        assert t(room_service.BLANK_LINE) in listed[0][1]
        assert "Proposition 1" in listed[1][1]
        assert t("For") in listed[1][1]
        for label in (room_service.BALLOTS_LINE, room_service.SPOILT_LINE, "Against", "Abstain"):
            assert t(label) not in warning
        # Their own figures are in the form; the other's appear nowhere.
        assert f'value="{own[0]}"' in page
        assert f'value="{own[1]}"' in page
        assert absent(other[0], page), other
        assert absent(other[1], page), other
    # Nothing is counted: the vote cannot close on it.
    closing = await post_form(client, f"/votes/{vote}/close", {})
    assert closing.status_code == 409
    assert t(COUNT_PENDING) in closing.text
    assert (await room_service.channel_counts([vote]))[vote].get("paper") is None


def differ_on(page: str) -> list[str]:
    """The lines a count page says the last round's entries differ on (none: no warning)."""
    if '<div class="warning" role="alert">' not in page:
        return []
    warning = page.split('<div class="warning" role="alert">', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<li><a href="#f-([^"]+)">', warning)


async def count_row(count_id: int) -> dict[str, Any]:
    (row,) = await RoomCount.select(
        RoomCount.status, RoomCount.round, RoomCount.differ, RoomCount.ballots
    ).where(RoomCount.id == count_id)
    return row


async def count_journal(count_id: int) -> list[str]:
    rows = await (
        AuditEntry.select(AuditEntry.action)
        .where(AuditEntry.subject == f"room_count:{count_id}")
        .order_by(AuditEntry.id)
    )
    return [row["action"] for row in rows if row["action"].startswith("vote.count_")]


async def test_after_a_mismatch_both_counters_send_again_and_are_compared_round_by_round(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    await paper_for_all(client, room)  # 4 paper ballots
    url = await open_batch(client, vote)
    count_id = int(url.rsplit("/", 1)[1])
    option = await only_option(vote)
    token = await csrf_token(client)
    facilitator = await open_session(room.world.users["facilitator_a"], verified=True)
    coordinator = await open_session(room.world.users["coordinator_a"], verified=True)
    right = paper_figures(option, 4, yes=3, no=1)
    wrong = paper_figures(option, 4, yes=2, no=2)
    assert (await send(app, token, facilitator, url, right)).status_code == 303
    assert (await send(app, token, coordinator, url, wrong)).status_code == 303
    lines = [f"o{option}-g0", f"o{option}-g1"]
    row = await count_row(count_id)
    assert (row["status"], row["round"], json.loads(row["differ"])) == (MISMATCH, 2, lines)
    # The coordinator corrects theirs alone, even to the facilitator's very figures: it waits.
    assert (await send(app, token, coordinator, url, right)).status_code == 303
    row = await count_row(count_id)
    assert (row["status"], row["round"], json.loads(row["differ"])) == (PENDING, 2, lines)
    assert row["ballots"] == 0
    assert await count_journal(count_id) == [
        "vote.count_pending",
        "vote.count_mismatch",
        "vote.count_pending",
    ]
    # Both still see the lines the last round differed on, and who has sent this round.
    mine = (await send(app, token, coordinator, url, method="GET")).text
    theirs = (await send(app, token, facilitator, url, method="GET")).text
    for page in (mine, theirs):
        assert differ_on(page) == lines
        assert (
            t(
                "Both of you send your entry again, even if yours was right: the two new "
                "entries are compared."
            )
            in page
        )
        assert (
            t("Recorded: both entries agree, and the figures are counted with the vote.")
            not in page
        )
    assert (
        t("Your entry is saved. A second person now enters the same count on their own device.")
        in mine
    )
    assert t("Correct my entry") in mine
    assert t("Save my entry") in theirs
    assert "Coordinator-A" in theirs
    # The facilitator sends theirs again: the two entries of this round agree.
    assert (await send(app, token, facilitator, url, right)).status_code == 303
    row = await count_row(count_id)
    assert (row["status"], row["round"], row["differ"], row["ballots"]) == (RECORDED, 2, "", 4)
    for session in (facilitator, coordinator):
        page = (await send(app, token, session, url, method="GET")).text
        assert differ_on(page) == []
    closed = await post_form(client, f"/votes/{vote}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]
    data = json.loads((await client.get(f"/votes/{vote}/ballots.json")).text)
    assert list(data["tallies"].values()) == [[3, 1, 0]]


async def test_both_counters_sending_again_at_once_record_the_count_once(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    await paper_for_all(client, room)
    url = await open_batch(client, vote)
    count_id = int(url.rsplit("/", 1)[1])
    option = await only_option(vote)
    token = await csrf_token(client)
    sessions = [
        await open_session(room.world.users[manager], verified=True)
        for manager in ("facilitator_a", "coordinator_a")
    ]
    right = paper_figures(option, 4, yes=3, no=1)
    assert (await send(app, token, sessions[0], url, right)).status_code == 303
    assert (
        await send(app, token, sessions[1], url, paper_figures(option, 4, yes=4))
    ).status_code == 303
    sent = await asyncio.gather(*[send(app, token, session, url, right) for session in sessions])
    assert [r.status_code for r in sent] == [303, 303], [r.text[-1500:] for r in sent]
    row = await count_row(count_id)
    assert (row["status"], row["round"], row["ballots"]) == (RECORDED, 2, 4)
    assert await count_journal(count_id) == [
        "vote.count_pending",
        "vote.count_mismatch",
        "vote.count_pending",
        "vote.count_recorded",
    ]


async def test_a_counter_cannot_find_the_other_counters_figures_by_trial(
    client: AsyncClient, app: object
) -> None:
    """The review's prober: after one mismatch, the second counter changes one line at a time
    and watches the warning, to reach the first counter's figures without counting. Their
    lone entries are never compared with the first's: the warning stays that of the last
    round, nothing is recorded, even when a guess is right, until both send again."""
    room = await build_room(client, walk_ins=("Fatou", "Omar", "Lina", "Yann", "Inès"))
    vote = room.vote_id
    await paper_for_all(client, room)  # 8 paper ballots
    url = await open_batch(client, vote)
    count_id = int(url.rsplit("/", 1)[1])
    option = await only_option(vote)
    token = await csrf_token(client)
    honest = await open_session(room.world.users["facilitator_a"], verified=True)
    prober = await open_session(room.world.users["coordinator_a"], verified=True)
    truth = paper_figures(option, 8, blank=1, yes=4, no=2, abstain=1)
    assert (await send(app, token, honest, url, truth)).status_code == 303
    first_guess = paper_figures(option, 8, yes=8)
    assert (await send(app, token, prober, url, first_guess)).status_code == 303
    told = differ_on((await send(app, token, prober, url, method="GET")).text)
    assert told == ["blank", f"o{option}-g0", f"o{option}-g1", f"o{option}-g2"]
    # Every split of the 8 ballots with one or two blank, the true one among them, in turn.
    guesses = [
        paper_figures(option, 8, blank=blank, yes=yes, no=no, abstain=8 - blank - yes - no)
        for blank in (1, 2)
        for yes in range(8 - blank + 1)
        for no in range(8 - blank - yes + 1)
    ]
    assert truth in guesses
    seen = set()
    for guess in guesses:
        answer = await send(app, token, prober, url, guess)
        assert answer.status_code == 303, answer.text[-2000:]
        page = (await send(app, token, prober, url, method="GET")).text
        seen.add(tuple(differ_on(page)))
        row = await count_row(count_id)
        assert (row["status"], row["round"], row["ballots"]) == (PENDING, 2, 0), guess
    assert seen == {tuple(told)}  # the warning never moved: it told nothing of any guess
    journal = await count_journal(count_id)
    assert journal[:2] == ["vote.count_pending", "vote.count_mismatch"]
    assert set(journal[2:]) == {"vote.count_pending"}
    closing = await post_form(client, f"/votes/{vote}/close", {})
    assert closing.status_code == 409
    # The honest counter sends theirs again: compared with the prober's last guess only.
    last = guesses[-1]
    assert last != truth
    assert (await send(app, token, honest, url, truth)).status_code == 303
    row = await count_row(count_id)
    assert (row["status"], row["round"]) == (MISMATCH, 3)
    assert json.loads(row["differ"]) == room_service.differences(
        as_figures(truth, option), as_figures(last, option)
    )


def as_figures(form: dict[str, str], option: int) -> dict[str, Any]:
    """A paper entry's form as the figures the count compares."""
    figures: dict[str, Any] = {name: int(form[name]) for name in ("ballots", "blank", "spoilt")}
    figures["options"] = {str(option): [int(form[f"o{option}-g{g}"]) for g in range(3)]}
    return figures


# 4. More paper than was handed out


async def test_a_batch_larger_than_the_paper_handed_out_is_refused_and_nothing_stored(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    await paper_for_all(client, room, ["Samira", "Karim", "Fatou"])
    url = await open_batch(client, vote)
    option = await only_option(vote)
    token = await csrf_token(client)
    count_id = int(url.rsplit("/", 1)[1])
    for manager in ("facilitator_a", "coordinator_a"):
        session = await open_session(room.world.users[manager], verified=True)
        refused = await send(app, token, session, url, paper_figures(option, 4, yes=4))
        assert refused.status_code in REFUSED, refused.text[-2000:]
        assert t(room_service.MORE_THAN_HANDED, ballots=4, left=3) in refused.text
    assert await entries_of(count_id) == 0
    row = (await RoomCount.select().where(RoomCount.id == count_id))[0]
    assert (row["status"], row["figures"], row["ballots"]) == (PENDING, "", 0)
    assert not await AuditEntry.exists().where(AuditEntry.action.like("vote.count_%"))
    # Exactly what was handed out is accepted.
    sessions = [
        await open_session(room.world.users[m], verified=True)
        for m in ("facilitator_a", "coordinator_a")
    ]
    await enter_twice(app, token, sessions, url, paper_figures(option, 3, yes=2, no=1))


# 5. A tablet session cannot leave its ballot


async def snapshot() -> dict[str, Any]:
    """Everything a wandering tablet could change."""
    return {
        "votes": await Vote.select(Vote.id, Vote.status).order_by(Vote.id),
        "roll": await Participation.select(Participation.vote, Participation.person).order_by(
            Participation.id
        ),
        "sealed": await SealedBallot.count(),
        "attendance": await Attendance.select(Attendance.id, Attendance.person).order_by(
            Attendance.id
        ),
        "meetings": await Meeting.select(Meeting.id, Meeting.status).order_by(Meeting.id),
        "agenda": await AgendaItem.select(AgendaItem.id, AgendaItem.vote).order_by(AgendaItem.id),
        "proposals": await Proposal.select(
            Proposal.id, Proposal.status, Proposal.supports
        ).order_by(Proposal.id),
        "tablets": await Tablet.select(
            Tablet.id,
            Tablet.session,
            Tablet.vote,
            Tablet.person,
            Tablet.language,
            Tablet.handover,
            Tablet.locked,
            Tablet.pin_hash,
        ).order_by(Tablet.id),
        "sessions": await Session.select(Session.id, Session.user, Session.verified_at).order_by(
            Session.id
        ),
        "counts": await RoomCount.count(),
        "users": await User.select(User.id, User.totp_last_step, User.totp_enabled_at).order_by(
            User.id
        ),
        "journal": await AuditEntry.count(),
    }


async def test_a_tablet_session_reaches_nothing_but_its_own_tablet(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote, meeting = room.vote_id, room.meeting_id
    facilitator = room.world.users["facilitator_a"]
    proposals = {
        row["title"]: row["id"] for row in await Proposal.select(Proposal.id, Proposal.title)
    }
    other = await post_form(
        client,
        f"/proposals/{proposals['Proposition 2']}/votes",
        {"question": "Et celle-ci ?", "electorate": "both", "meeting": meeting},
    )
    assert other.status_code == 303, other.text[-2000:]
    other_vote = int(other.headers["location"].rsplit("/", 1)[1])
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    code = await fresh_code(room, facilitator)  # a valid code: a route that ran would spend it
    before = await snapshot()
    gets = [
        "/", "/account", "/account/data.json", "/login", "/signup", "/tables/flamants-iris",
        "/tables/flamants-iris/meetings", "/tables/flamants-iris/residents",
        "/tables/flamants-iris/votes/new", "/tables/les-aygalades", "/map",
        f"/proposals/{proposals['Proposition 1']}", f"/votes/{vote}", f"/votes/{other_vote}",
        f"/votes/{vote}/room", f"/votes/{vote}/paper.pdf", f"/meetings/{meeting}",
        f"/meetings/{meeting}/control", f"/meetings/{meeting}/attendance",
        f"/votes/{other_vote}/tablet", f"/votes/{other_vote}/tablet/ballot",
        f"/votes/{other_vote}/tablet/done", "/organisations/avec-nous/audit",
    ]  # fmt: skip
    posts = [
        ("/logout", {}),
        ("/account/sign-out-everywhere", {}),
        ("/account/totp/reset", {"code": code}),
        (f"/votes/{vote}/close", {}),
        (f"/votes/{vote}/ballot", {"choice": "yes"}),
        (f"/votes/{vote}/receipt", {"receipt": "ABCD2345"}),
        (f"/votes/{vote}/room/paper", {"person": [room.people["Samira"]]}),
        (f"/votes/{vote}/room/hands", {}),
        (f"/votes/{vote}/room/batches", {}),
        (f"/votes/{vote}/tablet/start", {"code": code, "pin": TABLET_PIN}),
        (f"/votes/{other_vote}/tablet/start", {"code": code, "pin": TABLET_PIN}),
        (f"/votes/{other_vote}/tablet/unlock", {"pin": TABLET_PIN}),
        (f"/votes/{other_vote}/tablet/hand", {"person": room.people["Samira"]}),
        (f"/votes/{other_vote}/tablet/ballot", {"choice": "yes", "handover": handover}),
        (f"/votes/{other_vote}/tablet/language", {"language": "ar"}),
        (f"/votes/{other_vote}/tablet/quit", {"code": code}),
        (f"/meetings/{meeting}/attendance/walk-in", {"name": "Intrus"}),
        (f"/meetings/{meeting}/close", {}),
        (f"/proposals/{proposals['Proposition 1']}/support", {}),
        (
            f"/proposals/{proposals['Proposition 3']}/votes",
            {"question": "Encore ?", "electorate": "both", "meeting": meeting},
        ),
        ("/tables/flamants-iris/join", {}),
    ]
    answers = [(path, await client.get(path)) for path in gets]
    answers += [(path, await post_form(client, path, data)) for path, data in posts]
    wandered = {
        path: (r.status_code, r.headers.get("location"))
        for path, r in answers
        if (r.status_code, r.headers.get("location")) != (303, f"/votes/{vote}/tablet")
    }
    assert wandered == {}
    assert await snapshot() == before
    # Still Karim's ballot, with the same handover: it goes through, once.
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    assert await roll(vote) == {room.people["Karim"]: "tablet"}
    assert await roll(other_vote) == {}


# 6. Back and reload after a ballot on the tablet


async def test_back_and_reload_after_a_tablet_ballot_show_nothing_of_it(
    client: AsyncClient,
) -> None:
    room = await build_room(client, method="majority_judgment")
    vote = room.vote_id
    facilitator = room.world.users["facilitator_a"]
    seen: list[Response] = []

    async def step(response: Response) -> Response:
        seen.append(response)
        return response

    code = await fresh_code(room, facilitator)
    await step(
        await post_form(client, f"/votes/{vote}/tablet/start", {"code": code, "pin": TABLET_PIN})
    )
    listed = await step(await client.get(f"/votes/{vote}/tablet"))
    assert listed.headers["cache-control"] == "no-store"
    await step(
        await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Nadia"]})
    )
    ballot = await step(await client.get(f"/votes/{vote}/tablet/ballot"))
    assert ballot.status_code == 200
    assert ballot.headers["cache-control"] == "no-store"
    options = [
        row["id"]
        for row in await VoteOption.select(VoteOption.id)
        .where(VoteOption.vote == vote)
        .order_by(VoteOption.position)
    ]
    grades = SCALES[SEVEN]
    chosen = {options[0]: 1, options[1]: 3, options[2]: 5}  # Très bien, Assez bien, Insuffisant
    marks = {f"grade-{option}": str(grade) for option, grade in chosen.items()}
    form = {**marks, "handover": handover_of(ballot.text)}
    sent = await step(await post_form(client, f"/votes/{vote}/tablet/ballot", form))
    assert sent.status_code == 303, sent.text[-2000:]
    done = await step(await client.get(f"/votes/{vote}/tablet/done"))
    assert done.status_code == 200
    assert done.headers["cache-control"] == "no-store"
    receipt = re.search(r'<strong class="code">([0-9A-Z]{8})</strong>', done.text)
    assert receipt is not None
    for grade in chosen.values():
        assert grades[grade] in ballot.text  # the labels are as pages print them
        assert grades[grade] not in done.text
    assert "grade-" not in done.text
    # Reload, Back to the ballot, the same form again: the list, and nothing more recorded.
    reload = await step(await client.get(f"/votes/{vote}/tablet/done"))
    back = await step(await client.get(f"/votes/{vote}/tablet/ballot"))
    again = await step(await post_form(client, f"/votes/{vote}/tablet/ballot", form))
    for response in (reload, back, again):
        assert response.status_code == 303
        assert response.headers["location"] == f"/votes/{vote}/tablet"
    # The list waits for the facilitator's PIN; then Nadia is no longer on it.
    locked = await step(await client.get(f"/votes/{vote}/tablet"))
    assert locked.headers["cache-control"] == "no-store"
    assert t(GIVE_BACK) in locked.text
    await step(await post_form(client, f"/votes/{vote}/tablet/unlock", {"pin": TABLET_PIN}))
    listed = await step(await client.get(f"/votes/{vote}/tablet"))
    assert listed.headers["cache-control"] == "no-store"
    for shown in (locked, listed):
        assert receipt.group(1) not in shown.text
        assert "Nadia" not in shown.text
    assert "Samira" in listed.text
    assert await roll(vote) == {room.people["Nadia"]: "tablet"}
    assert await SealedBallot.count().where(SealedBallot.vote == vote) == 1
    # The choice is in no address the tablet was sent to, nor is the receipt.
    allowed = {
        f"/votes/{vote}/tablet",
        f"/votes/{vote}/tablet/ballot",
        f"/votes/{vote}/tablet/done",
    }
    locations = [r.headers["location"] for r in seen if "location" in r.headers]
    assert len(locations) == 7, locations
    assert set(locations) <= allowed, locations
    posted = {f"/votes/{vote}/tablet/{action}" for action in ("hand", "start", "unlock")}
    assert all(str(r.url.path) in allowed | posted for r in seen)
    assert all(not r.url.query for r in seen)


# 7. A handover left idle


async def test_a_handover_left_idle_is_taken_back_and_its_form_records_nothing(
    client: AsyncClient,
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Samira")
    now = datetime.now(UTC)
    # 29 minutes: still the voter's.
    await Tablet.update({Tablet.handed_at: now - timedelta(minutes=29)}).where(Tablet.vote == vote)
    assert (await client.get(f"/votes/{vote}/tablet/ballot")).status_code == 200
    # 31 minutes: taken back.
    await Tablet.update({Tablet.handed_at: now - timedelta(minutes=31)}).where(Tablet.vote == vote)
    page = await client.get(f"/votes/{vote}/tablet/ballot")
    assert page.status_code == 303
    assert page.headers["location"] == f"/votes/{vote}/tablet"
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/votes/{vote}/tablet"
    assert await roll(vote) == {}
    assert await SealedBallot.count() == 0
    assert not await AuditEntry.exists().where(AuditEntry.action == "vote.cast_on_tablet")
    # The list takes the tablet back, locked until the facilitator's PIN; handed again, the
    # old form still records nothing.
    listed = await client.get(f"/votes/{vote}/tablet")
    assert t(GIVE_BACK) in listed.text
    assert "Samira" not in listed.text
    (tablet,) = await Tablet.select(Tablet.person, Tablet.handover, Tablet.locked).where(
        Tablet.vote == vote
    )
    assert tablet == {"person": "", "handover": "", "locked": True}
    await unlock_tablet(client, vote)
    assert "Samira" in (await client.get(f"/votes/{vote}/tablet")).text
    fresh = await hand_tablet(client, room, "Samira")
    assert fresh != handover
    stale = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert stale.status_code == 409
    assert t(room_service.HANDOVER_GONE) in stale.text
    assert await roll(vote) == {}
    assert await SealedBallot.count() == 0


# 8. Who may vote


async def online(app: object, token: str, user_id: int, vote: int) -> Response:
    session = await open_session(user_id, verified=True)
    return await send(app, token, session, f"/votes/{vote}/ballot", {"choice": "yes"})


async def late_member(room: Room) -> int:
    """A member who joined the table after the vote opened."""
    user_id = await add_user("member-late", "Leila")
    await seat(user_id, room.world.table_a)
    return user_id


async def check_in(client: AsyncClient, room: Room, user_id: int) -> None:
    ticked = await post_form(
        client, f"/meetings/{room.meeting_id}/attendance/members/{user_id}", {}
    )
    assert ticked.status_code == 303, ticked.text[-2000:]


async def test_members_only_the_walk_in_is_not_on_the_tablet(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client, electorate="members")
    vote = room.vote_id
    token = await csrf_token(client)
    late = await late_member(room)
    await check_in(client, room, late)
    # The paper cannot go to the walk-in either.
    paper = await post_form(client, f"/votes/{vote}/room/paper", {"person": [room.people["Fatou"]]})
    assert paper.status_code == 409
    assert t(room_service.NOT_IN_ROOM) in paper.text
    await start_tablet(client, room)
    listed = await client.get(f"/votes/{vote}/tablet")
    for name in ("Samira", "Karim", "Nadia"):
        assert name in listed.text
    assert "Fatou" not in listed.text
    assert "Leila" not in listed.text
    for person in (room.people["Fatou"], f"user:{late}"):
        handed = await post_form(client, f"/votes/{vote}/tablet/hand", {"person": person})
        assert handed.status_code == 409
        assert t(room_service.NOT_IN_ROOM) in handed.text
        (tablet,) = await Tablet.select(Tablet.person, Tablet.handover).where(Tablet.vote == vote)
        assert tablet == {"person": "", "handover": ""}
    # A member who is not in the room still votes online; one who joined after, even present, not.
    assert (await online(app, token, room.world.users["resident_a"], vote)).status_code == 200
    refused = await online(app, token, late, vote)
    assert refused.status_code == 403
    assert t(JOINED_AFTER_OPENING) in refused.text
    assert await roll(vote) == {f"user:{room.world.users['resident_a']}": "online"}


async def test_present_only_a_member_not_checked_in_cannot_vote_online(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client, electorate="present")
    vote = room.vote_id
    token = await csrf_token(client)
    absent = room.world.users["resident_a"]  # a member of the table, not checked in
    refused = await online(app, token, absent, vote)
    assert refused.status_code == 403, refused.text[-2000:]
    assert t(NOT_PRESENT) in refused.text
    assert await roll(vote) == {}
    assert await SealedBallot.count() == 0
    # Checked in, the same member votes; so does a member who joined after it opened.
    await check_in(client, room, absent)
    late = await late_member(room)
    await check_in(client, room, late)
    assert (await online(app, token, absent, vote)).status_code == 200
    assert (await online(app, token, late, vote)).status_code == 200
    # The walk-in is on the tablet's list and votes there.
    await start_tablet(client, room)
    assert "Fatou" in (await client.get(f"/votes/{vote}/tablet")).text
    await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Fatou"]})
    handover = handover_of((await client.get(f"/votes/{vote}/tablet/ballot")).text)
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "no", "handover": handover}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    assert await roll(vote) == {
        f"user:{absent}": "online",
        f"user:{late}": "online",
        room.people["Fatou"]: "tablet",
    }


async def test_both_members_anywhere_and_everyone_present(client: AsyncClient, app: object) -> None:
    room = await build_room(client, electorate="both")
    vote = room.vote_id
    token = await csrf_token(client)
    late = await late_member(room)
    # A member away from the room votes; one who joined after the opening only once present.
    assert (await online(app, token, room.world.users["resident_a"], vote)).status_code == 200
    refused = await online(app, token, late, vote)
    assert refused.status_code == 403
    assert t(NOT_PRESENT) in refused.text
    await check_in(client, room, late)
    assert (await online(app, token, late, vote)).status_code == 200
    # The walk-in votes on the tablet.
    await start_tablet(client, room)
    assert "Fatou" in (await client.get(f"/votes/{vote}/tablet")).text
    await post_form(client, f"/votes/{vote}/tablet/hand", {"person": room.people["Fatou"]})
    handover = handover_of((await client.get(f"/votes/{vote}/tablet/ballot")).text)
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "abstain", "handover": handover}
    )
    assert sent.status_code == 303
    assert await roll(vote) == {
        f"user:{room.world.users['resident_a']}": "online",
        f"user:{late}": "online",
        room.people["Fatou"]: "tablet",
    }
    assert await SealedBallot.count().where(SealedBallot.vote == vote) == 3
