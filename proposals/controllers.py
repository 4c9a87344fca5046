"""Proposal pages: the form (for oneself or on a resident's behalf) and each proposal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from maps.interactive import page_policy_with_tiles
from maps.services import places_for_table
from notifications import controllers as notification_pages
from proposals import discussion, media, services
from proposals.themes import THEMES
from tables import services as tables
from tables.models import RESIDENT
from translations import services as content
from voix import cache, db
from voix.forms import FormErrors, UserError
from voix.i18n import current_language
from voix.middleware import CONTENT_SECURITY_POLICY
from voix.permissions import Principal, can, require
from voix.settings import get_settings
from voix.web import FORM_BODY_MAX, ObjectId, Slug, form_data, page, redirect
from votes import decisions
from votes import services as votes
from votes.scales import THRESHOLD_LABELS


async def _form_page(
    request: Request,
    principal: NamedDependency[Principal],
    table: dict,
    status_code: int = 200,
    **context: Any,
) -> Template:
    scope = tables.scope_of(table)
    on_behalf = can(principal, "proposals.create_on_behalf", scope)
    if not on_behalf:
        require(principal, "proposals.create", scope)
    settings = get_settings()
    response = page(
        request,
        "proposals/form.html",
        status_code=status_code,
        table=table,
        themes=THEMES,
        residents=await tables.residents(table["id"]) if on_behalf else [],
        places=await places_for_table(table["id"]),
        on_behalf=on_behalf,
        tiles_url=settings.tile_url,
        tiles_attribution=settings.tile_attribution,
        **context,
    )
    # The placing map shows tiles: this page alone lets them in.
    response.headers["content-security-policy"] = page_policy_with_tiles(
        CONTENT_SECURITY_POLICY, settings.tile_url
    )
    return response


@get("/tables/{slug:str}/proposals/new", name="proposal_new")
async def new(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    table = await tables.get_table(slug)
    values = {"language": current_language.get(), "theme": request.query_params.get("theme", "")}
    return await _form_page(request, principal, table, values=values)


@post(
    "/tables/{slug:str}/proposals",
    name="proposal_create",
    # The one form with files: a photo and a voice note at their largest, and the text.
    request_max_body_size=media.PHOTO_MAX_BYTES + media.VOICE_MAX_BYTES + FORM_BODY_MAX,
)
async def create(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    data = await form_data(request)
    try:
        # The files stay on disk: the workers read them there (proposals.media).
        async with media.received(data.get("photo"), data.get("voice")) as (photo, voice):
            proposal_id = await services.create(principal, table, data, photo=photo, voice=voice)
    except FormErrors as invalid:
        return await _form_page(
            request, principal, table, status_code=400, errors=invalid.errors, values=data
        )
    flash = "proposal_recorded" if "author" in data else "proposal_created"
    return redirect(f"/proposals/{proposal_id}", flash=flash)


@get("/proposals/{proposal_id:int}", name="proposal")
async def detail(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Template:
    return await proposal_page(request, principal, proposal_id)


async def proposal_page(
    request: Request, principal: Principal, proposal_id: int, status_code: int = 200, **context: Any
) -> Template:
    """The proposal, its votes, its discussion and, for facilitators, the forms acting on it."""
    proposal, table = await services.get_with_table(proposal_id)
    scope = tables.scope_of(table)
    moderator = can(principal, "proposals.moderate", scope)
    on_behalf = can(principal, "proposals.discuss_on_behalf", scope)
    if proposal["hidden_at"] and not moderator:
        # Only the reason: the template is not even given the title, text, media or comments.
        return page(
            request,
            "proposals/hidden.html",
            status_code=status_code,
            table=table,
            reason=proposal["hidden_reason"],
        )
    reader_language = current_language.get()
    public = await _public_part(proposal, table, reader_language)
    proposal_votes, voted = await votes.with_live_turnout(public["votes"], principal.user_id)
    supported, following = await notification_pages.proposal_reader(principal.user_id, proposal_id)
    return page(
        request,
        "proposals/detail.html",
        proposal=proposal,
        table=table,
        theme=THEMES.get(proposal["theme"]),
        votes=proposal_votes,
        decision=public["decision"],
        threshold_labels=THRESHOLD_LABELS,
        voted=voted,
        scope=scope,
        supports=public["supports"],
        supported=supported,
        following=following,
        comments=public["comments"],
        history=public["history"],
        transitions=discussion.TRANSITIONS.get(proposal["status"], ()),
        reports=await discussion.reports(proposal_id) if moderator else [],
        media=public["media"],
        translation=public["translation"],
        original=request.query_params.get("original") == "1",
        merge_candidates=await services.merge_candidates(proposal) if moderator else [],
        residents=await tables.residents(table["id"], RESIDENT) if on_behalf else [],
        vote_meetings=await votes.meetings_for_opening(table["id"])
        if can(principal, "votes.manage", scope)
        else [],
        status_code=status_code,
        **context,
    )


# What a proposal's page shows to everyone is kept (voix.cache) until its table's revision
# changes (tables/revision.py: comments, supports, votes, decisions, media and translations all
# change it), or PUBLIC_SECONDS pass (a vote's closing time).
PUBLIC_SECONDS = 60.0


async def _public_part(
    proposal: dict[str, Any], table: dict[str, Any], reader: str
) -> dict[str, Any]:
    key = ("proposal", proposal["id"], table["revision"], reader)
    return await cache.pages.get_or_build(
        key, lambda: _read_public_part(proposal["id"], reader), seconds=_public_seconds
    )


async def _read_public_part(proposal_id: int, reader: str) -> dict[str, Any]:
    proposal_votes = await votes.for_proposal(proposal_id)
    return {
        "votes": await content.apply_all("vote", await votes.with_results(proposal_votes), reader),
        "decision": (await decisions.latest([proposal_id])).get(proposal_id),
        "supports": (await discussion.support_counts([proposal_id]))[proposal_id],
        "comments": await discussion.comments(proposal_id),
        "history": await discussion.history(proposal_id),
        "media": await media.for_proposal(proposal_id),
        "translation": (await discussion.translations([proposal_id], reader)).get(proposal_id),
    }


def _public_seconds(found: dict[str, Any]) -> float:
    """PUBLIC_SECONDS, or until the first of its open votes closes."""
    closing = [
        (db.utc(v["closes_at"]) - datetime.now(UTC)).total_seconds()
        for v in found["votes"]
        if v["status"] == votes.OPEN and v["closes_at"]
    ]
    return max(0.0, min([PUBLIC_SECONDS, *closing]))


ROUTES = [new, create, detail]

Action = Annotated[str, PathParameter(pattern=r"^[a-z]{1,20}$")]

# The discussion: each form posts here, and comes back to the proposal.
DISCUSSION_ACTIONS: dict[str, Callable[..., Awaitable[None]]] = {
    "support": discussion.support,
    "withdraw": discussion.withdraw_support,
}
FORM_ACTIONS: dict[str, Callable[..., Awaitable[None]]] = {
    "comments": discussion.comment,
    "report": discussion.report,
    "moderation": discussion.hide,
    "status": discussion.change_status,
    "merge": discussion.merge,
    "transcription": discussion.transcribe,
    "translations": discussion.translate,
}
FLASHES = {
    "support": "supported",
    "withdraw": "support_withdrawn",
    "comments": "commented",
    "report": "reported",
    "moderation": "moderated",
    "status": "status_changed",
    "merge": "merged",
    "transcription": "transcribed",
    "translations": "translated",
}


@post("/proposals/{proposal_id:int}/support", name="proposal_support")
async def support(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId
) -> Response[bytes] | Redirect:
    """Back to the support block (#support), which the browser focuses. With htmx only that
    block is swapped; a refusal is not swapped in, so the page is loaded again as it is now."""
    data = await form_data(request)
    proposal, table = await services.get_with_table(proposal_id)
    action = "withdraw" if data.get("action") == "withdraw" else "support"
    try:
        await DISCUSSION_ACTIONS[action](principal, table, proposal)
    except (UserError, NotAuthorizedException, PermissionDeniedException):
        if not request.headers.get("hx-request"):
            raise
        return Response(b"", status_code=200, headers={"HX-Refresh": "true"})
    return redirect(f"/proposals/{proposal_id}#support", flash=FLASHES[action])


async def _form_refused(
    request: Request,
    principal: Principal,
    proposal_id: int,
    *,
    form: str,
    invalid: FormErrors,
    data: dict[str, Any],
) -> Template:
    """The proposal page again, the refused form's errors named after it (several forms share
    the page and their field names), what was typed kept."""
    return await proposal_page(
        request,
        principal,
        proposal_id,
        status_code=400,
        errors={f"{form}.{k}": v for k, v in invalid.errors.items()},
        values=data,
    )


@post("/proposals/{proposal_id:int}/{what:str}", name="proposal_discussion")
async def discuss(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId, what: Action
) -> Template | Redirect:
    if what not in FORM_ACTIONS:
        raise NotFoundException()
    data = await form_data(request)
    proposal, table = await services.get_with_table(proposal_id)
    try:
        await FORM_ACTIONS[what](principal, table, proposal, data)
    except FormErrors as invalid:
        return await _form_refused(
            request, principal, proposal_id, form=what, invalid=invalid, data=data
        )
    return redirect(f"/proposals/{proposal_id}", flash=FLASHES[what])


# A facilitator's forms for a resident who asked them: the resident's support, given or
# withdrawn, and their comment.
ON_BEHALF: dict[str, Callable[..., Awaitable[None]]] = {
    "support": discussion.support_on_behalf,
    "withdraw": discussion.withdraw_support_on_behalf,
    "comments": discussion.comment_on_behalf,
}
ON_BEHALF_FLASHES = {
    "support": "supported_on_behalf",
    "withdraw": "support_withdrawn_on_behalf",
    "comments": "commented_on_behalf",
}


@post("/proposals/{proposal_id:int}/on-behalf/{what:str}", name="proposal_on_behalf")
async def on_behalf(
    request: Request, principal: NamedDependency[Principal], proposal_id: ObjectId, what: Action
) -> Template | Redirect:
    if what not in ("support", "comments"):
        raise NotFoundException()
    data = await form_data(request)
    proposal, table = await services.get_with_table(proposal_id)
    # One form gives or withdraws the support, by the button pressed.
    action = "withdraw" if what == "support" and data.get("action") == "withdraw" else what
    try:
        await ON_BEHALF[action](principal, table, proposal, data)
    except FormErrors as invalid:
        form = f"behalf_{what}"
        return await _form_refused(
            request, principal, proposal_id, form=form, invalid=invalid, data=data
        )
    anchor = "support" if what == "support" else "comments-title"
    return redirect(f"/proposals/{proposal_id}#{anchor}", flash=ON_BEHALF_FLASHES[action])


ROUTES += [support, discuss, on_behalf]


MediaToken = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{16,32}$")]


@get("/media/{token:str}", name="media")
async def media_file(token: MediaToken) -> Response[bytes]:
    """A photo or voice note; gone with its proposal when the proposal is hidden."""
    found = await media.get(token)
    if found is None or found["hidden_at"]:
        raise NotFoundException()
    return Response(
        bytes(found["data"]),
        status_code=200,
        media_type=found["content_type"],
        headers={
            "cache-control": "public, max-age=86400",
            "content-disposition": "inline",
        },
    )


ROUTES += [media_file]
