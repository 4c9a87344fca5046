"""Institutions' answers to briefs, and the public follow-up of what a table sent.

The follow-up is the table's memory of its demands: what went to whom and when, what came
back, what was promised, and who still owes an answer. Its pages read a fixed number of
queries whatever they list, a page at a time, so they stay as fast as the tables grow.

Recording an answer moves the proposals it speaks of along the workflow of
proposals.discussion (transmitted → answered → done or refused), in the same transaction as
the answer, its history lines and its audit entry: a refused move leaves nothing behind.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar.exceptions import NotFoundException
from piccolo.query import WhereRaw
from piccolo.query.functions.aggregate import Count

from audit import services as audit
from exports import services as exports
from exports.models import Brief, BriefSent, SentProposal
from followup.models import Response, ResponseItem
from notifications import services as notify
from notifications.models import PROPOSAL as FOLLOWS_PROPOSAL
from notifications.models import TABLE as FOLLOWS_TABLE
from proposals import discussion, media
from proposals.discussion import STATUS_CHANGED, STATUS_LABELS, TRANSITIONS, record_change
from proposals.models import ANSWERED, DONE, REFUSED, TRANSMITTED, Proposal
from proposals.services import Page, page_number
from proposals.themes import THEMES
from tables.models import Institution, Table
from tables.services import scope_of
from voix import db, workers
from voix.db import utc
from voix.forms import Form, FormErrors, Message, UserError, parse_int
from voix.i18n import LOCAL_TIMEZONE, N_
from voix.permissions import Principal, require

LETTER_MAX_BYTES = media.PHOTO_MAX_BYTES
SUMMARY_MAX = 2000
COMMITMENTS_MAX = 4000
NOTE_MAX = 300
DELAY_MIN, DELAY_MAX = 1, 24
PAGE_SIZE = 50
# The same answer sent twice (a double click, a retried upload) within this window is one answer.
RESUBMISSION_WINDOW = timedelta(minutes=10)
# The statuses a sent proposal goes through, as the follow-up lists and filters them.
FOLLOWED = (TRANSMITTED, ANSWERED, DONE, REFUSED)
# The answer speaks of a proposal without moving it (a form value, never a status).
MENTIONED = "mentioned"

NOT_SENT = N_("This position document has not been sent yet: there is no answer to record.")
NOT_SENT_TO = N_("Choose one of the institutions this document was sent to.")
RECEIVED_IN_FUTURE = N_("The date received cannot be in the future.")
RECEIVED_BEFORE_SENT = N_("The document was sent on %(date)s: the answer cannot be older.")
LOOK_AGAIN_TOO_EARLY = N_("Choose a date after the day the answer was received.")
LETTER_TOO_LARGE = N_("This letter is too large: %(max)d MB at most.")
NOT_A_LETTER = N_(
    "This file is not a letter we can read: send a PDF, or a photo (JPEG, PNG or WebP)."
)
ALREADY_ANSWERED = N_("This institution has answered this document: there is nothing to remind.")

PDF = "application/pdf"


def today() -> date:
    """Today in Marseille: the follow-up counts days as the table lives them."""
    return datetime.now(LOCAL_TIMEZONE).date()


def local_day(moment: datetime) -> date:
    return utc(moment).astimezone(LOCAL_TIMEZONE).date()


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it is shorter (31 Jan + 1 → 28
    or 29 Feb)."""
    years, month = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def due_on(sent_at: datetime, months: int) -> date:
    """The last day the institution is given to answer: the day it was sent, `months` later.
    It is overdue from the day after."""
    return add_months(local_day(sent_at), months)


# Loading


async def get_brief(table: Mapping[str, Any], slug: str) -> dict[str, Any]:
    """A brief of this table (404 for another table's: its address does not lead there)."""
    brief = await (
        Brief.select(Brief.id, Brief.slug, Brief.title, Brief.version, Brief.language)
        .where((Brief.slug == slug) & (Brief.table == table["id"]))
        .first()
    )
    if brief is None:
        raise NotFoundException()
    await _as_published([brief], id_key="id", title_key="title")
    return brief


