"""Voting in the room: the shared tablet, paper ballots and a show of hands.

Everyone in the room votes once, whatever the channel: the vote's roll (votes.models.
Participation, unique per vote and person) takes each person once, with the channel they
used. Online and tablet ballots are electronic and sealed (votes.services.record_ballot);
handing out a paper ballot, or holding a show of hands, puts the people concerned on the roll
as "paper" or "hands" before any figure is known, so they cannot vote another way after.

Paper batches and the show of hands are counted twice, apart, by two different people
(RoomCount, RoomCountEntry): figures are recorded only when both entries agree, and never
more ballots than were handed out.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from piccolo.query.functions.aggregate import Count

from accounts import mfa, throttle
from accounts.services import session_id_of
from accounts.throttle import Limit
from audit import services as audit
from meetings.models import (
    HANDS_COUNT,
    MISMATCH,
    OPEN,
    PAPER_COUNT,
    PENDING,
    RECORDED,
    SCHEDULED,
    Attendance,
    Meeting,
    RoomCount,
    RoomCountEntry,
    Tablet,
)
from tables.models import Membership
from tables.services import scope_of
from voix import crypto, db, i18n
from voix.forms import Form, UserError
from voix.i18n import N_
from voix.permissions import Principal, Scope, can, require
from votes import services as votes
from votes.models import (
    BOTH,
    HANDS,
    MEMBERS,
    PAPER,
    PRESENT,
    TABLET,
    Participation,
)
from votes.models import OPEN as OPEN_VOTE
from votes.scales import APPROVAL, YES_NO_ABSTAIN

NO_MEETING = N_(
    "This vote is on the agenda of no meeting: put it on a meeting's agenda to vote in the room."
)
WRONG_CODE = N_("This code is not right. Type the 6 digits your authentication app shows now.")
NOT_IN_ROOM = N_("This person is not among those present who may still vote.")
HANDOVER_GONE = N_(
    "This ballot was not sent: the tablet went back to the list. Hand it over again."
)
MEETING_OVER = N_(
    "The meeting that holds this vote is over: a shared tablet is only for a meeting to come "
    "or being held."
)
NOBODY_WAITING = N_("Everyone present has voted or received a paper ballot.")
TABLET_LOCKED = N_(
    "The tablet is locked between voters: the facilitator types their PIN to show the names."
)
WRONG_PIN = N_("This PIN is not the one chosen when the tablet was started.")
PIN_FORMAT = N_("Choose a PIN of 4 to 8 digits: you will type it to take the tablet back.")
HANDS_YES_NO_ONLY = N_("A show of hands is only for a vote for or against.")
COUNT_CLOSED = N_("This count is already recorded.")
TWO_ENTRIES = N_("Two people have already entered this count: only they can correct it.")
PAPER_NONE_HANDED = N_("No paper ballot has been handed out for this vote yet.")
MORE_THAN_HANDED = N_(
    "This batch holds more ballots (%(ballots)d) than the paper ballots handed out and not yet "
    "counted (%(left)d)."
)
MORE_HANDS_THAN_PEOPLE = N_(
    "More hands (%(hands)d) than people in the room for the show of hands (%(people)d)."
)
BLANK_TOO_MANY = N_("Blank and spoilt ballots cannot be more than the ballots of the batch.")
YES_NO_SUM = N_(
    "For, against and abstain must add up to the valid ballots (%(valid)d): the ballots of "
    "the batch less the blank and spoilt ones."
)
OPTION_TOO_MANY = N_("A proposal cannot have more marks than there are valid ballots (%(valid)d).")
COUNT_MAX = 100_000
PIN_PATTERN = re.compile(r"[0-9]{4,8}")
TABLET_PIN = "tablet-pin"  # voix.crypto purpose
HANDOVER_MAX_AGE = 30 * 60  # seconds: a tablet handed over and forgotten is taken back

# The lines of a count, for saying which ones two entries disagree on.
BALLOTS_LINE = N_("Ballots in the batch")
BLANK_LINE = N_("Blank ballots")
SPOILT_LINE = N_("Spoilt ballots")


def _now() -> datetime:
    return datetime.now(UTC)


# Who is in the room


async def room_meeting(vote: Mapping[str, Any]) -> dict[str, Any]:
    """The meeting the room votes in: the open one holding the vote, else the latest."""
    ids = await votes.meetings_holding(vote["id"])
    if not ids:
        raise UserError(NO_MEETING, status_code=409)
    rows = await (
        Meeting.select(Meeting.id, Meeting.title, Meeting.status, Meeting.languages)
        .where(Meeting.id.is_in(ids))
        .order_by(Meeting.starts_at, ascending=False)
    )
    rows.sort(key=lambda row: row["status"] != OPEN)
    return rows[0]


async def present(vote: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The people checked in at the meetings holding the vote who are in its electorate, each
    once, with the channel they are on the roll by (None while they may still vote)."""
    meetings = await votes.meetings_holding(vote["id"])
    if not meetings:
        return []
    rows = await (
        Attendance.select(
            Attendance.person,
            Attendance.user,
            Attendance.name,
            Attendance.user.display_name.as_alias("display_name"),
            Attendance.user.language.as_alias("language"),
        )
        .where(Attendance.meeting.is_in(meetings))
        .order_by(Attendance.id)
    )
    people: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["person"].startswith("erased:"):
            continue
        people.setdefault(
            row["person"],
            {
                "person": row["person"],
                "user": row["user"],
                "name": row["display_name"] or row["name"],
                "language": row["language"] or "",
                "walk_in": row["user"] is None,
            },
        )
    electorate = vote["electorate"] or MEMBERS
    if electorate == MEMBERS:
        # Present, and a member of the table when the vote opened.
        users = [p["user"] for p in people.values() if p["user"] is not None]
        members = {
            row["user"]
            for row in await Membership.select(Membership.user).where(
                Membership.user.is_in(users or [0])
                & (Membership.table == vote["table"])
                & (Membership.created_at <= vote["opened_at"])
            )
        }
        people = {k: p for k, p in people.items() if p["user"] in members}
    roll = await Participation.select(Participation.person, Participation.channel).where(
        (Participation.vote == vote["id"]) & Participation.person.is_in(list(people) or [""])
    )
    channels = {row["person"]: row["channel"] for row in roll}
    found = sorted(people.values(), key=lambda p: p["name"].casefold())
    for person in found:
        person["channel"] = channels.get(person["person"])
    return found


