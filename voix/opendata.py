"""The public JSON API: tables, their proposals, the results of closed votes, and the
follow-up of what the tables sent to institutions.

Nothing personal is published: proposals carry no author, results no voter, answers neither
who recorded them nor the letter (it may name officials).

Every answer of /api/v1 is JSON, errors too: `{"status_code": …, "detail": "…"}`, the detail
in the reader's language (?lang=, the cookie, Accept-Language, French: voix.middleware). A
parameter out of bounds is refused (400), never silently corrected. Every 200 carries an
ETag (a hash of its body) and `Cache-Control: no-cache`: a client that sends the ETag back in
If-None-Match gets 304 and no body while nothing changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import MediaType, Request, Response, Router, get
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, Parameter
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from followup import services as followup
from meetings.room import channel_counts
from proposals import feed
from proposals import services as proposals
from proposals.themes import THEMES
from tables import services as tables
from tables.models import Table
from voix.forms import Message as Text
from voix.forms import UserError
from voix.i18n import N_
from voix.web import ObjectId, Slug, absolute_url
from votes import box
from votes import services as votes
from votes.models import CLOSED, Vote
from votes.scales import YES_NO_ABSTAIN

BAD_REQUEST = N_("Something in the request was not understood.")
BAD_PARAMETER = N_("The parameter “%(name)s” is not valid.")
LIMIT_RANGE = N_("The limit must be a whole number from 1 to %(max)d.")
BAD_CURSOR = N_(
    "This cursor is not valid (changed, or made for another order). "
    "Start again from the first page, without a cursor."
)
UNKNOWN_THEME = N_("Unknown theme “%(value)s”. The themes are: %(known)s.")
UNKNOWN_STATUS = N_("Unknown status “%(value)s”. The statuses are: %(known)s.")
UNKNOWN_DISTRICT = N_("This table has no district “%(value)s”. Its districts are: %(known)s.")
UNKNOWN_SORT = N_("Unknown order “%(value)s”. The orders are: %(known)s.")
# How much of a refused value an error repeats.
ECHO_MAX = 64

CACHE_CONTROL = "no-cache"  # kept, but asked again each time: If-None-Match makes that cheap


@dataclass
class ErrorOut:
    status_code: int
    detail: str  # in the reader's language


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The answers of a route besides its 200: 304 for every one (see etag_middleware), and
    these errors."""
    descriptions = {
        400: "A parameter is not valid; `detail` says which and why.",
        404: "No such table, vote or organisation.",
    }
    answers = {
        status: ResponseSpec(
            data_container=ErrorOut, description=descriptions[status], generate_examples=False
        )
        for status in statuses
    }
    not_modified = ResponseSpec(
        data_container=None,
        description="Not modified: If-None-Match named this answer's ETag. No body.",
        generate_examples=False,
    )
    return {304: not_modified, **answers}


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
    title: str  # as written, in `language`
    body: str
    theme: str
    language: str
    status: str
    created_at: datetime
    district: str | None  # the district's slug (the `district` filter), when placed in one
    district_name: str | None
    supports: int
    comments_count: int  # those shown: comments hidden by the facilitators are not counted
    longitude: float | None  # WGS 84, when placed
    latitude: float | None
    url: str  # the proposal's page


@dataclass
class ProposalPageOut:
    items: list[ProposalOut]
    # The next page, filters and limit kept; null on the last page.
    next: str | None
    limit: int


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


@get("/tables", responses=_errors())
async def list_tables() -> list[TableOut]:
    return [
        TableOut(t["slug"], t["name"], t["organisation_name"], t["postcode"], t["districts"])
        for t in await tables.list_tables()
    ]


