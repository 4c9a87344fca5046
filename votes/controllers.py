"""Vote pages: open, cast, close, and the table's decision."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from meetings.services import meetings_showing_vote
from proposals import services as proposals
from proposals.controllers import proposal_page
from tables import services as tables
from voix import live
from voix.forms import FormErrors
from voix.permissions import Principal
from voix.web import ObjectId, form_data, page, redirect
from votes import services
from votes.models import CHOICES


async def _vote_page(
    request: Request,
    principal: NamedDependency[Principal],
    vote: dict,
    status_code: int = 200,
    **context: Any,
) -> Template:
    table = await tables.get_table_by_id(vote["table"])
    return page(
        request,
        "votes/vote.html",
        status_code=status_code,
        vote=vote,
        table=table,
        scope=tables.scope_of(table),
        choices=CHOICES,
        tally=(await services.tallies([vote["id"]]))[vote["id"]],
        turnout=(await services.turnout([vote["id"]]))[vote["id"]],
        voted=vote["id"] in await services.voted_in(principal.user_id, [vote["id"]]),
        **context,
    )


@post("/proposals/{proposal_id:int}/votes", name="vote_open")
async def open_vote(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    _, table = await proposals.get_with_table(proposal_id)
    try:
        vote_id = await services.open_vote(
            principal, table, proposal_id, str(data.get("question") or "")
        )
    except FormErrors as invalid:
        return await proposal_page(
            request, principal, proposal_id, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/votes/{vote_id}", flash="vote_opened")


@get("/votes/{vote_id:int}", name="vote")
async def vote_page(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    return await _vote_page(request, principal, await services.get(vote_id))


async def _tell_rooms(request: Request, vote_id: int) -> None:
    """The screens of the meetings that have this vote on their agenda refresh its count."""
    if rooms := await meetings_showing_vote(vote_id):
        live.publish(request.app, "votes", vote=vote_id, meetings=rooms)


@post("/votes/{vote_id:int}/ballot", name="vote_cast")
async def cast(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    data = await form_data(request)
    vote, table = await services.get_with_table(vote_id)
    try:
        receipt = await services.cast(principal, table, vote_id, str(data.get("choice") or ""))
    except FormErrors as invalid:
        return await _vote_page(request, principal, vote, status_code=400, errors=invalid.errors)
    await _tell_rooms(request, vote_id)
    # Shown once: nothing stored links this receipt to the voter.
    return await _vote_page(request, principal, vote, receipt=receipt)


@post("/votes/{vote_id:int}/close", name="vote_close")
async def close(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    await form_data(request)
    _, table = await services.get_with_table(vote_id)
    await services.close_vote(principal, table, vote_id)
    await _tell_rooms(request, vote_id)
    return redirect(f"/votes/{vote_id}", flash="vote_closed")


@post("/proposals/{proposal_id:int}/decision", name="proposal_decide")
async def decide(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    _, table = await proposals.get_with_table(proposal_id)
    try:
        await services.decide(principal, table, proposal_id, str(data.get("decision") or ""))
    except FormErrors as invalid:
        return await proposal_page(
            request, principal, proposal_id, status_code=400, errors=invalid.errors
        )
    return redirect(f"/proposals/{proposal_id}", flash="decision_recorded")


ROUTES = [open_vote, vote_page, cast, close, decide]
