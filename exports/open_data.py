"""Open data: every public figure of the tables, downloadable at any size (issue 17).

Four datasets (proposals, votes, meetings, briefs sent and the institutions' answers), each for
one table, one organisation or the whole site, in four formats: CSV (UTF-8 with a BOM, comma),
CSV for French spreadsheets (semicolon), JSON Lines, and GeoJSON (placed proposals only).

Nothing personal is exported: no author, recorder, voter or attendee, by name or by id, no
e-mail or phone; a proposal entered on a resident's behalf says so as a yes/no. Proposals are
those the lists show (neither hidden nor merged); comments are counted when visible.

How it streams: keyset pagination, on both databases. Each batch of BATCH rows is one short
query (`WHERE id > last ORDER BY id LIMIT BATCH`), and what the rows need of other tables
(translations, status dates, comment counts, votes…) a few more queries for that batch, never
per row nor for the whole set. No transaction and no connection is held between batches: a
slow client reading a large download never keeps one of the pool's connections, and nothing
is skipped or repeated (ids are unique and increasing; a row added meanwhile comes at the end).
The encoded bytes are handed out in chunks of about CHUNK_BYTES.

`rows(dataset, scope)` yields one dict per row, its keys the columns' names in order and its
values JSON's (text, numbers, true/false, null, lists, objects): dates and times as ISO 8601
(times in UTC). CSV writes lists and objects as JSON text, true/false as `true`/`false`, null
as an empty cell, and neutralises cells a spreadsheet would run as a formula (OWASP: a leading
quote before = + - @, tab or carriage return).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from piccolo.query.functions.aggregate import Count

from exports import services as exports
from exports.models import BriefSent, SentProposal
from followup.models import Response
from followup.services import due_on, local_day, today
from meetings.models import Attendance, Meeting, Minutes
from meetings.room import channel_counts
from proposals import search
from proposals.models import (
    ADOPTED,
    ANSWERED,
    DISCUSSION,
    DONE,
    REFUSED,
    REJECTED,
    TRANSMITTED,
    VOTING,
    Comment,
    Proposal,
    StatusChange,
    Translation,
)
from voix.db import utc
from voix.i18n import LANGUAGES, N_
from voix.web import absolute_url
from votes import box
from votes import services as votes
from votes.models import CLOSED, Vote, VoteOption

DATASETS = ("proposals", "votes", "meetings", "briefs")  # briefs: sent, and the answers
FORMATS = ("csv", "csv-semicolon", "jsonl", "geojson")  # geojson: placed proposals only
BATCH = 250  # rows held per download while its client reads: ~2 MB at most
CHUNK_BYTES = 64 * 1024

_MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "csv-semicolon": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "geojson": "application/geo+json",
}
_EXTENSIONS = {"csv": "csv", "csv-semicolon": "csv", "jsonl": "jsonl", "geojson": "geojson"}
# A cell a spreadsheet would read as a formula (or as one after trimming): OWASP's list.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    name: str  # machine name, English snake_case: the CSV header and the JSON key
    description: str  # an N_() msgid in English, translated where it is shown (/data)


@dataclass(frozen=True)
class Scope:
    """What to export: one table, one organisation's tables, or the whole site (both None)."""

    table_id: int | None = None
    organisation_id: int | None = None


# Proposals

# The statuses a proposal moves to after it is submitted: each gets the time it last entered it.
_REACHED = (DISCUSSION, VOTING, ADOPTED, REJECTED, TRANSMITTED, ANSWERED, DONE, REFUSED)
_REACHED_DESCRIPTIONS = {
    DISCUSSION: N_("When the proposal last entered discussion; empty if never."),
    VOTING: N_("When the proposal was last put to the vote; empty if never."),
    ADOPTED: N_("When the proposal was last adopted; empty if never."),
    REJECTED: N_("When the proposal was last set aside (not adopted); empty if never."),
    TRANSMITTED: N_("When the proposal was last sent to an institution; empty if never."),
    ANSWERED: N_("When an institution's answer was last recorded for it; empty if never."),
    DONE: N_("When the proposal was last marked as carried out; empty if never."),
    REFUSED: N_("When the proposal was last marked as refused by the institution; empty if never."),
}
_TRANSLATED_DESCRIPTIONS = {
    ("title", "fr"): N_("The title translated into French by a facilitator; empty if none."),
    ("body", "fr"): N_("The text translated into French by a facilitator; empty if none."),
    ("title", "ar"): N_("The title translated into Arabic by a facilitator; empty if none."),
    ("body", "ar"): N_("The text translated into Arabic by a facilitator; empty if none."),
    ("title", "en"): N_("The title translated into English by a facilitator; empty if none."),
    ("body", "en"): N_("The text translated into English by a facilitator; empty if none."),
}