# The web's bounded slug (voix.web.Slug), described.
TableSlug = Annotated[
    str,
    replace(Slug.__metadata__[0], description="The table's slug, as in /api/v1/tables."),
]
Limit = Annotated[
    int,
    Parameter(
        ge=1,
        le=feed.MAX_LIMIT,
        description=f"How many proposals a page holds, from 1 to {feed.MAX_LIMIT} "
        "(more is refused, not cut down).",
    ),
]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=feed.CURSOR_MAX,
        description="Where the page starts: the `cursor` of the `next` link of the page "
        "before, as it is. Opaque; one changed by hand, or made for another `sort`, is refused.",
    ),
]
ThemeFilter = Annotated[
    str | None,
    Parameter(description="Only this theme.", schema_extra={"enum": list(THEMES)}),
]
StatusFilter = Annotated[
    str | None,
    Parameter(
        description="Only this status.", schema_extra={"enum": list(proposals.LISTED_STATUSES)}
    ),
]
DistrictFilter = Annotated[
    str | None,
    Parameter(
        max_length=64,
        description="Only the proposals placed in this district of the table (its slug, as "
        "`district` in the items).",
    ),
]
SearchText = Annotated[
    str | None,
    Parameter(
        max_length=proposals.SEARCH_MAX,
        description="Words of the title or the text, as the table's page searches them "
        "(French stemming on PostgreSQL).",
    ),
]
Sort = Annotated[
    str | None,
    Parameter(
        description="`recent` (the default): newest first, stable while proposals are added. "
        "`supports`: most supported first; a proposal whose supports change while you page "
        "through may then be skipped or listed twice.",
        schema_extra={"enum": list(proposals.SORTS)},
    ),
]


def _echo(value: str) -> str:
    return value[:ECHO_MAX]


def _proposal_filters(
    table: dict[str, Any],
    *,
    theme: str | None,
    status: str | None,
    district: str | None,
    q: str | None,
    sort: str | None,
) -> proposals.Filters:
    """The list page's filters, but what the page would silently drop is refused here, with
    what is known instead."""
    if theme and theme not in THEMES:
        known = ", ".join(THEMES)
        raise UserError(UNKNOWN_THEME, 400, value=_echo(theme), known=known)
    if status and status not in proposals.LISTED_STATUSES:
        known = ", ".join(proposals.LISTED_STATUSES)
        raise UserError(UNKNOWN_STATUS, 400, value=_echo(status), known=known)
    districts = [d["slug"] for d in table["districts"]]
    if district and district not in districts:
        known = ", ".join(districts) or "—"
        raise UserError(UNKNOWN_DISTRICT, 400, value=_echo(district), known=known)
    if sort and sort not in proposals.SORTS:
        known = ", ".join(proposals.SORTS)
        raise UserError(UNKNOWN_SORT, 400, value=_echo(sort), known=known)
    given = {"theme": theme, "status": status, "district": district, "q": q, "sort": sort}
    return proposals.Filters.from_query({k: v for k, v in given.items() if v})


def _proposal(row: dict[str, Any]) -> ProposalOut:
    placed = row["latitude"] is not None and row["longitude"] is not None
    return ProposalOut(
        id=row["id"],
        title=row["title"],
        body=row["body"],
        theme=row["theme"],
        language=row["language"],
        status=row["status"],
        created_at=row["created_at"],
        district=row["district"],
        district_name=row["district_name"],
        supports=row["supports"],
        comments_count=row["comments_count"],
        longitude=row["longitude"] if placed else None,
        latitude=row["latitude"] if placed else None,
        url=absolute_url(f"/proposals/{row['id']}"),
    )


@get("/tables/{slug:str}/proposals", responses=_errors(400, 404))
async def table_proposals(
    slug: TableSlug,
    *,
    limit: Limit = feed.DEFAULT_LIMIT,
    cursor: Cursor = None,
    theme: ThemeFilter = None,
    status: StatusFilter = None,
    district: DistrictFilter = None,
    q: SearchText = None,
    sort: Sort = None,
) -> ProposalPageOut:
    """The table's proposals as its page lists them (neither hidden ones nor merged
    duplicates), filtered and ordered the same way, a page at a time: follow `next` until it
    is null. Newest first, a proposal added while you page through never makes one skipped
    or repeated (it is only at the start of a new walk)."""
    table = await tables.get_table(slug)
    filters = _proposal_filters(
        table, theme=theme, status=status, district=district, q=q, sort=sort
    )
    after = None
    if cursor:
        try:
            after = feed.decode_cursor(cursor, filters.sort)
        except feed.BadCursor:
            raise UserError(BAD_CURSOR, 400) from None
    await votes.close_due(Vote.table == table["id"])  # as the table's pages read it
    found = await feed.page(table["id"], filters, after, limit)
    following = None
    if found.after is not None:
        query = {
            "theme": filters.theme,
            "status": filters.status,
            "district": filters.district,
            "q": filters.q,
            "sort": filters.sort if filters.sort != "recent" else "",
            "limit": str(limit),
            "cursor": feed.encode_cursor(found.after),
        }
        following = absolute_url(
            f"/api/v1/tables/{slug}/proposals?" + urlencode({k: v for k, v in query.items() if v})
        )
    return ProposalPageOut(
        items=[_proposal(row) for row in found.items], next=following, limit=limit
    )


