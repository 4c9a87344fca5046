"""Vote pages: open, cast, close, results, the public ballot box, and the table's decision."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Response, Stream, Template

from exports.pdf import PAPER_SIZES, render_paper_ballots
from meetings import room
from meetings.services import meetings_showing_vote
from proposals import media
from proposals import services as proposals
from proposals.controllers import proposal_page
from proposals.themes import THEMES
from tables import services as tables
from translations import services as content
from voix import i18n, live, workers
from voix.forms import NUMBER_RANGE, UNKNOWN_CHOICE, FormErrors, UserError, parse_int
from voix.permissions import Principal, can, require
from voix.web import ObjectId, Slug, form_data, page, redirect
from votes import box, closing, decisions, services, views
from votes.models import CLOSED, OPEN
from votes.scales import MAJORITY_JUDGMENT, METHOD_LABELS, SCALES, THRESHOLD_LABELS

logger = logging.getLogger("voix")


async def _vote_page(
    request: Request,
    principal: NamedDependency[Principal],
    vote: dict,
    status_code: int = 200,
    *,
    table: dict | None = None,
    **context: Any,
) -> Template:
    """The vote's page. `table` spares reading it again when the caller has just read it."""
    if table is None or table["id"] != vote["table"]:
        table = await tables.get_table_by_id(vote["table"])
    (vote,) = await services.with_results([vote])
    shown = await content.on_its_page("vote", vote, request.query_params)
    proposal_ids = [o["proposal"] for o in vote["options"] if o["proposal"]]
    scope = tables.scope_of(table)
    ballot_form = vote["status"] == OPEN  # its media and summaries are read for it only
    return page(
        request,
        "votes/vote.html",
        status_code=status_code,
        vote=vote,
        table=table,
        scope=scope,
        themes=THEMES,
        media=await media.for_proposals(proposal_ids) if ballot_form else {},
        summaries=await services.summaries(proposal_ids, i18n.current_language.get())
        if ballot_form
        else {},
        voted=vote["id"] in await services.voted_in(principal.user_id, [vote["id"]]),
        my_channel=await services.on_roll(vote["id"], f"user:{principal.user_id}")
        if principal.authenticated
        else None,
        chart=views.chart_for_screens(vote) if vote["status"] == CLOSED else "",
        # Only a closed vote has a result a decision can go against.
        overridden=views.overridden(vote, await decisions.latest(proposal_ids))
        if vote["status"] == CLOSED
        else [],
        proof=services.RECEIPT_PROOFS[vote["receipts_prove"]],
        channels=(await room.channel_counts([vote["id"]]))[vote["id"]],
        # Shown to those who manage the table only.
        held=can(principal, "votes.manage", scope)
        and bool(await services.meetings_holding(vote["id"])),
        # The ballot form's own code (votes.services.record_ballot), unless it is the same
        # ballot coming back (a confirmation, "change my choices"), which keeps its code.
        submission=services.new_submission(),
        method_labels=METHOD_LABELS,
        threshold_labels=THRESHOLD_LABELS,
        shown=shown,
        **context,
    )


