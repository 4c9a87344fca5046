"""Meetings: scheduling, the agenda, attendance, the speakers' queue, the minutes.

Every change that the room should see at once returns normally and is announced by the
controller on the meeting's live channel (voix.live). Attendance is exactly-once by a unique
index on (meeting, person); a meeting's state is checked by a conditional UPDATE inside the
same write transaction, so a check-in and the closing of the meeting cannot interleave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from litestar.exceptions import NotFoundException
from markupsafe import Markup
from piccolo.columns import Column

from audit import services as audit
from meetings.models import (
    BY_LIST,
    BY_QR,
    CANCELLED,
    CLOSED,
    OPEN,
    SCHEDULED,
    WALK_IN,
    AgendaItem,
    Attendance,
    Meeting,
    Minutes,
    MinutesLink,
    Speaker,
)
from meetings.room import electorate_size
from notifications import services as notify
from notifications.models import MEETING as FOLLOWS_MEETING
from notifications.models import TABLE as FOLLOWS_TABLE
from proposals.models import Proposal
from tables.models import Membership
from tables.services import NOT_A_MEMBER, get_table_by_id, scope_of
from voix import cache, db, forms, i18n, workers
from voix.db import utc
from voix.forms import TOO_LONG, Form, FormErrors, Message, UserError, parse_int
from voix.i18n import N_
from voix.permissions import Principal, require, signed_in
from voix.richtext import markdown_html
from votes import services as votes
from votes import views
from votes.models import CLOSED as CLOSED_VOTE
from votes.models import Vote

IN_THE_PAST = N_("The meeting must start in the future.")
ENDS_BEFORE_START = N_("The meeting must end after it starts.")
NO_LANGUAGE = N_("Choose at least one language.")
TOO_MANY_ITEMS = N_("An agenda holds at most %(max)d items.")
HIDDEN_ITEM = N_("Item withdrawn by the moderation")
HIDDEN_PROPOSAL = N_("This proposal is hidden by the moderation: it cannot go on an agenda.")
NOT_THIS_TABLE_PROPOSAL = N_("This proposal belongs to another table.")
WALK_IN_IS_MEMBER = N_(
    "%(name)s is the name of a member of the table: tick them on the members' list. "
    "For someone else of the same name, add an initial."
)
WALK_IN_NAMESAKE = N_(
    "Someone called %(name)s is already checked in. If this is another person, add an initial "
    "or a word to tell them apart, for example “%(name)s B.” or “%(name)s, tower G”."
)
NOT_THIS_TABLE_VOTE = N_("This vote belongs to another table.")
ITEM_NEEDS_TITLE = N_("Give the item a title, or choose a proposal or a vote.")
NOT_SCHEDULED = N_("This meeting has already started or ended; it can no longer be changed.")
NOT_OPEN = N_("This meeting is not being held now: check-in is not possible.")
NOT_OPENABLE = N_("Only a scheduled meeting can be opened.")
ALREADY_CLOSED = N_("This meeting is already closed.")
ALREADY_CHECKED_IN = N_("%(name)s is already checked in. Nobody is counted twice.")
NOT_FOUND_HERE = N_("This does not belong to this meeting.")
ALREADY_SPEAKING = N_("This turn has already been given.")
NOT_SPEAKING = N_("This person is not speaking.")
MINUTES_NOT_AFTER = N_("Minutes can be published once the meeting has been held.")
HELD_IN_THE_FUTURE = N_("A meeting already held must have started in the past.")
NOT_REOPENABLE = N_("Only a closed meeting can be reopened.")
TOO_LATE_TO_REOPEN = N_(
    "A closing can only be undone the same evening. Say what happened next in the minutes."
)
MINUTES_ALREADY_PUBLISHED = N_("Its minutes are published: the meeting cannot be reopened.")
AFTER_THE_FACT_NO_QR = N_(
    "This meeting is being entered after the fact: the facilitator records who came."
)

TITLE_MAX, PLACE_MAX, ADDRESS_MAX, ITEM_MAX, NAME_MAX = 160, 160, 240, 200, 80
MINUTES_MAX = 50_000
MAX_ITEMS = 30
QUEUE_DONE_SHOWN = 5
CHART_MEETINGS = 12

_COLUMNS = (
    Meeting.id,
    Meeting.table,
    Meeting.title,
    Meeting.starts_at,
    Meeting.ends_at,
    Meeting.place,
    Meeting.address,
    Meeting.languages,
    Meeting.status,
    Meeting.current_item,
    Meeting.opened_at,
    Meeting.closed_at,
    Meeting.table.name.as_alias("table_name"),
    Meeting.table.slug.as_alias("table_slug"),
)


# A meeting's evening ends at 04:00 in Paris, and never less than six hours after.
EVENING_ENDS = time(4, 0)
EVENING_AT_LEAST = timedelta(hours=6)
LATE = timedelta(minutes=10)  # started later than this after its time: said on its page


def end_of_evening(moment: datetime) -> datetime:
    """The end of the evening `moment` belongs to: the next 04:00 in Paris, and at least six
    hours after it. A meeting closed by mistake may be reopened until the end of the evening it
    was closed; a meeting started before the end of its own evening was started late, one
    started after it is entered after the fact."""
    local = moment.astimezone(i18n.LOCAL_TIMEZONE)
    day = local.date() if local.time() < EVENING_ENDS else local.date() + timedelta(days=1)
    four = datetime.combine(day, EVENING_ENDS, tzinfo=i18n.LOCAL_TIMEZONE)
    return max(four.astimezone(UTC), moment.astimezone(UTC) + EVENING_AT_LEAST)


def _shape(meeting: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    meeting["starts_at"] = utc(meeting["starts_at"])
    meeting["ends_at"] = utc(meeting["ends_at"])
    meeting["opened_at"] = utc(meeting["opened_at"]) if meeting["opened_at"] else None
    meeting["closed_at"] = utc(meeting["closed_at"]) if meeting["closed_at"] else None
    meeting["languages"] = meeting["languages"].split()
    evening = end_of_evening(meeting["ends_at"])
    # Started after its evening was over: entered after the fact (from the paper sheet), and
    # marked so wherever it is shown. Derived from when it was opened, which nothing changes.
    opened = meeting["opened_at"]
    meeting["after_the_fact"] = opened is not None and opened > evening
    meeting["started_late"] = (
        opened is not None
        and not meeting["after_the_fact"]
        and opened > meeting["starts_at"] + LATE
    )
    scheduled = meeting["status"] == SCHEDULED
    meeting["late"] = scheduled and meeting["starts_at"] <= now <= evening
    meeting["missed"] = scheduled and now > evening
    closed = meeting["closed_at"] if meeting["status"] == CLOSED else None
    meeting["reopen_until"] = (
        end_of_evening(closed) if closed and now <= end_of_evening(closed) else None
    )
    return meeting


async def get(meeting_id: int) -> dict[str, Any]:
    meeting = await Meeting.select(*_COLUMNS).where(Meeting.id == meeting_id).first()
    if meeting is None:
        raise NotFoundException()
    return _shape(meeting)


async def get_with_table(meeting_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    meeting = await get(meeting_id)
    return meeting, await get_table_by_id(meeting["table"])


async def for_table(table_id: int, *, upcoming: bool | None = None) -> list[dict[str, Any]]:
    """The table's meetings, soonest first when upcoming, latest first when past."""
    query = Meeting.select(*_COLUMNS).where(Meeting.table == table_id)
    now = datetime.now(UTC)
    if upcoming is True:
        query = query.where(
            (Meeting.ends_at >= now) & Meeting.status.is_in([SCHEDULED, OPEN])
        ).order_by(Meeting.starts_at)
    elif upcoming is False:
        query = query.where(
            (Meeting.ends_at < now) | Meeting.status.is_in([CLOSED, CANCELLED])
        ).order_by(Meeting.starts_at, ascending=False)
    else:
        query = query.order_by(Meeting.starts_at)
    return [_shape(m) for m in await query]


