"""Meetings over HTTP, on the real database: scheduling, calendar, attendance, room, minutes."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from pypdf import PdfReader

from accounts import cards
from meetings import services
from meetings.models import AgendaItem, Attendance, Meeting, Minutes, Speaker
from tables.services import get_table
from voix.i18n import LOCAL_TIMEZONE, catalog
from voix.permissions import Principal
from votes.models import Vote

from .factories import (
    add_proposal,
    add_user,
    build_world,
    post_form,
    register_card_resident,
    seat,
    sign_in,
    sign_out,
    t,
)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


def next_week() -> dict[str, str]:
    day = (datetime.now(LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    return {"date": day, "start": "18:30", "end": "20:00"}


def meeting_form(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Réunion de la table — rénovation",
        **next_week(),
        "place": "Centre social Flamants-Iris",
        "address": "12 avenue Salvador Allende, 13014 Marseille",
        "languages": ["fr", "ar"],
        "agenda": "Accueil\nLes ascenseurs de la tour G\n\nQuestions diverses",
        **overrides,
    }


async def schedule(client, world, **overrides: Any) -> int:
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(client, "/tables/flamants-iris/meetings", meeting_form(**overrides))
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


async def start(client, meeting_id: int) -> None:
    response = await post_form(client, f"/meetings/{meeting_id}/open", {})
    assert response.status_code == 303, response.text


async def present(meeting_id: int) -> list[dict[str, Any]]:
    return await Attendance.select(Attendance.person, Attendance.method).where(
        Attendance.meeting == meeting_id
    )


# Scheduling and the calendar


async def test_a_facilitator_schedules_a_meeting_that_residents_see(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    meeting = await Meeting.select().where(Meeting.id == meeting_id).first()
    assert meeting["languages"] == "fr ar"
    starts = meeting["starts_at"]
    starts = starts if starts.tzinfo else starts.replace(tzinfo=UTC)
    assert starts.astimezone(LOCAL_TIMEZONE).strftime("%H:%M") == "18:30"
    items = await AgendaItem.select(AgendaItem.title).order_by(AgendaItem.position)
    assert [i["title"] for i in items] == [
        "Accueil",
        "Les ascenseurs de la tour G",
        "Questions diverses",
    ]
    page = await client.get(f"/meetings/{meeting_id}")
    assert "Centre social Flamants-Iris" in page.text
    assert "Les ascenseurs de la tour G" in page.text

    sign_in_resident = world.users["resident_a"]
    await sign_in(client, sign_in_resident)
    home = await client.get("/")
    assert t("Your next meetings") in home.text
    assert "Réunion de la table — rénovation" in home.text
    table = await client.get("/tables/flamants-iris")
    assert "Réunion de la table — rénovation" in table.text
    calendar = await client.get("/tables/flamants-iris/meetings")
    assert f"/meetings/{meeting_id}" in calendar.text
    # The other table's resident sees nothing of it on their home page.
    await sign_in(client, world.users["resident_b"])
    assert "Réunion de la table — rénovation" not in (await client.get("/")).text


@pytest.mark.parametrize(
    ("overrides", "field_message"),
    [
        ({"date": "2020-01-10"}, "The meeting must start in the future."),
        ({"start": "20:00", "end": "19:00"}, "The meeting must end after it starts."),
        ({"languages": []}, "Choose at least one language."),
        ({"languages": ["fr", "xx"]}, "Choose at least one language."),
        (
            {"date": "10/12/2026"},
            "Please give the date as day, month and year (for example 2026-12-03).",
        ),
        ({"start": "25:00"}, "Please give the time as hours and minutes (for example 18:30)."),
        ({"place": ""}, "This field is required."),
    ],
)
async def test_bad_meetings_are_refused_and_nothing_is_stored(
    client, overrides: dict[str, Any], field_message: str
) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client, "/tables/flamants-iris/meetings?lang=ar", meeting_form(**overrides)
    )
    assert response.status_code == 400
    assert t(field_message, "ar") in response.text
    assert await Meeting.count() == 0
    assert await AgendaItem.count() == 0


async def test_only_those_who_run_the_table_schedule(client) -> None:
    world = await build_world()
    for role in ("resident_a", "facilitator_b", "coordinator_b"):
        await sign_in(client, world.users[role])
        response = await post_form(client, "/tables/flamants-iris/meetings", meeting_form())
        assert response.status_code == 403, role
    await sign_in(client, world.users["coordinator_a"])
    response = await post_form(client, "/tables/flamants-iris/meetings", meeting_form())
    assert response.status_code == 303
    assert await Meeting.count() == 1


async def test_agenda_items_bring_this_table_s_proposals_and_votes_only(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world, agenda="")
    mine = await add_proposal(world.table_a, "Un jardin partagé")
    theirs = await add_proposal(world.table_b, "Proposition d'une autre table")
    other_vote = await Vote.insert(
        Vote(table=world.table_b["id"], proposal=theirs, question="Autre table ?")
    ).returning(Vote.id)

    refused = await post_form(client, f"/meetings/{meeting_id}/agenda", {"proposal": str(theirs)})
    assert refused.status_code == 400
    assert t("This proposal belongs to another table.") in refused.text
    refused = await post_form(
        client, f"/meetings/{meeting_id}/agenda", {"vote": str(other_vote[0]["id"])}
    )
    assert refused.status_code == 400
    assert t("This vote belongs to another table.") in refused.text
    empty = await post_form(client, f"/meetings/{meeting_id}/agenda", {"title": ""})
    assert empty.status_code == 400
    assert await AgendaItem.count() == 0

    added = await post_form(client, f"/meetings/{meeting_id}/agenda", {"proposal": str(mine)})
    assert added.status_code == 303
    free = await post_form(client, f"/meetings/{meeting_id}/agenda", {"title": "Point libre"})
    assert free.status_code == 303
    items = await services.agenda(meeting_id)
    assert [(i["title"], i["proposal"]) for i in items] == [
        ("Un jardin partagé", mine),
        ("Point libre", None),
    ]
    moved = await post_form(
        client,
        f"/meetings/{meeting_id}/agenda/{items[1]['id']}",
        {"action": "up", "back": "meeting"},
    )
    assert moved.status_code == 303
    assert [i["title"] for i in await services.agenda(meeting_id)] == [
        "Point libre",
        "Un jardin partagé",
    ]
    # Another table's facilitator cannot touch this agenda.
    await sign_in(client, world.users["facilitator_b"])
    refused = await post_form(
        client, f"/meetings/{meeting_id}/agenda/{items[1]['id']}", {"action": "remove"}
    )
    assert refused.status_code == 403
    assert await AgendaItem.count() == 2


async def test_the_ics_feed_parses_back_with_every_meeting(client) -> None:
    world = await build_world()
    first = await schedule(client, world)
    second = await schedule(
        client, world, title="Assemblée de quartier", start="10:00", end="12:00"
    )
    assert (await post_form(client, f"/meetings/{second}/cancel", {})).status_code == 303

    sign_out(client)
    response = await client.get("/tables/flamants-iris/meetings.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {"Réunion de la table — rénovation", "Assemblée de quartier"}
    event = events["Réunion de la table — rénovation"]
    start = event.decoded("dtstart")
    assert start.astimezone(LOCAL_TIMEZONE).strftime("%H:%M") == "18:30"
    assert event.decoded("dtend") - start == timedelta(minutes=90)
    assert "Centre social Flamants-Iris" in str(event["location"])
    assert str(event["url"]).endswith(f"/meetings/{first}")
    assert "2. Les ascenseurs de la tour G" in str(event["description"])
    assert str(event["status"]) == "CONFIRMED"
    assert str(events["Assemblée de quartier"]["status"]) == "CANCELLED"
    assert len({str(e["uid"]) for e in events.values()}) == 2


async def test_the_poster_is_an_a4_pdf_in_the_meeting_s_languages(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world, languages=["fr", "en"])
    sign_out(client)
    response = await client.get(f"/meetings/{meeting_id}/poster.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(float(width)), round(float(height))) == (595, 842)  # A4 in points
    text = pdf_text(response.content)
    assert "Réunion de la table —" in text  # the title, in large type over two lines
    assert t("The neighbourhood table invites you", "fr") in text
    assert t("The neighbourhood table invites you", "en") in text
    assert "Les ascenseurs de la tour G" in text


# Attendance


async def test_three_ways_to_check_in_each_recorded_and_nobody_twice(client) -> None:
    world = await build_world()
    resident_c = await add_user("resident-c", "Samira")
    await seat(resident_c, world.table_a)
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)

    # 1. The resident, on their phone, from the QR code.
    await sign_in(client, world.users["resident_a"], verified=False)
    page = await client.get(f"/meetings/{meeting_id}/check-in")
    assert t("I am here: check in") in page.text
    assert (await post_form(client, f"/meetings/{meeting_id}/check-in", {})).status_code == 303
    again = await post_form(client, f"/meetings/{meeting_id}/check-in", {})
    assert again.status_code == 409
    assert (
        t("%(name)s is already checked in. Nobody is counted twice.", name="Resident-A")
        in again.text
    )

    # 2. The facilitator ticks a member on the list; 3. a walk-in by name.
    await sign_in(client, world.users["facilitator_a"])
    ticked = await post_form(
        client, f"/meetings/{meeting_id}/attendance/members/{resident_c}", {"back": "attendance"}
    )
    assert ticked.status_code == 303
    # Back on the list where that person is (issue 12): the row is the fragment's target.
    assert ticked.headers["location"] == f"/meetings/{meeting_id}/attendance#person-{resident_c}"
    walk_in = await post_form(
        client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": "Fatou"}
    )
    assert walk_in.status_code == 303
    for url, data in (
        (f"/meetings/{meeting_id}/attendance/members/{world.users['resident_a']}", {}),
        (f"/meetings/{meeting_id}/attendance/members/{resident_c}", {}),
        (f"/meetings/{meeting_id}/attendance/walk-in", {"name": "  FATOU "}),
    ):
        refused = await post_form(client, url, data)
        assert refused.status_code == 409, url
    assert sorted((row["person"], row["method"]) for row in await present(meeting_id)) == sorted(
        [
            (f"user:{world.users['resident_a']}", "qr"),
            (f"user:{resident_c}", "list"),
            ("name:fatou", "walk_in"),
        ]
    )
    listing = await client.get(f"/meetings/{meeting_id}/attendance")
    three = catalog("fr").ngettext("%(num)d person present", "%(num)d people present", 3)
    assert f'<p class="present-total" role="status">{three % {"num": 3}}</p>' in listing.text
    for label in ("QR code, on their phone", "Ticked by the facilitator", "Walk-in, by name"):
        assert t(label) in listing.text

    # Someone who is not a member cannot be ticked; an empty walk-in name is refused.
    refused = await post_form(
        client, f"/meetings/{meeting_id}/attendance/members/{world.users['resident_b']}", {}
    )
    assert refused.status_code == 404
    refused = await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": " "})
    assert refused.status_code == 400
    assert len(await present(meeting_id)) == 3


async def test_no_check_in_before_the_meeting_starts_or_after_it_closes(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    refused = await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": "Ali"})
    assert refused.status_code == 409
    assert t("This meeting is not being held now: check-in is not possible.") in refused.text
    await start(client, meeting_id)
    assert (await post_form(client, f"/meetings/{meeting_id}/close", {})).status_code == 303
    await sign_in(client, world.users["resident_a"])
    refused = await post_form(client, f"/meetings/{meeting_id}/check-in?lang=en", {})
    assert refused.status_code == 409
    assert t("This meeting is not being held now: check-in is not possible.", "en") in refused.text
    assert await present(meeting_id) == []


async def test_a_card_signs_in_to_check_in_and_a_revoked_card_does_not(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    facilitator = Principal(
        user_id=world.users["facilitator_a"],
        table_roles={world.table_a["id"]: "facilitator"},
        verified=True,
    )
    table = await get_table("flamants-iris")
    # Cards are for residents registered in person, without a password.
    card_resident, code = await register_card_resident(facilitator, table)

    sign_out(client)
    page = await client.get(f"/meetings/{meeting_id}/check-in")
    assert f"/card?next=/meetings/{meeting_id}/check-in" in page.text
    signed = await post_form(
        client, "/card", {"code": code, "next": f"/meetings/{meeting_id}/check-in"}
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == f"/meetings/{meeting_id}/check-in"

    await cards.revoke_cards(facilitator, table, card_resident)
    refused = await post_form(client, f"/meetings/{meeting_id}/check-in", {})
    assert refused.status_code == 401
    again = await post_form(client, "/card", {"code": code})
    assert again.status_code == 400
    assert await present(meeting_id) == []


async def test_the_sign_in_sheet_lists_who_came_with_a_signature_column(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    blank = await client.get(f"/meetings/{meeting_id}/sign-in-sheet.pdf?blank=1")
    assert blank.status_code == 200
    text = pdf_text(blank.content)
    assert t("Sign-in sheet") in text
    assert "Resident-A" in text  # the members, ready to sign
    assert t("Signature") in text
    assert "Avec Nous" in text

    await start(client, meeting_id)
    await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": "Mme Benali"})
    await post_form(
        client, f"/meetings/{meeting_id}/attendance/members/{world.users['resident_a']}", {}
    )
    sheet = await client.get(f"/meetings/{meeting_id}/sign-in-sheet.pdf")
    text = pdf_text(sheet.content)
    for expected in (
        "Réunion de la table — rénovation",
        "Centre social Flamants-Iris",
        "Mme Benali",
        "Resident-A",
        t("Walk-in, by name"),
        t("Ticked by the facilitator"),
        "2 personnes présentes",
        "Avec Nous",
    ):
        assert expected in text, expected

    for role in ("resident_a", "facilitator_b"):
        await sign_in(client, world.users[role])
        assert (await client.get(f"/meetings/{meeting_id}/sign-in-sheet.pdf")).status_code == 403


# The room


async def test_the_room_follows_the_agenda_the_speakers_and_the_vote(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs")
    meeting_id = await schedule(client, world, agenda="Accueil")
    opened = await post_form(
        client, f"/proposals/{proposal}/votes", {"question": "Adopter la proposition ?"}
    )
    vote_id = int(opened.headers["location"].rsplit("/", 1)[1])
    await post_form(client, f"/meetings/{meeting_id}/agenda", {"vote": str(vote_id)})
    await start(client, meeting_id)
    items = await services.agenda(meeting_id)
    current = await post_form(
        client, f"/meetings/{meeting_id}/agenda/{items[1]['id']}", {"action": "current"}
    )
    assert current.headers["location"] == f"/meetings/{meeting_id}/control"

    for name in ("Nadia", "Karim", "Mounir"):
        await post_form(client, f"/meetings/{meeting_id}/speakers", {"name": name})
    speakers = {row["name"]: row["id"] for row in await Speaker.select(Speaker.id, Speaker.name)}
    await post_form(
        client, f"/meetings/{meeting_id}/speakers/{speakers['Mounir']}", {"action": "up"}
    )
    await post_form(
        client, f"/meetings/{meeting_id}/speakers/{speakers['Nadia']}", {"action": "start"}
    )
    queue = await services.queue(meeting_id)
    assert queue["speaking"]["name"] == "Nadia"
    assert [s["name"] for s in queue["waiting"]] == ["Mounir", "Karim"]
    # Giving the floor to the next ends the previous turn.
    await post_form(
        client, f"/meetings/{meeting_id}/speakers/{speakers['Mounir']}", {"action": "start"}
    )
    queue = await services.queue(meeting_id)
    assert queue["speaking"]["name"] == "Mounir"
    assert [s["name"] for s in queue["done"]] == ["Nadia"]
    twice = await post_form(
        client, f"/meetings/{meeting_id}/speakers/{speakers['Nadia']}", {"action": "start"}
    )
    assert twice.status_code == 409

    # A resident votes on their phone; the screen counts the ballot.
    await sign_in(client, world.users["resident_a"])
    cast = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    assert cast.status_code == 200
    screen = await client.get(f"/meetings/{meeting_id}/screen")
    assert screen.status_code == 200
    assert "Adopter la proposition ?" in screen.text
    assert '<span class="number ballots-cast">1</span>' in screen.text
    assert "Mounir" in screen.text
    assert "Karim" in screen.text
    # htmx asks for the live block only.
    block = await client.get(
        f"/meetings/{meeting_id}/screen", headers={"hx-request": "true", "hx-target": "room"}
    )
    assert "<html" not in block.text
    assert "ballots-cast" in block.text
    # The control view belongs to those who run the table.
    assert (await client.get(f"/meetings/{meeting_id}/control")).status_code == 403

    await sign_in(client, world.users["facilitator_a"])
    control = await client.get(f"/meetings/{meeting_id}/control")
    assert control.status_code == 200
    assert t("End the turn") in control.text

    for role, status in (("resident_b", 403), ("facilitator_b", 403)):
        await sign_in(client, world.users[role])
        assert (await client.get(f"/meetings/{meeting_id}/screen")).status_code == status
    sign_out(client)
    assert (await client.get(f"/meetings/{meeting_id}/screen")).status_code == 303


async def test_closing_ends_the_turn_and_the_chart_counts_those_present(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    for name in ("Awa", "Bilal"):
        await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": name})
    await post_form(client, f"/meetings/{meeting_id}/speakers", {"name": "Awa"})
    speaker = await Speaker.select(Speaker.id).first()
    await post_form(client, f"/meetings/{meeting_id}/speakers/{speaker['id']}", {"action": "start"})
    assert (await post_form(client, f"/meetings/{meeting_id}/close", {})).status_code == 303
    assert (await Speaker.select(Speaker.ended_at).first())["ended_at"] is not None
    assert (await post_form(client, f"/meetings/{meeting_id}/close", {})).status_code == 409

    sign_out(client)
    calendar = await client.get("/tables/flamants-iris/meetings")
    assert '<rect x="' in calendar.text  # the chart
    assert "<td>2</td>" in calendar.text  # and its table
    assert t("The figures as a table") in calendar.text


# Minutes


async def test_minutes_are_sanitised_versioned_public_and_exported(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs")
    theirs = await add_proposal(world.table_b, "Autre table")
    meeting_id = await schedule(client, world)
    body = (
        "## Ouverture\n\nLa séance est **ouverte** à 18h30.\n\n"
        "<script>alert('x')</script>\n\n[piège](javascript:alert(1)) et <img src=x onerror=alert(1)>"
    )
    early = await post_form(
        client, f"/meetings/{meeting_id}/minutes", {"body": body, "action": "publish"}
    )
    assert early.status_code == 400
    assert t("Minutes can be published once the meeting has been held.") in early.text
    draft = await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": body, "action": "save", "proposals": [str(proposal)]},
    )
    assert draft.status_code == 303
    sign_out(client)
    public = await client.get(f"/meetings/{meeting_id}/minutes")
    assert t("The minutes of this meeting are not published yet.") in public.text
    assert "La séance est" not in public.text

    await sign_in(client, world.users["facilitator_a"])
    await start(client, meeting_id)
    await post_form(client, f"/meetings/{meeting_id}/close", {})
    refused = await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": body, "action": "publish", "proposals": [str(theirs)]},
    )
    assert refused.status_code == 400
    assert t("This proposal belongs to another table.") in refused.text
    published = await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": body, "action": "publish", "proposals": [str(proposal)]},
    )
    assert published.status_code == 303
    await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": "Version corrigée.", "action": "publish"},
    )
    assert await Minutes.count() == 2

    sign_out(client)
    latest = await client.get(f"/meetings/{meeting_id}/minutes")
    assert "Version corrigée." in latest.text
    first = await client.get(f"/meetings/{meeting_id}/minutes?version=1")
    assert "<strong>ouverte</strong>" in first.text
    assert "<h2>Ouverture</h2>" in first.text
    assert "<script>alert" not in first.text
    # nh3 drops the script with its content and the image with its handler; markdown-it
    # leaves the javascript: link as plain text.
    assert "alert('x')" not in first.text
    assert 'href="javascript' not in first.text
    assert "<img" not in first.text
    assert "onerror" not in first.text
    assert "Réparer les ascenseurs" in first.text  # the decision it links to
    assert (await client.get(f"/meetings/{meeting_id}/minutes?version=9")).status_code == 404

    pdf = await client.get(f"/meetings/{meeting_id}/minutes.pdf?version=1")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "ouverte" in text
    assert "Réparer les ascenseurs" in text
    assert "alert('x')" not in text  # the script was dropped, not printed
    assert "onerror" not in text


async def test_a_meeting_not_yet_started_can_be_changed_and_the_feed_follows(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    form = await client.get(f"/meetings/{meeting_id}/edit")
    assert 'value="18:30"' in form.text
    changed = await post_form(
        client,
        f"/meetings/{meeting_id}/edit",
        meeting_form(place="Maison pour tous", start="17:00", languages=["ar"]),
    )
    assert changed.status_code == 303
    meeting = await services.get(meeting_id)
    assert meeting["place"] == "Maison pour tous"
    assert meeting["languages"] == ["ar"]
    assert meeting["starts_at"].astimezone(LOCAL_TIMEZONE).strftime("%H:%M") == "17:00"
    assert await AgendaItem.count() == 3  # the agenda is left as it was
    feed = Calendar.from_ical((await client.get("/tables/flamants-iris/meetings.ics")).content)
    assert "Maison pour tous" in str(next(iter(feed.walk("VEVENT")))["location"])

    refused = await post_form(
        client, f"/meetings/{meeting_id}/edit", meeting_form(date="2020-01-01")
    )
    assert refused.status_code == 400
    await start(client, meeting_id)
    late = await post_form(client, f"/meetings/{meeting_id}/edit", meeting_form(place="Ailleurs"))
    assert late.status_code == 409
    assert (await services.get(meeting_id))["place"] == "Maison pour tous"


async def test_a_resident_s_data_includes_the_meetings_they_attended(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    await post_form(
        client, f"/meetings/{meeting_id}/attendance/members/{world.users['resident_a']}", {}
    )
    await sign_in(client, world.users["resident_a"])
    data = (await client.get("/account/data.json")).json()
    assert [(m["meeting"], m["method"]) for m in data["meetings_attended"]] == [
        (meeting_id, "list")
    ]


@pytest.mark.parametrize(
    ("markdown", "kept", "gone"),
    [
        ("<script>alert(1)</script>Bonjour", "Bonjour", "alert"),
        ('<a href="javascript:alert(1)">lien</a>', "lien", "javascript"),
        ("[lien](javascript:alert(1))", "lien", 'href="javascript'),
        ('<img src="https://tracker.example/x.png">', "", "<img"),
        ('<p style="color:red" onclick="x()">texte</p>', "texte", "onclick"),
        ('<iframe src="https://evil.example"></iframe>ok', "ok", "iframe"),
        ("[site](https://ville.example)", 'rel="noopener noreferrer nofollow"', "target="),
        ("# Titre", "<h2>Titre</h2>", "<h1>"),
    ],
)
def test_minutes_markdown_comes_out_inert(markdown: str, kept: str, gone: str) -> None:
    html = str(services.render_markdown(markdown))
    assert kept in html
    assert gone not in html


async def test_a_walk_in_name_with_an_invisible_mark_is_the_same_person(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    first = await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": "Fatou"})
    assert first.status_code == 303
    for name in ("Fatou\u200e", "\u2067Fatou\u2069", "Fa\u202etou"):
        again = await post_form(
            client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": name}
        )
        assert again.status_code == 409, name
    assert await present(meeting_id) == [{"person": "name:fatou", "method": "walk_in"}]
    sheet = await client.get(f"/meetings/{meeting_id}/attendance")
    assert "\u200e" not in sheet.text
    assert "\u202e" not in sheet.text


async def test_public_minutes_leave_out_a_proposal_hidden_since(client) -> None:
    world = await build_world()
    kept = await add_proposal(world.table_a, "Réparer les ascenseurs")
    hidden = await add_proposal(world.table_a, "Un titre injurieux")
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    await post_form(client, f"/meetings/{meeting_id}/close", {})
    published = await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": "Séance ouverte.", "action": "publish", "proposals": [str(kept), str(hidden)]},
    )
    assert published.status_code == 303
    await post_form(client, f"/proposals/{hidden}/moderation", {"reason": "Propos injurieux"})
    sign_out(client)
    page = await client.get(f"/meetings/{meeting_id}/minutes")
    assert "Réparer les ascenseurs" in page.text
    assert "injurieux" not in page.text
    text = pdf_text((await client.get(f"/meetings/{meeting_id}/minutes.pdf")).content)
    assert "Réparer les ascenseurs" in text
    assert "injurieux" not in text


async def test_a_proposal_hidden_after_it_went_on_the_agenda_leaves_no_trace_there(
    client,
) -> None:
    world = await build_world()
    hidden = await add_proposal(world.table_a, "Un titre injurieux")
    meeting_id = await schedule(client, world)
    added = await post_form(client, f"/meetings/{meeting_id}/agenda", {"proposal": str(hidden)})
    assert added.status_code == 303
    await post_form(client, f"/proposals/{hidden}/moderation", {"reason": "Propos injurieux"})
    withdrawn = t("Item withdrawn by the moderation")

    # Everyone, the facilitator included (the poster and the feed are public documents).
    for who in ("anonymous", "facilitator"):
        if who == "anonymous":
            sign_out(client)
        meeting_page = await client.get(f"/meetings/{meeting_id}")
        assert "injurieux" not in meeting_page.text
        assert withdrawn in meeting_page.text
        assert f'href="/proposals/{hidden}"' not in meeting_page.text
        feed = await client.get("/tables/flamants-iris/meetings.ics")
        assert "injurieux" not in feed.text
        poster = pdf_text((await client.get(f"/meetings/{meeting_id}/poster.pdf")).content)
        assert "injurieux" not in poster
        assert "Point retiré par la modération" in poster
        if who == "anonymous":
            await sign_in(client, world.users["facilitator_a"])

    await start(client, meeting_id)
    screen = await client.get(f"/meetings/{meeting_id}/screen")
    assert "injurieux" not in screen.text

    # And a hidden proposal cannot be put on an agenda again.
    refused = await post_form(client, f"/meetings/{meeting_id}/agenda", {"proposal": str(hidden)})
    assert refused.status_code == 400
    assert t("This proposal is hidden by the moderation: it cannot go on an agenda.") in (
        refused.text
    )
    choices = await client.get(f"/meetings/{meeting_id}")
    assert f'<option value="{hidden}"' not in choices.text
