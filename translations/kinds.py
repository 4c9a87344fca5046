"""What can be translated, and how to read each kind's original text, many objects at a time.

Each kind gives, for a batch of ids, the original's fields in the order a translator meets them
(a vote's question, then its answers; a meeting's title, then its agenda). The keys are stable:
"option:12" is option 12 whatever its position, so a reordered agenda keeps its translations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from exports.models import BriefVersion
from meetings.models import AgendaItem, Meeting, Minutes
from voix.i18n import N_
from votes.models import CLOSED, Vote, VoteOption


@dataclass
class Original:
    """One object as written: its fields, and where a reader finds it."""

    kind: str
    id: int
    table_id: int
    url: str
    fields: dict[str, str]
    labels: dict[str, tuple[str, int]] = field(default_factory=dict)  # key: (msgid, number)
    multiline: frozenset[str] = frozenset()
    markdown: frozenset[str] = frozenset()
    name: str = ""  # what lists call it, when its first field is not a title
    closed: bool = False  # a closed vote: a record, whose original language is settled

    @property
    def title(self) -> str:
        return self.name or next(iter(self.fields.values()), "")

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


Loader = Callable[[list[int]], Awaitable[dict[int, Original]]]

QUESTION = N_("Question")
ANSWER = N_("Answer %(number)d")
TITLE = N_("Title")
AGENDA_ITEM = N_("Agenda item %(number)d")
MINUTES_TEXT = N_("Text of the minutes")
CONTEXT = N_("Context")


def _add_parts(
    found: dict[int, Original], rows: list[dict[str, Any]], parent: str, prefix: str, label: str
) -> None:
    """Numbered parts (a vote's answers, an agenda's items), in order, after the title."""
    numbers: dict[int, int] = {}
    for row in rows:
        numbers[row[parent]] = numbers.get(row[parent], 0) + 1
        key = f"{prefix}:{row['id']}"
        found[row[parent]].fields[key] = row["text"]
        found[row[parent]].labels[key] = (label, numbers[row[parent]])


async def _votes(ids: list[int]) -> dict[int, Original]:
    rows = await Vote.select(Vote.id, Vote.table, Vote.question, Vote.status).where(
        Vote.id.is_in(ids)
    )
    found = {
        row["id"]: Original(
            "vote",
            row["id"],
            row["table"],
            f"/votes/{row['id']}",
            {"question": row["question"]},
            {"question": (QUESTION, 0)},
            closed=row["status"] == CLOSED,
        )
        for row in rows
    }
    if found:
        options = (
            await VoteOption.select(
                VoteOption.id, VoteOption.vote, VoteOption.label.as_alias("text")
            )
            .where(VoteOption.vote.is_in(list(found)))
            .order_by(VoteOption.vote)
            .order_by(VoteOption.position)
        )
        _add_parts(found, options, "vote", "option", ANSWER)
    return found


async def _meetings(ids: list[int]) -> dict[int, Original]:
    rows = await Meeting.select(Meeting.id, Meeting.table, Meeting.title).where(
        Meeting.id.is_in(ids)
    )
    found = {
        row["id"]: Original(
            "meeting",
            row["id"],
            row["table"],
            f"/meetings/{row['id']}",
            {"title": row["title"]},
            {"title": (TITLE, 0)},
        )
        for row in rows
    }
    if found:
        items = (
            await AgendaItem.select(
                AgendaItem.id, AgendaItem.meeting, AgendaItem.title.as_alias("text")
            )
            .where(AgendaItem.meeting.is_in(list(found)))
            .order_by(AgendaItem.meeting)
            .order_by(AgendaItem.position)
        )
        _add_parts(found, items, "meeting", "item", AGENDA_ITEM)
    return found


async def _minutes(ids: list[int]) -> dict[int, Original]:
    """A meeting's published minutes, newest version: drafts are not translated."""
    rows = (
        await Minutes.select(
            Minutes.meeting,
            Minutes.body,
            Minutes.meeting.table.as_alias("table"),
            Minutes.meeting.title.as_alias("title"),
        )
        .where(Minutes.meeting.is_in(ids) & (Minutes.published == True))  # noqa: E712
        .order_by(Minutes.version)
    )
    found: dict[int, Original] = {}
    for row in rows:  # the newest version comes last and stays
        found[row["meeting"]] = Original(
            "minutes",
            row["meeting"],
            row["table"],
            f"/meetings/{row['meeting']}/minutes",
            {"body": row["body"]},
            {"body": (MINUTES_TEXT, 0)},
            multiline=frozenset({"body"}),
            markdown=frozenset({"body"}),
            name=row["title"],
        )
    return found


async def _briefs(ids: list[int]) -> dict[int, Original]:
    """A brief's published version: its title and context (a version never changes, so its
    translation never goes stale)."""
    rows = await BriefVersion.select(
        BriefVersion.id,
        BriefVersion.number,
        BriefVersion.document,
        BriefVersion.brief.slug.as_alias("slug"),
        BriefVersion.brief.table.as_alias("table"),
    ).where(BriefVersion.id.is_in(ids))
    found = {}
    for row in rows:
        document = json.loads(row["document"])
        fields = {"title": document["title"]}
        labels = {"title": (TITLE, 0)}
        if document["context"].strip():
            fields["context"] = document["context"]
            labels["context"] = (CONTEXT, 0)
        found[row["id"]] = Original(
            "brief",
            row["id"],
            row["table"],
            f"/briefs/{row['slug']}/v/{row['number']}",
            fields,
            labels,
            multiline=frozenset({"context"}),
            markdown=frozenset({"context"}),
        )
    return found


async def _table_votes(table_id: int) -> list[int]:
    return [r["id"] for r in await Vote.select(Vote.id).where(Vote.table == table_id)]


async def _table_meetings(table_id: int) -> list[int]:
    return [r["id"] for r in await Meeting.select(Meeting.id).where(Meeting.table == table_id)]


async def _table_minutes(table_id: int) -> list[int]:
    rows = await Minutes.select(Minutes.meeting).where(
        (Minutes.meeting.table == table_id) & (Minutes.published == True)  # noqa: E712
    )
    return sorted({r["meeting"] for r in rows})


async def _table_briefs(table_id: int) -> list[int]:
    """The newest version of each of the table's briefs: the one its readers are sent to."""
    rows = await BriefVersion.select(
        BriefVersion.id,
        BriefVersion.brief.version.as_alias("newest"),  # joins the brief
    ).where(
        (BriefVersion.brief.table == table_id) & (BriefVersion.number == BriefVersion.brief.version)
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True)
class Kind:
    name: str
    label: str  # msgid
    load: Loader
    of_table: Callable[[int], Awaitable[list[int]]]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("vote", N_("Vote question and answers"), _votes, _table_votes),
        Kind("meeting", N_("Meeting and agenda"), _meetings, _table_meetings),
        Kind("minutes", N_("Minutes of the meeting"), _minutes, _table_minutes),
        Kind("brief", N_("Position document"), _briefs, _table_briefs),
    )
}


async def originals(kind: str, ids: list[int]) -> dict[int, Original]:
    if not ids:
        return {}
    return await KINDS[kind].load(sorted(set(ids)))


def as_json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, sort_keys=True)
