"""Closing a vote: exactly once, by hand or at its closing time, whichever comes first.

One transaction moves the vote from open to closed with a conditional UPDATE (the guard
against two closers: a facilitator's click, the first reader after the closing time,
`voix close-due` on another machine, the job queue's check every CLOSING_CHECK_SECONDS),
unseals its ballots shuffled, counts them in SQL, ranks the options with votes.counting,
stores the result on each option and lets the result decide the proposals. Memory stays
flat: ballots stream through in chunks.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit import services as audit
from meetings.models import MISMATCH, PAPER_COUNT, PENDING, RECORDED, RoomCount, RoomCountEntry
from notifications import schedule  # noqa: F401 (the day-before reminders' job, beside closings)
from proposals.discussion import record_change
from proposals.models import ADOPTED, REJECTED, VOTING, Proposal
from tables.services import get_table_by_id, scope_of
from voix import db, jobs, workers
from voix.forms import UserError
from voix.i18n import N_
from voix.permissions import ANONYMOUS, Principal, require
from votes import counting, sealing
from votes.models import (
    CLOSED,
    ELECTRONIC,
    OPEN,
    Decision,
    Participation,
    SealedBallot,
    Vote,
)
from votes.scales import APPROVAL
from votes.services import grades_of, options, tell_about_vote

ALREADY_CLOSED = N_("This vote is already closed.")
COUNT_PENDING = N_(
    "A paper or show-of-hands count is still waiting for its second entry, or its two "
    "entries differ. Finish it before closing the vote."
)
CHUNK = 2000
# How late a vote nobody reads may close: readers close it themselves (votes.services).
CLOSING_CHECK_SECONDS = 30


async def close_vote(who: Principal, table: dict[str, Any], vote_id: int) -> None:
    """A facilitator closes the vote now."""
    require(who, "votes.manage", scope_of(table))
    if not await _close(vote_id, who, Vote.table == table["id"], by_hand=True):
        raise UserError(ALREADY_CLOSED)


async def close_if_due(vote_id: int) -> bool:
    """Closes the vote if its closing time has passed and nobody closed it yet."""
    return await _close(vote_id, ANONYMOUS, Vote.closes_at <= datetime.now(UTC))


async def close_due() -> list[int]:
    """Every vote past its closing time (what `voix close-due` runs)."""
    due = await Vote.select(Vote.id).where(
        (Vote.status == OPEN) & (Vote.closes_at <= datetime.now(UTC))
    )
    return [row["id"] for row in due if await close_if_due(row["id"])]


@jobs.handler("votes.close_due", every=CLOSING_CHECK_SECONDS)
async def close_due_job(_payload: dict[str, Any]) -> None:
    """On one replica at a time: the votes whose time came close even if nobody looks."""
    await close_due()


async def _close(vote_id: int, who: Principal, condition: Any, by_hand: bool = False) -> bool:
    async with db.write_transaction():
        closed = await (
            Vote.update({Vote.status: CLOSED, Vote.closed_at: datetime.now(UTC)})
            .where((Vote.id == vote_id) & (Vote.status == OPEN) & condition)
            .returning(Vote.table, Vote.method)
        )
        if not closed:
            return False
        await _settle_room_counts(vote_id, by_hand)
        vote_options = (await options([vote_id]))[vote_id]
        await unseal(vote_id, vote_options)
        (vote,) = await Vote.select().where(Vote.id == vote_id)  # updated above, so there
        adopted = await _count(vote, vote_options)
        table = await get_table_by_id(closed[0]["table"])
        await _apply(who, table, vote, vote_options, adopted)
        await audit.record(
            who,
            "vote.closed",
            scope_of(table),
            subject=f"vote:{vote_id}",
            by="facilitator" if who.authenticated else "closing time",
        )
        await tell_about_vote(
            "vote.result",
            vote_id,
            table,
            [option["proposal"] for option in vote_options],
            {"question": vote["question"]},
            exclude=who.user_id,
        )
    await db.scrub("sealed_ballot")
    return True


async def _unfinished_counts(vote_id: int) -> tuple[list[int], list[int]]:
    """The room's counts not recorded yet: those that stop a facilitator from closing (a
    show of hands, a batch already entered once or twice), and the paper batches opened and
    never entered, which a closing drops."""
    unfinished = await RoomCount.select(RoomCount.id, RoomCount.kind).where(
        (RoomCount.vote == vote_id) & RoomCount.status.is_in([PENDING, MISMATCH])
    )
    if not unfinished:
        return [], []
    entered = {
        row["count"]
        for row in await RoomCountEntry.select(RoomCountEntry.count).where(
            RoomCountEntry.count.is_in([row["id"] for row in unfinished])
        )
    }
    blocking = [r["id"] for r in unfinished if r["kind"] != PAPER_COUNT or r["id"] in entered]
    empty = [r["id"] for r in unfinished if r["id"] not in blocking]
    return blocking, empty


async def pending_room_counts(vote_id: int) -> dict[str, int]:
    """What the page asking before a closing says of the room's counts: how many would stop
    it (`blocking`), how many empty paper batches it would drop (`empty`)."""
    blocking, empty = await _unfinished_counts(vote_id)
    return {"blocking": len(blocking), "empty": len(empty)}


async def _settle_room_counts(vote_id: int, by_hand: bool) -> None:
    """Inside the closing transaction (after the vote's row is taken, so no count is started
    or entered meanwhile): a facilitator cannot close while a count is under way, as a
    show of hands or a batch already entered; a paper batch opened and never entered is
    dropped. At the closing time nobody is there to finish them: what is unfinished then
    is not counted."""
    if not by_hand:
        return
    blocking, empty = await _unfinished_counts(vote_id)
    if blocking:
        raise UserError(COUNT_PENDING)  # rolls the closing back
    if empty:
        await RoomCount.delete().where(RoomCount.id.is_in(empty))


async def unseal(vote_id: int, vote_options: Sequence[dict[str, Any]]) -> None:
    """Sealed ballots become ballots: decrypted, shuffled, written together, seals deleted.

    Runs inside the closing transaction, so every ballot of the vote carries that one
    transaction's id, a random key, and an order drawn by the database at closing
    (ORDER BY random()) that owes nothing to the order of voting. Chunks are opened in the
    worker processes, as many at once as there are workers, while earlier ones are written.
    """
    positions = {option["id"]: option["position"] for option in vote_options}
    only_option = vote_options[0]["id"] if len(vote_options) == 1 else None
    opening: deque[asyncio.Future[list[tuple[str, str]]]] = deque()

    def open_chunk(tokens: list[str]) -> None:
        job = workers.run(sealing.open_seals, vote_id, tokens, positions, only_option)
        opening.append(asyncio.ensure_future(job))

    try:
        tokens: list[str] = []
        sealed = db.stream(
            "SELECT sealed FROM sealed_ballot WHERE vote = ? ORDER BY random()",
            vote_id,
            chunk=CHUNK,
        )
        async for (token,) in sealed:
            tokens.append(token)
            if len(tokens) == CHUNK:
                open_chunk(tokens)
                tokens = []
                if len(opening) >= workers.size():
                    await _store(vote_id, await opening.popleft())
        if tokens:
            open_chunk(tokens)
        while opening:
            await _store(vote_id, await opening.popleft())
    finally:
        for job in opening:
            job.cancel()
    await db.secure_delete()
    await SealedBallot.delete().where(SealedBallot.vote == vote_id)


async def _store(vote_id: int, opened: list[tuple[str, str]]) -> None:
    await db.bulk_insert(
        "ballot",
        ("id", "vote", "receipt", "marks"),
        [(uuid.uuid4(), vote_id, receipt, marks) for receipt, marks in opened],
    )


async def tally(vote_id: int, vote_options: Sequence[dict[str, Any]]) -> dict[int, dict[int, int]]:
    """Marks counted by option and grade, in SQL: each ballot's marks unnested and grouped."""
    if isinstance(db.engine(), db.Postgres):
        query = (
            "SELECT CAST(m.position AS INTEGER) - 1 AS position, CAST(m.grade AS INTEGER) AS grade,"
            " COUNT(*) AS n FROM ballot b CROSS JOIN LATERAL json_array_elements_text("
            "CAST(b.marks AS json)) WITH ORDINALITY AS m(grade, position)"
            " WHERE b.vote = {} AND m.grade IS NOT NULL GROUP BY m.position, m.grade"
        )
    else:
        query = (
            "SELECT CAST(m.key AS INTEGER) AS position, m.value AS grade, COUNT(*) AS n"
            " FROM ballot b, json_each(b.marks) m"
            " WHERE b.vote = {} AND m.value IS NOT NULL GROUP BY m.key, m.value"
        )
    by_position = {option["position"]: option["id"] for option in vote_options}
    counted: dict[int, dict[int, int]] = defaultdict(dict)
    for row in await Vote.raw(query, vote_id):
        counted[by_position[row["position"]]][int(row["grade"])] = row["n"]
    return counted