async def _as_published(
    rows: list[dict[str, Any]], id_key: str = "brief_id", title_key: str = "brief_title"
) -> list[dict[str, Any]]:
    """The briefs' titles (and language) as their newest version published them: a draft's
    words are the facilitators' until they publish them. One query."""
    found = await exports.published([row[id_key] for row in rows])
    for row in rows:
        if (version := found.get(row[id_key])) and version["title"]:
            row[title_key] = version["title"]
            if "language" in row and title_key == "title":
                row["language"] = version["language"]
    return rows


async def sendings(brief_id: int) -> list[dict[str, Any]]:
    """The institutions the brief went to, and when."""
    rows = await (
        BriefSent.select(
            BriefSent.institution.id.as_alias("id"),
            BriefSent.institution.name.as_alias("name"),
            BriefSent.institution.service.as_alias("service"),
            BriefSent.institution.address.as_alias("address"),
            BriefSent.version,
            BriefSent.sent_at,
        )
        .where(BriefSent.brief == brief_id)
        .order_by(BriefSent.institution.name)
    )
    for row in rows:
        row["sent_at"] = utc(row["sent_at"])
    return rows


async def sent_proposals(brief_id: int) -> list[dict[str, Any]]:
    """The proposals the brief carried, as they are now (hidden ones left out, as briefs do)."""
    rows = await (
        SentProposal.select(
            SentProposal.proposal.id.as_alias("id"),
            SentProposal.proposal.title.as_alias("title"),
            SentProposal.proposal.theme.as_alias("theme"),
            SentProposal.proposal.language.as_alias("language"),
            SentProposal.proposal.status.as_alias("status"),
            SentProposal.version,
            SentProposal.sent_at,
        )
        .where((SentProposal.brief == brief_id) & SentProposal.proposal.hidden_at.is_null())
        .order_by(SentProposal.sent_at)
        .order_by(SentProposal.id)
    )
    for row in rows:
        row["sent_at"] = utc(row["sent_at"])
    return rows


async def answers_to(brief_id: int) -> list[dict[str, Any]]:
    """The answers recorded for a brief, newest first (what the form page recalls)."""
    return await (
        Response.select(
            Response.id,
            Response.received_on,
            Response.summary,
            Response.commitments,
            Response.letter_type,
            Response.look_again_on,
            Response.institution.name.as_alias("institution_name"),
        )
        .where(Response.brief == brief_id)
        .order_by(Response.received_on, ascending=False)
        .order_by(Response.id, ascending=False)
    )


# Recording an answer