PROPOSAL_COLUMNS = (
    Column("id", N_("The proposal's number, as in its address on the site.")),
    Column("url", N_("The address of the proposal's page.")),
    Column("table", N_("The neighbourhood table it was made at (its short name).")),
    Column("organisation", N_("The organisation running that table (its short name).")),
    Column("district", N_("The district it is placed in (its short name); empty if not placed.")),
    Column("district_name", N_("The district's name; empty if not placed.")),
    Column("theme", N_("Its theme (housing, transport, school…).")),
    Column("status", N_("Where it stands now (submitted, discussion, voting, adopted…).")),
    Column("created_at", N_("When it was submitted (ISO 8601, UTC).")),
    Column("status_changed_at", N_("When its status last changed; empty if never.")),
    *(Column(f"{status}_at", _REACHED_DESCRIPTIONS[status]) for status in _REACHED),
    Column("language", N_("The language it was written in (fr, ar, en).")),
    Column("title", N_("Its title, in the language it was written in.")),
    Column("body", N_("Its text, in the language it was written in.")),
    Column(
        "transcription",
        N_("A facilitator's transcription of its voice note, as on its page; empty if none."),
    ),
    *(
        Column(f"{field}_{language}", _TRANSLATED_DESCRIPTIONS[field, language])
        for language in LANGUAGES
        for field in ("title", "body")
    ),
    Column("supports", N_("How many residents support it.")),
    Column("comments_count", N_("How many comments and replies it has (hidden ones left out).")),
    Column("last_vote", N_("The number of the last closed vote on it; empty if none.")),
    Column("last_vote_closed_at", N_("When that vote closed; empty if none.")),
    Column(
        "last_vote_adopted",
        N_("Whether that vote adopted it (true or false); empty if no closed vote."),
    ),
    Column(
        "recorded_on_behalf",
        N_("Whether a facilitator entered it for a resident who asked (true or false)."),
    ),
    Column("longitude", N_("Longitude of its place (WGS 84); empty if not placed.")),
    Column("latitude", N_("Latitude of its place (WGS 84); empty if not placed.")),
)

VOTE_COLUMNS = (
    Column("id", N_("The vote's number, as in its address on the site.")),
    Column("url", N_("The address of the vote's page.")),
    Column("table", N_("The neighbourhood table that held the vote (its short name).")),
    Column("organisation", N_("The organisation running that table (its short name).")),
    Column("proposal", N_("The proposal voted on, for a vote on one proposal; else empty.")),
    Column("question", N_("The question put to the vote.")),
    Column(
        "method",
        N_("How it is voted: yes/no/abstain, majority judgment or approval."),
    ),
    Column("grades", N_("The grades a ballot may give, best first (empty for approval).")),
    Column("status", N_("Open or closed.")),
    Column("opened_at", N_("When the vote opened (ISO 8601, UTC).")),
    Column("closes_at", N_("When the vote is set to close; empty if it closes by hand.")),
    Column("closed_at", N_("When the vote closed; empty while open.")),
    Column("participants", N_("How many took part so far, all channels together.")),
    Column("participation_online", N_("How many voted online.")),
    Column("participation_tablet", N_("How many voted on the table's shared tablet.")),
    Column(
        "participation_paper",
        N_("How many paper ballots were counted (blank ones included, spoilt ones not)."),
    ),
    Column("participation_hands", N_("How many raised their hand (show of hands).")),
    Column("paper_blank", N_("Blank paper ballots among those counted.")),
    Column("paper_spoilt", N_("Spoilt paper ballots (not counted).")),
    Column("paper_handed_out", N_("Paper ballots handed out.")),
    Column(
        "options",
        N_("What is voted on: each option's id (p12: proposal 12), its label and its proposal."),
    ),
    Column(
        "results",
        N_(
            "Once closed, each option's result: rank, tally (best grade first; approvals; or "
            "for, against, abstain), majority grade and whether it was adopted. Empty while open."
        ),
    ),
    Column("ballot_box_sha256", N_("SHA-256 of the public ballot box, once closed.")),
    Column(
        "ballot_box_url",
        N_("The public ballot box, to recount the vote (voix recount), once closed."),
    ),
)