async def upcoming_for_user(table_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The coming meetings of the tables a person sits at (Principal.table_roles): one query,
    none for someone who sits at none."""
    tables = sorted(table_ids)
    if not tables:
        return []
    now = datetime.now(UTC)
    if len(tables) == 1:  # most people sit at one table: its query compiled once
        rows = await _UPCOMING_AT_ONE.rows(tables[0], now)
    else:
        rows = await _upcoming(Meeting.table.is_in(tables), now)
    return [_shape(m) for m in rows]


def _upcoming(at: Any, now: Any) -> Any:
    return (
        Meeting.select(*_COLUMNS)
        .where(at & (Meeting.ends_at >= now) & Meeting.status.is_in([SCHEDULED, OPEN]))
        .order_by(Meeting.starts_at)
        .limit(10)
    )


_UPCOMING_AT_ONE = db.Prepared(lambda table_id, now: _upcoming(Meeting.table == table_id, now))


# Scheduling

# An event about a meeting this close may pass the daily SMS limit (notifications.delivery).
URGENT_WITHIN = timedelta(days=2)
EVENT_KEY_MAX = 160  # notifications.models.Event.key


def event_key(*parts: object) -> str:
    """An event's key from its parts; a long one (a place's name) ends in a digest instead."""
    key = ":".join(str(part) for part in parts)
    if len(key) <= EVENT_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"{key[: EVENT_KEY_MAX - len(digest) - 1]}:{digest}"


def iso(moment: datetime) -> str:
    """A time in an event's parameters: ISO-8601, UTC."""
    return utc(moment).astimezone(UTC).isoformat()


def event_params(table: dict[str, Any], meeting: dict[str, Any]) -> dict[str, Any]:
    """What a message about the meeting says (notifications.messages renders it)."""
    return {
        "table": table["name"],
        "title": meeting["title"],
        "starts_at": iso(meeting["starts_at"]),
        "place": meeting["place"],
        "address": meeting["address"],
    }


def _urgent(*starts: datetime) -> datetime | None:
    """The soonest of these start times that is within two days, if any."""
    now = notify.now()
    soon = [utc(at) for at in starts if now < utc(at) <= now + URGENT_WITHIN]
    return min(soon) if soon else None


async def _tell(
    kind: str,
    key: str,
    who: Principal,
    table: dict[str, Any],
    meeting: dict[str, Any],
    *,
    urgent_until: datetime | None = None,
    meeting_followers: bool = True,
    path: str = "",
) -> None:
    """Inside the change's transaction: the table's followers (and the meeting's) hear of it,
    not the person who made it."""
    follows = [(FOLLOWS_TABLE, table["id"])]
    if meeting_followers:
        follows.append((FOLLOWS_MEETING, meeting["id"]))
    await notify.emit(
        kind,
        key,
        audience=notify.Audience(follows=notify.followers(*follows), exclude=who.user_id),
        params=event_params(table, meeting),
        path=path or f"/meetings/{meeting['id']}",
        table_id=table["id"],
        urgent_until=urgent_until,
    )


