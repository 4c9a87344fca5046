"""The public JSON API: tables, their proposals, and the results of closed votes.

Nothing personal is published: proposals carry no author, results no voter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Router, get

from proposals import services as proposals
from tables import services as tables
from voix.web import ObjectId, Slug
from votes import services as votes
from votes.models import CLOSED


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
class VoteResultOut:
    id: int
    question: str
    method: str
    status: str
    proposal_id: int | None
    ballots: int
    # Published once the vote is closed; an open vote shows only how many took part.
    counts: dict[str, int] | None


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
    vote = await votes.get(vote_id)
    tally = (await votes.tallies([vote_id]))[vote_id]
    turnout = (await votes.turnout([vote_id]))[vote_id]
    return VoteResultOut(
        id=vote["id"],
        question=vote["question"],
        method=vote["method"],
        status=vote["status"],
        proposal_id=vote["proposal"],
        ballots=turnout,
        counts=dict(tally) if vote["status"] == CLOSED else None,
    )


router = Router(
    path="/api/v1", route_handlers=[list_tables, table_proposals, vote_result], tags=["open data"]
)
