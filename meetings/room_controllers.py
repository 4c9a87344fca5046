"""Voting in the room, page by page: the facilitators' room page (paper handed out, counts,
show of hands), the double entry of a count, and the shared tablet's own pages."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from meetings import room
from proposals import media
from proposals.themes import THEMES
from tables import services as tables
from translations import services as content
from voix import crypto, i18n
from voix.forms import FormErrors, Message, UserError
from voix.i18n import N_
from voix.permissions import Principal, require
from voix.settings import get_settings
from voix.web import SESSION_COOKIE, ObjectId, form_data, page, redirect
from votes import services as votes
from votes.models import OPEN
from votes.scales import MAJORITY_JUDGMENT, METHOD_LABELS

CHANNEL_LABELS = {
    "online": N_("online"),
    "tablet": N_("on the tablet"),
    "paper": N_("on paper"),
    "hands": N_("by show of hands"),
}


def _private(response: Template) -> Template:
    """Never kept by a browser or proxy: Back or the history bring nothing of it up again."""
    response.headers["Cache-Control"] = "no-store"
    return response


async def _managed(principal: Principal, vote_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    vote, table = await votes.get_with_table(vote_id)
    require(principal, "votes.manage", tables.scope_of(table))
    return vote, table


# The facilitators' room page


@get("/votes/{vote_id:int}/room", name="vote_room")
async def room_page(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template:
    vote, table = await _managed(principal, vote_id)
    return await _room_page(request, principal, vote, table)


async def _room_page(
    request: Request,
    principal: Principal,
    vote: dict[str, Any],
    table: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    meetings = await votes.meetings_holding(vote["id"])
    meeting = await room.room_meeting(vote) if meetings else None
    if meeting is not None:
        meeting = dict(meeting)
        await content.apply("meeting", [meeting], i18n.current_language.get())
    people = await room.present(vote) if meetings else []
    (shown,) = await votes.with_results([dict(vote)])
    await content.apply("vote", [shown], i18n.current_language.get())
    return _private(
        page(
            request,
            "meetings/room/room.html",
            status_code=status_code,
            vote=shown,
            table=table,
            meeting=meeting,
            people=people,
            waiting=[p for p in people if p["channel"] is None],
            counts=await room.counts_of(vote["id"]),
            channels=(await room.channel_counts([vote["id"]]))[vote["id"]],
            channel_labels=CHANNEL_LABELS,
            meeting_languages=[
                code
                for code in (meeting or {}).get("languages", "").split()
                if code in i18n.LANGUAGES
            ]
            or [i18n.DEFAULT_LANGUAGE],
            method_labels=METHOD_LABELS,
            **context,
        )
    )


@post("/votes/{vote_id:int}/room/paper", name="vote_room_paper")
async def hand_out_paper(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    data = await form_data(request, "person")
    _, table = await votes.get_with_table(vote_id)
    await room.hand_out_paper(principal, table, vote_id, data["person"])
    return redirect(f"/votes/{vote_id}/room#paper")


@post("/votes/{vote_id:int}/room/batches", name="vote_room_batch")
async def open_batch(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    await form_data(request)
    _, table = await votes.get_with_table(vote_id)
    count_id = await room.open_paper_batch(principal, table, vote_id)
    return redirect(f"/votes/{vote_id}/room/counts/{count_id}")


@post("/votes/{vote_id:int}/room/hands", name="vote_room_hands")
async def start_hands(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    await form_data(request)
    _, table = await votes.get_with_table(vote_id)
    count_id = await room.start_hands(principal, table, vote_id)
    return redirect(f"/votes/{vote_id}/room/counts/{count_id}")


# A count, entered twice


def _line_labels(
    vote: dict[str, Any], vote_options: list[dict[str, Any]], kind: str
) -> list[dict[str, Any]]:
    """Each line of the count's form with what it asks, translated."""
    lines = []
    for name, option, grade in room.count_lines(vote, vote_options, kind):
        if option is None:
            label = {"ballots": room.BALLOTS_LINE, "blank": room.BLANK_LINE}.get(
                name, room.SPOILT_LINE
            )
            lines.append(
                {"name": name, "option": None, "grade": None, "label": i18n.gettext(label)}
            )
        else:
            lines.append({"name": name, "option": option, "grade": grade, "label": ""})
    return lines


async def _count_page(
    request: Request,
    principal: Principal,
    vote_id: int,
    count_id: int,
    status_code: int = 200,
    **context: Any,
) -> Template:
    vote, table = await _managed(principal, vote_id)
    count = await room.get_count(vote_id, count_id)
    (shown,) = await votes.with_results([dict(vote)])
    await content.apply("vote", [shown], i18n.current_language.get())
    state = await room.count_state(count, principal)
    values = context.pop("values", None)
    if values is None and state["mine"]:
        values = _as_values(state["mine"])
    return _private(
        page(
            request,
            "meetings/room/count.html",
            status_code=status_code,
            vote=shown,
            table=table,
            count=count,
            state=state,
            lines=_line_labels(shown, shown["options"], count["kind"]),
            values=values or {},
            handed=(await room.channel_counts([vote_id]))[vote_id].get("handed", 0),
            **context,
        )
    )