@get("/tables/{slug:str}/votes/new", name="vote_new")
async def new_vote(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    """Choose the proposals of a vote from the table's list, with the list's filters."""
    table = await tables.get_table(slug)
    values: dict[str, Any] = dict(request.query_params)
    values["proposals"] = request.query_params.getall("proposals", [])
    return await _new_vote_page(request, principal, table, values)


async def _new_vote_page(
    request: Request,
    principal: Principal,
    table: dict[str, Any],
    values: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    require(principal, "votes.manage", tables.scope_of(table))
    filters = proposals.Filters.from_query(values)
    chosen = services.chosen_proposals(values)
    return page(
        request,
        "votes/new.html",
        status_code=status_code,
        table=table,
        filters=filters,
        candidates=await proposals.votable(table["id"], filters, chosen),
        meetings=await services.meetings_for_opening(table["id"]),
        chosen=chosen,
        themes=THEMES,
        scales=SCALES,
        method_labels=METHOD_LABELS,
        threshold_labels=THRESHOLD_LABELS,
        values=values,
        **context,
    )


@post("/tables/{slug:str}/votes", name="vote_open_several")
async def open_several(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    data = await form_data(request, "proposals")
    table = await tables.get_table(slug)
    data.setdefault("method", MAJORITY_JUDGMENT)
    try:
        vote_id = await services.open_vote(principal, table, services.chosen_proposals(data), data)
    except FormErrors as invalid:
        return await _new_vote_page(
            request, principal, table, data, status_code=400, errors=invalid.errors
        )
    return redirect(f"/votes/{vote_id}", flash="vote_opened")


@post("/proposals/{proposal_id:int}/votes", name="vote_open")
async def open_vote(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    _, table = await proposals.get_with_table(proposal_id)
    data["method"] = "yes_no_abstain"
    try:
        vote_id = await services.open_vote(principal, table, [proposal_id], data)
    except FormErrors as invalid:
        return await proposal_page(
            request, principal, proposal_id, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/votes/{vote_id}", flash="vote_opened")


@get("/votes/{vote_id:int}", name="vote")
async def vote_page(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    vote = await services.get(vote_id)
    if vote["status"] == CLOSED and not vote["box_sha256"]:
        # Closed by its closing time, by whoever read it first: the fingerprint comes now.
        vote["box_sha256"] = await box.fingerprint(vote_id)
    return await _vote_page(request, principal, vote)


async def _tell_rooms(request: Request, vote_id: int, revision: int | None = None) -> None:
    """The screens of the meetings that have this vote on their agenda refresh its count."""
    if rooms := await meetings_showing_vote(vote_id, revision):
        live.publish(request.app, "votes", vote=vote_id, meetings=rooms)


def _private(response: Template) -> Template:
    """A page that shows someone's choices or receipt: never kept by a browser or a proxy,
    so Back on a shared phone or tablet cannot bring it up again."""
    response.headers["Cache-Control"] = "no-store"
    return response


@post("/votes/{vote_id:int}/ballot", name="vote_cast")
async def cast(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    data = await form_data(request, "approve")
    try:
        return await _cast(request, principal, vote_id, data, kept=True)
    except services.Stale:
        # Nothing was written: the table changed since this process kept its vote, or the
        # answer would not be a receipt and may rest on what was kept (the marks' errors, the
        # scope). Read as they stand now, the vote and its options decide again. Refusals
        # read from the rows themselves (on the roll already, not in the electorate) are
        # not asked twice.
        return await _cast(request, principal, vote_id, data, kept=False)


async def _cast(
    request: Request, principal: Principal, vote_id: int, data: dict[str, Any], *, kept: bool
) -> Template:
    # Kept: the vote as this process last read it, checked when the ballot is written
    # (services.get_for_ballot); a ballot then costs two queries, the session's and its own.
    vote, table = await services.get_for_ballot(vote_id, kept=kept)
    # The options, read once: for the marks, and for the page that shows the receipt.
    shown = await services.ballot_options(vote, table)
    try:
        if vote["status"] == OPEN and vote["method"] == MAJORITY_JUDGMENT:
            # Without JavaScript the page cannot count ungraded options as the voter goes:
            # it says so here, before anything is stored, and asks again.
            marks = services.read_marks(vote, shown["options"], data)
            offered = {o["id"] for o in shown["options"] if not o["withdrawn"]}
            ungraded = len(offered - {option for option, _ in marks})
            if ungraded and data.get("confirm") != "1":
                if kept:
                    raise services.Stale()  # this page from the vote as it stands
                return _private(
                    await _vote_page(
                        request, principal, vote, table=table, ungraded=ungraded, values=data
                    )
                )
        receipt = await services.cast(
            principal,
            table,
            vote_id,
            data,
            vote=vote,
            vote_options=shown["options"],
            revision=table.get("revision") if kept else None,
        )
    except FormErrors as invalid:
        if kept:
            raise services.Stale() from None  # the errors from the vote as it stands
        return _private(
            await _vote_page(
                request,
                principal,
                vote,
                status_code=400,
                table=table,
                errors=invalid.errors,
                values=data,
            )
        )
    return _private(await _after_casting(request, principal, vote, table, receipt))


async def _after_casting(
    request: Request,
    principal: Principal,
    vote: dict,
    table: dict,
    receipt: str,
) -> Template:
    """The ballot is stored: from here on nothing may answer with an error, or the voter would
    believe it lost (sending the same form again gets the same receipt, but they should not
    have to). The rooms' count and the full page are read if the database answers; if not,
    the receipt alone, from what the casting returned."""
    try:
        await _tell_rooms(request, vote["id"], table.get("revision"))
    except Exception:  # a screen refreshes later; the voter's answer comes first
        logger.warning("vote %s: rooms not told of a ballot", vote["id"], exc_info=True)
    # Shown once: nothing stored links this receipt to the voter, and it is in no URL. The
    # answer is the receipt and the way back to the vote, from what the casting returned: no
    # read may fail it, and a vote's busiest minute is spent storing ballots, not pages.
    return page(
        request,
        "votes/receipt.html",
        vote=vote,
        table=table,
        receipt=receipt,
        proof=services.RECEIPT_PROOFS[vote["receipts_prove"]],
    )


@post("/votes/{vote_id:int}/ballot/review", name="vote_review")
async def review(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    """One look at the ballot before it is sent for good: a page of its own, so it works
    without JavaScript; the choices travel in the form, never in a URL, and the page is not
    kept by the browser."""
    data = await form_data(request, "approve")
    vote, table = await services.get_with_table(vote_id)
    require(principal, "votes.cast", tables.scope_of(table))
    if vote["status"] != OPEN:
        raise UserError(services.VOTE_NOT_OPEN)
    if data.get("edit") == "1":
        return _private(await _vote_page(request, principal, vote, values=data))
    (shown,) = await services.with_results([dict(vote)])
    await content.apply("vote", [shown], i18n.current_language.get())
    try:
        marks = services.read_marks(vote, shown["options"], data)
    except FormErrors as invalid:
        return _private(
            await _vote_page(
                request, principal, vote, status_code=400, errors=invalid.errors, values=data
            )
        )
    if vote["method"] == MAJORITY_JUDGMENT:
        offered = {o["id"] for o in shown["options"] if not o["withdrawn"]}
        if ungraded := len(offered - {option for option, _ in marks}):
            # Proposals left ungraded: the page says so beside them, and that warning is the
            # step before sending (its button sends the ballot as it is).
            return _private(
                await _vote_page(request, principal, vote, ungraded=ungraded, values=data)
            )
    return _private(
        page(
            request,
            "votes/review.html",
            vote=shown,
            table=table,
            marks=dict(marks),
            values=data,
            method_labels=METHOD_LABELS,
        )
    )


@get("/votes/{vote_id:int}/close", name="vote_close_confirm")
async def close_confirm(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    """Closing cannot be taken back: the vote page's button leads here, a page saying what
    the closing does (and what stops it), whose POST button closes. Asking changes nothing."""
    vote, table = await services.get_with_table(vote_id)
    require(principal, "votes.manage", tables.scope_of(table))
    (vote,) = await services.with_results([vote])
    await content.apply("vote", [vote], i18n.current_language.get())
    channels = (await room.channel_counts([vote_id]))[vote_id]
    # Paper handed out and not in a recorded batch: once closed, nothing counts it any more.
    uncounted = channels.get("handed", 0) - channels.get("paper", 0) - channels.get("spoilt", 0)
    return page(
        request,
        "votes/close.html",
        vote=vote,
        table=table,
        possible=vote["status"] == OPEN,
        counts=await closing.pending_room_counts(vote_id),
        uncounted_paper=max(uncounted, 0),
        tablets=await room.tablets_of_vote(vote_id),
    )


@post("/votes/{vote_id:int}/close", name="vote_close")
async def close(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    await form_data(request)
    _, table = await services.get_with_table(vote_id)
    await closing.close_vote(principal, table, vote_id)
    await box.fingerprint(vote_id)
    await _tell_rooms(request, vote_id)
    return redirect(f"/votes/{vote_id}", flash="vote_closed")


@post("/votes/{vote_id:int}/receipt", name="vote_receipt_check")
async def check_receipt(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    """Found or not found: a POST, so the receipt is in no URL, history or log."""
    data = await form_data(request)
    vote = await services.get(vote_id)
    code = str(data.get("receipt") or "")[:40]
    found = await services.receipt_found(vote, code)
    return _private(
        await _vote_page(request, principal, vote, checked=found, values={"receipt": code})
    )


@get("/votes/{vote_id:int}/ballots.json", name="vote_ballots")
async def ballots(vote_id: ObjectId) -> Stream:
    """The public ballot box of a closed vote: the same bytes as `voix export ballots`."""
    vote = await services.get(vote_id)
    if vote["status"] != CLOSED:
        raise NotFoundException()
    await box.fingerprint(vote_id)
    return Stream(
        box.chunks(vote_id),
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="vote-{vote_id}-ballots.json"',
            "Cache-Control": "public, max-age=300",
        },
    )


PAPER_COPIES_MAX = 300


@get("/votes/{vote_id:int}/paper.pdf", name="vote_paper_ballots")
async def paper_ballots(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Response[bytes]:
    """Blank paper ballots of an open vote, for those who vote in the room without a phone."""
    vote, table = await services.get_with_table(vote_id)
    require(principal, "votes.manage", tables.scope_of(table))
    if vote["status"] != OPEN:
        raise UserError(services.VOTE_NOT_OPEN)
    query = request.query_params
    copies = parse_int(query.get("copies") or "1", min=1, max=PAPER_COPIES_MAX)
    if copies is None:
        raise UserError(NUMBER_RANGE, status_code=400, min=1, max=PAPER_COPIES_MAX)
    size = query.get("format") or "a5"
    lang = query.get("lang") or i18n.current_language.get()
    if size not in PAPER_SIZES or lang not in i18n.LANGUAGES:
        raise UserError(UNKNOWN_CHOICE, status_code=400)
    (vote,) = await services.with_results([vote])
    await content.apply("vote", [vote], lang)
    pdf = await workers.run(render_paper_ballots, vote, table, copies=copies, size=size, lang=lang)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="bulletins-vote-{vote_id}-{size}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@post("/proposals/{proposal_id:int}/decision", name="proposal_decide")
async def decide(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    _, table = await proposals.get_with_table(proposal_id)
    try:
        await decisions.decide(principal, table, proposal_id, data)
    except FormErrors as invalid:
        return await proposal_page(
            request, principal, proposal_id, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/proposals/{proposal_id}", flash="decision_recorded")


ROUTES = [
    new_vote,
    open_several,
    open_vote,
    vote_page,
    cast,
    review,
    close_confirm,
    close,
    check_receipt,
    ballots,
    paper_ballots,
    decide,
]
