"""Buttons that forgive (issue 12): acts that cannot be taken back ask first and say what they
do, a closing made by mistake can be undone the same evening, a refused check-in keeps the
facilitator on the list with what they typed, a forgotten meeting can still be recorded, the
control view waits for the start, and a tick brings the page back where the person was.

Confirmations are pages of their own: the GET of an act's address says what will happen and
carries the POST button that does it; without JavaScript, the same for everyone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from markupsafe import Markup

from accounts import cards
from accounts.models import LoginCard, User
from accounts.services import create_user
from audit.models import AuditEntry
from meetings import services
from meetings.models import Attendance, Meeting, Minutes
from voix.i18n import LOCAL_TIMEZONE, catalog

from .factories import add_user, build_world, post_form, seat, sign_in, sign_out, t

RESIDENT = {"display_name": "Fatou", "language": "fr", "consent": "yes"}
REOPEN_AT_CLOSING = (
    "Closed by mistake? A coordinator can reopen it until %(time)s, as long as no minutes are "
    "published."
)
NOTHING_TO_REVOKE = "%(name)s has no card that works: there is nothing to revoke."
NONE_WORKS = "%(name)s has no card that works now: no other card stops working."
STARTS_LATE = (
    "It was due to start at %(time)s. You can still start it this evening: check-in opens as usual."
)


def shown(msgid: str, **params: Any) -> str:
    """A template's message as the page shows it: the catalog's text as it is (Jinja trusts
    it), the values escaped unless already markup, as a name in <bdi> is."""
    return str(Markup(catalog("fr").gettext(msgid)) % params)  # noqa: S704 — the catalog


def bdi(text: str) -> Markup:
    return Markup("<bdi>{}</bdi>").format(text)


def before(msgid: str) -> str:
    """The part of a template's message before its first value (a time, which moves)."""
    return catalog("fr").gettext(msgid).split("%(")[0]


def after(msgid: str) -> str:
    """The part of a template's message after its last value."""
    return catalog("fr").gettext(msgid).rsplit(")s", 1)[1]