def _read_meeting(data: dict[str, Any]) -> dict[str, Any]:
    form = Form(data)
    title = form.text("title", max_length=TITLE_MAX, min_length=3)
    day = form.day("date")
    starts_at = form.local_moment(day, "start")
    ends_at = form.local_moment(day, "end")
    # A meeting forgotten in the schedule may be entered once held, ticked as such.
    held = data.get("held") == "yes"
    if starts_at and not held and starts_at <= datetime.now(UTC):
        form.error("date", IN_THE_PAST)
    if starts_at and held and starts_at > datetime.now(UTC):
        form.error("date", HELD_IN_THE_FUTURE)
    if starts_at and ends_at and ends_at <= starts_at:
        form.error("end", ENDS_BEFORE_START)
    place = form.text("place", max_length=PLACE_MAX)
    address = form.text("address", max_length=ADDRESS_MAX)
    chosen = data.get("languages") or []
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    languages = [code for code in i18n.LANGUAGES if code in chosen]
    if not languages or len(languages) != len(set(chosen)):
        form.error("languages", NO_LANGUAGE)
    agenda = [
        line
        for line in form.text(
            "agenda", max_length=ITEM_MAX * MAX_ITEMS, required=False, multiline=True
        ).split("\n")
        if line.strip()
    ]
    if len(agenda) > MAX_ITEMS:
        form.error("agenda", TOO_MANY_ITEMS, max=MAX_ITEMS)
    elif any(len(line) > ITEM_MAX for line in agenda):
        form.error("agenda", TOO_LONG, max=ITEM_MAX)
    form.validate()
    if starts_at is None or ends_at is None:  # never without an error above; for the types
        raise FormErrors({"date": Message(forms.DATE_INVALID)})
    return {
        "title": title,
        "starts_at": starts_at.astimezone(UTC),
        "ends_at": ends_at.astimezone(UTC),
        "place": place,
        "address": address,
        "languages": " ".join(languages),
        "agenda": agenda,
    }


async def schedule(who: Principal, table: dict[str, Any], data: dict[str, Any]) -> int:
    require(who, "meetings.manage", scope_of(table))
    values = _read_meeting(data)
    agenda = values.pop("agenda")
    async with db.write_transaction():
        inserted = await Meeting.insert(
            Meeting(table=table["id"], created_by=who.user_id, **values)
        ).returning(Meeting.id)
        meeting_id = int(inserted[0]["id"])
        if agenda:
            await AgendaItem.insert(
                *[
                    AgendaItem(meeting=meeting_id, position=position, title=title)
                    for position, title in enumerate(agenda, start=1)
                ]
            )
        await audit.record(
            who, "meeting.scheduled", scope_of(table), subject=f"meeting:{meeting_id}"
        )
        if values["starts_at"] > datetime.now(UTC):  # not one entered after it was held
            await _tell(
                "meeting.scheduled",
                f"meeting.scheduled:{meeting_id}",
                who,
                table,
                {"id": meeting_id, **values},
                meeting_followers=False,
            )
    return meeting_id


async def update(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], data: dict[str, Any]
) -> None:
    """Changes a meeting not yet started: title, times, place, languages (not its agenda)."""
    require(who, "meetings.manage", scope_of(table))
    read = _read_meeting({**data, "agenda": ""})
    values: dict[Column | str, Any] = {k: v for k, v in read.items() if k != "agenda"}
    async with db.write_transaction():
        before = (
            await Meeting.select(Meeting.starts_at, Meeting.place)
            .where((Meeting.id == meeting["id"]) & (Meeting.status == SCHEDULED))
            .first()
        )
        changed = await (
            Meeting.update(values)
            .where((Meeting.id == meeting["id"]) & (Meeting.status == SCHEDULED))
            .returning(Meeting.id)
        )
        if not changed or before is None:
            raise UserError(NOT_SCHEDULED)
        starts_at = read["starts_at"]
        if utc(before["starts_at"]) != starts_at or before["place"] != read["place"]:
            # Those who follow it hear of a new time or place; a new title or language, not.
            await _tell(
                "meeting.changed",
                event_key("meeting.changed", meeting["id"], iso(starts_at), read["place"]),
                who,
                table,
                {"id": meeting["id"], **read},
                urgent_until=_urgent(starts_at, before["starts_at"]),
            )


def form_values(meeting: dict[str, Any]) -> dict[str, Any]:
    """A meeting as its edit form shows it, in local time."""
    starts = meeting["starts_at"].astimezone(i18n.LOCAL_TIMEZONE)
    ends = meeting["ends_at"].astimezone(i18n.LOCAL_TIMEZONE)
    return {
        "title": meeting["title"],
        "date": starts.date().isoformat(),
        "start": starts.strftime("%H:%M"),
        "end": ends.strftime("%H:%M"),
        "place": meeting["place"],
        "address": meeting["address"],
        "languages": meeting["languages"],
        "held": "yes" if meeting["starts_at"] <= datetime.now(UTC) else "",
    }


async def _lock(meeting: dict[str, Any], *statuses: str) -> bool:
    """Takes the meeting's row (a write lock) if it is in one of these states."""
    rows = await (
        Meeting.update({Meeting.table: meeting["table"]})
        .where((Meeting.id == meeting["id"]) & Meeting.status.is_in(list(statuses)))
        .returning(Meeting.id)
    )
    return bool(rows)


async def cancel(who: Principal, table: dict[str, Any], meeting: dict[str, Any]) -> None:
    require(who, "meetings.manage", scope_of(table))
    async with db.write_transaction():
        changed = await (
            Meeting.update({Meeting.status: CANCELLED})
            .where((Meeting.id == meeting["id"]) & (Meeting.status == SCHEDULED))
            .returning(Meeting.id)
        )
        if not changed:
            raise UserError(NOT_SCHEDULED)
        await audit.record(
            who, "meeting.cancelled", scope_of(table), subject=f"meeting:{meeting['id']}"
        )
        await _tell(
            "meeting.cancelled",
            f"meeting.cancelled:{meeting['id']}",
            who,
            table,
            meeting,
            urgent_until=_urgent(meeting["starts_at"]),
        )