MEETING_COLUMNS = (
    Column("id", N_("The meeting's number, as in its address on the site.")),
    Column("url", N_("The address of the meeting's page.")),
    Column("table", N_("The neighbourhood table that met (its short name).")),
    Column("organisation", N_("The organisation running that table (its short name).")),
    Column("title", N_("The meeting's title.")),
    Column("status", N_("Scheduled, open, closed or cancelled.")),
    Column("date", N_("The day of the meeting, in Marseille (ISO 8601).")),
    Column("starts_at", N_("When the meeting starts (ISO 8601, UTC).")),
    Column("ends_at", N_("When the meeting ends (ISO 8601, UTC).")),
    Column("place", N_("Where the meeting is held.")),
    Column("address", N_("The address of that place.")),
    Column("languages", N_("The languages the meeting is held in.")),
    Column("attendance", N_("How many people were checked in (a count, never names).")),
    Column("attendance_qr", N_("Of them, how many checked in with the meeting's QR code.")),
    Column("attendance_list", N_("Of them, how many a facilitator ticked on the table's list.")),
    Column("attendance_walk_in", N_("Of them, how many came without an account.")),
    Column("minutes_url", N_("The address of the published minutes; empty if none.")),
    Column("minutes_published_at", N_("When the minutes were last published; empty if none.")),
)

BRIEF_COLUMNS = (
    Column("brief", N_("The position document's short name, as in its address.")),
    Column("brief_title", N_("Its title, as last published.")),
    Column("brief_url", N_("The address of the position document's page.")),
    Column("table", N_("The neighbourhood table that sent it (its short name).")),
    Column("organisation", N_("The organisation running that table (its short name).")),
    Column("institution", N_("The institution it was sent to.")),
    Column("institution_service", N_("The service of that institution; empty if none.")),
    Column("version", N_("The version first sent to that institution.")),
    Column("sent_at", N_("When it was sent to that institution (ISO 8601, UTC).")),
    Column("answer_due_on", N_("The last day the institution was given to answer.")),
    Column("overdue", N_("Whether the answer is late: none yet and past its day (true or false).")),
    Column("answered", N_("Whether the institution has answered (true or false).")),
    Column(
        "answers",
        N_("The institution's answers, oldest first: day received, summary, commitments."),
    ),
    Column("proposals", N_("The numbers of the proposals the document carries.")),
)

_COLUMNS = {
    "proposals": PROPOSAL_COLUMNS,
    "votes": VOTE_COLUMNS,
    "meetings": MEETING_COLUMNS,
    "briefs": BRIEF_COLUMNS,
}


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}")


def _check_format(dataset: str, fmt: str) -> None:
    _check_dataset(dataset)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if fmt == "geojson" and dataset != "proposals":
        raise ValueError("GeoJSON is for proposals only")


def columns(dataset: str) -> tuple[Column, ...]:
    _check_dataset(dataset)
    return _COLUMNS[dataset]


def media_type(fmt: str) -> str:
    if fmt not in _MEDIA_TYPES:
        raise ValueError(f"unknown format {fmt!r}")
    return _MEDIA_TYPES[fmt]


def filename(dataset: str, fmt: str, scope_slug: str) -> str:
    """`voix-proposals-flamants-iris.csv`; the semicolon variant ends `-semicolon.csv`; an empty
    slug (the whole site) leaves it out."""
    _check_format(dataset, fmt)
    slug = re.sub(r"[^a-z0-9-]+", "-", scope_slug.lower()).strip("-")
    parts = ["voix", dataset, *([slug] if slug else [])]
    if fmt == "csv-semicolon":
        parts.append("semicolon")
    return "-".join(parts) + "." + _EXTENSIONS[fmt]


# Reading, a batch at a time


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _scoped(table_column: Any, scope: Scope) -> Any:
    """The condition a scope puts on a `… .table` foreign key column; None for the site."""
    if scope.table_id is not None:
        return table_column == scope.table_id
    if scope.organisation_id is not None:
        return table_column._.organisation == scope.organisation_id
    return None