def _as_values(figures: dict[str, Any]) -> dict[str, str]:
    values = {name: str(figures[name]) for name in ("ballots", "blank", "spoilt")}
    for key, counted in figures["options"].items():
        if isinstance(counted, int):
            values[f"o{key}"] = str(counted)
        else:
            values.update({f"o{key}-g{g}": str(n) for g, n in enumerate(counted)})
    return values


@get("/votes/{vote_id:int}/room/counts/{count_id:int}", name="vote_room_count")
async def count_page(
    request: Request,
    principal: NamedDependency[Principal],
    vote_id: ObjectId,
    count_id: ObjectId,
) -> Template:
    return await _count_page(request, principal, vote_id, count_id)


@post("/votes/{vote_id:int}/room/counts/{count_id:int}", name="vote_room_count_enter")
async def enter_count(
    request: Request,
    principal: NamedDependency[Principal],
    vote_id: ObjectId,
    count_id: ObjectId,
) -> Template | Redirect:
    data = await form_data(request)
    _, table = await votes.get_with_table(vote_id)
    try:
        await room.enter_count(principal, table, vote_id, count_id, data)
    except FormErrors as invalid:
        return await _count_page(
            request, principal, vote_id, count_id, 400, errors=invalid.errors, values=data
        )
    except UserError as refused:
        if refused.status_code not in (400, 409):
            raise
        return await _count_page(
            request, principal, vote_id, count_id, 400, refusal=refused.message, values=data
        )
    return redirect(f"/votes/{vote_id}/room/counts/{count_id}")


# The shared tablet