async def open_meeting(who: Principal, table: dict[str, Any], meeting: dict[str, Any]) -> bool:
    """The meeting begins: check-in opens, the room screen shows the first item.

    Late is fine: the same evening, it is started late. Once its evening is over, opening it
    enters it after the fact (the facilitator ticks who came, from the paper sheet, then closes
    it) and it is marked so; returns whether it was."""
    require(who, "meetings.manage", scope_of(table))
    now = datetime.now(UTC)
    after_the_fact = now > end_of_evening(meeting["ends_at"])
    first = await (
        AgendaItem.select(AgendaItem.id)
        .where(AgendaItem.meeting == meeting["id"])
        .order_by(AgendaItem.position)
        .first()
    )
    async with db.write_transaction():
        changed = await (
            Meeting.update(
                {
                    Meeting.status: OPEN,
                    Meeting.opened_at: now,
                    Meeting.current_item: first["id"] if first else None,
                }
            )
            .where((Meeting.id == meeting["id"]) & (Meeting.status == SCHEDULED))
            .returning(Meeting.id)
        )
        if not changed:
            raise UserError(NOT_OPENABLE)
        await audit.record(
            who,
            "meeting.entered_after_the_fact" if after_the_fact else "meeting.opened",
            scope_of(table),
            subject=f"meeting:{meeting['id']}",
        )
    return after_the_fact


async def close_meeting(who: Principal, table: dict[str, Any], meeting: dict[str, Any]) -> None:
    require(who, "meetings.manage", scope_of(table))
    now = datetime.now(UTC)
    async with db.write_transaction():
        changed = await (
            Meeting.update({Meeting.status: CLOSED, Meeting.closed_at: now})
            .where((Meeting.id == meeting["id"]) & (Meeting.status == OPEN))
            .returning(Meeting.id)
        )
        if not changed:
            raise UserError(ALREADY_CLOSED)
        await Speaker.update({Speaker.ended_at: now}).where(
            (Speaker.meeting == meeting["id"])
            & Speaker.started_at.is_not_null()
            & Speaker.ended_at.is_null()
        )
        await audit.record(
            who, "meeting.closed", scope_of(table), subject=f"meeting:{meeting['id']}"
        )


async def reopen_meeting(who: Principal, table: dict[str, Any], meeting: dict[str, Any]) -> None:
    """Undoes a closing made by mistake: a coordinator, the evening it was closed, before any
    minutes are published. Check-in and the room come back; turns ended by the closing stay
    ended. The journal keeps when it had been closed."""
    require(who, "meetings.reopen", scope_of(table))
    async with db.write_transaction():
        if not await _lock(meeting, CLOSED):
            raise UserError(NOT_REOPENABLE)
        row = await Meeting.select(Meeting.closed_at).where(Meeting.id == meeting["id"]).first()
        closed_at = utc(row["closed_at"]) if row and row["closed_at"] else None
        if closed_at is None or datetime.now(UTC) > end_of_evening(closed_at):
            raise UserError(TOO_LATE_TO_REOPEN)
        if await Minutes.exists().where(
            (Minutes.meeting == meeting["id"]) & Minutes.published.eq(True)
        ):
            raise UserError(MINUTES_ALREADY_PUBLISHED)
        await Meeting.update({Meeting.status: OPEN, Meeting.closed_at: None}).where(
            Meeting.id == meeting["id"]
        )
        await audit.record(
            who,
            "meeting.reopened",
            scope_of(table),
            subject=f"meeting:{meeting['id']}",
            closed_at=closed_at.isoformat(),
        )


# The agenda


async def agenda(meeting_id: int) -> list[dict[str, Any]]:
    return (await agendas([meeting_id]))[meeting_id]


