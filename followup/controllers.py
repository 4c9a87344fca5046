"""Follow-up pages: what a table (or an organisation) sent and what came back, the wall poster,
and, for the table's facilitators, recording an answer, its letter, the reminder letters and
the delay given to institutions."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from exports import stored
from followup import services
from followup.pdf import render_poster, render_reminder
from proposals.discussion import TRANSITIONS
from proposals.themes import THEMES
from tables import services as tables
from tables.models import Table
from voix import workers
from voix.forms import FormErrors
from voix.i18n import LANGUAGES, current_language
from voix.permissions import Principal, can, require
from voix.web import FORM_BODY_MAX, ObjectId, Slug, absolute_url, form_data, page, redirect


def _followup_path(table: dict[str, Any]) -> str:
    return f"/tables/{table['slug']}/follow-up"


@get("/tables/{slug:str}/follow-up", name="followup")
async def table_followup(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    return await _table_page(request, principal, await tables.get_table(slug))


async def _table_page(
    request: Request,
    principal: Principal,
    table: dict[str, Any],
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    scope = tables.scope_of(table)
    filters = services.Filters.from_query(request.query_params)
    found = await services.follow_up([table["id"]], filters, current_language.get())
    shared: dict[str, Any] = {
        "table": table,
        "organisation": None,
        "scope": scope,
        "filters": filters,
        "follow_up": found,
        "themes": THEMES,
        "statuses": services.FOLLOWED,
        "base_path": _followup_path(table),
        "manages": can(principal, "briefs.manage", scope),
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "followup-rows":
        return page(request, "followup/followup.html", block="rows", **shared)
    manager_context: dict[str, Any] = {}
    if shared["manages"]:
        manager_context = {
            "briefs_to_answer": await services.briefs_to_answer(table["id"]),
            "look_again": await services.to_look_again(table["id"]),
            "delay": await services.answer_delay(table["id"]),
        }
    return page(
        request,
        "followup/followup.html",
        status_code=status_code,
        overdue=await services.overdue([table["id"]]),
        **shared,
        **manager_context,
        **context,
    )


@get("/organisations/{slug:str}/follow-up", name="organisation_followup")
async def organisation_followup(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    organisation = await tables.get_organisation(slug)
    table_ids = [
        row["id"]
        for row in await Table.select(Table.id).where(Table.organisation == organisation["id"])
    ]
    filters = services.Filters.from_query(request.query_params)
    found = await services.follow_up(table_ids, filters, current_language.get())
    shared: dict[str, Any] = {
        "table": None,
        "organisation": organisation,
        "filters": filters,
        "follow_up": found,
        "themes": THEMES,
        "statuses": services.FOLLOWED,
        "base_path": f"/organisations/{organisation['slug']}/follow-up",
        "manages": False,
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "followup-rows":
        return page(request, "followup/followup.html", block="rows", **shared)
    return page(
        request, "followup/followup.html", overdue=await services.overdue(table_ids), **shared
    )


@post("/tables/{slug:str}/follow-up/delay", name="followup_delay")
async def set_delay(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    data = await form_data(request)
    try:
        await services.set_delay(principal, table, data)
    except FormErrors as invalid:
        return await _table_page(
            request, principal, table, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(_followup_path(table), flash="delay_saved")


# Recording an answer


async def _answer_page(
    request: Request,
    principal: Principal,
    table: dict[str, Any],
    brief: dict[str, Any],
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    require(principal, "briefs.manage", tables.scope_of(table))
    return page(
        request,
        "followup/answer_form.html",
        status_code=status_code,
        table=table,
        brief=brief,
        sent=await services.sendings(brief["id"]),
        carried=await services.sent_proposals(brief["id"]),
        answers=await services.answers_to(brief["id"]),
        transitions=TRANSITIONS,
        mentioned=services.MENTIONED,
        today=services.today(),
        letter_max_mb=services.LETTER_MAX_BYTES // 2**20,
        **context,
    )


@get("/tables/{slug:str}/follow-up/briefs/{brief_slug:str}/answer", name="answer_new")
async def answer_form(
    request: Request, principal: NamedDependency[Principal], slug: Slug, brief_slug: Slug
) -> Template:
    table = await tables.get_table(slug)
    brief = await services.get_brief(table, brief_slug)
    return await _answer_page(request, principal, table, brief)


async def _file(upload: Any) -> bytes | None:
    """The bytes of a file field; None when no file was chosen."""
    if isinstance(upload, UploadFile) and upload.filename:
        return await upload.read() or None
    return None


@post(
    "/tables/{slug:str}/follow-up/briefs/{brief_slug:str}/answer",
    name="answer_record",
    # A letter at its largest, and the form (a summary, commitments, a note per proposal).
    request_max_body_size=services.LETTER_MAX_BYTES + FORM_BODY_MAX,
)
async def record_answer(
    request: Request, principal: NamedDependency[Principal], slug: Slug, brief_slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    brief = await services.get_brief(table, brief_slug)
    data = await form_data(request)
    try:
        await services.record_answer(
            principal, table, brief, data, letter=await _file(data.get("letter"))
        )
    except FormErrors as invalid:
        values = {k: v for k, v in data.items() if isinstance(v, str)}
        return await _answer_page(
            request, principal, table, brief, status_code=400, errors=invalid.errors, values=values
        )
    return redirect(_followup_path(table), flash="answer_recorded")


@get("/tables/{slug:str}/follow-up/answers/{answer_id:int}/letter", name="answer_letter")
async def answer_letter(
    principal: NamedDependency[Principal], slug: Slug, answer_id: ObjectId
) -> Response[bytes]:
    table = await tables.get_table(slug)
    content, content_type = await services.letter(principal, table, answer_id)
    extension = "pdf" if content_type == services.PDF else "jpg"
    return Response(
        content,
        media_type=content_type,
        headers={
            # Downloaded, never shown inside the site's origin; kept out of shared caches.
            "content-disposition": f'attachment; filename="letter-{answer_id}.{extension}"',
            "cache-control": "private, no-store",
            "x-content-type-options": "nosniff",
        },
    )


# Paper


@get(
    "/tables/{slug:str}/follow-up/briefs/{brief_slug:str}/reminders/{institution_id:int}",
    name="answer_reminder",
)
async def reminder(
    principal: NamedDependency[Principal], slug: Slug, brief_slug: Slug, institution_id: ObjectId
) -> Response[bytes]:
    table = await tables.get_table(slug)
    brief = await services.get_brief(table, brief_slug)
    recalled = await services.reminder(principal, table, brief, institution_id)
    language = brief["language"] if brief["language"] in LANGUAGES else "fr"
    content = await workers.run(
        render_reminder,
        table=table,
        brief=brief,
        institution=recalled["institution"],
        proposals=recalled["proposals"],
        due_on=recalled["due_on"],
        today=services.today(),
        url=absolute_url(f"/briefs/{brief['slug']}"),
        lang=language,
    )
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "content-disposition": (
                f'attachment; filename="reminder-{brief["slug"]}-{institution_id}.pdf"'
            ),
            "cache-control": "private, no-store",
        },
    )


@get("/tables/{slug:str}/follow-up.pdf", name="followup_poster")
async def poster(slug: Slug) -> Response[bytes]:
    """Public, like the page it summarises; rendered once a day and language, then stored."""
    table = await tables.get_table(slug)
    language = current_language.get()
    follow_up = await services.poster(table, language)
    content = await stored.published_pdf(
        f"followup:{table['slug']}",
        language,
        render_poster,
        table=table,
        follow_up=follow_up,
        url=absolute_url(_followup_path(table)),
        lang=language,
    )
    return Response(
        content,
        media_type="application/pdf",
        headers={"content-disposition": f'inline; filename="follow-up-{slug}-{language}.pdf"'},
    )


ROUTES = [
    table_followup,
    organisation_followup,
    set_delay,
    answer_form,
    record_answer,
    answer_letter,
    reminder,
    poster,
]