async def electorate_size(vote: Mapping[str, Any]) -> int:
    """How many may vote: what a room screen shows after "ballots cast /"."""
    electorate = vote["electorate"] or MEMBERS
    members = 0
    if electorate in (MEMBERS, BOTH):
        members = await Membership.count().where(
            (Membership.table == vote["table"]) & (Membership.created_at <= vote["opened_at"])
        )
    if electorate == MEMBERS:
        return int(members)
    in_room = await present(vote)
    if electorate == PRESENT:
        return len(in_room)
    # Both: the members, and those present who were not members when it opened.
    outside = sum(1 for p in in_room if p["user"] is None)
    users = [p["user"] for p in in_room if p["user"] is not None]
    if users:
        seated = await Membership.count().where(
            Membership.user.is_in(users)
            & (Membership.table == vote["table"])
            & (Membership.created_at <= vote["opened_at"])
        )
        outside += len(users) - int(seated)
    return int(members) + outside


async def channel_counts(vote_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per vote, how many voted through each channel: online and tablet ballots, paper
    ballots counted (blank ones among them; spoilt ones apart, as they count for nothing),
    paper ballots handed out, hands raised. Once closed, all but spoilt and handed add up to
    the participants of the result."""
    found: dict[int, dict[str, int]] = {vote_id: {} for vote_id in vote_ids}
    if not vote_ids:
        return found
    rows = await (
        Participation.select(Participation.vote, Participation.channel, Count(alias="n"))
        .where(Participation.vote.is_in(list(vote_ids)))
        .group_by(Participation.vote, Participation.channel)
    )
    for row in rows:
        key = "handed" if row["channel"] == PAPER else row["channel"]
        if row["channel"] != HANDS:  # hands counted below, from the raised hands
            found[row["vote"]][key] = row["n"]
    counts = await RoomCount.select(
        RoomCount.vote, RoomCount.kind, RoomCount.ballots, RoomCount.blank, RoomCount.spoilt
    ).where(RoomCount.vote.is_in(list(vote_ids)) & (RoomCount.status == RECORDED))
    for row in counts:
        figures = found[row["vote"]]
        if row["kind"] == PAPER_COUNT:
            # Those who took part on paper: a spoilt ballot is said apart, not counted.
            figures["paper"] = figures.get("paper", 0) + row["ballots"] - row["spoilt"]
            figures["blank"] = figures.get("blank", 0) + row["blank"]
            figures["spoilt"] = figures.get("spoilt", 0) + row["spoilt"]
        else:
            figures["hands"] = figures.get("hands", 0) + row["ballots"]
    return found


# Paper and hands: the roll


async def _lock_room(who: Principal, table: Mapping[str, Any], vote_id: int) -> dict[str, Any]:
    require(who, "votes.manage", scope_of(table))
    vote = await votes.lock_open(vote_id, table["id"])
    return {**vote, "table": table["id"]}


async def hand_out_paper(
    who: Principal, table: Mapping[str, Any], vote_id: int, persons: Sequence[str]
) -> tuple[int, int]:
    """Marks these people as voting on paper; returns (marked, already on the roll).

    Everyone named must be present and in the electorate; those already on the roll (they
    voted, or got paper before) are left as they are.
    """
    wanted = list(dict.fromkeys(str(p) for p in persons))[:1000]
    async with db.write_transaction():
        vote = await _lock_room(who, table, vote_id)
        eligible = {p["person"]: p for p in await present(vote)}
        if not wanted or any(p not in eligible for p in wanted):
            raise UserError(NOT_IN_ROOM)
        marked = 0
        for person in wanted:
            entry = eligible[person]
            added = await votes.enrol(
                vote_id,
                person,
                PAPER,
                user_id=entry["user"],
                name=entry["name"] if entry["user"] is None else "",
                recorded_by=who.user_id,
            )
            marked += added is not None
        await audit.record(
            who, "vote.paper_handed_out", scope_of(table), subject=f"vote:{vote_id}", count=marked
        )
    return marked, len(wanted) - marked


async def start_hands(who: Principal, table: Mapping[str, Any], vote_id: int) -> int:
    """A show of hands: everyone present who has not voted goes on the roll as "hands", and
    the count to enter twice is opened. Returns the count's id. Again later: latecomers join."""
    async with db.write_transaction():
        vote = await _lock_room(who, table, vote_id)
        if vote["method"] != YES_NO_ABSTAIN:
            raise UserError(HANDS_YES_NO_ONLY)
        if await RoomCount.exists().where(
            (RoomCount.vote == vote_id)
            & (RoomCount.kind == HANDS_COUNT)
            & (RoomCount.status == RECORDED)
        ):
            raise UserError(COUNT_CLOSED)
        # Whoever holds a tablet now is voting on it: the show of hands is not theirs.
        holding = {
            row["person"]
            for row in await Tablet.select(Tablet.person).where(
                (Tablet.vote == vote_id) & (Tablet.person != "")
            )
        }
        waiting = [
            entry
            for entry in await present(vote)
            if entry["channel"] is None and entry["person"] not in holding
        ]
        if not waiting and not await Participation.exists().where(
            (Participation.vote == vote_id) & (Participation.channel == HANDS)
        ):
            raise UserError(NOBODY_WAITING)
        for entry in waiting:
            if entry["channel"] is None:
                await votes.enrol(
                    vote_id,
                    entry["person"],
                    HANDS,
                    user_id=entry["user"],
                    name=entry["name"] if entry["user"] is None else "",
                    recorded_by=who.user_id,
                )
        existing = await RoomCount.select(RoomCount.id).where(
            (RoomCount.vote == vote_id) & (RoomCount.kind == HANDS_COUNT)
        )
        if existing:
            return int(existing[0]["id"])
        count_id = await _new_count(who, vote, HANDS_COUNT)
        await audit.record(who, "vote.hands_started", scope_of(table), subject=f"vote:{vote_id}")
    return count_id


async def _new_count(who: Principal, vote: Mapping[str, Any], kind: str) -> int:
    meeting = await room_meeting(vote)
    last = await (
        RoomCount.select(RoomCount.number)
        .where((RoomCount.vote == vote["id"]) & (RoomCount.kind == kind))
        .order_by(RoomCount.number, ascending=False)
        .first()
    )
    inserted = await RoomCount.insert(
        RoomCount(
            vote=vote["id"],
            meeting=meeting["id"],
            kind=kind,
            number=(last["number"] + 1) if last else 1,
            opened_by=who.user_id,
            opened_at=_now(),
        )
    ).returning(RoomCount.id)
    return int(inserted[0]["id"])


async def open_paper_batch(who: Principal, table: Mapping[str, Any], vote_id: int) -> int:
    """A new batch of paper ballots to count (a ballot box emptied, a pile on the table)."""
    async with db.write_transaction():
        vote = await _lock_room(who, table, vote_id)
        if not await Participation.exists().where(
            (Participation.vote == vote_id) & (Participation.channel == PAPER)
        ):
            raise UserError(PAPER_NONE_HANDED)
        # A batch opened and not entered yet is the one to count (a second tap opens no other).
        empty = await (
            RoomCount.select(RoomCount.id)
            .where(
                (RoomCount.vote == vote_id)
                & (RoomCount.kind == PAPER_COUNT)
                & (RoomCount.status == PENDING)
            )
            .order_by(RoomCount.number)
        )
        entered = await db.count_by(RoomCountEntry.count, [row["id"] for row in empty])
        for row in empty:
            if not entered.get(row["id"]):
                return int(row["id"])
        count_id = await _new_count(who, vote, PAPER_COUNT)
        await audit.record(
            who, "vote.paper_batch_opened", scope_of(table), subject=f"room_count:{count_id}"
        )
    return count_id


# Counts: two entries, apart


def count_lines(
    vote: Mapping[str, Any], vote_options: Sequence[Mapping[str, Any]], kind: str
) -> list[tuple[str, Any, Any]]:
    """The figures a count asks for, in order: (field name, option or None, grade or None)."""
    lines: list[tuple[str, Any, Any]] = []
    if kind == PAPER_COUNT:
        lines += [("ballots", None, None), ("blank", None, None), ("spoilt", None, None)]
    for option in vote_options:
        if vote["method"] == APPROVAL:
            lines.append((f"o{option['id']}", option, None))
        else:
            grades = votes.grades_of(vote)
            for grade_index, grade in enumerate(grades):
                lines.append((f"o{option['id']}-g{grade_index}", option, grade))
    return lines


def read_figures(
    vote: Mapping[str, Any],
    vote_options: Sequence[Mapping[str, Any]],
    kind: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """An entry's figures, checked for sense on their own (FormErrors otherwise)."""
    form = Form(data)
    values = {
        name: form.integer(name, required=False, min=0, max=COUNT_MAX, typed=True) or 0
        for name, _, _ in count_lines(vote, vote_options, kind)
    }
    form.validate()
    options: dict[str, Any] = {}
    for option in vote_options:
        if vote["method"] == APPROVAL:
            options[str(option["id"])] = values[f"o{option['id']}"]
        else:
            width = len(votes.grades_of(vote))
            options[str(option["id"])] = [values[f"o{option['id']}-g{g}"] for g in range(width)]
    if kind == HANDS_COUNT:
        raised = sum(next(iter(options.values())))
        return {"ballots": raised, "blank": 0, "spoilt": 0, "options": options}
    ballots, blank, spoilt = values["ballots"], values["blank"], values["spoilt"]
    if blank + spoilt > ballots:
        form.error("blank", BLANK_TOO_MANY)
    valid = max(ballots - blank - spoilt, 0)
    for option in vote_options:
        counted = options[str(option["id"])]
        total = counted if isinstance(counted, int) else sum(counted)
        if vote["method"] == YES_NO_ABSTAIN and total != valid and blank + spoilt <= ballots:
            form.error(f"o{option['id']}-g0", YES_NO_SUM, valid=valid)
        elif vote["method"] != YES_NO_ABSTAIN and total > valid:
            form.error(
                f"o{option['id']}" if isinstance(counted, int) else f"o{option['id']}-g0",
                OPTION_TOO_MANY,
                valid=valid,
            )
    form.validate()
    return {"ballots": ballots, "blank": blank, "spoilt": spoilt, "options": options}


def differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """The names of the lines (as count_lines names them) where two entries disagree."""
    names = [name for name in ("ballots", "blank", "spoilt") if first[name] != second[name]]
    for key, counted in first["options"].items():
        other = second["options"].get(key)
        if isinstance(counted, int):
            if counted != other:
                names.append(f"o{key}")
        else:
            names += [
                f"o{key}-g{g}" for g, n in enumerate(counted) if other is None or other[g] != n
            ]
    return names


async def get_count(vote_id: int, count_id: int) -> dict[str, Any]:
    row = await (
        RoomCount.select().where((RoomCount.id == count_id) & (RoomCount.vote == vote_id)).first()
    )
    if row is None:
        raise UserError(N_("Not found."), status_code=404)
    row["figures"] = json.loads(row["figures"]) if row["figures"] else None
    return row


async def count_state(count: Mapping[str, Any], who: Principal) -> dict[str, Any]:
    """What one counter may see of a count: their own entry, whether another person has
    entered one this round (never its figures), and which lines the last round differed on."""
    entries = await RoomCountEntry.select(
        RoomCountEntry.entered_by,
        RoomCountEntry.figures,
        RoomCountEntry.round,
        RoomCountEntry.entered_by.display_name.as_alias("name"),
    ).where(RoomCountEntry.count == count["id"])
    mine = next((e for e in entries if e["entered_by"] == who.user_id), None)
    others = [e for e in entries if e["entered_by"] != who.user_id]
    return {
        "mine": json.loads(mine["figures"]) if mine else None,
        "mine_current": bool(mine and mine["round"] == count["round"]),
        "others": [e["name"] or "" for e in others],
        "others_current": [e["name"] or "" for e in others if e["round"] == count["round"]],
        "differ": json.loads(count["differ"])
        if count["differ"] and count["status"] != RECORDED
        else [],
    }


async def enter_count(
    who: Principal,
    table: Mapping[str, Any],
    vote_id: int,
    count_id: int,
    data: Mapping[str, Any],
) -> str:
    """One person's entry of a count; returns the count's status after it.

    With the other person's entry there, the two are compared in the same transaction:
    equal, the count is recorded (if it fits what was handed out); different, it waits
    until one of them corrects theirs. Nobody sees the other's figures.
    """
    require(who, "votes.manage", scope_of(table))
    vote = await votes.get(vote_id)
    if vote["table"] != table["id"]:
        raise UserError(N_("Not found."), status_code=404)
    count = await get_count(vote_id, count_id)
    vote_options = (await votes.options([vote_id]))[vote_id]
    figures = read_figures(vote, vote_options, count["kind"], data)
    async with db.write_transaction():
        await votes.lock_open(vote_id, table["id"])
        locked = await (
            RoomCount.update({RoomCount.status: RoomCount.status})
            .where((RoomCount.id == count_id) & (RoomCount.status != RECORDED))
            .returning(RoomCount.round)
        )
        if not locked:
            raise UserError(COUNT_CLOSED)
        this_round = locked[0]["round"]
        await _check_room_for(vote_id, count, figures)
        entries = await RoomCountEntry.select(
            RoomCountEntry.id,
            RoomCountEntry.entered_by,
            RoomCountEntry.figures,
            RoomCountEntry.round,
        ).where(RoomCountEntry.count == count_id)
        mine = [e for e in entries if e["entered_by"] == who.user_id]
        others = [e for e in entries if e["entered_by"] != who.user_id]
        encoded = json.dumps(figures, sort_keys=True)
        if mine:
            await RoomCountEntry.update(
                {
                    RoomCountEntry.figures: encoded,
                    RoomCountEntry.round: this_round,
                    RoomCountEntry.entered_at: _now(),
                }
            ).where(RoomCountEntry.id == mine[0]["id"])
        elif len(others) >= 2:
            raise UserError(TWO_ENTRIES)
        else:
            await RoomCountEntry.insert(
                RoomCountEntry(
                    count=count_id,
                    entered_by=who.user_id,
                    figures=encoded,
                    round=this_round,
                    entered_at=_now(),
                )
            )
        # Compared with the other person's entry of this round only: after a mismatch both
        # count again, so nobody can steer theirs towards the other's figures.
        other = next((e for e in others if e["round"] == this_round), None)
        status = PENDING
        changes: dict[Any, Any] = {}
        if other is not None:
            theirs = json.loads(other["figures"])
            if theirs == figures:
                status = RECORDED
                changes = {
                    RoomCount.figures: encoded,
                    RoomCount.ballots: figures["ballots"],
                    RoomCount.blank: figures["blank"],
                    RoomCount.spoilt: figures["spoilt"],
                    RoomCount.recorded_at: _now(),
                    RoomCount.differ: "",
                }
            else:
                status = MISMATCH
                changes = {
                    RoomCount.differ: json.dumps(differences(figures, theirs)),
                    RoomCount.round: this_round + 1,
                }
        await RoomCount.update({RoomCount.status: status, **changes}).where(
            RoomCount.id == count_id
        )
        await audit.record(
            who,
            f"vote.count_{status}",
            scope_of(table),
            subject=f"room_count:{count_id}",
        )
    return status


async def discard_count(
    who: Principal, table: Mapping[str, Any], vote_id: int, count_id: int
) -> None:
    """A count that cannot be finished (a counter gone, a batch counted twice by mistake)
    is dropped with its entries; the paper it covered can be counted in another batch."""
    async with db.write_transaction():
        await _lock_room(who, table, vote_id)
        # A show of hands is not dropped: those in it are on the roll, and only its count
        # gives them a voice.
        dropped = await (
            RoomCount.delete()
            .where(
                (RoomCount.id == count_id)
                & (RoomCount.vote == vote_id)
                & (RoomCount.kind == PAPER_COUNT)
                & (RoomCount.status != RECORDED)
            )
            .returning(RoomCount.id)
        )
        if not dropped:
            raise UserError(COUNT_CLOSED)
        await audit.record(
            who, "vote.count_discarded", scope_of(table), subject=f"room_count:{count_id}"
        )


async def _check_room_for(
    vote_id: int, count: Mapping[str, Any], figures: Mapping[str, Any]
) -> None:
    """Never more paper ballots than were handed out and not counted in another batch, nor
    more hands than people on the roll for the show of hands."""
    if count["kind"] == HANDS_COUNT:
        people = await Participation.count().where(
            (Participation.vote == vote_id) & (Participation.channel == HANDS)
        )
        if figures["ballots"] > people:
            raise UserError(MORE_HANDS_THAN_PEOPLE, hands=figures["ballots"], people=people)
        return
    handed = await Participation.count().where(
        (Participation.vote == vote_id) & (Participation.channel == PAPER)
    )
    others = await RoomCount.select(RoomCount.ballots).where(
        (RoomCount.vote == vote_id)
        & (RoomCount.kind == PAPER_COUNT)
        & (RoomCount.status == RECORDED)
        & (RoomCount.id != count["id"])
    )
    left = handed - sum(row["ballots"] for row in others)
    if figures["ballots"] > left:
        raise UserError(MORE_THAN_HANDED, ballots=figures["ballots"], left=max(left, 0))


async def counts_of(vote_id: int) -> list[dict[str, Any]]:
    rows = await (
        RoomCount.select(
            RoomCount.id,
            RoomCount.kind,
            RoomCount.number,
            RoomCount.status,
            RoomCount.ballots,
            RoomCount.blank,
            RoomCount.spoilt,
            RoomCount.recorded_at,
        )
        .where(RoomCount.vote == vote_id)
        .order_by(RoomCount.kind)
        .order_by(RoomCount.number)
    )
    entries = await db.count_by(RoomCountEntry.count, [row["id"] for row in rows])
    for row in rows:
        row["entries"] = entries.get(row["id"], 0)
    return rows


# The shared tablet


async def tablet_of(token: str | None) -> dict[str, Any] | None:
    """The tablet this session is, if it is one."""
    session_id = await session_id_of(token)
    if session_id is None:
        return None
    return await Tablet.select().where(Tablet.session == session_id).first()


async def tablets_of_vote(vote_id: int) -> int:
    """How many sessions are this vote's shared tablet now."""
    return int(await Tablet.count().where(Tablet.vote == vote_id))


# While a tablet runs, its meeting is to be held or being held.
MEETING_RUNS = (SCHEDULED, OPEN)


async def session_tablet(session_id: int) -> dict[str, Any] | None:
    """The tablet a session is, if any, with what `still_runs` asks of it."""
    return await (
        Tablet.select(
            Tablet.vote,
            Tablet.vote.table.as_alias("table"),
            Tablet.vote._.table._.organisation.as_alias("organisation"),
            Tablet.vote.status.as_alias("vote_status"),
            Tablet.vote.closes_at.as_alias("closes_at"),
            Tablet.meeting.status.as_alias("meeting_status"),
        )
        .where(Tablet.session == session_id)
        .first()
    )


def still_runs(who: Principal, tablet: Mapping[str, Any]) -> bool:
    """What `start_tablet` asked, asked again on each request the tablet makes (accounts.
    services.load_principal signs it out otherwise): the person who started it still manages
    the vote's table, with a verified session; the vote still takes ballots; its meeting is
    not over. Whatever took one of these away (a role withdrawn, a membership or a
    coordination removed, an account erased, a closing, a cancellation), the tablet ends."""
    closes_at = tablet["closes_at"]
    return (
        can(who, "votes.manage", Scope(tablet["table"], tablet["organisation"]))
        and tablet["vote_status"] == OPEN_VOTE
        and (closes_at is None or db.utc(closes_at) > _now())
        and tablet["meeting_status"] in MEETING_RUNS
    )


async def _check_code(limit: Limit, user_id: int, code: str) -> None:
    """The facilitator's code, throttled as at sign-in: whoever holds the tablet cannot try
    codes until one works."""
    await throttle.attempt(limit)  # counted before the code is checked
    if not await mfa.check_code(user_id, code):
        raise UserError(WRONG_CODE, status_code=400)
    await throttle.reset(limit)


def _pin_hash(pin: str) -> str:
    return crypto.keyed_hash(pin, TABLET_PIN)


async def start_tablet(
    who: Principal,
    table: Mapping[str, Any],
    vote_id: int,
    token: str | None,
    *,
    code: str,
    pin: str,
) -> None:
    """The facilitator's session becomes the vote's shared tablet, with a fresh code, and a
    PIN of their choosing to take the tablet back between voters."""
    require(who, "votes.manage", scope_of(table))
    vote = await votes.get(vote_id)
    if vote["table"] != table["id"] or vote["status"] != OPEN_VOTE:
        raise UserError(votes.VOTE_NOT_OPEN)
    meeting = await room_meeting(vote)
    if meeting["status"] not in MEETING_RUNS:
        raise UserError(MEETING_OVER, status_code=409)
    session_id = await session_id_of(token)
    if session_id is None or who.user_id is None:
        raise UserError(WRONG_CODE, status_code=401)
    if not PIN_PATTERN.fullmatch(pin):
        raise UserError(PIN_FORMAT, status_code=400)
    await _check_code(Limit(f"totp:account:{who.user_id}", failures=5), who.user_id, code)
    async with db.write_transaction():
        await Tablet.delete().where(Tablet.session == session_id)
        inserted = await Tablet.insert(
            Tablet(
                session=session_id,
                vote=vote_id,
                meeting=meeting["id"],
                pin_hash=_pin_hash(pin),
                started_at=_now(),
            )
        ).returning(Tablet.id)
        # A new tablet starts with its own attempts (SQLite may give it a former tablet's id).
        tablet_id = inserted[0]["id"]
        await throttle.reset(
            Limit(f"tablet-pin:{tablet_id}", failures=5),
            Limit(f"totp:tablet:{tablet_id}", failures=5),
        )
        await audit.record(who, "vote.tablet_started", scope_of(table), subject=f"vote:{vote_id}")


async def unlock(tablet: Mapping[str, Any], pin: str) -> None:
    """The facilitator takes the tablet back (their PIN): the list of names shows again."""
    limit = Limit(f"tablet-pin:{tablet['id']}", failures=5)
    await throttle.attempt(limit)  # counted before the PIN is checked
    if not PIN_PATTERN.fullmatch(pin or "") or not secrets.compare_digest(
        _pin_hash(pin), str(tablet["pin_hash"])
    ):
        raise UserError(WRONG_PIN, status_code=400)
    await throttle.reset(limit)
    await Tablet.update(
        {
            Tablet.locked: False,
            Tablet.person: "",
            Tablet.name: "",
            Tablet.handover: "",
            Tablet.handed_at: None,
        }
    ).where(Tablet.id == tablet["id"])


async def quit_tablet(who: Principal, tablet: Mapping[str, Any], code: str) -> None:
    """Only the facilitator's code turns the tablet back into their own session. Its
    attempts are counted for this tablet alone: whoever holds it cannot lock the facilitator
    out of signing in elsewhere."""
    if who.user_id is None:
        raise UserError(WRONG_CODE, status_code=400)
    await _check_code(Limit(f"totp:tablet:{tablet['id']}", failures=5), who.user_id, code)
    await Tablet.delete().where(Tablet.id == tablet["id"])


async def release(tablet: Mapping[str, Any]) -> None:
    """Back to the list: whoever held the tablet can no longer send a ballot from it (the
    tablet stays locked until the facilitator's PIN)."""
    if tablet["person"] or tablet["handover"]:
        await Tablet.update(
            {Tablet.person: "", Tablet.name: "", Tablet.handover: "", Tablet.handed_at: None}
        ).where(Tablet.id == tablet["id"])


def person_language(person: Mapping[str, Any], meeting: Mapping[str, Any]) -> str:
    """The language recorded for the person, else the meeting's first, else French."""
    if person.get("language") in i18n.LANGUAGES:
        return str(person["language"])
    for code in str(meeting.get("languages") or "").split():
        if code in i18n.LANGUAGES:
            return code
    return i18n.DEFAULT_LANGUAGE


async def hand_over(
    who: Principal, tablet: Mapping[str, Any], person: str, language: str | None = None
) -> None:
    """The tablet goes to this person, in their language, for one ballot."""
    if tablet["locked"]:
        raise UserError(TABLET_LOCKED)
    vote = await votes.get(tablet["vote"])
    if vote["status"] != OPEN_VOTE:
        raise UserError(votes.VOTE_NOT_OPEN)
    found = next((p for p in await present(vote) if p["person"] == person), None)
    if found is None or found["channel"] is not None:
        raise UserError(NOT_IN_ROOM)
    meeting = await Meeting.select(Meeting.languages).where(Meeting.id == tablet["meeting"]).first()
    chosen = language if language in i18n.LANGUAGES else person_language(found, meeting or {})
    taken = (
        await Tablet.update(
            {
                Tablet.person: person,
                Tablet.name: found["name"],
                Tablet.language: chosen,
                Tablet.handover: secrets.token_urlsafe(16),
                Tablet.handed_at: _now(),
                Tablet.locked: True,
            }
        )
        .where((Tablet.id == tablet["id"]) & Tablet.locked.eq(False))
        .returning(Tablet.id)
    )
    if not taken:  # two names tapped at once: the first one has the tablet
        raise UserError(TABLET_LOCKED)


def handed(tablet: Mapping[str, Any] | None) -> bool:
    """The tablet is with a voter, and not for too long."""
    if not tablet or not tablet["person"] or not tablet["handover"] or not tablet["handed_at"]:
        return False
    return (_now() - db.utc(tablet["handed_at"])).total_seconds() < HANDOVER_MAX_AGE


async def set_language(tablet: Mapping[str, Any], language: str) -> None:
    if language in i18n.LANGUAGES and handed(tablet):
        await Tablet.update({Tablet.language: language}).where(Tablet.id == tablet["id"])


async def cast_on_tablet(
    who: Principal,
    table: Mapping[str, Any],
    tablet: Mapping[str, Any],
    marks: Any,
    handover: str,
) -> str:
    """The ballot of the person holding the tablet. The handover code is spent first, so a
    form sent twice, or left by the previous voter, records nothing. The journal says a
    ballot was cast on the tablet for a place on the roll, never what it says."""
    require(who, "votes.manage", scope_of(table))
    if not handed(tablet) or not secrets.compare_digest(str(tablet["handover"]), handover or "-"):
        raise UserError(HANDOVER_GONE, status_code=409)
    spent = await (
        Tablet.update({Tablet.handover: ""})
        .where((Tablet.id == tablet["id"]) & (Tablet.handover == tablet["handover"]))
        .returning(Tablet.id)
    )
    if not spent:
        raise UserError(HANDOVER_GONE, status_code=409)
    person = str(tablet["person"])
    user_id = int(person.removeprefix("user:")) if person.startswith("user:") else None

    async def with_the_ballot(participation: int) -> None:
        # In the ballot's transaction: once it is stored, nothing is left to fail.
        await Tablet.update({Tablet.person: "", Tablet.name: "", Tablet.handed_at: None}).where(
            Tablet.id == tablet["id"]
        )
        await audit.record(
            who,
            "vote.cast_on_tablet",
            scope_of(table),
            subject=f"participation:{participation}",
        )

    try:
        receipt, _ = await votes.record_ballot(
            table,
            tablet["vote"],
            marks,
            person=person,
            user_id=user_id,
            channel=TABLET,
            name="" if user_id else str(tablet["name"]),
            recorded_by=who.user_id,
            also=with_the_ballot,
        )
    except UserError:
        await release(tablet)
        raise
    return receipt
