"""Votes: opening (on one proposal or several), casting once and secretly, reading.

Casting is one write transaction: a participation row (unique per vote and voter) and a
sealed ballot (encrypted). Closing (votes.closing) unseals every ballot of the vote at once,
shuffled, so the stored ballots share no key, time, order or transaction with who voted. A
vote's state is checked in the same transaction, which serialises casting against closing:
an online ballot is one statement that checks and writes everything, holding the vote's row
FOR SHARE on PostgreSQL (ballots run side by side, a closing waits for them or they for it);
the other paths take the row with a conditional UPDATE.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from litestar.exceptions import NotFoundException

from audit import services as audit
from meetings.models import OPEN as OPEN_MEETING
from meetings.models import SCHEDULED as SCHEDULED_MEETING
from meetings.models import AgendaItem, Attendance, Meeting
from notifications import services as notify
from notifications.models import PROPOSAL as FOLLOWS_PROPOSAL
from notifications.models import TABLE as FOLLOWS_TABLE
from proposals.discussion import record_change
from proposals.models import DISCUSSION, SUBMITTED, VOTING, Proposal, Translation
from tables.models import Membership, Table
from tables.services import get_table_by_id, scope_of
from voix import cache, crypto, db
from voix.forms import Form, FormErrors, UserError, parse_int
from voix.i18n import N_
from voix.permissions import Principal, can, require
from votes import sealing
from votes.models import (
    BOTH,
    CLOSED,
    CONTENT,
    ELECTORATES,
    HANDS,
    INCLUSION,
    MEMBERS,
    ONLINE,
    OPEN,
    PAPER,
    PRESENT,
    TABLET,
    Ballot,
    Participation,
    SealedBallot,
    Vote,
    VoteOption,
)
from votes.scales import (
    APPROVAL,
    MAJORITY_JUDGMENT,
    METHODS,
    SCALES,
    SEVEN,
    THRESHOLDS,
    YES_NO_ABSTAIN,
    YES_NO_CHOICES,
)

JOINED_AFTER_OPENING = N_(
    "Only people who were members of the table when the vote opened take part in it."
)
ALREADY_VOTED = N_("You have already voted. Each person votes once.")
NOT_PRESENT = N_("Only the people checked in at the meeting that holds this vote take part in it.")
# Said to whoever tries again through another channel: what the roll already holds for them.
ON_ROLL = {
    ONLINE: ALREADY_VOTED,
    TABLET: N_("This person has already voted on the shared tablet. Each person votes once."),
    PAPER: N_(
        "A paper ballot was handed to this person: they vote on paper, in the ballot box of "
        "the meeting. Each person votes once."
    ),
    HANDS: N_("This person took part in the show of hands. Each person votes once."),
}
MEETING_NEEDED = N_(
    "Choose the meeting that holds the vote: the people checked in there will take part."
)
NOT_THIS_TABLE_MEETING = N_("This meeting belongs to another table, or is already over.")
VOTE_NOT_OPEN = N_("This vote is closed; ballots are no longer accepted.")
NOT_OPENABLE = N_("A vote can only be opened on a proposal that is still under discussion.")
SOME_NOT_OPENABLE = N_(
    "Some of the chosen proposals can no longer be put to the vote (already in a vote, "
    "decided or hidden). Reload the list and choose again."
)
ONE_PROPOSAL = N_("A vote for or against is on one proposal.")
SEVERAL_PROPOSALS = N_("Choose between %(min)d and %(max)d proposals for this kind of vote.")
CLOSES_IN_PAST = N_("The closing time must be in the future.")
CLOSES_TOO_LATE = N_("A vote stays open %(days)d days at most.")
TOP_TOO_LARGE = N_("Choose fewer than the number of proposals in the vote.")
GRADE_UNKNOWN = N_("Please choose one of the grades offered.")
GRADE_NOT_IN_SCALE = N_("This grade is not on the five-grade scale: choose one of its grades.")
RULE_OF_OTHER_METHOD = N_(
    "This rule belongs to the other method: choose one of the rules for the method chosen."
)
QUESTION_MAX = 200
MIN_OPTIONS, MAX_OPTIONS = 2, 40
MAX_OPEN_DAYS = 90
QUORUM_MAX = 100_000
ADOPT_RULES = ("grade", "top", "majority")
# Crockford's base 32: no I, L, O or U to misread on paper.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_LENGTH = 8
RECEIPT_PROOFS = {
    INCLUSION: N_(
        "Your receipt proves that your ballot is in the ballot box, not what it says: "
        "receipts are published apart from the ballots, so nobody can make you show "
        "how you voted."
    ),
    CONTENT: N_(
        "Your receipt is printed beside your ballot in the public ballot box: you can check "
        "what it says. Anyone you show your receipt to can see how you voted."
    ),
}

_COLUMNS = (
    Vote.id,
    Vote.table,
    Vote.proposal,
    Vote.question,
    Vote.method,
    Vote.status,
    Vote.opened_at,
    Vote.closed_at,
    Vote.closes_at,
    Vote.scale,
    Vote.quorum,
    Vote.threshold,
    Vote.adopt_grade,
    Vote.adopt_top,
    Vote.receipts_prove,
    Vote.electorate,
    Vote.participants,
    Vote.box_sha256,
    Vote.proposal.title.as_alias("proposal_title"),
)
_OPTION_COLUMNS = (
    VoteOption.id,
    VoteOption.vote,
    VoteOption.position,
    VoteOption.proposal,
    VoteOption.label,
    VoteOption.theme,
    VoteOption.tally,
    VoteOption.rank,
    VoteOption.majority_grade,
    VoteOption.adopted,
)


def new_receipt() -> str:
    return "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))


# A ballot form carries a random code of its own (a hidden field, rendered into each ballot
# form by the server, so it works without JavaScript): the same form sent twice is one ballot
# with one receipt. See record_ballot for why that code is safe to use.
SUBMISSION_FIELD = "submission"
_SUBMISSION_FORMAT = re.compile(r"[A-Za-z0-9_-]{22,64}")
RECEIPT_PURPOSE = "ballot-receipt"  # voix.crypto purposes
SUBMISSION_PURPOSE = "ballot-submission"


def new_submission() -> str:
    return secrets.token_urlsafe(16)  # 128 bits


def submission_in(data: Mapping[str, Any]) -> str | None:
    """The form's code, if it carries a well-formed one (a form from before has none)."""
    value = data.get(SUBMISSION_FIELD)
    return value if isinstance(value, str) and _SUBMISSION_FORMAT.fullmatch(value) else None