def result(
    vote: dict[str, Any],
    vote_options: Sequence[dict[str, Any]],
    counted: dict[int, dict[int, int]],
    participants: int,
) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """Each option's stored result (tally, rank, majority grade) and the options adopted.

    A proposal hidden by moderation while the vote was open keeps its counts but is not
    adopted: the table does not carry what its moderators withdrew.
    """
    ids = {str(option["id"]): option["id"] for option in vote_options}
    width = len(grades_of(vote))

    def tally_of(option_id: int) -> list[int] | int:
        marks = counted.get(option_id, {})
        if vote["method"] == APPROVAL:
            return marks.get(0, 0)
        return [marks.get(grade, 0) for grade in range(width)]

    decided = counting.outcome(
        vote["method"],
        {key: tally_of(option_id) for key, option_id in ids.items()},
        participants,
        quorum=vote["quorum"],
        threshold=vote["threshold"],
        min_grade=vote["adopt_grade"],
        top=vote["adopt_top"],
        majority=vote["method"] == APPROVAL and not vote["adopt_top"],
        withdrawn=frozenset(str(o["id"]) for o in vote_options if o.get("hidden_at")),
    )
    stored = {
        ids[placed.option]: {
            "tally": list(placed.tally),
            "rank": placed.rank,
            "majority_grade": placed.majority_grade,
        }
        for placed in decided.ranking
    }
    return stored, {ids[key] for key in decided.adopted or ()}


