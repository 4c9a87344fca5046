"""Meeting pages: the calendar, scheduling, the room (screen, control, attendance), minutes."""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage
from markupsafe import Markup

from exports import stored
from exports.pdf import render_minutes, render_poster, render_sign_in_sheet
from meetings import calendar, services
from notifications import controllers as notification_pages
from tables import services as tables
from translations import services as content
from voix import i18n, live, workers
from voix.forms import FormErrors, UserError, parse_int
from voix.permissions import Principal, can, require, signed_in
from voix.web import (
    LONG_FORM_BODY_MAX,
    ObjectId,
    Slug,
    absolute_url,
    form_data,
    page,
    redirect,
)

# Where a form of the room sends the facilitator back to (a key, never a URL).
BACK = {"control": "/control", "attendance": "/attendance", "meeting": ""}


def _back(meeting_id: int, data: dict[str, Any]) -> str:
    return f"/meetings/{meeting_id}{BACK.get(str(data.get('back') or ''), '/control')}"


def _pdf(content: bytes, filename: str) -> Response[bytes]:
    return Response(
        content,
        status_code=200,
        media_type="application/pdf",
        headers={"content-disposition": f'inline; filename="{filename}"'},
    )


# The calendar of a table


@get("/tables/{slug:str}/meetings", name="table_meetings")
async def table_meetings(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    table = await tables.get_table(slug)
    upcoming = await services.for_table(table["id"], upcoming=True)
    past = await services.for_table(table["id"], upcoming=False)
    await content.apply("meeting", [*upcoming, *past], i18n.current_language.get())
    history = await services.history(table["id"])
    return page(
        request,
        "meetings/calendar.html",
        table=table,
        scope=tables.scope_of(table),
        upcoming=upcoming,
        past=past,
        history=history,
        chart=calendar.chart(history),
        counts=await services.attendance_counts([m["id"] for m in past]),
        feed_url=absolute_url(f"/tables/{slug}/meetings.ics"),
    )


@get("/tables/{slug:str}/meetings.ics", name="table_meetings_ics")
async def table_meetings_ics(request: Request, slug: Slug) -> Response[bytes]:
    table = await tables.get_table(slug)
    meetings = await services.for_table(table["id"])
    agendas = await services.agendas([m["id"] for m in meetings])
    return Response(
        calendar.ics(table, meetings, agendas),
        status_code=200,
        media_type="text/calendar; charset=utf-8",
        headers={"content-disposition": f'inline; filename="{slug}.ics"'},
    )


async def _schedule_page(
    request: Request,
    table: dict[str, Any],
    status_code: int = 200,
    meeting: dict[str, Any] | None = None,
    **context: Any,
) -> Template:
    values = context.pop("values", None) or {
        **services.default_times(),
        "languages": ["fr"],
    }
    return page(
        request,
        "meetings/schedule.html",
        status_code=status_code,
        table=table,
        meeting=meeting,
        values=values,
        language_choices=i18n.LANGUAGES,
        **context,
    )


@get("/tables/{slug:str}/meetings/new", name="meeting_new")
async def schedule_form(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template:
    table = await tables.get_table(slug)
    require(principal, "meetings.manage", tables.scope_of(table))
    return await _schedule_page(request, table)


@post("/tables/{slug:str}/meetings", name="meeting_schedule")
async def schedule(
    request: Request, principal: NamedDependency[Principal], slug: Slug
) -> Template | Redirect:
    table = await tables.get_table(slug)
    data = await form_data(request, "languages")
    try:
        meeting_id = await services.schedule(principal, table, data)
    except FormErrors as invalid:
        return await _schedule_page(
            request, table, status_code=400, errors=invalid.errors, values=data
        )
    return redirect(f"/meetings/{meeting_id}", flash="meeting_scheduled")


@get("/meetings/{meeting_id:int}/edit", name="meeting_edit")
async def edit_form(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    meeting, table = await services.get_with_table(meeting_id)
    require(principal, "meetings.manage", tables.scope_of(table))
    return await _schedule_page(
        request, table, meeting=meeting, values=services.form_values(meeting)
    )


@post("/meetings/{meeting_id:int}/edit", name="meeting_update")
async def update(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template | Redirect:
    meeting, table = await services.get_with_table(meeting_id)
    data = await form_data(request, "languages")
    try:
        await services.update(principal, table, meeting, data)
    except FormErrors as invalid:
        return await _schedule_page(
            request, table, status_code=400, meeting=meeting, errors=invalid.errors, values=data
        )
    return redirect(f"/meetings/{meeting_id}", flash="meeting_updated")


ROUTES = [table_meetings, table_meetings_ics, schedule_form, schedule, edit_form, update]


# One meeting


async def _meeting_page(
    request: Request,
    principal: Principal,
    meeting_id: int,
    status_code: int = 200,
    **context: Any,
) -> Template:
    meeting, table = await services.get_with_table(meeting_id)
    scope = tables.scope_of(table)
    manager = can(principal, "meetings.manage", scope)
    meeting = dict(meeting, agenda=await services.agenda(meeting_id))
    shown = await content.on_its_page("meeting", meeting, request.query_params)
    return page(
        request,
        "meetings/meeting.html",
        status_code=status_code,
        meeting=meeting,
        shown=shown,
        table=table,
        scope=scope,
        agenda=meeting["agenda"],
        present=(await services.attendance_counts([meeting_id]))[meeting_id],
        checked_in=await services.is_present(principal.user_id, meeting_id),
        minutes=await services.published_minutes(meeting_id),
        choices=await services.agenda_choices(table["id"]) if manager else None,
        rsvp=await notification_pages.rsvp_context(principal, meeting, table),
        **context,
    )


@get("/meetings/{meeting_id:int}", name="meeting")
async def meeting_page(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    return await _meeting_page(request, principal, meeting_id)


@get("/meetings/{meeting_id:int}/poster.pdf", name="meeting_poster")
async def poster(request: Request, meeting_id: ObjectId) -> Response[bytes]:
    meeting, table = await services.get_with_table(meeting_id)
    items = await services.agenda(meeting_id)
    url = absolute_url(f"/meetings/{meeting_id}")
    translated = {}
    for code in meeting["languages"]:
        row = copy.deepcopy(dict(meeting, agenda=items))
        shown = (await content.apply("meeting", [row], code)).get(meeting_id)
        if shown and shown.state == content.TRANSLATED:
            translated[code] = row
    pdf = await workers.run(render_poster, meeting, table, items, url, translated)
    return _pdf(pdf, f"affiche-reunion-{meeting_id}.pdf")


# What a form of the room does, once the meeting and its table are known.
RoomAct = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Awaitable[None]]


async def _in_the_room(
    request: Request,
    meeting_id: int,
    act: RoomAct,
    *,
    to: str | None = None,
    flash: str | None = None,
) -> Redirect:
    """A POST of the room: do it, tell the room's screens, go back where the form was (or `to`)."""
    data = await form_data(request)
    meeting, table = await services.get_with_table(meeting_id)
    await act(table, meeting, data)
    live.publish(request.app, f"meeting:{meeting_id}", meeting=meeting_id)
    return redirect(to or _back(meeting_id, data), flash=flash)


@post("/meetings/{meeting_id:int}/open", name="meeting_open")
async def open_meeting(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    await form_data(request)
    meeting, table = await services.get_with_table(meeting_id)
    after_the_fact = await services.open_meeting(principal, table, meeting)
    live.publish(request.app, f"meeting:{meeting_id}", meeting=meeting_id)
    if after_the_fact:
        # Nobody is in the room any more: straight to the list, to tick who came.
        return redirect(f"/meetings/{meeting_id}/attendance")
    return redirect(f"/meetings/{meeting_id}/control", flash="meeting_opened")


# Acts that cannot be taken back (or only by a coordinator, the same evening): a button leads
# to the GET of the act's address, a page saying what will happen, whose POST button does it.
# Without JavaScript, the same for everyone.


async def _confirm_page(
    request: Request, principal: Principal, meeting_id: int, act: str
) -> Template:
    meeting, table = await services.get_with_table(meeting_id)
    require(principal, "meetings.manage", tables.scope_of(table))
    present = (await services.attendance_counts([meeting_id]))[meeting_id]
    possible = meeting["status"] == {"close": "open", "cancel": "scheduled"}[act]
    return page(
        request,
        "meetings/confirm.html",
        meeting=meeting,
        table=table,
        act=act,
        possible=possible,
        present=present,
        # When a closing made now could still be undone.
        reopen_until=services.end_of_evening(datetime.now(UTC)),
        speaking=(await services.queue(meeting_id))["speaking"] if act == "close" else None,
    )


@get("/meetings/{meeting_id:int}/close", name="meeting_close_confirm")
async def close_confirm(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    return await _confirm_page(request, principal, meeting_id, "close")


@post("/meetings/{meeting_id:int}/close", name="meeting_close")
async def close_meeting(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    return await _in_the_room(
        request,
        meeting_id,
        lambda table, meeting, _: services.close_meeting(principal, table, meeting),
        to=f"/meetings/{meeting_id}",
        flash="meeting_closed",
    )


@post("/meetings/{meeting_id:int}/reopen", name="meeting_reopen")
async def reopen_meeting(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    """A closing made by mistake, undone by a coordinator the same evening."""
    return await _in_the_room(
        request,
        meeting_id,
        lambda table, meeting, _: services.reopen_meeting(principal, table, meeting),
        to=f"/meetings/{meeting_id}/control",
        flash="meeting_reopened",
    )


@get("/meetings/{meeting_id:int}/cancel", name="meeting_cancel_confirm")
async def cancel_confirm(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    return await _confirm_page(request, principal, meeting_id, "cancel")


@post("/meetings/{meeting_id:int}/cancel", name="meeting_cancel")
async def cancel_meeting(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    await form_data(request)
    meeting, table = await services.get_with_table(meeting_id)
    await services.cancel(principal, table, meeting)
    return redirect(f"/meetings/{meeting_id}", flash="meeting_cancelled")


@post("/meetings/{meeting_id:int}/agenda", name="agenda_add")
async def add_item(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template | Redirect:
    try:
        return await _in_the_room(
            request,
            meeting_id,
            lambda table, meeting, data: services.add_item(principal, table, meeting, data),
        )
    except FormErrors as invalid:
        return await _meeting_page(
            request,
            principal,
            meeting_id,
            status_code=400,
            errors=invalid.errors,
            values=await form_data(request),
        )


AGENDA_ACTIONS = {
    "current": services.set_current_item,
    "remove": services.remove_item,
    "up": lambda who, table, meeting, item: services.move_item(who, table, meeting, item, "up"),
    "down": lambda who, table, meeting, item: services.move_item(who, table, meeting, item, "down"),
}


@post("/meetings/{meeting_id:int}/agenda/{item_id:int}", name="agenda_change")
async def change_item(
    request: Request,
    principal: NamedDependency[Principal],
    meeting_id: ObjectId,
    item_id: ObjectId,
) -> Redirect:
    """One form per item, its button saying what to do: current, up, down, remove."""

    async def act(table: dict[str, Any], meeting: dict[str, Any], data: dict[str, Any]) -> None:
        action = AGENDA_ACTIONS.get(str(data.get("action") or ""))
        if action is None:
            raise NotFoundException()
        await action(principal, table, meeting, item_id)

    return await _in_the_room(request, meeting_id, act)


ROUTES += [
    meeting_page,
    poster,
    open_meeting,
    close_confirm,
    close_meeting,
    reopen_meeting,
    cancel_confirm,
    cancel_meeting,
    add_item,
    change_item,
]


# Attendance


@get("/meetings/{meeting_id:int}/check-in", name="check_in_page")
async def check_in_page(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    """Where the meeting's QR code leads: sign in with the card, then one button."""
    meeting, table = await services.get_with_table(meeting_id)
    meeting = dict(meeting)
    await content.apply("meeting", [meeting], i18n.current_language.get())
    return page(
        request,
        "meetings/check_in.html",
        meeting=meeting,
        table=table,
        scope=tables.scope_of(table),
        checked_in=await services.is_present(principal.user_id, meeting_id),
    )


@post("/meetings/{meeting_id:int}/check-in", name="check_in")
async def check_in(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Redirect:
    return await _in_the_room(
        request,
        meeting_id,
        lambda table, meeting, _: services.check_in_self(principal, table, meeting),
        to=f"/meetings/{meeting_id}/check-in",
        flash="checked_in",
    )


async def _attendance_page(
    request: Request,
    principal: Principal,
    meeting_id: int,
    status_code: int = 200,
    **context: Any,
) -> Template:
    meeting, table = await services.get_with_table(meeting_id)
    require(principal, "meetings.manage", tables.scope_of(table))
    meeting = dict(meeting)
    await content.apply("meeting", [meeting], i18n.current_language.get())
    present = await services.attendance(meeting_id)
    ticked = {row["user"]: row["id"] for row in present if row["user"]}
    # Every member keeps their place on the list, ticked or not: after a tick the page comes
    # back on that person (#person-ID), their tick beside an undo.
    members = [
        {**member, "attendance": ticked.get(member["id"])}
        for member in await tables.residents(table["id"])
    ]
    return page(
        request,
        "meetings/attendance.html",
        status_code=status_code,
        meeting=meeting,
        table=table,
        present=present,
        members=members,
        absent=[m for m in members if m["attendance"] is None],
        **context,
    )


async def _attendance_refused(
    request: Request,
    principal: Principal,
    meeting_id: int,
    refusal: FormErrors | UserError,
    values: dict[str, Any] | None = None,
) -> Template:
    """A check-in refused: the list again, with the message and what was typed, never a
    page of its own (two Karims, a member's name, a meeting closed meanwhile)."""
    if isinstance(refusal, FormErrors):
        status_code, errors = 400, refusal.errors
    else:
        status_code = refusal.status_code
        about_the_name = refusal.message.msgid in services.NAME_REFUSALS
        errors = {"name" if about_the_name else "attendance": refusal.message}
    return await _attendance_page(
        request,
        principal,
        meeting_id,
        status_code=status_code,
        errors=errors,
        values=values or {},
    )


@get("/meetings/{meeting_id:int}/attendance", name="attendance")
async def attendance(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    return await _attendance_page(request, principal, meeting_id)


def _on_the_list(meeting_id: int, data: dict[str, Any], anchor: str) -> str | None:
    """Back to the attendance list where the person was (its row focusable), else as usual."""
    if data.get("back") != "attendance":
        return None
    return f"/meetings/{meeting_id}/attendance#{anchor}"


@post("/meetings/{meeting_id:int}/attendance/members/{user_id:int}", name="attendance_tick")
async def tick(
    request: Request,
    principal: NamedDependency[Principal],
    meeting_id: ObjectId,
    user_id: ObjectId,
) -> Template | Redirect:
    data = await form_data(request)
    try:
        return await _in_the_room(
            request,
            meeting_id,
            lambda table, meeting, _: services.check_in_member(principal, table, meeting, user_id),
            to=_on_the_list(meeting_id, data, f"person-{user_id}"),
        )
    except UserError as refused:
        return await _attendance_refused(request, principal, meeting_id, refused)


@post("/meetings/{meeting_id:int}/attendance/walk-in", name="attendance_walk_in")
async def walk_in(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request)
    try:
        return await _in_the_room(
            request,
            meeting_id,
            lambda table, meeting, data: services.check_in_walk_in(principal, table, meeting, data),
            to=_on_the_list(meeting_id, data, "walk-in-title"),
        )
    except (FormErrors, UserError) as refused:
        typed = {"name": str(data.get("name") or "")[: services.NAME_MAX * 2]}
        return await _attendance_refused(request, principal, meeting_id, refused, typed)


@post("/meetings/{meeting_id:int}/attendance/{attendance_id:int}/remove", name="attendance_remove")
async def remove_attendance(
    request: Request,
    principal: NamedDependency[Principal],
    meeting_id: ObjectId,
    attendance_id: ObjectId,
) -> Template | Redirect:
    data = await form_data(request)
    meeting, table = await services.get_with_table(meeting_id)
    try:
        member = await services.remove_attendance(principal, table, meeting, attendance_id)
    except UserError as refused:
        return await _attendance_refused(request, principal, meeting_id, refused)
    live.publish(request.app, f"meeting:{meeting_id}", meeting=meeting_id)
    anchor = f"person-{member}" if member is not None else "present-title"
    return redirect(_on_the_list(meeting_id, data, anchor) or _back(meeting_id, data))


@get("/meetings/{meeting_id:int}/sign-in-sheet.pdf", name="sign_in_sheet")
async def sign_in_sheet(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Response[bytes]:
    """The paper funders ask for; `?blank=1` before the meeting, with the members to sign."""
    meeting, table = await services.get_with_table(meeting_id)
    require(principal, "meetings.manage", tables.scope_of(table))
    blank = request.query_params.get("blank") == "1"
    if blank:
        rows = [{"shown_name": m["display_name"]} for m in await tables.residents(table["id"])]
    else:
        rows = await services.attendance(meeting_id)
    lang = i18n.current_language.get()
    content = await workers.run(render_sign_in_sheet, meeting, table, rows, blank=blank, lang=lang)
    return _pdf(content, f"feuille-emargement-{meeting_id}.pdf")


ROUTES += [check_in_page, check_in, attendance, tick, walk_in, remove_attendance, sign_in_sheet]


# The room: screen, control, speakers


async def _room_context(principal: Principal, meeting_id: int, action: str) -> dict[str, Any]:
    meeting, table = await services.get_with_table(meeting_id)
    require(principal, action, tables.scope_of(table))
    room = await services.room(meeting)
    # The agenda's items are the room's (its current item one of them): translated in place.
    meeting = dict(meeting, agenda=room["agenda"])
    reader = i18n.current_language.get()
    await content.apply("meeting", [meeting], reader)
    if room["vote"]:
        await content.apply("vote", [room["vote"]], reader)
    return {
        "meeting": meeting,
        "table": table,
        "scope": tables.scope_of(table),
        "room": room,
        "speaking_time": services.speaking_time,
    }


def _live_block(request: Request) -> bool:
    return bool(request.headers.get("hx-request")) and request.headers.get("hx-target") == "room"


@get("/meetings/{meeting_id:int}/screen", name="meeting_screen")
async def screen(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    context = await _room_context(principal, meeting_id, "meetings.follow")
    check_in_url = absolute_url(f"/meetings/{meeting_id}/check-in")
    return page(
        request,
        "meetings/screen.html",
        block="room" if _live_block(request) else None,
        check_in_qr=calendar.qr_data_uri(check_in_url),
        check_in_url=check_in_url,
        **context,
    )


@get("/meetings/{meeting_id:int}/control", name="meeting_control")
async def control(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    context = await _room_context(principal, meeting_id, "meetings.manage")
    return page(
        request,
        "meetings/control.html",
        block="room" if _live_block(request) else None,
        **context,
    )


@get("/meetings/{meeting_id:int}/events", name="meeting_events")
async def events(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> ServerSentEvent:
    """Server-sent events: "changed" whenever the room should refresh, from any app process.

    The stream ends when the process stops; room.js fetches the room again when the browser
    reconnects, as events sent in between reached nobody."""
    _, table = await services.get_with_table(meeting_id)
    require(principal, "meetings.follow", tables.scope_of(table))
    app = request.app

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        yield ServerSentEventMessage(comment="connected")
        async for event in live.events(app, [f"meeting:{meeting_id}", "votes"]):
            if event is None:
                yield ServerSentEventMessage(comment="keep-alive")
            elif event == live.REFRESH:  # events may have been missed: fetch the room again
                yield ServerSentEventMessage(event="changed", data="refresh")
            elif event.get("meeting") == meeting_id or meeting_id in event.get("meetings", []):
                yield ServerSentEventMessage(event="changed", data="1")

    # Capped per person and per meeting (429 beyond); the slot comes back on disconnect.
    scope = tables.scope_of(table)
    return live.capped_stream(
        signed_in(principal), meeting_id, can(principal, "meetings.manage", scope), stream
    )


@post("/meetings/{meeting_id:int}/speakers", name="speaker_add")
async def add_speaker(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template | Redirect:
    try:
        return await _in_the_room(
            request,
            meeting_id,
            lambda table, meeting, data: services.add_speaker(principal, table, meeting, data),
        )
    except FormErrors as invalid:
        context = await _room_context(principal, meeting_id, "meetings.manage")
        return page(
            request, "meetings/control.html", status_code=400, errors=invalid.errors, **context
        )


SPEAKER_ACTIONS = {
    "start": services.start_turn,
    "end": services.end_turn,
    "remove": services.remove_speaker,
    "up": lambda who, table, meeting, speaker: services.move_speaker(
        who, table, meeting, speaker, "up"
    ),
    "down": lambda who, table, meeting, speaker: services.move_speaker(
        who, table, meeting, speaker, "down"
    ),
}


@post("/meetings/{meeting_id:int}/speakers/{speaker_id:int}", name="speaker_change")
async def change_speaker(
    request: Request,
    principal: NamedDependency[Principal],
    meeting_id: ObjectId,
    speaker_id: ObjectId,
) -> Redirect:
    async def act(table: dict[str, Any], meeting: dict[str, Any], data: dict[str, Any]) -> None:
        action = SPEAKER_ACTIONS.get(str(data.get("action") or ""))
        if action is None:
            raise NotFoundException()
        await action(principal, table, meeting, speaker_id)

    return await _in_the_room(request, meeting_id, act)


ROUTES += [screen, control, events, add_speaker, change_speaker]


# Minutes


@get("/meetings/{meeting_id:int}/minutes", name="minutes")
async def minutes(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    meeting, table = await services.get_with_table(meeting_id)
    meeting = dict(meeting)
    await content.apply("meeting", [meeting], i18n.current_language.get())
    version = _version(request)
    shown = await services.published_minutes(meeting_id, version)
    if shown is None and version is not None:
        raise NotFoundException()
    versions = [v for v in await services.minutes_versions(meeting_id) if v["published"]]
    latest = versions[0]["version"] if versions else None
    html = await services.shown_html(shown) if shown else ""
    translation = None
    if shown and shown["version"] == latest:  # translations follow the newest version only
        row = {"id": meeting_id, "body": shown["body"], "body_html": None}
        translation = await content.on_its_page("minutes", row, request.query_params)
        if row["body_html"] is not None:
            html = Markup(row["body_html"])  # noqa: S704 — sanitised by nh3 when saved
    return page(
        request,
        "meetings/minutes.html",
        meeting=meeting,
        table=table,
        scope=tables.scope_of(table),
        minutes=shown,
        html=html,
        shown=translation,
        links=await services.minutes_links(shown["id"]) if shown else None,
        versions=versions,
        latest=latest,
    )


def _version(request: Request) -> int | None:
    return parse_int(request.query_params.get("version"), min=1, max=99_999)


async def _minutes_editor(
    request: Request, principal: Principal, meeting_id: int, status_code: int = 200, **context: Any
) -> Template:
    meeting, table = await services.get_with_table(meeting_id)
    require(principal, "meetings.manage", tables.scope_of(table))
    versions = await services.minutes_versions(meeting_id)
    linked = await services.draft_links(meeting_id)
    values = context.pop("values", None) or {
        "body": versions[0]["body"] if versions else "",
        "proposals": [str(i) for i in linked["proposals"]],
        "votes": [str(i) for i in linked["votes"]],
    }
    return page(
        request,
        "meetings/minutes_edit.html",
        status_code=status_code,
        meeting=meeting,
        table=table,
        choices=await services.agenda_choices(table["id"]),
        draft=versions[0] if versions and not versions[0]["published"] else None,
        values=values,
        **context,
    )


@get("/meetings/{meeting_id:int}/minutes/edit", name="minutes_edit")
async def minutes_edit(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template:
    return await _minutes_editor(request, principal, meeting_id)


@post(
    "/meetings/{meeting_id:int}/minutes",
    name="minutes_save",
    request_max_body_size=LONG_FORM_BODY_MAX,  # 50,000 characters, url-encoded
)
async def minutes_save(
    request: Request, principal: NamedDependency[Principal], meeting_id: ObjectId
) -> Template | Redirect:
    data = await form_data(request, "proposals", "votes")
    meeting, table = await services.get_with_table(meeting_id)
    publish = data.get("action") == "publish"
    try:
        await services.save_minutes(principal, table, meeting, data, publish=publish)
    except FormErrors as invalid:
        return await _minutes_editor(
            request, principal, meeting_id, status_code=400, errors=invalid.errors, values=data
        )
    if publish:
        return redirect(f"/meetings/{meeting_id}/minutes", flash="minutes_published")
    return redirect(f"/meetings/{meeting_id}/minutes/edit", flash="minutes_saved")


@get("/meetings/{meeting_id:int}/minutes.pdf", name="minutes_pdf")
async def minutes_pdf(request: Request, meeting_id: ObjectId) -> Response[bytes]:
    meeting, table = await services.get_with_table(meeting_id)
    shown = await services.published_minutes(meeting_id, _version(request))
    if shown is None:
        raise NotFoundException()
    links = await services.minutes_links(shown["id"])
    present = (await services.attendance_counts([meeting_id]))[meeting_id]
    html = await services.shown_html(shown)
    lang = i18n.current_language.get()
    # The reader's translation, of the newest version only (the stored PDF's fingerprint
    # covers what it is given, so a new translation renders a new PDF).
    meeting = dict(meeting)
    await content.apply("meeting", [meeting], lang)
    latest = max(
        v["version"] for v in await services.minutes_versions(meeting_id) if v["published"]
    )
    translated_from = ""
    if shown["version"] == latest:
        row = {"id": meeting_id, "body": shown["body"], "body_html": None}
        state = (await content.apply("minutes", [row], lang)).get(meeting_id)
        # A document sent out carries no translation older than its text: the original then.
        if state is not None and row["body_html"] is not None and not state.stale:
            html = Markup(row["body_html"])  # noqa: S704 — sanitised by nh3 when saved
            translated_from = state.language
    # A published version: rendered once per language (and again only if what it shows
    # changes, a linked proposal's status for one), then served as stored.
    pdf = await stored.published_pdf(
        f"minutes:{shown['id']}",
        lang,
        render_minutes,
        meeting,
        table,
        minutes=shown,
        html=html,
        links=links,
        present=present,
        lang=lang,
        translated_from=translated_from,
    )
    return _pdf(pdf, f"compte-rendu-{meeting_id}-v{shown['version']}.pdf")


ROUTES += [minutes, minutes_edit, minutes_save, minutes_pdf]