def receipt_for(vote_id: int, person: str, submission: str) -> str:
    """The receipt of this person's ballot sent with this form: 40 bits of a keyed hash, in
    Crockford's base 32 like every receipt. The person is in it so that a form's code copied
    by someone else gives them another receipt."""
    digest = crypto.keyed_hash(f"{vote_id}:{person}:{submission}", RECEIPT_PURPOSE)
    number = int(digest[: RECEIPT_LENGTH * 5 // 4], 16)
    return "".join(
        RECEIPT_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(RECEIPT_LENGTH))
    )


def submission_of(vote_id: int, person: str, submission: str, marks: sealing.Marks) -> str:
    """What the roll keeps of a form: a keyed hash of its code and of the marks it carries, so
    the same code with other marks (a voter who went back and changed them) is a second
    ballot, refused, not the first one's receipt for a ballot that says something else."""
    sent = json.dumps(sorted(marks), separators=(",", ":"))
    return crypto.keyed_hash(f"{vote_id}:{person}:{submission}:{sent}", SUBMISSION_PURPOSE)


def grades_of(vote: Mapping[str, Any]) -> tuple[str, ...]:
    """The labels a ballot of this vote is written in, best first."""
    if vote["method"] == MAJORITY_JUDGMENT:
        return SCALES[vote["scale"] or SEVEN]
    if vote["method"] == YES_NO_ABSTAIN:
        return YES_NO_CHOICES
    return ()


def option_key(option: Mapping[str, Any]) -> str:
    """An option's name in the public ballot box: its proposal's number, as `p12`."""
    return f"p{option['proposal']}" if option["proposal"] else f"o{option['position'] + 1}"


def _shape(vote: dict[str, Any]) -> dict[str, Any]:
    for moment in ("opened_at", "closed_at", "closes_at"):
        if vote.get(moment):
            vote[moment] = db.utc(vote[moment])
    return vote


def _shape_option(option: dict[str, Any]) -> dict[str, Any]:
    option["key"] = option_key(option)
    option["tally"] = json.loads(option["tally"]) if option["tally"] else None
    return option


async def _close_due_among(votes: Sequence[dict[str, Any]]) -> bool:
    """Closes the votes past their closing time; True when one was due.

    True also when another request or `voix close-due` closed it at the same moment
    (close_if_due returns False then): the caller's rows are stale either way.
    """
    from votes.closing import close_if_due  # noqa: PLC0415 (closing builds on this module)

    due = False
    for vote in votes:
        if vote["status"] == OPEN and vote["closes_at"] and vote["closes_at"] <= _now():
            await close_if_due(vote["id"])
            due = True
    return due


def _now() -> datetime:
    return datetime.now(UTC)


async def close_due(where: Any = None) -> None:
    """Closes the open votes past their closing time (among those `where` selects): before a
    reader sees proposals whose status a vote's closing changes (the open data)."""
    due = (Vote.status == OPEN) & (Vote.closes_at <= _now())
    rows = await Vote.select(*_COLUMNS).where(due if where is None else due & where)
    await _close_due_among([_shape(row) for row in rows])


async def get(vote_id: int) -> dict[str, Any]:
    """A vote, closed first if its time has come: the first reader closes it."""
    vote = await Vote.select(*_COLUMNS).where(Vote.id == vote_id).first()
    if vote is None:
        raise NotFoundException()
    if await _close_due_among([_shape(vote)]):
        # Closed now, by this request or another: read it as it is now (once, no recursion).
        vote = await Vote.select(*_COLUMNS).where(Vote.id == vote_id).first()
        if vote is None:
            raise NotFoundException()
        _shape(vote)
    return vote


async def get_with_table(vote_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    vote = await get(vote_id)
    return vote, await get_table_by_id(vote["table"])


# Read at each ballot: compiled to SQL once (voix.db.Prepared).
_FOR_BALLOT = db.Prepared(
    lambda vote_id: Vote.select(
        *_COLUMNS,
        Vote.table.slug.as_alias("table_slug"),
        Vote.table.name.as_alias("table_name"),
        Vote.table.organisation.as_alias("table_organisation"),
        Vote.table.revision.as_alias("table_revision"),
    ).where(Vote.id == vote_id)
)


class Stale(Exception):
    """A ballot cast from what this process kept of its vote (get_for_ballot(kept=True)) whose
    table has changed since: nothing was written. Read the vote again and cast as it reads."""


async def get_for_ballot(
    vote_id: int, *, kept: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The vote (closed first if its time has come, as `get`) and what a ballot and its pages
    need of the table: its id, organisation (the scope), slug, name and revision. One query.

    `kept`: as this process last read it, if it did within KEPT_SECONDS, and no query. That
    may be stale: a ballot cast from it passes the revision it was read under (cast), and the
    statement that writes the ballot writes nothing if the table's revision has moved since
    (Stale). An open vote's every ballot read it once more before, a third of a ballot's
    round trips to the database (issue 15)."""
    if kept and (hit := cache.pages.get((_KEPT_FOR_BALLOT, vote_id))) is not None:
        vote, table = dict(hit[0]), dict(hit[1])
        if await _close_due_among([vote]):
            cache.pages.put((_KEPT_FOR_BALLOT, vote_id), None, 0)
            return await get_with_table(vote_id)
        return vote, table
    row = await _FOR_BALLOT.first(vote_id)
    if row is None:
        raise NotFoundException()
    vote = row
    table = {
        "id": vote["table"],
        "slug": vote.pop("table_slug"),
        "name": vote.pop("table_name"),
        "organisation": vote.pop("table_organisation"),
        "revision": vote.pop("table_revision"),
    }
    if await _close_due_among([_shape(vote)]):
        return await get_with_table(vote_id)  # closed now: read it as it is now
    if vote["status"] == OPEN and not db.in_transaction():
        cache.pages.put((_KEPT_FOR_BALLOT, vote_id), (dict(vote), dict(table)), KEPT_SECONDS)
    else:
        cache.pages.put((_KEPT_FOR_BALLOT, vote_id), None, 0)  # nothing kept: read each time
    return vote, table


# How long what a ballot reads of its vote is kept at most (voix.cache): the revision covers
# every change, this bounds the memory.
KEPT_SECONDS = 60.0
_KEPT_FOR_BALLOT = "for-ballot"


async def ballot_options(vote: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """The vote with its options (with_results, no turnout), for a ballot and its answer. An
    open vote's are kept (voix.cache) under its table's revision, which moves with any change
    to the vote or its options (tables/revision.py): a vote's busiest minute reads them once
    per process, not once per ballot."""

    async def read() -> dict[str, Any]:
        (shown,) = await with_results([dict(vote)], turnout=False)
        return shown

    revision = table.get("revision")
    if vote["status"] != OPEN or revision is None:
        return await read()
    kept = await cache.pages.get_or_build(
        ("ballot-options", vote["id"], revision), read, seconds=KEPT_SECONDS
    )
    return {**kept, "options": [dict(option) for option in kept["options"]]}


async def _read(where: Any) -> list[dict[str, Any]]:
    rows = [_shape(v) for v in await Vote.select(*_COLUMNS).where(where).order_by(Vote.id)]
    if await _close_due_among(rows):
        rows = [_shape(v) for v in await Vote.select(*_COLUMNS).where(where).order_by(Vote.id)]
    return sorted(rows, key=lambda v: v["opened_at"], reverse=True)


async def by_ids(vote_ids: list[int]) -> list[dict[str, Any]]:
    return await _read(Vote.id.is_in(vote_ids)) if vote_ids else []


async def for_table(table_id: int) -> list[dict[str, Any]]:
    return await _read(Vote.table == table_id)


async def _vote_ids_on(proposal_ids: list[int]) -> list[int]:
    rows = await VoteOption.select(VoteOption.vote).where(VoteOption.proposal.is_in(proposal_ids))
    return sorted({row["vote"] for row in rows})


async def for_proposals(proposal_ids: list[int], status: str = CLOSED) -> list[dict[str, Any]]:
    """Votes on these proposals (alone or among others), newest first."""
    if not proposal_ids or not (ids := await _vote_ids_on(proposal_ids)):
        return []
    return [v for v in await _read(Vote.id.is_in(ids)) if v["status"] == status]


async def for_proposal(proposal_id: int) -> list[dict[str, Any]]:
    ids = await _vote_ids_on([proposal_id])
    return await _read(Vote.id.is_in(ids)) if ids else []


async def has_open_vote(proposal_id: int) -> bool:
    return await VoteOption.exists().where(
        (VoteOption.proposal == proposal_id) & (VoteOption.vote.status == OPEN)
    )


def _options_query(where: Any) -> Any:
    return (
        VoteOption.select(
            *_OPTION_COLUMNS,
            VoteOption.proposal.supports.as_alias("supports"),
            VoteOption.proposal.hidden_at.as_alias("hidden_at"),
        )
        .where(where)
        .order_by(VoteOption.vote)
        .order_by(VoteOption.position)
    )


# One vote's options (its page, each ballot): compiled once.
_OPTIONS_OF_ONE = db.Prepared(lambda vote_id: _options_query(VoteOption.vote == vote_id))


async def options(vote_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each vote's options in ballot order, with their stored results once closed."""
    found: dict[int, list[dict[str, Any]]] = {vote_id: [] for vote_id in vote_ids}
    if vote_ids:
        rows = (
            await _OPTIONS_OF_ONE.rows(vote_ids[0])
            if len(vote_ids) == 1
            else await _options_query(VoteOption.vote.is_in(vote_ids))
        )
        for row in rows:
            found[row["vote"]].append(_shape_option(row))
    return found


async def with_results(
    votes: list[dict[str, Any]], *, turnout: bool = True
) -> list[dict[str, Any]]:
    """Votes with their options (results once closed) and live turnout: two queries (one
    without the turnout)."""
    ids = [vote["id"] for vote in votes]
    found = await options(ids)
    counts = await count_turnout(ids) if turnout else dict.fromkeys(ids, 0)
    for vote in votes:
        for option in found[vote["id"]]:
            # A proposal hidden by moderation keeps its place and its counts, not its words
            # (the public ballot box keeps the label the vote was opened with: votes.box).
            option["withdrawn"] = bool(option["hidden_at"])
            if option["withdrawn"]:
                option["label"] = ""
        vote["options"] = found[vote["id"]]
        vote["turnout"] = counts[vote["id"]]
        vote["grades"] = grades_of(vote)
    return votes


async def yes_no_counts(vote_ids: list[int]) -> dict[int, dict[str, int]]:
    """For, against and abstain of closed yes/no votes (from the stored result), in one query."""
    counts: dict[int, dict[str, int]] = {vote_id: {} for vote_id in vote_ids}
    if vote_ids:
        rows = await VoteOption.select(VoteOption.vote, VoteOption.tally).where(
            VoteOption.vote.is_in(vote_ids) & (VoteOption.vote.method == YES_NO_ABSTAIN)
        )
        for row in rows:
            if row["tally"]:
                counts[row["vote"]] = dict(
                    zip(YES_NO_CHOICES, json.loads(row["tally"]), strict=True)
                )
    return counts


async def turnout(vote_ids: list[int]) -> dict[int, int]:
    """How many have voted, open or closed, in one query: what a live count shows."""
    return await db.count_by(Participation.vote, vote_ids)


count_turnout = turnout  # under another name where a parameter is called `turnout`


# Sent on every signed-in page showing open votes: written once, the ids as one value (an
# array; JSON on SQLite), where piccolo built its select anew each time — a fifth of the CPU of
# a signed-in list page (sampled with py-spy, issue 15).
_VOTED_IN = db.Statement(
    {
        "postgres": 'SELECT vote FROM vote_participation WHERE "user" = {} AND vote = ANY({})',
        "sqlite": 'SELECT vote FROM vote_participation WHERE "user" = {}'
        " AND vote IN (SELECT value FROM json_each({}))",
    }
)


async def voted_in(user_id: int | None, vote_ids: list[int]) -> set[int]:
    """Which of these votes the account took part in (by whatever channel), in one query."""
    if user_id is None or not vote_ids:
        return set()
    ids = [int(vote_id) for vote_id in vote_ids]
    value = ids if db.engine().engine_type == "postgres" else json.dumps(ids)
    return {row["vote"] for row in await _VOTED_IN.rows(user_id, value)}


_DIGIT_LOOKALIKES = str.maketrans("ILO", "110")


def read_receipt(typed: str) -> str:
    """A receipt as typed, read as Crockford meant: spaces and dashes ignored, any case, and
    the letters people write for digits (I and L for 1, O for 0) taken for those digits."""
    code = re.sub(r"[\s-]", "", typed).upper()
    return code.translate(_DIGIT_LOOKALIKES)


async def receipt_found(vote: Mapping[str, Any], receipt: str) -> bool:
    """Is this receipt in the ballot box of this closed vote?"""
    code = read_receipt(receipt)
    return (
        vote["status"] == CLOSED
        and len(code) == RECEIPT_LENGTH
        and await Ballot.exists().where((Ballot.vote == vote["id"]) & (Ballot.receipt == code))
    )


# Opening


def _read_rule(form: Form, method: str, count: int) -> dict[str, Any]:
    """How the result will decide, fixed before anyone votes."""
    rule: dict[str, Any] = {
        "quorum": form.integer("quorum", required=False, min=1, max=QUORUM_MAX, typed=True),
        "receipts_prove": form.choice("receipts_prove", (INCLUSION, CONTENT), required=False)
        or INCLUSION,
    }
    if method == YES_NO_ABSTAIN:
        if count != 1:
            form.error("proposals", ONE_PROPOSAL)
        rule["threshold"] = form.choice("threshold", THRESHOLDS, required=False) or "majority"
        return rule
    if not MIN_OPTIONS <= count <= MAX_OPTIONS:
        form.error("proposals", SEVERAL_PROPOSALS, min=MIN_OPTIONS, max=MAX_OPTIONS)
    adopt = form.choice("adopt_rule", ADOPT_RULES, required=False) or (
        "grade" if method == MAJORITY_JUDGMENT else "majority"
    )
    if method == MAJORITY_JUDGMENT:
        rule["scale"] = form.choice("scale", SCALES, required=False) or SEVEN
        grades = SCALES.get(rule["scale"], SCALES[SEVEN])
        if adopt == "grade":
            # Default: adopted when a majority grades it "Bien" or better.
            chosen = form.choice("adopt_grade", SCALES[SEVEN], required=False) or "Bien"
            if chosen in SCALES[SEVEN] and chosen not in grades:
                form.error("adopt_grade", GRADE_NOT_IN_SCALE)
            rule["adopt_grade"] = grades.index(chosen) if chosen in grades else None
        elif adopt == "majority":
            form.error("adopt_rule", RULE_OF_OTHER_METHOD)
    elif adopt == "grade":
        form.error("adopt_rule", RULE_OF_OTHER_METHOD)
    if adopt == "top":
        rule["adopt_top"] = form.integer("adopt_top", min=1, max=MAX_OPTIONS, typed=True)
        if rule["adopt_top"] and rule["adopt_top"] >= count > 0:
            form.error("adopt_top", TOP_TOO_LARGE)
    return rule


def _read_closing(form: Form) -> datetime | None:
    day = form.day("closes_on", required=False)
    closes_at = form.local_moment(day, "closes_time")
    if closes_at and closes_at <= _now():
        form.error("closes_on", CLOSES_IN_PAST)
    elif closes_at and closes_at > _now() + timedelta(days=MAX_OPEN_DAYS):
        form.error("closes_on", CLOSES_TOO_LATE, days=MAX_OPEN_DAYS)
    return closes_at.astimezone(UTC) if closes_at else None


def chosen_proposals(data: Mapping[str, Any]) -> list[int]:
    """The proposal ids of a form, in the order given, each once; junk ignored (then refused)."""
    raw = data.get("proposals") or []
    raw = [raw] if isinstance(raw, str | int) else list(raw)[: MAX_OPTIONS + 1]
    ids = [parse_int(value, min=1) for value in raw]
    return list(dict.fromkeys(i for i in ids if i is not None))


async def open_vote(
    who: Principal, table: dict[str, Any], proposal_ids: Sequence[int], data: Mapping[str, Any]
) -> int:
    """Opens a vote on one proposal (for/against) or several (majority judgment, approval).

    The proposals move to "being voted on" in one conditional UPDATE, so a proposal is in one
    open vote at a time; their titles are copied into the vote, so later edits or merges do
    not change what was voted on.
    """
    require(who, "votes.manage", scope_of(table))
    form = Form(data)
    question = form.text("question", max_length=QUESTION_MAX, min_length=5)
    method = form.choice("method", METHODS, required=False) or YES_NO_ABSTAIN
    ids = list(dict.fromkeys(proposal_ids))
    rule = _read_rule(form, method, len(ids)) if method in METHODS else {}
    closes_at = _read_closing(form)
    electorate = form.choice("electorate", ELECTORATES, required=False) or MEMBERS
    meeting_id = form.integer("meeting", required=False, min=1)
    if meeting_id is not None and not await Meeting.exists().where(
        (Meeting.id == meeting_id)
        & (Meeting.table == table["id"])
        & Meeting.status.is_in([SCHEDULED_MEETING, OPEN_MEETING])
    ):
        form.error("meeting", NOT_THIS_TABLE_MEETING)
    elif meeting_id is None and electorate != MEMBERS:
        form.error("meeting", MEETING_NEEDED)
    form.validate()
    async with db.write_transaction():
        before = await (
            Proposal.select(Proposal.id, Proposal.status, Proposal.title, Proposal.theme)
            .where(Proposal.id.is_in(ids) & (Proposal.table == table["id"]))
            .output(as_list=False)
        )
        moved = await (
            Proposal.update({Proposal.status: VOTING})
            .where(
                Proposal.id.is_in(ids)
                & (Proposal.table == table["id"])
                & Proposal.status.is_in([SUBMITTED, DISCUSSION])
                & Proposal.hidden_at.is_null()
            )
            .returning(Proposal.id)
        )
        if len(moved) != len(ids) or len(before) != len(ids):
            # Raising rolls back whatever did move.
            raise UserError(NOT_OPENABLE if len(ids) == 1 else SOME_NOT_OPENABLE)
        inserted = await Vote.insert(
            Vote(
                table=table["id"],
                proposal=ids[0] if method == YES_NO_ABSTAIN else None,
                question=question,
                method=method,
                opened_by=who.user_id,
                opened_at=_now(),
                closes_at=closes_at,
                electorate=electorate,
                **rule,
            )
        ).returning(Vote.id)
        vote_id = int(inserted[0]["id"])
        if meeting_id is not None:
            await _put_on_agenda(meeting_id, vote_id, question)
        by_id = {row["id"]: row for row in before}
        await VoteOption.insert(
            *[
                VoteOption(
                    vote=vote_id,
                    position=position,
                    proposal=proposal_id,
                    label=by_id[proposal_id]["title"],
                    theme=by_id[proposal_id]["theme"],
                )
                for position, proposal_id in enumerate(ids)
            ]
        )
        for proposal_id in ids:
            await record_change(proposal_id, by_id[proposal_id]["status"], VOTING, who, question)
        await audit.record(
            who, "vote.opened", scope_of(table), subject=f"vote:{vote_id}", method=method
        )
        await tell_about_vote(
            "vote.opened",
            vote_id,
            table,
            ids,
            {"question": question, "closes_at": closes_at.isoformat() if closes_at else None},
            exclude=who.user_id,
        )
    return vote_id


async def tell_about_vote(
    kind: str,
    vote_id: int,
    table: Mapping[str, Any],
    proposal_ids: Sequence[int | None],
    params: Mapping[str, Any],
    *,
    exclude: int | None = None,
) -> int | None:
    """An event about a vote (opened, closing tomorrow, its result), in the caller's
    transaction: to those who follow its table or one of its proposals. The event's id, or
    None when it had been emitted already."""
    follows = [(FOLLOWS_TABLE, table["id"])]
    follows += [(FOLLOWS_PROPOSAL, pid) for pid in dict.fromkeys(proposal_ids) if pid]
    return await notify.emit(
        kind,
        f"{kind}:{vote_id}",
        audience=notify.Audience(follows=notify.followers(*follows), exclude=exclude),
        params={"table": table["name"], **params},
        path=f"/votes/{vote_id}",
        table_id=table["id"],
    )


async def _put_on_agenda(meeting_id: int, vote_id: int, question: str) -> None:
    """The vote becomes the last item of the meeting that holds it."""
    last = await (
        AgendaItem.select(AgendaItem.position)
        .where(AgendaItem.meeting == meeting_id)
        .order_by(AgendaItem.position, ascending=False)
        .first()
    )
    await AgendaItem.insert(
        AgendaItem(
            meeting=meeting_id,
            position=(last["position"] + 1) if last else 0,
            title=question[:200],
            vote=vote_id,
        )
    )


SUMMARY_LENGTH = 280


async def summaries(
    proposal_ids: Sequence[int], language: str | None = None
) -> dict[int, dict[str, str]]:
    """The start of each proposal's text, for the ballot: what is voted on, in its words.

    In `language` where a facilitator translated the proposal; each with the language it is in
    ("text", "language").
    """
    if not proposal_ids:
        return {}
    rows = await Proposal.select(Proposal.id, Proposal.body, Proposal.language).where(
        Proposal.id.is_in(list(proposal_ids)) & Proposal.hidden_at.is_null()
    )
    translated = {}
    if language:
        translated = {
            row["proposal"]: row["body"]
            for row in await Translation.select(Translation.proposal, Translation.body).where(
                Translation.proposal.is_in(list(proposal_ids)) & (Translation.language == language)
            )
        }
    found = {}
    for row in rows:
        shown_in = row["language"]
        text = row["body"]
        if row["id"] in translated and row["language"] != language:
            shown_in, text = language, translated[row["id"]]
        body = " ".join(str(text or "").split())
        if len(body) > SUMMARY_LENGTH:
            body = body[:SUMMARY_LENGTH].rsplit(" ", 1)[0] + " …"
        found[row["id"]] = {"text": body, "language": shown_in or ""}
    return found


async def meetings_for_opening(table_id: int) -> list[dict[str, Any]]:
    """The table's meetings a new vote can be held at: scheduled or being held, soonest first."""
    rows = await (
        Meeting.select(Meeting.id, Meeting.title, Meeting.starts_at)
        .where(
            (Meeting.table == table_id) & Meeting.status.is_in([SCHEDULED_MEETING, OPEN_MEETING])
        )
        .order_by(Meeting.starts_at)
        .limit(20)
    )
    return [{**row, "starts_at": db.utc(row["starts_at"])} for row in rows]


async def meetings_holding(vote_id: int) -> list[int]:
    """The meetings whose agenda carries the vote: those present there may vote in the room."""
    rows = await AgendaItem.select(AgendaItem.meeting).where(AgendaItem.vote == vote_id)
    return sorted({row["meeting"] for row in rows})


async def may_vote(vote: Mapping[str, Any], person: str) -> str | None:
    """None when this person is in the vote's electorate, else what to tell them.

    Members: the table's members when the vote opened. Present: the people checked in at a
    meeting that holds the vote, walk-ins included. Both: either.
    """
    electorate = vote["electorate"] or MEMBERS
    member = (
        electorate in (MEMBERS, BOTH)
        and person.startswith("user:")
        and await Membership.exists().where(
            (Membership.user == int(person.removeprefix("user:")))
            & (Membership.table == vote["table"])
            & (Membership.created_at <= vote["opened_at"])
        )
    )
    if member:
        return None
    meetings = await meetings_holding(vote["id"]) if electorate in (PRESENT, BOTH) else []
    if meetings and await Attendance.exists().where(
        Attendance.meeting.is_in(meetings) & (Attendance.person == person)
    ):
        return None
    return JOINED_AFTER_OPENING if electorate == MEMBERS else NOT_PRESENT


async def on_roll(vote_id: int, person: str) -> str | None:
    """The channel through which this person is on the vote's roll, if they are."""
    row = await (
        Participation.select(Participation.channel)
        .where((Participation.vote == vote_id) & (Participation.person == person))
        .first()
    )
    return row["channel"] if row else None


async def lock_open(vote_id: int, table_id: int) -> dict[str, Any]:
    """Inside a write transaction: the vote, if still open and taking ballots, else refused.

    Takes the vote's row lock on PostgreSQL (SQLite's write transaction is already alone):
    a concurrent close waits, or wins. A vote past its closing time takes no ballot, even
    before anyone has closed it. A lock, not a write: an UPDATE that changed nothing still
    fired the vote's triggers and moved the table's revision (tables/revision.py), so each
    tablet ballot made every page and every kept vote of the table stale.
    """
    query = Vote.select(Vote.id, Vote.table, Vote.opened_at, Vote.electorate, Vote.method).where(
        (Vote.id == vote_id)
        & (Vote.table == table_id)
        & (Vote.status == OPEN)
        & (Vote.closes_at.is_null() | (Vote.closes_at > _now()))
    )
    if isinstance(db.engine(), db.Postgres):
        # The lock the UPDATE it replaced took (an outsider's review), not FOR UPDATE, which
        # also held up every row inserted meanwhile that points at the vote (FOR KEY SHARE:
        # an agenda item, a room's count). Online ballots (FOR SHARE) wait either way.
        query = query.lock_rows("NO KEY UPDATE")
    still_open = await query
    if not still_open:
        raise UserError(VOTE_NOT_OPEN)
    return {**still_open[0], "opened_at": db.utc(still_open[0]["opened_at"])}


async def enrol(
    vote_id: int,
    person: str,
    channel: str,
    *,
    user_id: int | None,
    name: str = "",
    recorded_by: int | None = None,
    submission: str = "",
) -> int | None:
    """Puts one person on the roll, inside the caller's write transaction; None when they
    are on it already (through any channel): the unique (vote, person) index decides."""
    inserted = await (
        Participation.insert(
            Participation(
                vote=vote_id,
                user=user_id,
                person=person,
                name=name if user_id is None else "",
                channel=channel,
                recorded_by=recorded_by,
                cast_at=_now(),
                submission=submission,
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(Participation.id)
    )
    return int(inserted[0]["id"]) if inserted else None


async def refuse_second(vote_id: int, person: str) -> NoReturn:
    """Raises what the roll says about this person: they are on it already."""
    channel = await on_roll(vote_id, person)
    raise UserError(ON_ROLL.get(channel or ONLINE, ALREADY_VOTED))


async def _sent_before(vote_id: int, person: str, submission: str) -> int | None:
    """The roll's row of this person, when it was written by this very form."""
    row = await (
        Participation.select(Participation.id)
        .where(
            (Participation.vote == vote_id)
            & (Participation.person == person)
            & (Participation.submission == submission)
        )
        .first()
    )
    return int(row["id"]) if row else None


_OPEN_AND_ENTITLED = """
    FROM vote v
    WHERE v.id = {} AND v."table" = {} AND v.status = 'open'
      AND (v.closes_at IS NULL OR v.closes_at > {})
      AND ((COALESCE(NULLIF(v.electorate, ''), 'members') IN ('members', 'both')
            AND EXISTS (SELECT 1 FROM membership m WHERE m."user" = {}
                        AND m."table" = v."table" AND m.created_at <= v.opened_at))
        OR (COALESCE(NULLIF(v.electorate, ''), 'members') IN ('present', 'both')
            AND EXISTS (SELECT 1 FROM attendance a
                        JOIN agenda_item i ON i.meeting = a.meeting
                        WHERE i.vote = v.id AND a.person = {})))
"""
_ROLL_COLUMNS = '(vote, "user", person, name, channel, recorded_by, cast_at, submission)'
# PostgreSQL: one statement, so one round trip and its own transaction. The vote's row is
# locked FOR SHARE: ballots do not wait for each other, a closing (an UPDATE of that row) waits
# for the ballots in flight, and a ballot arriving during a closing waits for it, then finds
# the vote closed and writes nothing. Given the revision of the table the ballot was read
# under, it writes nothing if the table has another now, and says which it has (Stale).
_ENROL_AND_SEAL_POSTGRES = f"""
WITH open_vote AS (
    SELECT v.id {_OPEN_AND_ENTITLED}
      AND ({{}}::integer IS NULL OR EXISTS (SELECT 1 FROM neighbourhood_table t
                                           WHERE t.id = v."table" AND t.revision = {{}}::integer))
    FOR SHARE OF v
), roll AS (
    INSERT INTO vote_participation {_ROLL_COLUMNS}
    SELECT id, {{}}::integer, {{}}::varchar, {{}}::varchar, {{}}::varchar, {{}}::integer,
           {{}}::timestamptz, {{}}::varchar
    FROM open_vote
    ON CONFLICT DO NOTHING
    RETURNING id
), box AS (
    INSERT INTO sealed_ballot (id, vote, sealed)
    SELECT {{}}::uuid, {{}}::integer, {{}}::text FROM roll
)
SELECT (SELECT id FROM roll) AS id,
       (SELECT revision FROM neighbourhood_table WHERE id = {{}}::integer) AS revision
"""  # noqa: S608 — constants of this module, no input
# Numbered once (voix.db.Statement): piccolo's Raw would parse and rebuild it at each ballot.
_ENROL_AND_SEAL = db.Statement({"postgres": _ENROL_AND_SEAL_POSTGRES})
# SQLite: in a write transaction, which is alone anyway; `WHERE` before ON CONFLICT is part of
# the SELECT (SQLite's parser needs one there).
_ENROL_SQLITE = f"""
INSERT INTO vote_participation {_ROLL_COLUMNS}
SELECT v.id, {{}}, {{}}, {{}}, {{}}, {{}}, {{}}, {{}} {_OPEN_AND_ENTITLED}
ON CONFLICT DO NOTHING
RETURNING id
"""


async def _enrol_and_seal(
    table_id: int,
    vote_id: int,
    person: str,
    channel: str,
    *,
    user_id: int | None,
    name: str,
    recorded_by: int | None,
    submission: str,
    sealed: str,
    revision: int | None = None,
) -> int | None:
    """The roll's row and the sealed ballot, written together if the vote is open and takes
    this person (may_vote) and they are not on its roll yet; else nothing, and None.
    Given `revision`, also only if the table still has it; else nothing, and Stale."""
    now = _now()
    member = int(person.removeprefix("user:")) if person.startswith("user:") else None
    checks = (vote_id, table_id, now, member, person)
    values = (
        user_id,
        person,
        name if user_id is None else "",
        channel,
        recorded_by,
        now,
        submission,
    )
    if isinstance(db.engine(), db.Postgres):
        (row,) = await _ENROL_AND_SEAL.rows(
            *checks, revision, revision, *values, uuid.uuid4(), vote_id, sealed, table_id
        )
        if row["id"] is None and revision is not None and row["revision"] != revision:
            raise Stale()
        return None if row["id"] is None else int(row["id"])
    async with db.write_transaction():
        if revision is not None:
            now_at = await Table.select(Table.revision).where(Table.id == table_id).first()
            if now_at is None or now_at["revision"] != revision:
                raise Stale()
        rows = await Participation.raw(_ENROL_SQLITE, *values, *checks)
        if not rows:
            return None
        await SealedBallot.insert(SealedBallot(vote=vote_id, sealed=sealed))
    return int(rows[0]["id"])


async def record_ballot(
    table: Mapping[str, Any],
    vote_id: int,
    marks: sealing.Marks,
    *,
    person: str,
    user_id: int | None,
    channel: str,
    name: str = "",
    recorded_by: int | None = None,
    submission: str | None = None,
    also: Callable[[int], Awaitable[None]] | None = None,
    revision: int | None = None,
) -> tuple[str, int]:
    """One electronic ballot (online or on the tablet): the person goes on the roll and the
    sealed ballot is stored, in one transaction. Returns the receipt and the roll's row.

    The same form sent again (`submission`, the ballot form's random code: a retry after an
    error page, a double click, two tabs) records nothing more and returns the same receipt,
    even when the first answer was lost after the commit. Any other ballot of a person on the
    roll is refused. Everything the caller shows is decided before the commit: nothing read
    after it can turn a stored ballot into an error.

    Why this keeps the ballot secret. The receipt is a keyed hash of the form's code
    (receipt_for); the roll keeps another keyed hash of that code with the marks
    (submission_of), never the receipt nor anything that opens to it; the code itself is
    stored nowhere, it lives in the voter's form. So, while the vote is open:
    - with the database alone, a participation's hash and a sealed ballot share nothing but
      the transaction that wrote them (votes.models.SealedBallot says what that still shows);
    - with the database and the key, the sealed ballots open to receipts and marks, yet
      matching a receipt to a participation needs the form's code: 128 random bits, which no
      one can guess or test offline; the key alone gives neither hash from the other;
    - after closing, the ballots carry receipts and the roll these hashes: the same holds.
    The code stays in the voter's browser (their form, their receipt page): with it and the
    key one recomputes a receipt that this browser shows anyway. Without a code (a form from
    before, the demo) the ballot gets a random one: it is then simply not recognised if sent
    again.

    Cost: without `also`, one statement on PostgreSQL (_enrol_and_seal), which checks the
    vote, the electorate and the roll as the steps below do; only when it writes nothing do
    those steps run, to tell which refusal (or which earlier form) it was.

    `also` runs in the same transaction with the roll's row, for what the caller must write
    with the ballot (the tablet's release, the journal): not after the commit, where a failure
    would hide a stored ballot. It does not run again for a form sent again.

    `revision`, that of the table when the caller read the vote and its options (without
    `also`): if the table has another when the ballot is written, nothing is, and Stale is
    raised for the caller to read them again (get_for_ballot with `kept`).
    """
    submission = submission or new_submission()
    receipt = receipt_for(vote_id, person, submission)
    sent = submission_of(vote_id, person, submission, marks)
    sealed = sealing.seal(vote_id, receipt, marks)
    if also is None:
        # The usual ballot: every check inside the statement that writes it. Nothing
        # written means one of them refused; the steps below say which, in their order.
        stored = await _enrol_and_seal(
            table["id"],
            vote_id,
            person,
            channel,
            user_id=user_id,
            name=name,
            recorded_by=recorded_by,
            submission=sent,
            sealed=sealed,
            revision=revision,
        )
        if stored is not None:
            return receipt, stored
    async with db.write_transaction():
        # Before the vote's state: a retry of a ballot stored just before closing still gets
        # its receipt.
        if (again := await _sent_before(vote_id, person, sent)) is not None:
            return receipt, again
        vote = await lock_open(vote_id, table["id"])
        if refusal := await may_vote(vote, person):
            raise UserError(refusal, status_code=403)
        participation = await enrol(
            vote_id,
            person,
            channel,
            user_id=user_id,
            name=name,
            recorded_by=recorded_by,
            submission=sent,
        )
        if participation is None:
            # Sent twice at once: the other request wrote it while this one waited.
            if (again := await _sent_before(vote_id, person, sent)) is not None:
                return receipt, again
            await refuse_second(vote_id, person)
        await SealedBallot.insert(SealedBallot(vote=vote_id, sealed=sealed))
        if also is not None:
            await also(participation)
    return receipt, participation


# Casting


def read_marks(
    vote: Mapping[str, Any], vote_options: Sequence[Mapping[str, Any]], data: Mapping[str, Any]
) -> sealing.Marks:
    """The marks a ballot form gives, checked against the vote; FormErrors when one is wrong.

    Majority judgment: `grade-<option id>` = grade index (best 0), any left out stays ungraded
    (it counts as the lowest grade). Approval: `approve` = option ids. Yes/no: `choice`.
    """
    form = Form(data)
    if vote["method"] == YES_NO_ABSTAIN:
        choice = form.choice("choice", YES_NO_CHOICES)
        form.validate()
        return [(vote_options[0]["id"], YES_NO_CHOICES.index(choice))]
    if vote["method"] == APPROVAL:
        raw = data.get("approve") or []
        raw = [raw] if isinstance(raw, str) else list(raw)
        offered = {str(option["id"]): option["id"] for option in vote_options}
        if len(raw) > len(offered) or any(str(value) not in offered for value in raw):
            form.error("approve", GRADE_UNKNOWN)
        form.validate()
        return sorted({(offered[str(value)], 0) for value in raw})
    grades = grades_of(vote)
    # A grade for an option not on this ballot is refused, not dropped: dropped, it would
    # count as ungraded without the voter knowing.
    on_ballot = {f"grade-{option['id']}" for option in vote_options}
    if any(str(key).startswith("grade-") and key not in on_ballot for key in data):
        form.error("marks", GRADE_UNKNOWN)
    marks = []
    for option in vote_options:
        grade = form.integer(f"grade-{option['id']}", required=False, min=0, max=len(grades) - 1)
        if grade is not None:
            marks.append((option["id"], grade))
    form.validate()
    return marks


async def cast(
    who: Principal,
    table: dict[str, Any],
    vote_id: int,
    data: Mapping[str, Any],
    *,
    vote: Mapping[str, Any] | None = None,
    vote_options: Sequence[Mapping[str, Any]] | None = None,
    revision: int | None = None,
) -> str:
    """Records one sealed ballot and returns its receipt; a second ballot is refused, the same
    form sent again gets the same receipt (record_ballot).

    `vote` (as `get` reads it) and its options spare reading them again when the caller has
    them; whether the vote still takes the ballot is decided when it is written anyway. With
    the table's `revision` they were read under, the ballot is written only if the table has
    it still (else Stale, and nothing written): for what get_for_ballot kept. A refusal
    then is Stale too, the scope being the kept table's: read again, the table decides."""
    if revision is not None and not can(who, "votes.cast", scope_of(table)):
        raise Stale()
    require(who, "votes.cast", scope_of(table))
    if vote is None or vote["id"] != vote_id:
        vote = await get(vote_id)
    submission = submission_in(data)
    if vote["status"] != OPEN and submission is None:
        raise UserError(VOTE_NOT_OPEN)
    try:
        if vote_options is None:
            vote_options = (await options([vote_id]))[vote_id]
        marks = read_marks(vote, vote_options, data)
    except FormErrors:
        if vote["status"] != OPEN:
            raise UserError(VOTE_NOT_OPEN) from None
        raise
    person = f"user:{who.user_id}"
    receipt, _ = await record_ballot(
        table,
        vote_id,
        marks,
        person=person,
        user_id=who.user_id,
        channel=ONLINE,
        submission=submission,
        revision=revision,
    )
    return receipt


async def turnout_and_voted(
    user_id: int | None, vote_ids: list[int]
) -> tuple[dict[int, int], set[int]]:
    """`turnout` and `voted_in` in one query: what a page shows live of its open votes."""
    if not vote_ids:
        return {}, set()
    marks = ", ".join("{}" for _ in vote_ids)  # placeholders only
    sql = (
        'SELECT vote, COUNT(*) AS turnout, SUM(CASE WHEN "user" = {} THEN 1 ELSE 0 END) AS mine '  # noqa: S608
        f"FROM vote_participation WHERE vote IN ({marks}) GROUP BY vote"
    )
    rows = await Participation.raw(
        sql,
        user_id if user_id is not None else -1,
        *vote_ids,
    )
    turnout = dict.fromkeys(vote_ids, 0)
    turnout.update({row["vote"]: int(row["turnout"]) for row in rows})
    return turnout, {row["vote"] for row in rows if row["mine"]}


async def with_live_turnout(
    kept: list[dict[str, Any]], user_id: int | None
) -> tuple[list[dict[str, Any]], set[int]]:
    """Votes as a page keeps them (voix.cache), their open ones with the live turnout (ballots
    do not change a table's revision: tables/revision.py), and those of them the reader voted
    in. The kept rows are left as they were.

    The turnout is counted at most once every TURNOUT_SECONDS per process (one query, with the
    reader's own ballots); in between, a signed-in reader's own ballots are read by the index
    (vote, user) and an anonymous reader's page reads nothing. Counted at every page, the
    ballots of the open votes made the table's page slower as they grew: 3,000 ballots in each
    of 7 open votes took a list page from ~1,300 to ~350 requests/s (bench/run.py, 2026-12-03).
    Only the table's and the proposal's pages read it so; the others count as they read."""
    open_ids = [vote["id"] for vote in kept if vote["status"] == OPEN]
    if not open_ids:
        return kept, set()
    key = ("turnout", tuple(sorted(open_ids)))
    live = cache.pages.get(key)
    if live is None:
        live, voted = await turnout_and_voted(user_id, open_ids)
        cache.pages.put(key, live, TURNOUT_SECONDS)
    else:
        voted = await voted_in(user_id, open_ids)
    return [{**v, "turnout": live[v["id"]]} if v["id"] in live else v for v in kept], voted


# How long a page's count of an open vote's ballots may lag (with_live_turnout).
TURNOUT_SECONDS = 2.0