def meeting_form(**overrides: Any) -> dict[str, Any]:
    day = (datetime.now(LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    return {
        "title": "Réunion de la table",
        "date": day,
        "start": "18:30",
        "end": "20:00",
        "place": "Centre social Flamants-Iris",
        "address": "12 avenue Salvador Allende, 13014 Marseille",
        "languages": ["fr"],
        "agenda": "Accueil\nLes ascenseurs\nQuestions diverses",
        **overrides,
    }


async def schedule(client: AsyncClient, world: Any, **overrides: Any) -> int:
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(client, "/tables/flamants-iris/meetings", meeting_form(**overrides))
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


async def start(client: AsyncClient, meeting_id: int) -> Any:
    response = await post_form(client, f"/meetings/{meeting_id}/open", {})
    assert response.status_code == 303, response.text
    return response


async def move(meeting_id: int, starts_at: datetime, hours: float = 1.5) -> None:
    """The meeting's times, as if it had been scheduled then."""
    await Meeting.update(
        {Meeting.starts_at: starts_at, Meeting.ends_at: starts_at + timedelta(hours=hours)}
    ).where(Meeting.id == meeting_id)


async def status(meeting_id: int) -> str:
    return (await services.get(meeting_id))["status"]


async def actions() -> list[str]:
    return [row["action"] for row in await AuditEntry.select(AuditEntry.action)]


def forms_to(html: str, action: str) -> list[str]:
    """The method of every form sent to this address."""
    return re.findall(rf'<form method="(\w+)" action="{re.escape(action)}"', html)


# 1. Acts that cannot be taken back ask first, and say what they do.


async def test_closing_asks_first_and_says_what_happens(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": "Awa"})
    await post_form(client, f"/meetings/{meeting_id}/speakers", {"name": "Bilal"})
    speaker = (await services.queue(meeting_id))["waiting"][0]["id"]
    await post_form(client, f"/meetings/{meeting_id}/speakers/{speaker}", {"action": "start"})

    control = await client.get(f"/meetings/{meeting_id}/control")
    # The control view's button only leads to the question.
    assert forms_to(control.text, f"/meetings/{meeting_id}/close") == ["get"]
    asked = await client.get(f"/meetings/{meeting_id}/close")
    assert asked.status_code == 200
    assert shown("Close the meeting?") in asked.text
    assert (
        catalog("fr").ngettext(
            "Check-in ends: %(num)d person is present, and nobody can be added after.",
            "Check-in ends: %(num)d people are present, and nobody can be added after.",
            1,
        )
        % {"num": 1}
        in asked.text
    )
    assert "Bilal" in asked.text  # the turn that ends
    assert shown("You can then write and publish the minutes.") in asked.text
    assert before(REOPEN_AT_CLOSING) in asked.text
    assert forms_to(asked.text, f"/meetings/{meeting_id}/close") == ["post"]
    assert await status(meeting_id) == "open"  # asking changed nothing

    closed = await post_form(client, f"/meetings/{meeting_id}/close", {})
    assert closed.status_code == 303
    assert await status(meeting_id) == "closed"
    # Asked again, once closed: no button, the reason.
    again = await client.get(f"/meetings/{meeting_id}/close")
    assert again.status_code == 200
    assert shown("This meeting is not being held now: it cannot be closed.") in again.text
    assert forms_to(again.text, f"/meetings/{meeting_id}/close") == []


async def test_cancelling_asks_first_and_says_what_happens(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    meeting = await client.get(f"/meetings/{meeting_id}")
    assert forms_to(meeting.text, f"/meetings/{meeting_id}/cancel") == ["get"]
    asked = await client.get(f"/meetings/{meeting_id}/cancel")
    assert asked.status_code == 200
    assert shown("Cancel the meeting?") in asked.text
    assert (
        shown("The calendar, and the phones that follow it, will show the meeting as cancelled.")
        in asked.text
    )
    assert forms_to(asked.text, f"/meetings/{meeting_id}/cancel") == ["post"]
    assert shown("No, keep the meeting") in asked.text
    assert await status(meeting_id) == "scheduled"

    assert (await post_form(client, f"/meetings/{meeting_id}/cancel", {})).status_code == 303
    assert await status(meeting_id) == "cancelled"
    again = await client.get(f"/meetings/{meeting_id}/cancel")
    assert forms_to(again.text, f"/meetings/{meeting_id}/cancel") == []


async def test_only_those_who_run_the_table_are_asked(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    for role in ("resident_a", "facilitator_b", "coordinator_b"):
        await sign_in(client, world.users[role])
        for act in ("close", "cancel"):
            response = await client.get(f"/meetings/{meeting_id}/{act}")
            assert response.status_code == 403, (role, act)
    sign_out(client)
    anonymous = await client.get(f"/meetings/{meeting_id}/cancel", follow_redirects=False)
    assert anonymous.status_code in (302, 303)


async def register(client: AsyncClient, name: str = "Fatou") -> int:
    response = await post_form(
        client, "/tables/flamants-iris/residents", {**RESIDENT, "display_name": name}
    )
    assert response.headers["content-type"] == "application/pdf"
    user = await User.select(User.id).where(User.display_name == name).first()
    assert user is not None
    return int(user["id"])


async def first_attendance() -> int:
    row = await Attendance.select(Attendance.id).first()
    assert row is not None
    return int(row["id"])


async def test_a_new_card_asks_first_and_says_the_current_one_stops(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id = await register(client)
    base = f"/tables/flamants-iris/residents/{user_id}"

    listing = await client.get("/tables/flamants-iris/residents")
    assert forms_to(listing.text, f"{base}/card") == ["get"]
    assert forms_to(listing.text, f"{base}/card/revoke") == ["get"]
    assert shown("Print a new card") in listing.text

    asked = await client.get(f"{base}/card")
    assert asked.status_code == 200
    assert shown("The current card will stop working.") in asked.text
    assert shown("Why a new card?") in asked.text
    assert forms_to(asked.text, f"{base}/card") == ["post"]
    assert await LoginCard.count() == 1  # asking printed nothing

    # A reason too short: the same page again, with what was typed and why it is refused.
    refused = await post_form(client, f"{base}/card", {"reason": "ok"})
    assert refused.status_code == 400
    assert shown("The current card will stop working.") in refused.text
    assert 'value="ok"' in refused.text
    assert t("Please write at least %(min)d characters.", min=3) in refused.text
    assert await LoginCard.count() == 1

    printed = await post_form(client, f"{base}/card", {"reason": "carte perdue"})
    assert printed.headers["content-type"] == "application/pdf"
    assert await LoginCard.count() == 2


async def test_revoking_asks_first_and_says_the_card_stops(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    user_id = await register(client)
    base = f"/tables/flamants-iris/residents/{user_id}"
    asked = await client.get(f"{base}/card/revoke")
    assert asked.status_code == 200
    assert shown("The current card will stop working.") in asked.text
    assert forms_to(asked.text, f"{base}/card/revoke") == ["post"]
    assert await LoginCard.count().where(LoginCard.revoked_at.is_null()) == 1

    revoked = await post_form(client, f"{base}/card/revoke", {})
    assert revoked.status_code == 303
    assert await LoginCard.count().where(LoginCard.revoked_at.is_null()) == 0
    # Nothing left to revoke: said, and no button.
    again = await client.get(f"{base}/card/revoke")
    assert again.status_code == 200
    assert forms_to(again.text, f"{base}/card/revoke") == []
    assert shown(NOTHING_TO_REVOKE, name=bdi("Fatou")) in again.text
    # The next card is a new one (a reason asked), and no other card stops working.
    asked = await client.get(f"{base}/card")
    assert shown("Why a new card?") in asked.text
    assert shown(NONE_WORKS, name=bdi("Fatou")) in asked.text
    assert shown("The current card will stop working.") not in asked.text


async def test_the_first_card_is_called_so_and_needs_no_reason(client: AsyncClient) -> None:
    world = await build_world()
    # A resident with no password and no card yet (registered before cards were printed).
    newcomer = (await create_user("h-newcomer", "Zohra", "")).id
    await seat(newcomer, world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    base = f"/tables/flamants-iris/residents/{newcomer}"
    listing = await client.get("/tables/flamants-iris/residents")
    assert shown("Print the first card") in listing.text
    asked = await client.get(f"{base}/card")
    assert asked.status_code == 200
    assert shown("This is the first card of %(name)s.", name=bdi("Zohra")) in asked.text
    assert shown("Why a new card?") not in asked.text
    assert shown("The current card will stop working.") not in asked.text

    printed = await post_form(client, f"{base}/card", {})
    assert printed.headers["content-type"] == "application/pdf"
    assert "card.issued" in await actions()
    assert "card.reprinted" not in await actions()
    listing = await client.get("/tables/flamants-iris/residents")
    assert shown("Print the first card") not in listing.text
    assert shown("Print a new card") in listing.text
    # The second one is a new card: it says why.
    assert (await post_form(client, f"{base}/card", {})).status_code == 400


async def test_no_card_page_for_those_who_cannot_hold_one(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    base = "/tables/flamants-iris/residents"
    password_holder = await client.get(f"{base}/{world.users['resident_a']}/card")
    assert password_holder.status_code == 403
    assert t(cards.NO_CARD_FOR_THEM) in password_holder.text
    other_table = await client.get(f"{base}/{world.users['resident_b']}/card/revoke")
    assert other_table.status_code == 404
    await sign_in(client, world.users["resident_a"])
    assert (await client.get(f"{base}/{world.users['resident_a']}/card/revoke")).status_code == 403


# 2. A closing made by mistake is undone by a coordinator, the same evening.


@pytest.mark.parametrize(
    ("closed", "until"),
    [
        ("2026-11-26 21:30", "2026-11-27 04:00"),  # the evening: until 4 in the morning
        ("2026-11-26 14:00", "2026-11-27 04:00"),  # an afternoon meeting: the same
        ("2026-11-27 02:00", "2026-11-27 08:00"),  # after midnight: six hours at least
        ("2026-11-26 23:30", "2026-11-27 05:30"),
        ("2026-03-28 22:00", "2026-03-29 05:00"),  # the clocks go forward: still six hours
    ],
)
def test_the_evening_ends_at_four_and_never_within_six_hours(closed: str, until: str) -> None:
    moment = datetime.fromisoformat(closed).replace(tzinfo=LOCAL_TIMEZONE)
    end = services.end_of_evening(moment.astimezone(UTC))
    assert end.astimezone(LOCAL_TIMEZONE).strftime("%Y-%m-%d %H:%M") == until


async def test_a_coordinator_reopens_a_meeting_closed_by_mistake(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    await post_form(client, f"/meetings/{meeting_id}/close", {})

    # The facilitator who closed it is told who can undo it, and until when.
    page = await client.get(f"/meetings/{meeting_id}")
    assert before("Closed by mistake? A coordinator can reopen it until %(time)s.") in page.text
    assert forms_to(page.text, f"/meetings/{meeting_id}/reopen") == []
    refused = await post_form(client, f"/meetings/{meeting_id}/reopen", {})
    assert refused.status_code == 403
    assert await status(meeting_id) == "closed"

    await sign_in(client, world.users["coordinator_a"])
    page = await client.get(f"/meetings/{meeting_id}")
    assert forms_to(page.text, f"/meetings/{meeting_id}/reopen") == ["post"]
    reopened = await post_form(client, f"/meetings/{meeting_id}/reopen", {})
    assert reopened.status_code == 303
    assert reopened.headers["location"] == f"/meetings/{meeting_id}/control"
    meeting = await services.get(meeting_id)
    assert (meeting["status"], meeting["closed_at"]) == ("open", None)
    assert "meeting.reopened" in await actions()
    # The room is back: someone arriving late is checked in.
    late = await post_form(client, f"/meetings/{meeting_id}/attendance/walk-in", {"name": "Awa"})
    assert late.status_code == 303
    # Reopening what is open is refused.
    assert (await post_form(client, f"/meetings/{meeting_id}/reopen", {})).status_code == 409
    # Other organisations cannot.
    await post_form(client, f"/meetings/{meeting_id}/close", {})
    for role in ("coordinator_b", "facilitator_b", "resident_a"):
        await sign_in(client, world.users[role])
        response = await post_form(client, f"/meetings/{meeting_id}/reopen", {})
        assert response.status_code == 403, role
    assert await status(meeting_id) == "closed"


async def test_no_reopening_after_the_evening_or_once_minutes_are_published(
    client: AsyncClient,
) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    await post_form(client, f"/meetings/{meeting_id}/close", {})
    await Meeting.update({Meeting.closed_at: datetime.now(UTC) - timedelta(days=2)}).where(
        Meeting.id == meeting_id
    )
    await sign_in(client, world.users["coordinator_a"])
    page = await client.get(f"/meetings/{meeting_id}")
    assert forms_to(page.text, f"/meetings/{meeting_id}/reopen") == []
    late = await post_form(client, f"/meetings/{meeting_id}/reopen", {})
    assert late.status_code == 409
    assert t(services.TOO_LATE_TO_REOPEN) in late.text
    assert await status(meeting_id) == "closed"

    await Meeting.update({Meeting.closed_at: datetime.now(UTC)}).where(Meeting.id == meeting_id)
    published = await post_form(
        client, f"/meetings/{meeting_id}/minutes", {"body": "Compte rendu.", "action": "publish"}
    )
    assert published.status_code == 303
    assert await Minutes.count() == 1
    refused = await post_form(client, f"/meetings/{meeting_id}/reopen", {})
    assert refused.status_code == 409
    assert t(services.MINUTES_ALREADY_PUBLISHED) in refused.text
    assert await status(meeting_id) == "closed"
    assert "meeting.reopened" not in await actions()


# 3. A refused check-in keeps the facilitator on the list, with what they typed.


async def test_two_walk_ins_of_the_same_name_are_told_apart_on_the_list(
    client: AsyncClient,
) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    url = f"/meetings/{meeting_id}/attendance/walk-in"
    first = await post_form(client, url, {"name": "Karim", "back": "attendance"})
    assert first.status_code == 303
    second = await post_form(client, url, {"name": "karim ", "back": "attendance"})
    assert second.status_code == 409
    # Not an error page: the attendance list, its form holding what was typed, the message
    # beside the name.
    assert shown("Someone without an account") in second.text
    assert shown("Members of the table") in second.text
    assert 'value="karim "' in second.text
    assert 'aria-invalid="true"' in second.text
    assert t(services.WALK_IN_NAMESAKE, name="karim") in second.text
    told_apart = await post_form(client, url, {"name": "Karim B.", "back": "attendance"})
    assert told_apart.status_code == 303
    names = {row["name"] for row in await Attendance.select(Attendance.name)}
    assert names == {"Karim", "Karim B."}


async def test_every_refused_check_in_comes_back_to_the_list(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    url = f"/meetings/{meeting_id}/attendance/walk-in"
    # Not started yet: the list, and why.
    early = await post_form(client, url, {"name": "Ali"})
    assert early.status_code == 409
    assert shown("Attendance") in early.text
    assert t("This meeting is not being held now: check-in is not possible.") in early.text
    assert 'role="alert"' in early.text

    await start(client, meeting_id)
    # A member's name: tick them instead (or add an initial), the name kept in the field.
    member = await post_form(client, url, {"name": "Resident-A"})
    assert member.status_code == 409
    assert t(services.WALK_IN_IS_MEMBER, name="Resident-A") in member.text
    assert 'value="Resident-A"' in member.text
    assert shown("Members of the table") in member.text
    # An empty name.
    empty = await post_form(client, url, {"name": "  "})
    assert empty.status_code == 400
    assert t("This field is required.") in empty.text
    assert shown("Members of the table") in empty.text
    # A member ticked twice (two facilitators at once): the list, not an error page.
    tick = f"/meetings/{meeting_id}/attendance/members/{world.users['resident_a']}"
    assert (await post_form(client, tick, {"back": "attendance"})).status_code == 303
    twice = await post_form(client, tick, {"back": "attendance"})
    assert twice.status_code == 409
    assert shown("Members of the table") in twice.text
    assert t(services.ALREADY_CHECKED_IN, name="Resident-A") in twice.text
    # Removing what is already gone.
    row = await first_attendance()
    removal = f"/meetings/{meeting_id}/attendance/{row}/remove"
    assert (await post_form(client, removal, {"back": "attendance"})).status_code == 303
    gone = await post_form(client, removal, {"back": "attendance"})
    assert gone.status_code == 404
    assert shown("Members of the table") in gone.text
    assert await Attendance.count() == 0


# 4. A meeting forgotten in the schedule can still be recorded.


async def test_a_meeting_started_late_the_same_evening_is_held_as_usual(
    client: AsyncClient,
) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await move(meeting_id, datetime.now(UTC) - timedelta(minutes=40))
    page = await client.get(f"/meetings/{meeting_id}")
    assert after(STARTS_LATE) in page.text
    assert shown("Start the meeting") in page.text
    opened = await start(client, meeting_id)
    assert opened.headers["location"] == f"/meetings/{meeting_id}/control"
    meeting = await services.get(meeting_id)
    assert meeting["status"] == "open"
    assert not meeting["after_the_fact"]
    assert meeting["started_late"]
    assert before("Started late, at %(time)s") in (await client.get(f"/meetings/{meeting_id}")).text
    # Residents check themselves in as usual.
    await sign_in(client, world.users["resident_a"])
    assert (await post_form(client, f"/meetings/{meeting_id}/check-in", {})).status_code == 303
    assert "meeting.opened" in await actions()


async def test_a_meeting_missed_is_entered_after_the_fact_and_marked_so(
    client: AsyncClient,
) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    await move(meeting_id, datetime.now(UTC) - timedelta(days=3))
    page = await client.get(f"/meetings/{meeting_id}")
    assert shown("Enter it after the fact") in page.text
    opened = await start(client, meeting_id)
    # Straight to the list: nobody is in the room any more.
    assert opened.headers["location"] == f"/meetings/{meeting_id}/attendance"
    meeting = await services.get(meeting_id)
    assert meeting["status"] == "open"
    assert meeting["after_the_fact"]
    assert "meeting.entered_after_the_fact" in await actions()

    listing = await client.get(f"/meetings/{meeting_id}/attendance")
    assert shown("Entered after the fact") in listing.text
    assert forms_to(listing.text, f"/meetings/{meeting_id}/close") == ["get"]
    tick = f"/meetings/{meeting_id}/attendance/members/{world.users['resident_a']}"
    assert (await post_form(client, tick, {"back": "attendance"})).status_code == 303
    walk_in = f"/meetings/{meeting_id}/attendance/walk-in"
    assert (await post_form(client, walk_in, {"name": "Mme Benali"})).status_code == 303
    listing = await client.get(f"/meetings/{meeting_id}/attendance")
    # The times shown would be those of the typing, not of the arrivals: none are shown.
    assert listing.text.count(shown("entered after the fact")) == 2

    # Days later, from home, a resident cannot check themselves in.
    resident_c = await add_user("resident-c", "Samira")
    await seat(resident_c, world.table_a)
    await sign_in(client, resident_c)
    refused = await post_form(client, f"/meetings/{meeting_id}/check-in", {})
    assert refused.status_code == 409
    assert t(services.AFTER_THE_FACT_NO_QR) in refused.text
    page = await client.get(f"/meetings/{meeting_id}")
    assert shown("I am here: check in") not in page.text
    check_in = await client.get(f"/meetings/{meeting_id}/check-in")
    assert shown(services.AFTER_THE_FACT_NO_QR) in check_in.text
    assert shown("I am here: check in") not in check_in.text
    assert (
        shown("Scan to check in") not in (await client.get(f"/meetings/{meeting_id}/screen")).text
    )

    await sign_in(client, world.users["facilitator_a"])
    assert (await post_form(client, f"/meetings/{meeting_id}/close", {})).status_code == 303
    sign_out(client)
    calendar = await client.get("/tables/flamants-iris/meetings")
    assert shown("Entered after the fact") in calendar.text
    assert shown("Entered after the fact") in (await client.get(f"/meetings/{meeting_id}")).text
    assert await Attendance.count() == 2


async def test_a_meeting_never_scheduled_is_scheduled_as_held_then_entered(
    client: AsyncClient,
) -> None:
    world = await build_world()
    past = (datetime.now(LOCAL_TIMEZONE) - timedelta(days=5)).date().isoformat()
    await sign_in(client, world.users["facilitator_a"])
    url = "/tables/flamants-iris/meetings"
    not_ticked = await post_form(client, url, meeting_form(date=past))
    assert not_ticked.status_code == 400
    assert t("The meeting must start in the future.") in not_ticked.text
    assert shown("This meeting has already been held") in not_ticked.text
    future = await post_form(client, url, meeting_form(held="yes"))
    assert future.status_code == 400
    assert t(services.HELD_IN_THE_FUTURE) in future.text
    assert await Meeting.count() == 0

    meeting_id = await schedule(client, world, date=past, held="yes")
    page = await client.get(f"/meetings/{meeting_id}")
    assert shown("Enter it after the fact") in page.text
    opened = await start(client, meeting_id)
    assert opened.headers["location"] == f"/meetings/{meeting_id}/attendance"
    assert (await services.get(meeting_id))["after_the_fact"]


# 5. Before the meeting starts, the control view offers to start it and shows nothing on screen.


async def test_the_control_view_waits_for_the_start(client: AsyncClient) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    control = await client.get(f"/meetings/{meeting_id}/control")
    assert control.status_code == 200
    assert forms_to(control.text, f"/meetings/{meeting_id}/open") == ["post"]
    assert shown("Start the meeting") in control.text
    assert shown("On screen") not in control.text
    assert shown("Show on screen") not in control.text

    started = await post_form(client, f"/meetings/{meeting_id}/open", {})
    assert started.headers["location"] == f"/meetings/{meeting_id}/control"
    control = await client.get(f"/meetings/{meeting_id}/control")
    assert forms_to(control.text, f"/meetings/{meeting_id}/open") == []
    assert control.text.count(shown("On screen") + "</span>") == 1  # the first item, only
    assert control.text.count(shown("Show on screen")) == 2

    # Closed: nothing on screen either, and the way back to the meeting.
    await post_form(client, f"/meetings/{meeting_id}/close", {})
    control = await client.get(f"/meetings/{meeting_id}/control")
    assert shown("On screen") + "</span>" not in control.text
    assert shown("Back to the meeting") in control.text


# 6. After a tick, the page comes back where the person was.


async def test_a_tick_comes_back_to_the_person_with_an_undo(client: AsyncClient) -> None:
    world = await build_world()
    samira = await add_user("resident-c", "Samira")
    await seat(samira, world.table_a)
    meeting_id = await schedule(client, world)
    await start(client, meeting_id)
    listing = await client.get(f"/meetings/{meeting_id}/attendance")
    # Each member's row is a target that takes the focus.
    assert f'<li id="person-{samira}" tabindex="-1"' in listing.text

    tick = f"/meetings/{meeting_id}/attendance/members/{samira}"
    ticked = await post_form(client, tick, {"back": "attendance"})
    assert ticked.status_code == 303
    assert ticked.headers["location"] == f"/meetings/{meeting_id}/attendance#person-{samira}"
    listing = await client.get(f"/meetings/{meeting_id}/attendance")
    # The person keeps their place, ticked, with an undo beside the tick.
    row = re.search(rf'<li id="person-{samira}"[^>]*>(.*?)</li>', listing.text, re.S)
    assert row is not None
    assert 'class="ticked"' in listing.text
    attendance_id = await first_attendance()
    assert f"/attendance/{attendance_id}/remove" in row.group(1)
    assert shown("Undo") in row.group(1)

    undone = await post_form(
        client, f"/meetings/{meeting_id}/attendance/{attendance_id}/remove", {"back": "attendance"}
    )
    assert undone.headers["location"] == f"/meetings/{meeting_id}/attendance#person-{samira}"
    assert await Attendance.count() == 0
    # A walk-in comes back to the walk-in form, ready for the next name.
    walk_in = await post_form(
        client,
        f"/meetings/{meeting_id}/attendance/walk-in",
        {"name": "Awa", "back": "attendance"},
    )
    assert walk_in.headers["location"] == f"/meetings/{meeting_id}/attendance#walk-in-title"
    assert 'id="walk-in-title" tabindex="-1"' in listing.text
