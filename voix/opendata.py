"""The public JSON API: tables, their proposals, and the results of closed votes.

Nothing personal is published: proposals carry no author, results no voter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Router, get

from meetings.room import channel_counts
from proposals import services as proposals
from tables import services as tables
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


router = Router(
    path="/api/v1", route_handlers=[list_tables, table_proposals, vote_result], tags=["open data"]
)