@get("/votes/{vote_id:int}", responses=_errors(400, 404))
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
    # What the follow-up page would silently drop is refused here, as for the proposals.
    if theme and theme not in THEMES:
        raise UserError(UNKNOWN_THEME, 400, value=_echo(theme), known=", ".join(THEMES))
    if status and status not in followup.FOLLOWED:
        known = ", ".join(followup.FOLLOWED)
        raise UserError(UNKNOWN_STATUS, 400, value=_echo(status), known=known)
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


@get("/tables/{slug:str}/follow-up", responses=_errors(400, 404))
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


@get("/organisations/{slug:str}/follow-up", responses=_errors(400, 404))
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


def invalid_parameter(request: Request, exc: ValidationException) -> Response[dict[str, Any]]:
    """A parameter Litestar refused (a limit out of bounds, a page that is not a number…):
    which one, in the reader's language, rather than Litestar's English."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    names = [str(error["key"]) for error in errors if isinstance(error, dict) and "key" in error]
    if not names:
        message = Text(BAD_REQUEST)
    elif names[0] == "limit":
        message = Text(LIMIT_RANGE, {"max": feed.MAX_LIMIT})
    elif names[0] == "cursor":
        message = Text(BAD_CURSOR)
    else:
        message = Text(BAD_PARAMETER, {"name": _echo(names[0])})
    return Response(
        {"status_code": 400, "detail": str(message)}, status_code=400, media_type=MediaType.JSON
    )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison: any of the client's tags, W/ or not, or `*`."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))


# What a 304 keeps of the 200 it stands for (RFC 9110, 15.4.5); vary and the rest are added
# around the app (voix.middleware).
_KEPT_BY_304 = (b"cache-control", b"content-location", b"date", b"expires", b"vary")


def etag_middleware(app: ASGIApp) -> ASGIApp:
    """An ETag on every 200 of a GET (HEAD is a GET here: voix.middleware), a hash of the
    body; If-None-Match with it → 304, no body. Answers are a page at most, held whole.

    The tag is weak (W/): the compression around the app (voix.middleware) sends the same body
    gzip- or brotli-encoded under the same headers, and a strong tag must change with the
    encoding. If-None-Match compares weakly anyway, so 304 works the same."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        # Only GET: HEAD is one here, and nothing else is cached.
        if scope["type"] != "http" or scope.get("method") != "GET":
            await app(scope, receive, send)
            return
        asked = _header(list(scope["headers"]), b"if-none-match")
        start: HTTPResponseStartEvent | None = None
        chunks: list[bytes] = []

        async def holding_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 200:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"etag"]
            headers.append((b"etag", etag.encode()))
            if _header(headers, b"cache-control") is None:
                headers.append((b"cache-control", CACHE_CONTROL.encode()))
            if matches(asked.decode("latin-1") if asked else None, etag):
                kept = [(k, v) for k, v in headers if k.lower() in (*_KEPT_BY_304, b"etag")]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await app(scope, receive, holding_send)

    return middleware


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
    include_in_schema=True,  # the app's other routes are not (voix.app)
    middleware=[etag_middleware],
    response_headers=[
        ResponseHeader(
            name="ETag",
            description="A tag of the body (weak: the same whatever the compression). Send it "
            "back as If-None-Match: 304 and no body while the answer is unchanged.",
            value='W/"5d41402abc4b2a76b9719d911017c592"',  # what one looks like
            documentation_only=True,
        )
    ],
    exception_handlers={ValidationException: invalid_parameter},
)