async def agendas(meeting_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The agendas of these meetings, in one query."""
    found: dict[int, list[dict[str, Any]]] = {meeting_id: [] for meeting_id in meeting_ids}
    if not meeting_ids:
        return found
    rows = await (
        AgendaItem.select(
            AgendaItem.id,
            AgendaItem.meeting,
            AgendaItem.position,
            AgendaItem.title,
            AgendaItem.proposal,
            AgendaItem.vote,
            AgendaItem.proposal.title.as_alias("proposal_title"),
            AgendaItem.proposal.status.as_alias("proposal_status"),
            AgendaItem.vote.question.as_alias("vote_question"),
            AgendaItem.vote.status.as_alias("vote_status"),
            AgendaItem.proposal.hidden_at.as_alias("proposal_hidden_at"),
        )
        .where(AgendaItem.meeting.is_in(meeting_ids))
        .order_by(AgendaItem.position)
    )
    for row in rows:
        if row.pop("proposal_hidden_at") is not None:
            # Hidden by moderation after it was put on the agenda: the item keeps its place,
            # and nothing of the proposal (the item's title is usually its title) is shown.
            row.update(title=Message(HIDDEN_ITEM), proposal=None, proposal_title=None)
        found[row["meeting"]].append(row)
    return found


async def agenda_choices(table_id: int) -> dict[str, list[dict[str, Any]]]:
    """What an agenda item may bring onto the table: its proposals still alive, its votes."""
    proposals = await (
        Proposal.select(Proposal.id, Proposal.title)
        .where((Proposal.table == table_id) & Proposal.hidden_at.is_null())
        .order_by(Proposal.created_at, ascending=False)
        .limit(200)
    )
    table_votes = await (
        Vote.select(Vote.id, Vote.question, Vote.status)
        .where(Vote.table == table_id)
        .order_by(Vote.opened_at, ascending=False)
        .limit(100)
    )
    return {"proposals": proposals, "votes": table_votes}


async def add_item(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], data: dict[str, Any]
) -> None:
    require(who, "meetings.manage", scope_of(table))
    form = Form(data)
    title = form.text("title", max_length=ITEM_MAX, required=False)
    proposal_id = form.integer("proposal", required=False)
    vote_id = form.integer("vote", required=False)
    form.validate()
    if proposal_id is not None:
        proposal = (
            await Proposal.select(Proposal.table, Proposal.title, Proposal.hidden_at)
            .where(Proposal.id == proposal_id)
            .first()
        )
        if proposal is None or proposal["table"] != table["id"]:
            form.error("proposal", NOT_THIS_TABLE_PROPOSAL)
        elif proposal["hidden_at"] is not None:
            form.error("proposal", HIDDEN_PROPOSAL)
        else:
            title = title or proposal["title"]
    if vote_id is not None:
        vote = await Vote.select(Vote.table, Vote.question).where(Vote.id == vote_id).first()
        if vote is None or vote["table"] != table["id"]:
            form.error("vote", NOT_THIS_TABLE_VOTE)
        else:
            title = title or vote["question"]
    if not title:
        form.error("title", ITEM_NEEDS_TITLE)
    form.validate()
    async with db.write_transaction():
        if not await _lock(meeting, SCHEDULED, OPEN):
            raise UserError(ALREADY_CLOSED)
        count = await AgendaItem.count().where(AgendaItem.meeting == meeting["id"])
        if count >= MAX_ITEMS:
            raise UserError(TOO_MANY_ITEMS, status_code=400, max=MAX_ITEMS)
        last = await (
            AgendaItem.select(AgendaItem.position)
            .where(AgendaItem.meeting == meeting["id"])
            .order_by(AgendaItem.position, ascending=False)
            .first()
        )
        await AgendaItem.insert(
            AgendaItem(
                meeting=meeting["id"],
                position=(last["position"] + 1) if last else 1,
                title=title[:ITEM_MAX],
                proposal=proposal_id,
                vote=vote_id,
            )
        )


async def _item(meeting: dict[str, Any], item_id: int) -> dict[str, Any]:
    item = await (
        AgendaItem.select(AgendaItem.id, AgendaItem.position)
        .where((AgendaItem.id == item_id) & (AgendaItem.meeting == meeting["id"]))
        .first()
    )
    if item is None:
        raise UserError(NOT_FOUND_HERE, status_code=404)
    return item


async def remove_item(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], item_id: int
) -> None:
    require(who, "meetings.manage", scope_of(table))
    await _item(meeting, item_id)
    async with db.write_transaction():
        if not await _lock(meeting, SCHEDULED, OPEN):
            raise UserError(ALREADY_CLOSED)
        await Meeting.update({Meeting.current_item: None}).where(
            (Meeting.id == meeting["id"]) & (Meeting.current_item == item_id)
        )
        await AgendaItem.delete().where(AgendaItem.id == item_id)


async def _swap(model: Any, rows: list[dict[str, Any]], row_id: int, direction: str) -> None:
    """Moves a row one place up or down among `rows` (ordered by position)."""
    ids = [row["id"] for row in rows]
    if row_id not in ids:
        raise UserError(NOT_FOUND_HERE, status_code=404)
    index = ids.index(row_id)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rows):
        return
    first, second = rows[index], rows[other]
    await model.update({model.position: second["position"]}).where(model.id == first["id"])
    await model.update({model.position: first["position"]}).where(model.id == second["id"])


async def move_item(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], item_id: int, direction: str
) -> None:
    require(who, "meetings.manage", scope_of(table))
    async with db.write_transaction():
        if not await _lock(meeting, SCHEDULED, OPEN):
            raise UserError(ALREADY_CLOSED)
        rows = await (
            AgendaItem.select(AgendaItem.id, AgendaItem.position)
            .where(AgendaItem.meeting == meeting["id"])
            .order_by(AgendaItem.position)
        )
        await _swap(AgendaItem, rows, item_id, direction)


async def set_current_item(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], item_id: int
) -> None:
    require(who, "meetings.manage", scope_of(table))
    await _item(meeting, item_id)
    async with db.write_transaction():
        changed = await (
            Meeting.update({Meeting.current_item: item_id})
            .where((Meeting.id == meeting["id"]) & (Meeting.status == OPEN))
            .returning(Meeting.id)
        )
        if not changed:
            raise UserError(NOT_OPEN)


# Attendance


async def _check_in(
    meeting: dict[str, Any],
    *,
    user_id: int | None,
    name: str,
    method: str,
    recorded_by: int | None,
    duplicate: str = ALREADY_CHECKED_IN,
) -> None:
    person = f"user:{user_id}" if user_id is not None else f"name:{name.casefold()}"
    async with db.write_transaction():
        if not await _lock(meeting, OPEN):
            raise UserError(NOT_OPEN)
        inserted = await (
            Attendance.insert(
                Attendance(
                    meeting=meeting["id"],
                    user=user_id,
                    name=name if user_id is None else "",
                    person=person,
                    method=method,
                    recorded_by=recorded_by,
                )
            )
            .on_conflict(action="DO NOTHING")
            .returning(Attendance.id)
        )
        if not inserted:
            raise UserError(duplicate, name=name)


async def check_in_self(who: Principal, table: dict[str, Any], meeting: dict[str, Any]) -> None:
    """A resident checks in from their own phone, after scanning the meeting's QR code."""
    require(who, "meetings.check_in", scope_of(table))
    if meeting["after_the_fact"]:
        # Days later, from home: only the facilitator, from the paper sheet, says who came.
        raise UserError(AFTER_THE_FACT_NO_QR)
    await _check_in(
        meeting,
        user_id=signed_in(who),
        name=who.display_name,
        method=BY_QR,
        recorded_by=who.user_id,
    )


async def check_in_member(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], user_id: int
) -> None:
    """A facilitator ticks a member of the table on the list."""
    require(who, "meetings.manage", scope_of(table))
    member = await (
        Membership.select(Membership.user.display_name.as_alias("name"))
        .where((Membership.user == user_id) & (Membership.table == table["id"]))
        .first()
    )
    if member is None:
        raise UserError(NOT_A_MEMBER, status_code=404)
    await _check_in(
        meeting, user_id=user_id, name=member["name"], method=BY_LIST, recorded_by=who.user_id
    )