async def _batches(
    model: Any, fields: Sequence[Any], condition: Any
) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows of `model` matching `condition`, by increasing id, BATCH at a time (keyset)."""
    last = 0
    while True:
        where = model.id > last
        if condition is not None:
            where = condition & where
        rows = await model.select(model.id, *fields).where(where).order_by(model.id).limit(BATCH)
        if not rows:
            return
        yield rows
        if len(rows) < BATCH:
            return
        last = rows[-1]["id"]


async def rows(dataset: str, scope: Scope) -> AsyncIterator[dict[str, Any]]:
    """The dataset's rows for the scope, in id order, read a batch at a time."""
    _check_dataset(dataset)
    produce = {
        "proposals": _proposals,
        "votes": _votes,
        "meetings": _meetings,
        "briefs": _briefs,
    }[dataset]
    async for row in produce(scope):
        yield row


async def _proposals(scope: Scope, placed_only: bool = False) -> AsyncIterator[dict[str, Any]]:
    # As the pages read them: a vote past its closing time is closed first (its result moves
    # its proposals' statuses).
    await votes.close_due(_scoped(Vote.table, scope))
    condition: Any = search.listed()  # what lists show: neither hidden nor merged
    if (scoped := _scoped(Proposal.table, scope)) is not None:
        condition = scoped & condition
    if placed_only:
        condition = condition & Proposal.latitude.is_not_null() & Proposal.longitude.is_not_null()
    fields = (
        Proposal.table.slug.as_alias("table_slug"),
        Proposal.table._.organisation._.slug.as_alias("organisation_slug"),
        Proposal.district.slug.as_alias("district_slug"),
        Proposal.district.name.as_alias("district_name"),
        Proposal.theme,
        Proposal.status,
        Proposal.created_at,
        Proposal.language,
        Proposal.title,
        Proposal.body,
        Proposal.transcription,
        Proposal.supports,
        Proposal.recorded_by,
        Proposal.latitude,
        Proposal.longitude,
    )
    async for batch in _batches(Proposal, fields, condition):
        ids = [row["id"] for row in batch]
        reached, changed = await _status_dates(ids)
        translated = await _translations(ids)
        comments = await _visible_comments(ids)
        last_votes = await _last_closed_votes(ids)
        for row in batch:
            pid = row["id"]
            placed = row["latitude"] is not None and row["longitude"] is not None
            vote = last_votes.get(pid)
            out: dict[str, Any] = {
                "id": pid,
                "url": absolute_url(f"/proposals/{pid}"),
                "table": row["table_slug"],
                "organisation": row["organisation_slug"],
                "district": row["district_slug"],
                "district_name": row["district_name"],
                "theme": row["theme"],
                "status": row["status"],
                "created_at": _iso(row["created_at"]),
                "status_changed_at": _iso(changed.get(pid)),
            }
            for status in _REACHED:
                out[f"{status}_at"] = _iso(reached[pid].get(status))
            out |= {
                "language": row["language"],
                "title": row["title"],
                "body": row["body"],
                "transcription": row["transcription"] or "",
            }
            for language in LANGUAGES:
                translation = translated[pid].get(language)
                out[f"title_{language}"] = translation["title"] if translation else ""
                out[f"body_{language}"] = translation["body"] if translation else ""
            out |= {
                "supports": row["supports"],
                "comments_count": comments.get(pid, 0),
                "last_vote": vote["vote"] if vote else None,
                "last_vote_closed_at": _iso(vote["closed_at"]) if vote else None,
                "last_vote_adopted": vote["adopted"] if vote else None,
                "recorded_on_behalf": row["recorded_by"] is not None,
                "longitude": row["longitude"] if placed else None,
                "latitude": row["latitude"] if placed else None,
            }
            yield out


def _among(column: Any, ids: list[int]) -> Any:
    """Rows pointing at a proposal of the batch (ids in increasing order). When the batch's ids
    are close together (the whole site, a large table), by their range: one range scan of the
    column's index, where piccolo takes longer to build `IN (1000 ids)` than the database to
    answer it; the few proposals of the range not in the batch (other tables', hidden,
    merged) are read and never asked for. When they are spread out (a small table among
    large ones), by the list: a range would read the other tables' rows too."""
    if ids[-1] - ids[0] < 2 * len(ids):
        return (column >= ids[0]) & (column <= ids[-1])
    return column.is_in(ids)


