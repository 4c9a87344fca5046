"""The public JSON API: tables, their proposals, the results of closed votes, and the
follow-up of what the tables sent to institutions.

Nothing personal is published: proposals carry no author, results no voter, answers neither
who recorded them nor the letter (it may name officials).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Router, get
from litestar.params import FromQuery, Parameter

from followup import services as followup
from meetings.room import channel_counts
from proposals import services as proposals
from tables import services as tables
from tables.models import Table
from voix.web import ObjectId, Slug, absolute_url
from votes import box
from votes import services as votes
from votes.models import CLOSED
from votes.scales import YES_NO_ABSTAIN


@dataclass
class TableOut:
    slug: str
    name: str
    organisation: str
    postcode: str
    districts: list[str]


@dataclass
class ProposalOut:
    id: int
    title: str
    body: str
    theme: str
    language: str
    status: str
    created_at: datetime


@dataclass
class OptionResultOut:
    id: str  # as in the public ballot box: "p12" for proposal 12
    label: str
    proposal_id: int | None
    # Published once the vote is closed.
    rank: int | None
    tally: list[int] | None  # best grade first; [approvals]; or [for, against, abstain]
    majority_grade: str | None
    adopted: bool | None


@dataclass
class VoteResultOut:
    id: int
    question: str
    method: str
    status: str
    proposal_id: int | None
    grades: list[str]
    ballots: int
    # How many took part through each channel: online, tablet, paper (batches counted, with
    # blank and spoilt among them; handed: paper ballots handed out), hands.
    channels: dict[str, int]
    # Published once the vote is closed; an open vote shows only how many took part.
    counts: dict[str, int] | None
    options: list[OptionResultOut]
    ballot_box: str | None
    ballot_box_sha256: str | None


@get("/tables")
async def list_tables() -> list[TableOut]:
    return [
        TableOut(t["slug"], t["name"], t["organisation_name"], t["postcode"], t["districts"])
        for t in await tables.list_tables()
    ]


@get("/tables/{slug:str}/proposals")
async def table_proposals(slug: Slug) -> list[ProposalOut]:
    table = await tables.get_table(slug)
    return [
        ProposalOut(
            p["id"], p["title"], p["body"], p["theme"], p["language"], p["status"], p["created_at"]
        )
        for p in await proposals.list_for_table(table["id"])
    ]


@get("/votes/{vote_id:int}")
async def vote_result(vote_id: ObjectId) -> VoteResultOut:
    (vote,) = await votes.with_results([await votes.get(vote_id)])
    closed = vote["status"] == CLOSED
    first = vote["options"][0]["tally"] if vote["options"] else None
    return VoteResultOut(
        id=vote["id"],
        question=vote["question"],
        method=vote["method"],
        status=vote["status"],
        proposal_id=vote["proposal"],
        grades=list(vote["grades"]),
        ballots=vote["turnout"],
        channels=(await channel_counts([vote_id]))[vote_id],
        counts=dict(zip(("yes", "no", "abstain"), first, strict=True))
        if closed and vote["method"] == YES_NO_ABSTAIN and first
        else None,
        options=[
            OptionResultOut(
                id=option["key"],
                label=option["label"],
                proposal_id=option["proposal"],
                rank=option["rank"] if closed else None,
                tally=option["tally"] if closed else None,
                majority_grade=vote["grades"][option["majority_grade"]]
                if closed and option["majority_grade"] is not None
                else None,
                adopted=option["adopted"] if closed else None,
            )
            for option in vote["options"]
        ],
        ballot_box=absolute_url(f"/votes/{vote_id}/ballots.json") if closed else None,
        ballot_box_sha256=await box.fingerprint(vote_id) if closed else None,
    )


@dataclass
class AnswerOut:
    received_on: date
    summary: str
    commitments: str
    # What the answer says of this proposal: whether it speaks of it, the status it moved it to
    # ("" when none), and the facilitators' note.
    mentions: bool
    moved_to: str
    note: str


@dataclass
class AddresseeOut:
    institution_id: int
    institution: str
    service: str
    sent_at: datetime
    answer_due_on: date
    overdue: bool
    answers: list[AnswerOut]


@dataclass
class SentProposalOut:
    proposal_id: int
    title: str
    theme: str
    status: str
    table: str
    brief: str
    brief_title: str
    brief_url: str
    version: int  # the brief's version that first carried it
    sent_at: datetime
    days_waiting: int | None  # while no answer speaks of it
    addressees: list[AddresseeOut]


@dataclass
class OverdueOut:
    table: str
    brief: str
    brief_title: str
    institution_id: int
    institution: str
    service: str
    sent_at: datetime
    answer_due_on: date
    days_late: int


@dataclass
class FollowUpOut:
    # Each proposal sent counted once: "sent" in all, then by status (transmitted: waiting).
    counts: dict[str, int]
    overdue: list[OverdueOut]
    page: int
    pages: int
    total: int
    items: list[SentProposalOut]


PageNumber = Annotated[int | None, Parameter(ge=1, le=99_999)]
InstitutionId = Annotated[int | None, Parameter(ge=1, le=2**31 - 1)]


def _filters(
    page: int | None, institution: int | None, theme: str | None, status: str | None
) -> followup.Filters:
    given = {"page": page, "institution": institution, "theme": theme, "status": status}
    return followup.Filters.from_query({k: str(v) for k, v in given.items() if v is not None})


async def _follow_up(table_ids: list[int], filters: followup.Filters) -> FollowUpOut:
    found = await followup.follow_up(table_ids, filters, "")  # titles as written
    return FollowUpOut(
        counts=found.counts,
        overdue=[_overdue(row) for row in await followup.overdue(table_ids)],
        page=found.page.number,
        pages=found.page.count,
        total=found.page.total,
        items=[_sent(row) for row in found.page.items],
    )


def _overdue(row: dict[str, Any]) -> OverdueOut:
    return OverdueOut(
        table=row["table_slug"],
        brief=row["brief_slug"],
        brief_title=row["brief_title"],
        institution_id=row["institution_id"],
        institution=row["institution_name"],
        service=row["institution_service"],
        sent_at=row["sent_at"],
        answer_due_on=row["due_on"],
        days_late=row["days_late"],
    )


def _sent(row: dict[str, Any]) -> SentProposalOut:
    return SentProposalOut(
        proposal_id=row["proposal_id"],
        title=row["title"],
        theme=row["theme"],
        status=row["status"],
        table=row["table_slug"],
        brief=row["brief_slug"],
        brief_title=row["brief_title"],
        brief_url=absolute_url(f"/briefs/{row['brief_slug']}"),
        version=row["version"],
        sent_at=row["sent_at"],
        days_waiting=row["days_waiting"],
        addressees=[
            AddresseeOut(
                institution_id=addressee["id"],
                institution=addressee["name"],
                service=addressee["service"],
                sent_at=addressee["sent_at"],
                answer_due_on=addressee["due_on"],
                overdue=addressee["overdue"],
                answers=[
                    AnswerOut(
                        received_on=answer["received_on"],
                        summary=answer["summary"],
                        commitments=answer["commitments"],
                        mentions=answer["mentions"],
                        moved_to=answer["moved_to"],
                        note=answer["note"],
                    )
                    for answer in addressee["answers"]
                ],
            )
            for addressee in row["addressees"]
        ],
    )


@get("/tables/{slug:str}/follow-up")
async def table_follow_up(
    slug: Slug,
    page: PageNumber = None,
    institution: InstitutionId = None,
    theme: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> FollowUpOut:
    """What the table sent to institutions, 50 a page, newest first: to whom, when, what they
    answered and committed to. Filters: institution (id), theme, status."""
    table = await tables.get_table(slug)
    return await _follow_up([table["id"]], _filters(page, institution, theme, status))


@get("/organisations/{slug:str}/follow-up")
async def organisation_follow_up(
    slug: Slug,
    page: PageNumber = None,
    institution: InstitutionId = None,
    theme: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> FollowUpOut:
    """The same across every table of the organisation."""
    organisation = await tables.get_organisation(slug)
    rows = await Table.select(Table.id).where(Table.organisation == organisation["id"])
    return await _follow_up([row["id"] for row in rows], _filters(page, institution, theme, status))


router = Router(
    path="/api/v1",
    route_handlers=[
        list_tables,
        table_proposals,
        vote_result,
        table_follow_up,
        organisation_follow_up,
    ],
    tags=["open data"],
)