async def check_in_walk_in(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], data: dict[str, Any]
) -> None:
    """Someone without an account, by name only (a first name is enough)."""
    require(who, "meetings.manage", scope_of(table))
    form = Form(data)
    name = form.text("name", max_length=NAME_MAX)
    form.validate()
    # A member checked in as a walk-in would be two people on a vote's roll: one online, one
    # in the room. Members are ticked on the list; a namesake adds an initial.
    members = await Membership.select(Membership.user.display_name.as_alias("name")).where(
        Membership.table == table["id"]
    )
    if any(str(row["name"] or "").casefold() == name.casefold() for row in members):
        raise UserError(WALK_IN_IS_MEMBER, name=name)
    # Two people of the same first name: the second one is told apart by an initial or a word.
    await _check_in(
        meeting,
        user_id=None,
        name=name,
        method=WALK_IN,
        recorded_by=who.user_id,
        duplicate=WALK_IN_NAMESAKE,
    )


# Refusals about the name typed for a walk-in: shown beside the name, the rest above the list.
NAME_REFUSALS = frozenset({WALK_IN_IS_MEMBER, WALK_IN_NAMESAKE})


async def remove_attendance(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], attendance_id: int
) -> int | None:
    """Undoes a check-in ticked by mistake, while the meeting is being held; returns the member
    it was (None for a walk-in)."""
    require(who, "meetings.manage", scope_of(table))
    async with db.write_transaction():
        if not await _lock(meeting, OPEN):
            raise UserError(NOT_OPEN)
        removed = await (
            Attendance.delete()
            .where((Attendance.id == attendance_id) & (Attendance.meeting == meeting["id"]))
            .returning(Attendance.id, Attendance.user)
        )
        if not removed:
            raise UserError(NOT_FOUND_HERE, status_code=404)
    user = removed[0]["user"]
    return int(user) if user is not None else None


async def attendance(meeting_id: int) -> list[dict[str, Any]]:
    """Who is present, in order of arrival; an erased member shows as a resident."""
    rows = await (
        Attendance.select(
            Attendance.id,
            Attendance.user,
            Attendance.name,
            Attendance.method,
            Attendance.checked_in_at,
            Attendance.user.display_name.as_alias("display_name"),
        )
        .where(Attendance.meeting == meeting_id)
        .order_by(Attendance.checked_in_at)
        .order_by(Attendance.id)
    )
    for row in rows:
        row["shown_name"] = row["display_name"] or row["name"]
        row["checked_in_at"] = utc(row["checked_in_at"])
    return rows


async def attendance_counts(meeting_ids: list[int]) -> dict[int, int]:
    return await db.count_by(Attendance.meeting, meeting_ids)


async def is_present(user_id: int | None, meeting_id: int) -> bool:
    if user_id is None:
        return False
    return await Attendance.exists().where(
        (Attendance.meeting == meeting_id) & (Attendance.person == f"user:{user_id}")
    )


async def history(table_id: int) -> list[dict[str, Any]]:
    """The latest meetings held, oldest first, with how many attended: the table's chart."""
    held = await (
        Meeting.select(Meeting.id, Meeting.title, Meeting.starts_at)
        .where((Meeting.table == table_id) & (Meeting.status == CLOSED))
        .order_by(Meeting.starts_at, ascending=False)
        .limit(CHART_MEETINGS)
    )
    held.reverse()
    counts = await attendance_counts([m["id"] for m in held])
    for meeting in held:
        meeting["present"] = counts[meeting["id"]]
        meeting["starts_at"] = utc(meeting["starts_at"])
    return held


# The speakers' queue


async def queue(meeting_id: int) -> dict[str, Any]:
    rows = await (
        Speaker.select()
        .where(Speaker.meeting == meeting_id)
        .order_by(Speaker.position)
        .order_by(Speaker.id)
    )
    now = datetime.now(UTC)
    speaking, waiting, done = None, [], []
    for row in rows:
        started = utc(row["started_at"]) if row["started_at"] else None
        ended = utc(row["ended_at"]) if row["ended_at"] else None
        if started is None:
            waiting.append(row)
        elif ended is None:
            row["started_at"] = started
            row["seconds"] = int((now - started).total_seconds())
            speaking = row
        else:
            row["started_at"] = started
            row["seconds"] = int((ended - started).total_seconds())
            done.append(row)
    done.sort(key=lambda row: row["started_at"], reverse=True)
    return {"speaking": speaking, "waiting": waiting, "done": done[:QUEUE_DONE_SHOWN]}


async def add_speaker(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], data: dict[str, Any]
) -> None:
    require(who, "meetings.manage", scope_of(table))
    form = Form(data)
    name = form.text("name", max_length=NAME_MAX)
    form.validate()
    async with db.write_transaction():
        if not await _lock(meeting, OPEN):
            raise UserError(NOT_OPEN)
        last = await (
            Speaker.select(Speaker.position)
            .where(Speaker.meeting == meeting["id"])
            .order_by(Speaker.position, ascending=False)
            .first()
        )
        await Speaker.insert(
            Speaker(
                meeting=meeting["id"], name=name, position=(last["position"] + 1) if last else 1
            )
        )


async def _speaker(meeting: dict[str, Any], speaker_id: int) -> dict[str, Any]:
    row = await (
        Speaker.select()
        .where((Speaker.id == speaker_id) & (Speaker.meeting == meeting["id"]))
        .first()
    )
    if row is None:
        raise UserError(NOT_FOUND_HERE, status_code=404)
    return row