def _letter_problem(letter: bytes) -> Message | None:
    """What is wrong with the letter, from its size and first bytes: a PDF, or a photo whose
    header Pillow reads. Cheap: milliseconds on the event loop, before any worker is busy."""
    if len(letter) > LETTER_MAX_BYTES:
        return Message(LETTER_TOO_LARGE, {"max": LETTER_MAX_BYTES // 2**20})
    if letter.startswith(b"%PDF-"):
        return None
    try:
        media.check_photo(letter)
    except UserError as refused:
        too_many_pixels = refused.message.msgid == media.PHOTO_TOO_MANY_PIXELS
        return refused.message if too_many_pixels else Message(NOT_A_LETTER)
    return None


async def _clean_letter(letter: bytes) -> tuple[bytes, str]:
    """The letter as kept: a PDF as sent (it is what the institution signed), a photo as a new
    JPEG of its pixels alone, made in a worker (no EXIF, no place, no phone's name)."""
    if letter.startswith(b"%PDF-"):
        return letter, PDF
    try:
        cleaned = await workers.run(media.clean_photo, letter)
    except UserError as refused:
        if isinstance(refused, workers.Busy):
            raise
        raise FormErrors({"letter": Message(NOT_A_LETTER)}) from refused
    return cleaned.data, cleaned.content_type


def _moves_field(proposal_id: int) -> str:
    return f"proposal-{proposal_id}"


def _note_field(proposal_id: int) -> str:
    return f"note-{proposal_id}"


@dataclass(frozen=True)
class _Answer:
    institution: int
    received_on: date
    summary: str
    commitments: str
    look_again_on: date | None
    moves: dict[int, str]  # proposal → MENTIONED or the status it moves to
    notes: dict[int, str]


def _read_answer(
    data: Mapping[str, Any],
    sent: list[dict[str, Any]],
    carried: list[dict[str, Any]],
    letter: bytes | None,
) -> _Answer:
    """Every field checked, every error collected (FormErrors); the moves only by their
    values here, against the proposals' statuses later, inside the transaction."""
    form = Form(data)
    institution = form.integer("institution")
    sent_on = {row["id"]: local_day(row["sent_at"]) for row in sent}
    if institution is not None and institution not in sent_on:
        form.error("institution", NOT_SENT_TO)
    received_on = form.day("received_on")
    summary = form.text("summary", max_length=SUMMARY_MAX, min_length=3, multiline=True)
    commitments = form.text(
        "commitments", max_length=COMMITMENTS_MAX, required=False, multiline=True
    )
    look_again_on = form.day("look_again_on", required=False)
    if received_on is not None:
        if received_on > today():
            form.error("received_on", RECEIVED_IN_FUTURE)
        elif institution in sent_on and received_on < sent_on[institution]:
            form.error(
                "received_on",
                RECEIVED_BEFORE_SENT,
                date=sent_on[institution].isoformat(),
            )
        if look_again_on is not None and look_again_on <= received_on:
            form.error("look_again_on", LOOK_AGAIN_TOO_EARLY)
    moves: dict[int, str] = {}
    notes: dict[int, str] = {}
    for proposal in carried:
        name = _moves_field(proposal["id"])
        move = form.choice(name, (MENTIONED, *STATUS_LABELS), required=False)
        note = form.text(_note_field(proposal["id"]), max_length=NOTE_MAX, required=False)
        if move and name not in form.errors:
            moves[proposal["id"]] = move
            notes[proposal["id"]] = note
    if letter and (problem := _letter_problem(letter)):
        form.errors["letter"] = problem
    form.validate()
    assert institution is not None  # noqa: S101 — required above
    assert received_on is not None  # noqa: S101 — required above
    return _Answer(institution, received_on, summary, commitments, look_again_on, moves, notes)


async def _lock_sending(brief_id: int, institution_id: int) -> None:
    """Until the transaction ends, answers to this brief from this institution wait in turn:
    the second of two identical submissions then finds the first one's answer. SQLite's write
    transaction already admits one writer at a time."""
    if isinstance(db.engine(), db.Postgres):
        await (
            BriefSent.select(BriefSent.id)
            .where((BriefSent.brief == brief_id) & (BriefSent.institution == institution_id))
            .lock_rows()
        )


async def record_answer(
    who: Principal,
    table: dict[str, Any],
    brief: dict[str, Any],
    data: Mapping[str, Any],
    letter: bytes | None = None,
) -> int:
    """Records an institution's answer to a brief and moves the proposals it speaks of; returns
    the answer's id. Submitted twice, it is recorded once (the first one's id is returned)."""
    scope = scope_of(table)
    require(who, "briefs.manage", scope)
    sent = await sendings(brief["id"])
    if brief["version"] < 1 or not sent:
        raise UserError(NOT_SENT)
    carried = await sent_proposals(brief["id"])
    answer = _read_answer(data, sent, carried, letter)
    kept, kind = await _clean_letter(letter) if letter else (None, "")
    institution = next(row for row in sent if row["id"] == answer.institution)
    async with db.write_transaction():
        await _lock_sending(brief["id"], answer.institution)
        same = await (
            Response.select(Response.id)
            .where(
                (Response.brief == brief["id"])
                & (Response.institution == answer.institution)
                & (Response.received_on == answer.received_on)
                & (Response.summary == answer.summary)
                & (Response.recorded_at > datetime.now(UTC) - RESUBMISSION_WINDOW)
            )
            .first()
        )
        if same is not None:
            return int(same["id"])
        current = {
            row["id"]: row["status"]
            for row in (
                await Proposal.select(Proposal.id, Proposal.status).where(
                    Proposal.id.is_in(list(answer.moves))
                )
                if answer.moves
                else []
            )
        }
        refused: dict[str, Message] = {}
        for proposal_id, move in answer.moves.items():
            before = current[proposal_id]
            if move != MENTIONED and move not in TRANSITIONS.get(before, ()):
                refused[_moves_field(proposal_id)] = Message(
                    discussion.TRANSITION_FORBIDDEN,
                    {
                        "current": Message(STATUS_LABELS[before]),
                        "target": Message(STATUS_LABELS[move]),
                    },
                )
        if refused:
            raise FormErrors(refused)
        inserted = await Response.insert(
            Response(
                brief=brief["id"],
                institution=answer.institution,
                received_on=answer.received_on,
                summary=answer.summary,
                commitments=answer.commitments,
                letter=kept,
                letter_type=kind,
                letter_sha256=hashlib.sha256(kept).hexdigest() if kept else "",
                look_again_on=answer.look_again_on,
                recorded_by=who.user_id,
                recorded_at=datetime.now(UTC),
            )
        ).returning(Response.id)
        response_id = int(inserted[0]["id"])
        if answer.moves:
            await ResponseItem.insert(
                *[
                    ResponseItem(
                        response=response_id,
                        proposal=proposal_id,
                        status="" if move == MENTIONED else move,
                        note=answer.notes.get(proposal_id, ""),
                    )
                    for proposal_id, move in answer.moves.items()
                ]
            )
        moved: dict[str, str] = {}
        for proposal_id, move in answer.moves.items():
            if move == MENTIONED:
                continue
            before = current[proposal_id]
            changed = await (
                Proposal.update({Proposal.status: move})
                .where((Proposal.id == proposal_id) & (Proposal.status == before))
                .returning(Proposal.id)
            )
            if not changed:
                raise UserError(STATUS_CHANGED)
            await record_change(proposal_id, before, move, who, institution["name"])
            moved[str(proposal_id)] = move
        await audit.record(
            who,
            "response.recorded",
            scope,
            subject=f"brief:{brief['slug']}",
            response=response_id,
            institution=answer.institution,
            received_on=answer.received_on.isoformat(),
            moved=moved,
            letter_sha256=hashlib.sha256(kept).hexdigest() if kept else "",
        )
        follows = [(FOLLOWS_TABLE, table["id"])]
        follows += [(FOLLOWS_PROPOSAL, row["id"]) for row in carried]
        await notify.emit(
            "institution.answer",
            f"institution.answer:{response_id}",
            audience=notify.Audience(follows=notify.followers(*follows)),
            params={
                "table": table["name"],
                "institution": institution["name"],
                "brief": brief["title"],
            },
            path=f"/tables/{table['slug']}/follow-up",
            table_id=table["id"],
        )
    return response_id


async def letter(who: Principal, table: dict[str, Any], response_id: int) -> tuple[bytes, str]:
    """The letter as received, for those who manage the table only: it may name officials."""
    require(who, "briefs.manage", scope_of(table))
    row = await (
        Response.select(Response.letter, Response.letter_type)
        .where((Response.id == response_id) & (Response.brief.table == table["id"]))
        .first()
    )
    if row is None or row["letter"] is None:
        raise NotFoundException()
    return bytes(row["letter"]), row["letter_type"]


async def set_delay(who: Principal, table: dict[str, Any], data: Mapping[str, Any]) -> int:
    """How many months the table gives institutions to answer before they are overdue."""
    scope = scope_of(table)
    require(who, "briefs.manage", scope)
    form = Form(data)
    months = form.integer("answer_delay_months", min=DELAY_MIN, max=DELAY_MAX, typed=True)
    form.validate()
    assert months is not None  # noqa: S101 — required above
    async with db.write_transaction():
        await Table.update({Table.answer_delay_months: months}).where(Table.id == table["id"])
        await audit.record(
            who, "table.answer_delay", scope, subject=f"table:{table['slug']}", months=months
        )
    return months


# Who owes an answer

# No answer from the institution to this brief: one correlated subquery, not one query per row.
_UNANSWERED = WhereRaw(
    "NOT EXISTS (SELECT 1 FROM institution_response answered"
    " WHERE answered.brief = brief_sent.brief"
    " AND answered.institution = brief_sent.institution)"
)


async def overdue(table_ids: list[int], day: date | None = None) -> list[dict[str, Any]]:
    """The institutions that have not answered a brief of these tables within the table's
    delay, the longest overdue first. One query."""
    if not table_ids:
        return []
    day = day or today()
    # None is overdue sooner than the shortest delay allows (a month is 28 days at least):
    # the database returns older sendings only.
    earliest_due = datetime.combine(
        day - timedelta(days=28 * DELAY_MIN), time(0), tzinfo=LOCAL_TIMEZONE
    )
    rows = await (
        BriefSent.select(
            BriefSent.brief.id.as_alias("brief_id"),
            BriefSent.brief.slug.as_alias("brief_slug"),
            BriefSent.brief.title.as_alias("brief_title"),
            BriefSent.brief._.table._.slug.as_alias("table_slug"),
            BriefSent.brief._.table._.name.as_alias("table_name"),
            BriefSent.brief._.table._.answer_delay_months.as_alias("delay"),
            BriefSent.institution.id.as_alias("institution_id"),
            BriefSent.institution.name.as_alias("institution_name"),
            BriefSent.institution.service.as_alias("institution_service"),
            BriefSent.version,
            BriefSent.sent_at,
        )
        .where(
            BriefSent.brief.table.is_in(table_ids)
            & (BriefSent.sent_at < earliest_due)
            & _UNANSWERED
        )
        .order_by(BriefSent.sent_at)
        .order_by(BriefSent.id)
    )
    late = []
    for row in rows:
        row["sent_at"] = utc(row["sent_at"])
        row["due_on"] = due_on(row["sent_at"], row["delay"])
        if day > row["due_on"]:
            row["days_late"] = (day - row["due_on"]).days
            late.append(row)
    return await _as_published(late)


async def reminder(
    who: Principal, table: dict[str, Any], brief: dict[str, Any], institution_id: int
) -> dict[str, Any]:
    """What a reminder letter recalls: the sending, the institution, the proposals carried."""
    require(who, "briefs.manage", scope_of(table))
    sending = next(
        (row for row in await sendings(brief["id"]) if row["id"] == institution_id), None
    )
    if sending is None:
        raise NotFoundException()
    if await Response.exists().where(
        (Response.brief == brief["id"]) & (Response.institution == institution_id)
    ):
        raise UserError(ALREADY_ANSWERED)
    return {
        "institution": sending,
        "proposals": await sent_proposals(brief["id"]),
        "due_on": due_on(sending["sent_at"], await answer_delay(table["id"])),
    }


async def answer_delay(table_id: int) -> int:
    row = await Table.select(Table.answer_delay_months).where(Table.id == table_id).first()
    return int(row["answer_delay_months"]) if row else 2


# The follow-up


@dataclass(frozen=True)
class Filters:
    """What a reader asked the follow-up for; anything unknown falls back to everything."""

    institution: int | None = None
    theme: str = ""
    status: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        theme = params.get("theme") or ""
        status = params.get("status") or ""
        return cls(
            institution=parse_int(params.get("institution"), min=1, max=2**31 - 1),
            theme=theme if theme in THEMES else "",
            status=status if status in FOLLOWED else "",
            page=page_number(params.get("page")),
        )

    def query(self, **changes: Any) -> str:
        """The query string of these filters (defaults left out), with some changed."""
        values = {**asdict(self), **changes}
        defaults = asdict(Filters())
        return urlencode({k: v for k, v in values.items() if v != defaults[k]})

    @property
    def active(self) -> bool:
        return bool(self.institution or self.theme or self.status)


@dataclass(frozen=True)
class FollowUp:
    counts: dict[str, int]
    page: Page
    institutions: list[dict[str, Any]] = field(default_factory=list)


def _sent_by(table_ids: list[int]) -> Any:
    return SentProposal.brief.table.is_in(table_ids) & SentProposal.proposal.hidden_at.is_null()


async def counts(table_ids: list[int]) -> dict[str, int]:
    """How many proposals the tables sent, and where each stands now (each counted once,
    however many briefs carried it)."""
    rows = await (
        SentProposal.select(
            SentProposal.proposal.status.as_alias("status"),
            Count(distinct=[SentProposal.proposal]).as_alias("n"),
        )
        .where(_sent_by(table_ids))
        .group_by(SentProposal.proposal.status)
    )
    found = {row["status"]: row["n"] for row in rows}
    shown = {status: found.get(status, 0) for status in FOLLOWED}
    return {"sent": sum(found.values()), **shown}


async def institutions_for(table_ids: list[int]) -> list[dict[str, Any]]:
    """The institutions these tables sent something to: the filter's choices."""
    sent_to = BriefSent.select(BriefSent.institution).where(BriefSent.brief.table.is_in(table_ids))
    return await (
        Institution.select(Institution.id, Institution.name, Institution.service)
        .where(Institution.id.is_in(sent_to))
        .order_by(Institution.name)
        .order_by(Institution.service)
    )


async def follow_up(
    table_ids: list[int],
    filters: Filters,
    language: str,
    *,
    size: int = PAGE_SIZE,
    day: date | None = None,
) -> FollowUp:
    """A page of what these tables sent, newest first, each with whom it went to, what they
    answered and how long it has waited. A fixed number of queries, whatever the page holds."""
    if not table_ids:
        return FollowUp({"sent": 0, **dict.fromkeys(FOLLOWED, 0)}, Page([], 1, 0, size))
    condition = _sent_by(table_ids)
    if filters.theme:
        condition &= SentProposal.proposal.theme == filters.theme
    if filters.status:
        condition &= SentProposal.proposal.status == filters.status
    if filters.institution:
        condition &= SentProposal.brief.is_in(
            BriefSent.select(BriefSent.brief).where(BriefSent.institution == filters.institution)
        )
    total = await SentProposal.count().where(condition)
    rows = await (
        SentProposal.select(
            SentProposal.id,
            SentProposal.version,
            SentProposal.sent_at,
            SentProposal.proposal.id.as_alias("proposal_id"),
            SentProposal.proposal.title.as_alias("title"),
            SentProposal.proposal.theme.as_alias("theme"),
            SentProposal.proposal.status.as_alias("status"),
            SentProposal.proposal.language.as_alias("language"),
            SentProposal.brief.id.as_alias("brief_id"),
            SentProposal.brief.slug.as_alias("brief_slug"),
            SentProposal.brief.title.as_alias("brief_title"),
            SentProposal.brief._.table._.slug.as_alias("table_slug"),
            SentProposal.brief._.table._.name.as_alias("table_name"),
            SentProposal.brief._.table._.answer_delay_months.as_alias("delay"),
        )
        .where(condition)
        .order_by(SentProposal.sent_at, ascending=False)
        .order_by(SentProposal.id, ascending=False)
        .limit(size)
        .offset((filters.page - 1) * size)
    )
    await _annotate(rows, language, day or today())
    await _as_published(rows)
    return FollowUp(
        counts=await counts(table_ids),
        page=Page(rows, filters.page, total, size),
        institutions=await institutions_for(table_ids),
    )


async def _annotate(rows: list[dict[str, Any]], language: str, day: date) -> None:
    """To each row: whom its brief went to, what each answered of it, how long it waited; its
    title in the reader's language where a facilitator translated it. Four queries."""
    if not rows:
        return
    brief_ids = sorted({row["brief_id"] for row in rows})
    proposal_ids = sorted({row["proposal_id"] for row in rows})
    sent = await BriefSent.select(
        BriefSent.brief,
        BriefSent.sent_at,
        BriefSent.institution.id.as_alias("id"),
        BriefSent.institution.name.as_alias("name"),
        BriefSent.institution.service.as_alias("service"),
    ).where(BriefSent.brief.is_in(brief_ids))
    answers = await (
        Response.select(
            Response.id,
            Response.brief,
            Response.institution,
            Response.received_on,
            Response.summary,
            Response.commitments,
            Response.letter_type,
        )
        .where(Response.brief.is_in(brief_ids))
        .order_by(Response.received_on)
        .order_by(Response.id)
    )
    items = (
        await ResponseItem.select(
            ResponseItem.response, ResponseItem.proposal, ResponseItem.status, ResponseItem.note
        ).where(
            ResponseItem.response.is_in([a["id"] for a in answers])
            & ResponseItem.proposal.is_in(proposal_ids)
        )
        if answers
        else []
    )
    spoken = {(item["response"], item["proposal"]): item for item in items}
    translated = await discussion.translations(proposal_ids, language)
    for row in rows:
        row["sent_at"] = utc(row["sent_at"])
        if (translation := translated.get(row["proposal_id"])) and row["language"] != language:
            row["title"], row["language"] = translation["title"], language
        addressees = []
        for sending in sent:
            if sending["brief"] != row["brief_id"]:
                continue
            theirs = []
            for answer in answers:
                if (answer["brief"], answer["institution"]) == (row["brief_id"], sending["id"]):
                    item = spoken.get((answer["id"], row["proposal_id"]))
                    theirs.append(
                        {
                            **answer,
                            "mentions": item is not None,
                            "moved_to": item["status"] if item else "",
                            "note": item["note"] if item else "",
                        }
                    )
            due = due_on(utc(sending["sent_at"]), row["delay"])
            addressees.append(
                {
                    **sending,
                    "sent_at": utc(sending["sent_at"]),
                    "answers": theirs,
                    "due_on": due,
                    "overdue": not theirs and day > due,
                }
            )
        row["addressees"] = addressees
        row["answered"] = row["status"] != TRANSMITTED or any(
            answer["mentions"] for a in addressees for answer in a["answers"]
        )
        row["days_waiting"] = None if row["answered"] else (day - local_day(row["sent_at"])).days


async def to_look_again(table_id: int, day: date | None = None) -> list[dict[str, Any]]:
    """Answers whose date to look again has come (a promise with a date): the facilitators
    check what became of it, oldest first."""
    rows = await (
        Response.select(
            Response.id,
            Response.look_again_on,
            Response.received_on,
            Response.brief.id.as_alias("brief_id"),
            Response.brief.slug.as_alias("brief_slug"),
            Response.brief.title.as_alias("brief_title"),
            Response.institution.name.as_alias("institution_name"),
        )
        .where(
            (Response.brief.table == table_id)
            & Response.look_again_on.is_not_null()
            & (Response.look_again_on <= (day or today()))
        )
        .order_by(Response.look_again_on)
        .limit(20)
    )
    return await _as_published(rows)


async def briefs_to_answer(table_id: int) -> list[dict[str, Any]]:
    """The table's briefs sent to institutions, newest first: those an answer may be for."""
    sent = BriefSent.select(BriefSent.brief).where(BriefSent.brief.table == table_id)
    rows = await (
        Brief.select(Brief.id, Brief.slug, Brief.title, Brief.version)
        .where((Brief.table == table_id) & (Brief.version > 0) & Brief.id.is_in(sent))
        .order_by(Brief.published_at, ascending=False)
        .limit(30)
    )
    return await _as_published(rows, id_key="id", title_key="title")


POSTER_ROWS = 10
POSTER_SUMMARY = 160  # characters of an answer's summary on the wall


def _shorten(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def poster(table: dict[str, Any], language: str) -> dict[str, Any]:
    """What the wall poster shows: the counts and the latest proposals sent, plain data (it is
    fingerprinted, then rendered in a worker)."""
    found = await follow_up([table["id"]], Filters(), language, size=POSTER_ROWS)
    rows = []
    for row in found.page.items:
        answers = [
            {
                "institution": addressee["name"],
                "received_on": answer["received_on"],
                "summary": _shorten(answer["summary"], POSTER_SUMMARY),
            }
            for addressee in row["addressees"]
            for answer in addressee["answers"][-1:]
        ]
        rows.append(
            {
                "title": row["title"],
                "theme": row["theme"],
                "status": row["status"],
                "sent_on": local_day(row["sent_at"]),
                "institutions": [addressee["name"] for addressee in row["addressees"]],
                "answers": answers,
                "days_waiting": row["days_waiting"],
            }
        )
    return {
        "counts": found.counts,
        "rows": rows,
        "more": max(0, found.page.total - len(rows)),
        "today": today(),
    }