@post("/votes/{vote_id:int}/tablet/start", name="vote_tablet_start")
async def start_tablet(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    vote, table = await _managed(principal, vote_id)
    try:
        await room.start_tablet(
            principal,
            table,
            vote_id,
            request.cookies.get(SESSION_COOKIE),
            code=str(data.get("code") or ""),
            pin=str(data.get("pin") or "").strip(),
        )
    except UserError as refused:
        if refused.status_code not in (400, 409):
            raise
        field = "pin" if refused.message.msgid == room.PIN_FORMAT else "code"
        return await _room_page(
            request, principal, vote, table, 400, errors={field: refused.message}
        )
    return redirect(f"/votes/{vote_id}/tablet")


async def _tablet(request: Request, principal: Principal, vote_id: int) -> dict[str, Any] | None:
    """This session's tablet, if it is the tablet of this vote."""
    if principal.tablet_vote != vote_id:
        return None
    return await room.tablet_of(request.cookies.get(SESSION_COOKIE))


async def _tablet_list(
    request: Request,
    vote: dict[str, Any],
    table: dict[str, Any],
    tablet: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    """Where the tablet rests between voters: locked (the facilitator's PIN, in the last
    voter's language), or, unlocked, the people present who may still vote, by name."""
    query = str(request.query_params.get("q") or "")[:80].strip()
    people: list[dict[str, Any]] = []
    if not tablet["locked"]:
        people = [p for p in await room.present(vote) if p["channel"] is None]
        if query:
            people = [p for p in people if query.casefold() in p["name"].casefold()]
    elif tablet["language"]:
        i18n.current_language.set(tablet["language"])
    vote = dict(vote)
    await content.apply("vote", [vote], i18n.current_language.get())
    return _private(
        page(
            request,
            "meetings/room/tablet_list.html",
            status_code=status_code,
            block="names" if request.headers.get("hx-request") and not tablet["locked"] else None,
            vote=vote,
            table=table,
            tablet=tablet,
            people=people,
            query=query,
            voted=await votes.turnout([vote["id"]]),
            **context,
        )
    )


@get("/votes/{vote_id:int}/tablet", name="vote_tablet")
async def tablet_list(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    """Showing the list takes the tablet back from whoever held it: their ballot can no
    longer be sent, and the names wait for the facilitator's PIN."""
    vote, table = await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is None:
        return redirect(f"/votes/{vote_id}/room")
    await room.release(tablet)
    response = await _tablet_list(request, vote, table, tablet)
    # A receipt not shown (the thank-you screen skipped) is not left for the next voter.
    response.cookies.append(_receipt_cookie(vote_id, "", 0))
    return response


async def _facilitator_step(
    request: Request,
    principal: Principal,
    vote_id: int,
    *,
    field: str,
    act: Callable[[dict[str, Any], str], Awaitable[None]],
    then: str,
) -> Template | Redirect:
    """A facilitator's step on the tablet (their PIN, their code): done, on to `then`;
    refused, the tablet's list again with what was wrong."""
    data = await form_data(request)
    vote, table = await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is None:
        return redirect(f"/votes/{vote_id}/room")
    try:
        await act(tablet, str(data.get(field) or "").strip())
    except UserError as refused:
        if refused.status_code != 400:
            raise
        return await _tablet_list(
            request, vote, table, tablet, 400, errors={field: refused.message}
        )
    return redirect(then)


@post("/votes/{vote_id:int}/tablet/unlock", name="vote_tablet_unlock")
async def tablet_unlock(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    return await _facilitator_step(
        request,
        principal,
        vote_id,
        field="pin",
        act=room.unlock,
        then=f"/votes/{vote_id}/tablet",
    )


@post("/votes/{vote_id:int}/tablet/hand", name="vote_tablet_hand")
async def tablet_hand(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    data = await form_data(request)
    await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is None:
        raise NotFoundException()
    await room.hand_over(principal, tablet, str(data.get("person") or "")[:100])
    response = redirect(f"/votes/{vote_id}/tablet/ballot")
    response.cookies.append(_receipt_cookie(vote_id, "", 0))
    return response


async def _ballot_page(
    request: Request,
    vote: dict[str, Any],
    table: dict[str, Any],
    tablet: dict[str, Any],
    status_code: int = 200,
    **context: Any,
) -> Template:
    i18n.current_language.set(tablet["language"] or i18n.DEFAULT_LANGUAGE)
    (shown,) = await votes.with_results([dict(vote)])
    await content.apply("vote", [shown], i18n.current_language.get())
    proposal_ids = [o["proposal"] for o in shown["options"] if o["proposal"]]
    return _private(
        page(
            request,
            "meetings/room/tablet_ballot.html",
            status_code=status_code,
            vote=shown,
            table=table,
            tablet=tablet,
            themes=THEMES,
            media=await media.for_proposals(proposal_ids),
            **context,
        )
    )


@get("/votes/{vote_id:int}/tablet/ballot", name="vote_tablet_ballot")
async def tablet_ballot(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    vote, table = await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is None or not room.handed(tablet) or vote["status"] != OPEN:
        return redirect(f"/votes/{vote_id}/tablet")
    return await _ballot_page(request, vote, table, tablet)


@post("/votes/{vote_id:int}/tablet/language", name="vote_tablet_language")
async def tablet_language(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Redirect:
    data = await form_data(request)
    await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is not None:
        await room.set_language(tablet, str(data.get("language") or ""))
    return redirect(f"/votes/{vote_id}/tablet/ballot")


@post("/votes/{vote_id:int}/tablet/ballot/review", name="vote_tablet_review")
async def tablet_review(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    """The voter's look at their ballot before it is sent, as online (votes/review.html): the
    choices travel in the form only, with the handover code, and the page is not kept. A
    review of someone else's turn sends nothing: the tablet is taken back first."""
    data = await form_data(request, "approve")
    vote, table = await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is None or not room.handed(tablet) or vote["status"] != OPEN:
        return redirect(f"/votes/{vote_id}/tablet")
    if not secrets.compare_digest(str(tablet["handover"]), str(data.get("handover") or "-")):
        return await _tablet_list(
            request, vote, table, tablet, 409, refusal=Message(room.HANDOVER_GONE)
        )
    if data.get("edit") == "1":
        return await _ballot_page(request, vote, table, tablet, values=data)
    (shown,) = await votes.with_results([dict(vote)])
    try:
        marks = votes.read_marks(vote, shown["options"], data)
    except FormErrors as invalid:
        return await _ballot_page(
            request, vote, table, tablet, 400, errors=invalid.errors, values=data
        )
    if vote["method"] == MAJORITY_JUDGMENT:
        offered = {o["id"] for o in shown["options"] if not o["withdrawn"]}
        if ungraded := len(offered - {option for option, _ in marks}):
            # As online: the warning beside the ungraded proposals is the step before sending.
            return await _ballot_page(request, vote, table, tablet, ungraded=ungraded, values=data)
    i18n.current_language.set(tablet["language"] or i18n.DEFAULT_LANGUAGE)
    await content.apply("vote", [shown], i18n.current_language.get())
    return _private(
        page(
            request,
            "meetings/room/tablet_review.html",
            vote=shown,
            table=table,
            tablet=tablet,
            marks=dict(marks),
            values=data,
        )
    )


RECEIPT_COOKIE = "voix_tablet_receipt"
RECEIPT_PURPOSE = "tablet-receipt"  # voix.crypto purpose
RECEIPT_SECONDS = 120


def _receipt_cookie(vote_id: int, value: str, max_age: int) -> Cookie:
    """The receipt travels to the "thank you" screen in the tablet's browser, encrypted, for
    two minutes: the database never holds it beside the person who just voted."""
    return Cookie(
        key=RECEIPT_COOKIE,
        value=value,
        max_age=max_age,
        path=f"/votes/{vote_id}/tablet/done",
        httponly=True,
        samesite="strict",
        secure=get_settings().production,
    )


@post("/votes/{vote_id:int}/tablet/ballot", name="vote_tablet_cast")
async def tablet_cast(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request, "approve")
    vote, table = await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    if tablet is None or not room.handed(tablet):
        return redirect(f"/votes/{vote_id}/tablet")
    (shown,) = await votes.with_results([dict(vote)])
    try:
        marks = votes.read_marks(vote, shown["options"], data)
        if vote["method"] == MAJORITY_JUDGMENT and data.get("confirm") != "1":
            offered = {o["id"] for o in shown["options"] if not o["withdrawn"]}
            ungraded = len(offered - {option for option, _ in marks})
            if ungraded:
                return await _ballot_page(
                    request, vote, table, tablet, ungraded=ungraded, values=data
                )
    except FormErrors as invalid:
        return await _ballot_page(
            request, vote, table, tablet, 400, errors=invalid.errors, values=data
        )
    try:
        receipt = await room.cast_on_tablet(
            principal, table, tablet, marks, str(data.get("handover") or "")
        )
    except UserError as refused:
        if refused.status_code in (401, 404):
            raise
        # Said on the tablet, in the voter's language, which then waits for the facilitator.
        tablet = await _tablet(request, principal, vote_id) or tablet
        return await _tablet_list(
            request, vote, table, tablet, refused.status_code, refusal=refused.message
        )
    response = redirect(f"/votes/{vote_id}/tablet/done")
    sealed = crypto.encrypt(f"{tablet['id']}:{receipt}", RECEIPT_PURPOSE)
    response.cookies.append(_receipt_cookie(vote_id, sealed, RECEIPT_SECONDS))
    return response


def _receipt_from(request: Request, tablet: dict[str, Any]) -> str:
    sealed = request.cookies.get(RECEIPT_COOKIE) or ""
    try:
        opened = crypto.decrypt(sealed, RECEIPT_PURPOSE, ttl=RECEIPT_SECONDS)
    except ValueError:
        return ""
    tablet_id, _, receipt = opened.partition(":")
    return receipt if tablet_id == str(tablet["id"]) else ""


@get("/votes/{vote_id:int}/tablet/done", name="vote_tablet_done")
async def tablet_done(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    """Thank you, and the receipt once: reloading or coming back finds the tablet locked."""
    vote, table = await _managed(principal, vote_id)
    tablet = await _tablet(request, principal, vote_id)
    receipt = _receipt_from(request, tablet) if tablet else ""
    if not receipt or tablet is None:
        response: Template | Redirect = redirect(f"/votes/{vote_id}/tablet")
    else:
        i18n.current_language.set(tablet["language"] or i18n.DEFAULT_LANGUAGE)
        response = _private(
            page(
                request,
                "meetings/room/tablet_done.html",
                vote=vote,
                table=table,
                receipt=receipt,
                proof=votes.RECEIPT_PROOFS[vote["receipts_prove"]],
            )
        )
    response.cookies.append(_receipt_cookie(vote_id, "", 0))
    return response


@post("/votes/{vote_id:int}/tablet/quit", name="vote_tablet_quit")
async def tablet_quit(
    request: Request, principal: NamedDependency[Principal], vote_id: ObjectId
) -> Template | Redirect:
    async def quit_(tablet: dict[str, Any], code: str) -> None:
        await room.quit_tablet(principal, tablet, code)

    return await _facilitator_step(
        request, principal, vote_id, field="code", act=quit_, then=f"/votes/{vote_id}/room"
    )


@post("/votes/{vote_id:int}/room/counts/{count_id:int}/discard", name="vote_room_count_discard")
async def discard_count(
    request: Request,
    principal: NamedDependency[Principal],
    vote_id: ObjectId,
    count_id: ObjectId,
) -> Redirect:
    await form_data(request)
    _, table = await votes.get_with_table(vote_id)
    await room.discard_count(principal, table, vote_id, count_id)
    return redirect(f"/votes/{vote_id}/room")


ROUTES = [
    room_page,
    hand_out_paper,
    open_batch,
    start_hands,
    count_page,
    enter_count,
    discard_count,
    start_tablet,
    tablet_list,
    tablet_unlock,
    tablet_hand,
    tablet_ballot,
    tablet_language,
    tablet_review,
    tablet_cast,
    tablet_done,
    tablet_quit,
]