async def _status_dates(
    ids: list[int],
) -> tuple[dict[int, dict[str, datetime]], dict[int, datetime]]:
    """Per proposal: when it last entered each status, and when its status last changed."""
    reached: dict[int, dict[str, datetime]] = defaultdict(dict)
    changed: dict[int, datetime] = {}
    history = await (
        StatusChange.select(StatusChange.proposal, StatusChange.to_status, StatusChange.at)
        .where(_among(StatusChange.proposal, ids))
        .order_by(StatusChange.at)
        .order_by(StatusChange.id)
    )
    for change in history:  # oldest first: the last one written wins
        at = utc(change["at"])
        reached[change["proposal"]][change["to_status"]] = at
        changed[change["proposal"]] = at
    return reached, changed


async def _translations(ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    found: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    rows = await Translation.select(
        Translation.proposal, Translation.language, Translation.title, Translation.body
    ).where(_among(Translation.proposal, ids))
    for row in rows:
        found[row["proposal"]][row["language"]] = row
    return found


async def _visible_comments(ids: list[int]) -> dict[int, int]:
    """Comments and replies the proposal's page shows to everyone (hidden ones left out)."""
    rows = await (
        Comment.select(Comment.proposal, Count(alias="n"))
        .where(_among(Comment.proposal, ids) & Comment.hidden_at.is_null())
        .group_by(Comment.proposal)
    )
    return {row["proposal"]: row["n"] for row in rows}


async def _last_closed_votes(ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per proposal, the closed vote on it (alone or among others) that closed last."""
    rows = await VoteOption.select(
        VoteOption.proposal,
        VoteOption.vote,
        VoteOption.adopted,
        VoteOption.vote.closed_at.as_alias("closed_at"),
    ).where(_among(VoteOption.proposal, ids) & (VoteOption.vote.status == CLOSED))
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        row["closed_at"] = utc(row["closed_at"]) if row["closed_at"] else None
        kept = found.get(row["proposal"])
        if kept is None or _closing_order(row) > _closing_order(kept):
            found[row["proposal"]] = row
    return found


def _closing_order(row: dict[str, Any]) -> tuple[float, int]:
    return (row["closed_at"].timestamp() if row["closed_at"] else 0.0, row["vote"])


# Votes


async def _votes(scope: Scope) -> AsyncIterator[dict[str, Any]]:
    fields = (
        Vote.table.slug.as_alias("table_slug"),
        Vote.table._.organisation._.slug.as_alias("organisation_slug"),
    )
    async for batch in _batches(Vote, fields, _scoped(Vote.table, scope)):
        slugs = {row["id"]: row for row in batch}
        ids = list(slugs)
        # As their pages read them: a vote past its closing time is closed first.
        found = await votes.with_results(await votes.by_ids(ids))
        channels = await channel_counts(ids)
        for vote in sorted(found, key=lambda v: v["id"]):
            vote_id = vote["id"]
            closed = vote["status"] == CLOSED
            counted = channels.get(vote_id, {})
            grades = list(vote["grades"])
            yield {
                "id": vote_id,
                "url": absolute_url(f"/votes/{vote_id}"),
                "table": slugs[vote_id]["table_slug"],
                "organisation": slugs[vote_id]["organisation_slug"],
                "proposal": vote["proposal"],
                "question": vote["question"],
                "method": vote["method"],
                "grades": grades,
                "status": vote["status"],
                "opened_at": _iso(vote["opened_at"]),
                "closes_at": _iso(vote["closes_at"]),
                "closed_at": _iso(vote["closed_at"]),
                "participants": vote["turnout"],
                "participation_online": counted.get("online", 0),
                "participation_tablet": counted.get("tablet", 0),
                "participation_paper": counted.get("paper", 0),
                "participation_hands": counted.get("hands", 0),
                "paper_blank": counted.get("blank", 0),
                "paper_spoilt": counted.get("spoilt", 0),
                "paper_handed_out": counted.get("handed", 0),
                "options": [
                    {
                        "id": o["key"],
                        "label": o["label"],
                        "proposal": o["proposal"],
                        "withdrawn": o["withdrawn"],
                    }
                    for o in vote["options"]
                ],
                "results": [
                    {
                        "id": o["key"],
                        "rank": o["rank"],
                        "tally": o["tally"],
                        "majority_grade": grades[o["majority_grade"]]
                        if o["majority_grade"] is not None and o["majority_grade"] < len(grades)
                        else None,
                        "adopted": o["adopted"],
                    }
                    for o in vote["options"]
                ]
                if closed
                else None,
                "ballot_box_sha256": (await box.fingerprint(vote_id) or None) if closed else None,
                "ballot_box_url": absolute_url(f"/votes/{vote_id}/ballots.json")
                if closed
                else None,
            }


# Meetings

_CHECK_IN_COLUMNS = {
    "qr": "attendance_qr",
    "list": "attendance_list",
    "walk_in": "attendance_walk_in",
}


async def _meetings(scope: Scope) -> AsyncIterator[dict[str, Any]]:
    fields = (
        Meeting.table.slug.as_alias("table_slug"),
        Meeting.table._.organisation._.slug.as_alias("organisation_slug"),
        Meeting.title,
        Meeting.status,
        Meeting.starts_at,
        Meeting.ends_at,
        Meeting.place,
        Meeting.address,
        Meeting.languages,
    )
    async for batch in _batches(Meeting, fields, _scoped(Meeting.table, scope)):
        ids = [row["id"] for row in batch]
        attendance: dict[int, dict[str, int]] = defaultdict(dict)
        counted = await (
            Attendance.select(Attendance.meeting, Attendance.method, Count(alias="n"))
            .where(Attendance.meeting.is_in(ids))
            .group_by(Attendance.meeting, Attendance.method)
        )
        for row in counted:
            attendance[row["meeting"]][row["method"]] = row["n"]
        # The newest publication of each meeting's minutes (a version without a time: None).
        published: dict[int, datetime | None] = {}
        for row in await (
            Minutes.select(Minutes.meeting, Minutes.published_at)
            .where(Minutes.meeting.is_in(ids) & Minutes.published.eq(True))
            .order_by(Minutes.version)
        ):
            published[row["meeting"]] = utc(row["published_at"]) if row["published_at"] else None
        for row in batch:
            meeting_id = row["id"]
            counts = attendance[meeting_id]
            has_minutes = meeting_id in published
            starts = utc(row["starts_at"])
            out = {
                "id": meeting_id,
                "url": absolute_url(f"/meetings/{meeting_id}"),
                "table": row["table_slug"],
                "organisation": row["organisation_slug"],
                "title": row["title"],
                "status": row["status"],
                "date": _local_day(starts),
                "starts_at": _iso(starts),
                "ends_at": _iso(row["ends_at"]),
                "place": row["place"],
                "address": row["address"],
                "languages": row["languages"].split(),
                "attendance": sum(counts.values()),
            }
            for method, name in _CHECK_IN_COLUMNS.items():
                out[name] = counts.get(method, 0)
            out["minutes_url"] = (
                absolute_url(f"/meetings/{meeting_id}/minutes") if has_minutes else None
            )
            out["minutes_published_at"] = _iso(published.get(meeting_id))
            yield out


def _local_day(moment: datetime) -> str:
    return local_day(moment).isoformat()


# Briefs sent, and the answers


async def _briefs(scope: Scope) -> AsyncIterator[dict[str, Any]]:
    fields = (
        BriefSent.brief,
        BriefSent.brief.slug.as_alias("brief_slug"),
        BriefSent.brief.title.as_alias("brief_title"),
        BriefSent.brief._.table._.slug.as_alias("table_slug"),
        BriefSent.brief._.table._.organisation._.slug.as_alias("organisation_slug"),
        BriefSent.brief._.table._.answer_delay_months.as_alias("delay"),
        BriefSent.institution,
        BriefSent.institution.name.as_alias("institution_name"),
        BriefSent.institution.service.as_alias("institution_service"),
        BriefSent.version,
        BriefSent.sent_at,
    )
    day = today()
    async for batch in _batches(BriefSent, fields, _scoped(BriefSent.brief._.table, scope)):
        brief_ids = sorted({row["brief"] for row in batch})
        titles = await exports.published(brief_ids)
        answers: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        for answer in await (
            Response.select(
                Response.brief,
                Response.institution,
                Response.received_on,
                Response.summary,
                Response.commitments,
            )
            .where(Response.brief.is_in(brief_ids))
            .order_by(Response.received_on)
            .order_by(Response.id)
        ):
            answers[answer["brief"], answer["institution"]].append(
                {
                    "received_on": _iso(answer["received_on"]),
                    "summary": answer["summary"],
                    "commitments": answer["commitments"],
                }
            )
        carried: dict[int, list[int]] = defaultdict(list)
        for sent in await (
            SentProposal.select(SentProposal.brief, SentProposal.proposal)
            .where(SentProposal.brief.is_in(brief_ids) & SentProposal.proposal.hidden_at.is_null())
            .order_by(SentProposal.sent_at)
            .order_by(SentProposal.id)
        ):
            carried[sent["brief"]].append(sent["proposal"])
        for row in batch:
            sent_at = utc(row["sent_at"])
            due = due_on(sent_at, row["delay"])
            given = answers.get((row["brief"], row["institution"]), [])
            version = titles.get(row["brief"])
            yield {
                "brief": row["brief_slug"],
                "brief_title": version["title"]
                if version and version["title"]
                else row["brief_title"],
                "brief_url": absolute_url(f"/briefs/{row['brief_slug']}"),
                "table": row["table_slug"],
                "organisation": row["organisation_slug"],
                "institution": row["institution_name"],
                "institution_service": row["institution_service"],
                "version": row["version"],
                "sent_at": _iso(sent_at),
                "answer_due_on": _iso(due),
                "overdue": not given and day > due,
                "answered": bool(given),
                "answers": given,
                "proposals": carried.get(row["brief"], []),
            }


# Encoding


def stream(dataset: str, fmt: str, scope: Scope, *, licence: str = "") -> AsyncIterator[bytes]:
    """The dataset encoded in `fmt`, in chunks of about CHUNK_BYTES. Raises ValueError at once
    for an unknown dataset or format, or GeoJSON of anything but proposals. `licence` (its
    name or URL) goes into GeoJSON as a top-level member; CSV and JSON Lines have no place
    for it (the HTTP response names it)."""
    _check_format(dataset, fmt)
    if fmt in ("csv", "csv-semicolon"):
        return _chunked(_csv_parts(dataset, scope, ";" if fmt == "csv-semicolon" else ","))
    if fmt == "jsonl":
        return _chunked(_jsonl_parts(dataset, scope))
    return _chunked(_geojson_parts(scope, licence))


async def _chunked(parts: AsyncIterator[str]) -> AsyncIterator[bytes]:
    pending: list[str] = []
    size = 0
    async for part in parts:
        pending.append(part)
        size += len(part)
        if size >= CHUNK_BYTES:
            yield "".join(pending).encode("utf-8")
            pending, size = [], 0
    if pending:
        yield "".join(pending).encode("utf-8")


def csv_cell(value: Any) -> str:
    """One value as a CSV cell: text a spreadsheet would run as a formula gets a leading quote."""
    if type(value) is str:  # most cells: the fast way first
        return "'" + value if value.startswith(_FORMULA_START) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | dict):
        return _json(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


# Line ends that JSON leaves as they are but that split a JSON Lines record for some readers
# (Python's str.splitlines, JavaScript before ES2019): written escaped.
_LINE_ENDS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_LINE_ENDS)


async def _csv_parts(dataset: str, scope: Scope, delimiter: str) -> AsyncIterator[str]:
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, fields quoted when they hold the delimiter, a quote or a newline.
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    names = [column.name for column in columns(dataset)]
    writer.writerow(names)
    yield "\ufeff" + _take(buffer)
    async for row in rows(dataset, scope):
        writer.writerow([csv_cell(row[name]) for name in names])
        if buffer.tell() >= CHUNK_BYTES // 4:
            yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


async def _jsonl_parts(dataset: str, scope: Scope) -> AsyncIterator[str]:
    async for row in rows(dataset, scope):
        yield _json(row) + "\n"


async def _geojson_parts(scope: Scope, licence: str) -> AsyncIterator[str]:
    opening = {"type": "FeatureCollection"}
    head = _json(opening)[:-1]
    if licence:
        head += ',"licence":' + _json(licence)
    yield head + ',"features":[\n'
    first = True
    async for row in _proposals(scope, placed_only=True):
        feature = {
            "type": "Feature",
            "id": row["id"],
            "geometry": {"type": "Point", "coordinates": [row["longitude"], row["latitude"]]},
            "properties": row,
        }
        yield ("" if first else ",\n") + _json(feature)
        first = False
    yield "\n]}\n"