async def start_turn(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], speaker_id: int
) -> None:
    """Gives the floor; whoever was speaking has finished."""
    require(who, "meetings.manage", scope_of(table))
    await _speaker(meeting, speaker_id)
    now = datetime.now(UTC)
    async with db.write_transaction():
        if not await _lock(meeting, OPEN):
            raise UserError(NOT_OPEN)
        await Speaker.update({Speaker.ended_at: now}).where(
            (Speaker.meeting == meeting["id"])
            & Speaker.started_at.is_not_null()
            & Speaker.ended_at.is_null()
        )
        started = await (
            Speaker.update({Speaker.started_at: now})
            .where((Speaker.id == speaker_id) & Speaker.started_at.is_null())
            .returning(Speaker.id)
        )
        if not started:
            raise UserError(ALREADY_SPEAKING)


async def end_turn(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], speaker_id: int
) -> None:
    require(who, "meetings.manage", scope_of(table))
    await _speaker(meeting, speaker_id)
    ended = await (
        Speaker.update({Speaker.ended_at: datetime.now(UTC)})
        .where(
            (Speaker.id == speaker_id)
            & Speaker.started_at.is_not_null()
            & Speaker.ended_at.is_null()
        )
        .returning(Speaker.id)
    )
    if not ended:
        raise UserError(NOT_SPEAKING)


async def move_speaker(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], speaker_id: int, direction: str
) -> None:
    require(who, "meetings.manage", scope_of(table))
    async with db.write_transaction():
        rows = await (
            Speaker.select(Speaker.id, Speaker.position)
            .where((Speaker.meeting == meeting["id"]) & Speaker.started_at.is_null())
            .order_by(Speaker.position)
            .order_by(Speaker.id)
        )
        await _swap(Speaker, rows, speaker_id, direction)


async def remove_speaker(
    who: Principal, table: dict[str, Any], meeting: dict[str, Any], speaker_id: int
) -> None:
    require(who, "meetings.manage", scope_of(table))
    removed = await (
        Speaker.delete()
        .where(
            (Speaker.id == speaker_id)
            & (Speaker.meeting == meeting["id"])
            & Speaker.started_at.is_null()
        )
        .returning(Speaker.id)
    )
    if not removed:
        raise UserError(NOT_FOUND_HERE, status_code=404)


# The room


async def room(meeting: dict[str, Any]) -> dict[str, Any]:
    """Everything the room screen and the facilitator's control view show."""
    items = await agenda(meeting["id"])
    current = next((item for item in items if item["id"] == meeting["current_item"]), None)
    vote = None
    if current and current["vote"]:
        (vote,) = await votes.with_results([await votes.get(current["vote"])])
        vote["cast"] = vote["turnout"]
        vote["chart"] = views.chart(vote, "screen") if vote["status"] == CLOSED_VOTE else ""
        vote["electorate_size"] = await electorate_size(vote)
    return {
        "agenda": items,
        "current": current,
        "vote": vote,
        "queue": await queue(meeting["id"]),
        "present": (await attendance_counts([meeting["id"]]))[meeting["id"]],
    }


_SHOWING_VOTE = db.Prepared(  # at each ballot: compiled once (voix.db.Prepared)
    lambda vote_id: AgendaItem.select(AgendaItem.meeting).where(
        (AgendaItem.vote == vote_id) & (AgendaItem.meeting.status == OPEN)
    )
)


async def meetings_showing_vote(vote_id: int, revision: int | None = None) -> list[int]:
    """The open meetings whose agenda carries this vote: their screens show its count. Given
    the revision of the vote's table (which moves when a meeting of it opens or closes, or its
    agenda changes: tables/revision.py; an agenda carries only its table's votes), kept under
    it (voix.cache): asked at every ballot."""

    async def read() -> tuple[int, ...]:
        return tuple(sorted({row["meeting"] for row in await _SHOWING_VOTE.rows(vote_id)}))

    if revision is None:
        return list(await read())
    key = ("meetings-showing-vote", vote_id, revision)
    return list(await cache.pages.get_or_build(key, read, seconds=60.0))


# The minutes

# Headings in minutes sit under the page's own h1: the text's h1 becomes h2, and below h4
# there are none.
_MINUTES_HEADINGS = {1: 2, 2: 2, 3: 3, 4: 4}
_MINUTES_URL_SCHEMES = frozenset({"https", "http", "mailto"})


def minutes_html(body: str) -> str:
    """Markdown to HTML that can be shown as it is (voix.richtext).

    CPU work (a second or so for 50 000 characters of `[`): it runs in the worker pool, once
    when the minutes are saved, and the result is stored in `body_html`.
    """
    return markdown_html(body, headings=_MINUTES_HEADINGS, url_schemes=_MINUTES_URL_SCHEMES)


def render_markdown(body: str) -> Markup:
    return Markup(minutes_html(body))  # noqa: S704 — sanitised by nh3


async def shown_html(minutes: dict[str, Any]) -> Markup:
    """A version's stored HTML; rendered (in the pool) and stored once for rows saved before
    the HTML was kept."""
    html = minutes["body_html"]
    if html is None:
        html = await workers.run(minutes_html, minutes["body"])
        await Minutes.update({Minutes.body_html: html}).where(
            (Minutes.id == minutes["id"]) & Minutes.body_html.is_null()
        )
        minutes["body_html"] = html
    return Markup(html)  # noqa: S704 — sanitised by nh3 before it was stored


async def minutes_versions(meeting_id: int) -> list[dict[str, Any]]:
    """Every version, newest first; a draft, if any, is the first."""
    rows = await (
        Minutes.select(
            Minutes.id,
            Minutes.version,
            Minutes.body,
            Minutes.body_html,
            Minutes.published,
            Minutes.updated_at,
            Minutes.published_at,
            Minutes.author.display_name.as_alias("author_name"),
        )
        .where(Minutes.meeting == meeting_id)
        .order_by(Minutes.version, ascending=False)
    )
    for row in rows:
        row["updated_at"] = utc(row["updated_at"])
        row["published_at"] = utc(row["published_at"]) if row["published_at"] else None
    return rows