async def room_counts(vote_id: int) -> tuple[dict[int, list[int] | int], int]:
    """What the paper batches and the show of hands recorded: each option's counts added up
    (keyed by option id) and how many took part through them.

    A paper batch's participants are its ballots less the spoilt ones (a blank ballot took
    part and chose nothing, as an electronic ballot left empty); a show of hands counts the
    hands raised for yes, no and abstain.
    """
    totals: dict[int, list[int] | int] = {}
    participants = 0
    rows = await RoomCount.select(RoomCount.kind, RoomCount.figures).where(
        (RoomCount.vote == vote_id) & (RoomCount.status == RECORDED)
    )
    for row in rows:
        figures = json.loads(row["figures"])
        for key, counts in figures["options"].items():
            option_id = int(key)
            before = totals.get(option_id)
            if isinstance(counts, int):
                totals[option_id] = (before if isinstance(before, int) else 0) + counts
            else:
                earlier = before if isinstance(before, list) else [0] * len(counts)
                totals[option_id] = [a + b for a, b in zip(earlier, counts, strict=True)]
        if row["kind"] == PAPER_COUNT:
            participants += figures["ballots"] - figures["spoilt"]
        else:
            participants += sum(next(iter(figures["options"].values()), []))
    return totals, participants


async def _count(vote: dict[str, Any], vote_options: Sequence[dict[str, Any]]) -> set[int]:
    electronic = await Participation.count().where(
        (Participation.vote == vote["id"]) & Participation.channel.is_in(list(ELECTRONIC))
    )
    counted = await tally(vote["id"], vote_options)
    paper, in_room = await room_counts(vote["id"])
    for option_id, counts in paper.items():
        marks = counted.setdefault(option_id, {})
        if isinstance(counts, int):
            marks[0] = marks.get(0, 0) + counts
        else:
            for grade, n in enumerate(counts):
                marks[grade] = marks.get(grade, 0) + n
    participants = electronic + in_room
    stored, adopted = result(vote, vote_options, counted, participants)
    for option_id, figures in stored.items():
        await Vote.raw(
            "UPDATE vote_option SET tally = {}, rank = {}, majority_grade = {}, adopted = {} "
            "WHERE id = {}",
            json.dumps(figures["tally"]),
            figures["rank"],
            figures["majority_grade"],
            option_id in adopted,
            option_id,
        )
    await Vote.update({Vote.participants: participants}).where(Vote.id == vote["id"])
    return adopted


async def _apply(
    who: Principal,
    table: dict[str, Any],
    vote: dict[str, Any],
    vote_options: Sequence[dict[str, Any]],
    adopted: set[int],
) -> None:
    """The result decides: each proposal still being voted on is adopted or not retained."""
    now = datetime.now(UTC)
    for option in vote_options:
        if option["proposal"] is None:
            continue
        outcome = ADOPTED if option["id"] in adopted else REJECTED
        moved = await (
            Proposal.update({Proposal.status: outcome})
            .where((Proposal.id == option["proposal"]) & (Proposal.status == VOTING))
            .returning(Proposal.id)
        )
        if not moved:
            continue
        await record_change(option["proposal"], VOTING, outcome, who, vote["question"])
        await Decision.insert(
            Decision(
                proposal=option["proposal"],
                vote=vote["id"],
                outcome=outcome,
                follows_vote=True,
                decided_by=who.user_id,
                decided_at=now,
            )
        )


@dataclass(frozen=True)
class OpenVote:
    id: int
    question: str
    participants: int


async def open_votes() -> list[OpenVote]:
    """The votes open now, with how many took part (after `voix restore`: as at backup time)."""
    rows = await Vote.select(Vote.id, Vote.question).where(Vote.status == OPEN).order_by(Vote.id)
    counts = await db.count_by(Participation.vote, [row["id"] for row in rows])
    return [OpenVote(row["id"], row["question"], counts[row["id"]]) for row in rows]