async def published_minutes(meeting_id: int, version: int | None = None) -> dict[str, Any] | None:
    versions = [v for v in await minutes_versions(meeting_id) if v["published"]]
    if version is not None:
        versions = [v for v in versions if v["version"] == version]
    return versions[0] if versions else None


async def minutes_links(minutes_id: int) -> dict[str, list[dict[str, Any]]]:
    links = await MinutesLink.select(MinutesLink.proposal, MinutesLink.vote).where(
        MinutesLink.minutes == minutes_id
    )
    proposal_ids = [link["proposal"] for link in links if link["proposal"]]
    vote_ids = [link["vote"] for link in links if link["vote"]]
    proposals = (
        await Proposal.select(Proposal.id, Proposal.title, Proposal.status).where(
            Proposal.id.is_in(proposal_ids) & Proposal.hidden_at.is_null()  # public minutes
        )
        if proposal_ids
        else []
    )
    linked_votes = await votes.with_results(await votes.by_ids(vote_ids))
    return {"proposals": proposals, "votes": linked_votes}


async def save_minutes(
    who: Principal,
    table: dict[str, Any],
    meeting: dict[str, Any],
    data: dict[str, Any],
    *,
    publish: bool,
) -> int:
    """Saves the draft, and publishes it as a new version when asked. Returns its version."""
    require(who, "meetings.manage", scope_of(table))
    form = Form(data)
    body = form.text("body", max_length=MINUTES_MAX, multiline=True)
    proposal_ids = _ids(data.get("proposals"))
    vote_ids = _ids(data.get("votes"))
    if proposal_ids and await Proposal.count().where(
        Proposal.id.is_in(proposal_ids) & (Proposal.table == table["id"])
    ) != len(proposal_ids):
        form.error("proposals", NOT_THIS_TABLE_PROPOSAL)
    if vote_ids and await Vote.count().where(
        Vote.id.is_in(vote_ids) & (Vote.table == table["id"])
    ) != len(vote_ids):
        form.error("votes", NOT_THIS_TABLE_VOTE)
    if publish and meeting["status"] != CLOSED:
        form.error("body", MINUTES_NOT_AFTER)
    form.validate()
    # Rendered here, once, in the pool (outside the transaction, which must stay short): no
    # visitor's page or PDF parses Markdown again.
    body_html = await workers.run(minutes_html, body)
    now = datetime.now(UTC)
    async with db.write_transaction():
        if not await _lock(meeting, SCHEDULED, OPEN, CLOSED):
            raise UserError(ALREADY_CLOSED)
        latest = await (
            Minutes.select(Minutes.id, Minutes.version, Minutes.published)
            .where(Minutes.meeting == meeting["id"])
            .order_by(Minutes.version, ascending=False)
            .first()
        )
        if latest and not latest["published"]:
            minutes_id, version = latest["id"], latest["version"]
            await Minutes.update(
                {
                    Minutes.body: body,
                    Minutes.body_html: body_html,
                    Minutes.author: who.user_id,
                    Minutes.updated_at: now,
                }
            ).where(Minutes.id == minutes_id)
            await MinutesLink.delete().where(MinutesLink.minutes == minutes_id)
        else:
            version = (latest["version"] + 1) if latest else 1
            inserted = await Minutes.insert(
                Minutes(
                    meeting=meeting["id"],
                    version=version,
                    body=body,
                    body_html=body_html,
                    author=who.user_id,
                    updated_at=now,
                )
            ).returning(Minutes.id)
            minutes_id = inserted[0]["id"]
        links = [MinutesLink(minutes=minutes_id, proposal=pid) for pid in proposal_ids]
        links += [MinutesLink(minutes=minutes_id, vote=vid) for vid in vote_ids]
        if links:
            await MinutesLink.insert(*links)
        if publish:
            await Minutes.update({Minutes.published: True, Minutes.published_at: now}).where(
                Minutes.id == minutes_id
            )
            await audit.record(
                who,
                "minutes.published",
                scope_of(table),
                subject=f"meeting:{meeting['id']}",
                version=version,
            )
            await _tell(
                "minutes.published",
                f"minutes.published:{meeting['id']}:{version}",
                who,
                table,
                meeting,
                path=f"/meetings/{meeting['id']}/minutes",
            )
    return int(version)


def _ids(raw: Any) -> list[int]:
    values = [raw] if isinstance(raw, str) else list(raw or [])
    ids = {parse_int(value, min=1) for value in values}
    return sorted(i for i in ids if i is not None)


async def draft_links(meeting_id: int) -> dict[str, set[int]]:
    """What the editor ticks: the latest version's links, or else everything on the agenda."""
    latest = await (
        Minutes.select(Minutes.id)
        .where(Minutes.meeting == meeting_id)
        .order_by(Minutes.version, ascending=False)
        .first()
    )
    if latest:
        links = await MinutesLink.select(MinutesLink.proposal, MinutesLink.vote).where(
            MinutesLink.minutes == latest["id"]
        )
    else:
        links = await AgendaItem.select(AgendaItem.proposal, AgendaItem.vote).where(
            AgendaItem.meeting == meeting_id
        )
    return {
        "proposals": {link["proposal"] for link in links if link["proposal"]},
        "votes": {link["vote"] for link in links if link["vote"]},
    }


def speaking_time(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def default_times() -> dict[str, str]:
    """The form's suggestion: next week, same weekday, 18:00–20:00."""
    day = (datetime.now(i18n.LOCAL_TIMEZONE) + timedelta(days=7)).date()
    return {"date": day.isoformat(), "start": "18:00", "end": "20:00"}
