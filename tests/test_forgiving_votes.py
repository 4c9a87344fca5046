"""Buttons that forgive, the last ones (issue 12): closing a vote asks first and says what it
does; the shared tablet shows the ballot back before sending it, as online; a tablet ends
whenever the person who started it may no longer run the room, whatever took that right; the
sign-up form links the privacy policy; supporting a proposal comes back to the support block,
focused; one function makes the minutes' and the legal pages' Markdown inert.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from accounts.models import Session
from audit.models import AuditEntry
from help.services import legal_html
from meetings import room as room_service
from meetings.models import CANCELLED, CLOSED, SCHEDULED, Meeting, RoomCount, Tablet
from meetings.services import minutes_html
from proposals.models import Support
from tables.models import FACILITATOR, RESIDENT, Coordinator, Membership
from tests.factories import PASSWORD, add_proposal, build_world, post_form, seat, sign_in, t
from tests.room_world import Room, build_room, device, hand_tablet, handover_of, start_tablet
from tests.test_votes import add_voters, open_vote_on, option_ids, tn
from voix.richtext import markdown_html
from votes import closing
from votes.models import Participation, SealedBallot, Vote

GONE = "gone"  # what a path leaves of the facilitator's other sessions: none (erased)


def forms_to(html: str, action: str) -> list[str]:
    """The method of every form sent to this address."""
    return re.findall(rf'<form method="(\w+)" action="{re.escape(action)}"', html)


async def roll(vote_id: int) -> dict[str, str]:
    rows = await Participation.select(Participation.person, Participation.channel).where(
        Participation.vote == vote_id
    )
    return {row["person"]: row["channel"] for row in rows}


async def vote_row(vote_id: int) -> dict[str, Any]:
    row = await Vote.select(Vote.status, Vote.closed_at, Vote.participants).where(
        Vote.id == vote_id
    )
    return row[0]


# 1. Closing a vote asks first, and says what it does.


async def test_closing_a_vote_asks_first_and_says_what_happens(client: AsyncClient) -> None:
    world = await build_world()
    voters = [world.users["resident_a"], *await add_voters(world, 1)]
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    for voter in voters:
        await sign_in(client, voter, verified=False)
        cast = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
        assert cast.status_code == 200, cast.text[-2000:]
    await sign_in(client, world.users["facilitator_a"])

    # The vote page's button only leads to the question: a link, no form that closes.
    page = await client.get(f"/votes/{vote_id}")
    assert f'<a class="button secondary" href="/votes/{vote_id}/close">' in page.text
    assert forms_to(page.text, f"/votes/{vote_id}/close") == []

    before = (await vote_row(vote_id), await AuditEntry.count())
    asked = await client.get(f"/votes/{vote_id}/close")
    assert asked.status_code == 200
    assert t("Close the vote?") in asked.text
    assert tn("%(num)d person has voted so far.", "%(num)d people have voted so far.", 2) in (
        asked.text
    )
    for consequence in (
        "The vote stops taking ballots: online, on the tablet and on paper. Nobody can vote after.",
        "The ballots are counted and the result is published at once, for everyone to see.",
        "It cannot be undone: a closed vote is never opened again.",
    ):
        assert t(consequence) in asked.text, consequence
    # Nothing unfinished in a room: nothing said of it.
    assert t(closing.COUNT_PENDING) not in asked.text
    assert f'href="/votes/{vote_id}/room"' not in asked.text
    # One button closes (a form, with its CSRF token), the other goes back to the vote.
    assert forms_to(asked.text, f"/votes/{vote_id}/close") == ["post"]
    form = asked.text.split(f'action="/votes/{vote_id}/close"', 1)[1].split("</form>", 1)[0]
    assert 'name="_csrf_token"' in form
    assert t("Close the vote") in form
    assert f'<a class="button secondary" href="/votes/{vote_id}">{t("Go back")}</a>' in asked.text
    # Asking changed nothing.
    assert (await vote_row(vote_id), await AuditEntry.count()) == before
    assert before[0]["status"] == "open"

    closed = await post_form(client, f"/votes/{vote_id}/close", {})
    assert closed.status_code == 303
    assert closed.headers["location"] == f"/votes/{vote_id}"
    after = await vote_row(vote_id)
    assert (after["status"], after["participants"]) == ("closed", 2)
    # Asked again once closed: the reason, and no button.
    again = await client.get(f"/votes/{vote_id}/close")
    assert again.status_code == 200
    assert t("This vote is already closed.") in again.text
    assert forms_to(again.text, f"/votes/{vote_id}/close") == []
    assert (await post_form(client, f"/votes/{vote_id}/close", {})).status_code >= 400


async def test_only_those_who_run_the_table_are_asked_before_closing_a_vote(
    client: AsyncClient,
) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    for role in ("resident_a", "facilitator_b", "coordinator_b"):
        await sign_in(client, world.users[role])
        asked = await client.get(f"/votes/{vote_id}/close")
        assert asked.status_code == 403, role
        assert t("Close the vote?") not in asked.text
        refused = await post_form(client, f"/votes/{vote_id}/close", {})
        assert refused.status_code == 403, role
        page = await client.get(f"/votes/{vote_id}")
        assert f'href="/votes/{vote_id}/close"' not in page.text, role
    # The table's facilitator without the code step: asked for it, as for the closing itself.
    await sign_in(client, world.users["facilitator_a"], verified=False)
    unverified = await client.get(f"/votes/{vote_id}/close", follow_redirects=False)
    assert unverified.status_code in (302, 303, 401)
    assert t("Close the vote?") not in unverified.text
    client.cookies.clear()
    anonymous = await client.get(f"/votes/{vote_id}/close", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401)
    for role in ("coordinator_a", "facilitator_a"):
        await sign_in(client, world.users[role])
        assert (await client.get(f"/votes/{vote_id}/close")).status_code == 200, role
    assert (await vote_row(vote_id))["status"] == "open"


async def test_the_question_says_what_the_room_leaves_unfinished(
    client: AsyncClient, app: object
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    url = f"/votes/{vote}/close"
    handed = await post_form(
        client,
        f"/votes/{vote}/room/paper",
        {"person": [room.people["Samira"], room.people["Nadia"]]},
    )
    assert handed.status_code == 303, handed.text[-2000:]
    batch = await post_form(client, f"/votes/{vote}/room/batches", {})
    assert batch.status_code == 303
    async with device(app, room.world.users["coordinator_a"]) as tablet:
        await start_tablet(tablet, room, manager="coordinator_a")

        asked = await client.get(url)
        assert asked.status_code == 200
        assert (
            tn(
                "%(num)d paper ballot handed out is in no recorded count: it will not be counted.",
                "%(num)d paper ballots handed out are in no recorded count: they will not be "
                "counted.",
                2,
            )
            in asked.text
        )
        assert (
            tn(
                "%(num)d batch of paper ballots opened and never entered is dropped.",
                "%(num)d batches of paper ballots opened and never entered are dropped.",
                1,
            )
            in asked.text
        )
        assert (
            t(
                "The shared tablet stops: it is signed out, and the facilitator signs in again "
                "on it to use it as their own."
            )
            in asked.text
        )
        assert forms_to(asked.text, url) == ["post"]

        # The batch entered once: a count under way, which stops the closing. The page says
        # so, leads to the room, and has no button that would only be refused.
        (option,) = await option_ids(vote)
        figures = {"ballots": "2", "blank": "0", "spoilt": "0"}
        figures |= {f"o{option}-g{grade}": n for grade, n in enumerate(("1", "1", "0"))}
        entered = await post_form(client, batch.headers["location"], figures)
        assert entered.status_code == 303, entered.text[-2000:]
        assert await closing.pending_room_counts(vote) == {"blocking": 1, "empty": 0}
        asked = await client.get(url)
        assert t(closing.COUNT_PENDING) in asked.text
        assert f'<a class="button" href="/votes/{vote}/room">' in asked.text
        assert forms_to(asked.text, url) == []
        refused = await post_form(client, url, {})
        assert refused.status_code >= 400
        assert t(closing.COUNT_PENDING) in refused.text
        assert (await vote_row(vote))["status"] == "open"
        assert await RoomCount.count().where(RoomCount.vote == vote) == 1


# 2. The shared tablet shows the ballot back before sending it, as online.


def review_part(html: str) -> str:
    return html.split('class="review-choices"', 1)[1]


async def test_the_tablet_shows_the_ballot_back_before_sending_it(client: AsyncClient) -> None:
    room = await build_room(client)
    vote = room.vote_id
    base = f"/votes/{vote}/tablet/ballot"
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    ballot = await client.get(base)
    assert forms_to(ballot.text, f"{base}/review") == ["post"]
    assert t("Check my ballot before sending it", "ar") in ballot.text

    review = await post_form(client, f"{base}/review", {"choice": "no", "handover": handover})
    assert review.status_code == 200, review.text[-2000:]
    assert review.headers["cache-control"] == "no-store"
    assert str(review.url).endswith(f"{base}/review")  # no choice in the address
    # In Karim's language, with his name, and the same review as online.
    assert 'lang="ar" dir="rtl"' in review.text
    assert "Karim" in review.text
    assert t("Check your ballot", "ar") in review.text
    assert t("Against", "ar") in review_part(review.text)
    assert t("Send my ballot", "ar") in review.text
    assert t("Change my choices", "ar") in review.text
    # The choices and the handover travel in the two forms, nowhere else.
    assert review.text.count('<input type="hidden" name="choice" value="no">') == 2
    assert review.text.count(f'<input type="hidden" name="handover" value="{handover}">') == 2
    assert forms_to(review.text, base) == ["post"]
    assert forms_to(review.text, f"{base}/review") == ["post"]
    assert f'data-idle-to="/votes/{vote}/tablet"' in review.text
    assert await roll(vote) == {}
    assert await SealedBallot.count() == 0

    # "Change my choices": the ballot again, as filled in, and still Karim's.
    edit = await post_form(
        client, f"{base}/review", {"choice": "no", "handover": handover, "edit": "1"}
    )
    assert edit.status_code == 200
    assert 'value="no" required checked' in edit.text
    assert handover_of(edit.text) == handover
    assert await roll(vote) == {}

    sent = await post_form(client, base, {"choice": "no", "handover": handover, "confirm": "1"})
    assert sent.status_code == 303, sent.text[-2000:]
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    assert await roll(vote) == {room.people["Karim"]: "tablet"}


async def test_a_review_left_on_the_tablet_sends_nothing_for_the_next_voter(
    client: AsyncClient,
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    base = f"/votes/{vote}/tablet/ballot"
    await start_tablet(client, room)
    karims = await hand_tablet(client, room, "Karim")
    review = await post_form(client, f"{base}/review", {"choice": "yes", "handover": karims})
    assert review.status_code == 200
    # Karim gives the tablet back without sending: nothing can be reviewed or sent from it.
    back = await client.get(f"/votes/{vote}/tablet")
    assert back.status_code == 200
    again = await post_form(client, f"{base}/review", {"choice": "yes", "handover": karims})
    assert again.status_code == 303
    assert again.headers["location"] == f"/votes/{vote}/tablet"
    # Handed to Nadia: Karim's review, sent or looked at again, records nothing.
    await hand_tablet(client, room, "Nadia")
    stale = await post_form(client, f"{base}/review", {"choice": "yes", "handover": karims})
    assert stale.status_code == 409
    assert t(room_service.HANDOVER_GONE) in stale.text
    assert 'class="review-choices"' not in stale.text
    sent = await post_form(client, base, {"choice": "yes", "handover": karims, "confirm": "1"})
    assert sent.headers.get("location") != f"/votes/{vote}/tablet/done"
    assert await roll(vote) == {}
    assert await SealedBallot.count() == 0


async def test_an_ungraded_ballot_on_the_tablet_is_asked_about_then_reviewed(
    client: AsyncClient,
) -> None:
    room = await build_room(client, method="majority_judgment")
    vote = room.vote_id
    base = f"/votes/{vote}/tablet/ballot"
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Samira")
    options = await option_ids(vote)
    graded = {f"grade-{option}": "1" for option in options}
    one_left = {**graded, f"grade-{options[0]}": "", "handover": handover}
    warned = await post_form(client, f"{base}/review", one_left)
    assert warned.status_code == 200
    assert 'id="ungraded-warning"' in warned.text
    assert forms_to(warned.text, base) == ["post"]  # its button sends the ballot as it is
    review = await post_form(client, f"{base}/review", {**graded, "handover": handover})
    assert t("Check your ballot") in review.text
    assert review_part(review.text).count(t("Very good")) == len(options)
    assert await roll(vote) == {}
    sent = await post_form(client, base, {**graded, "handover": handover, "confirm": "1"})
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    assert await roll(vote) == {room.people["Samira"]: "tablet"}


# 3. A tablet ends when the person who started it may no longer run the room.


@dataclass(frozen=True)
class Path:
    name: str
    act: Callable[[Room, AsyncClient, object], Awaitable[None]]
    manager: str = "facilitator_a"
    before: Callable[[Room], Awaitable[None]] | None = None
    own_phone: str = "signed in"  # what becomes of the manager's other session, or GONE


async def _membership_removed(room: Room, _: AsyncClient, __: object) -> None:
    await Membership.delete().where(
        (Membership.user == room.world.users["facilitator_a"])
        & (Membership.table == room.world.table_a["id"])
    )


async def _role_withdrawn_still_facilitating_elsewhere(
    room: Room, _: AsyncClient, __: object
) -> None:
    """Made resident at this table by whatever path, still facilitator of another table."""
    facilitator = room.world.users["facilitator_a"]
    await seat(facilitator, room.world.table_b, FACILITATOR)
    await Membership.update({Membership.role: RESIDENT}).where(
        (Membership.user == facilitator) & (Membership.table == room.world.table_a["id"])
    )


async def _role_changed_by_a_coordinator(room: Room, _: AsyncClient, app: object) -> None:
    async with device(app, room.world.users["coordinator_a"]) as coordinator:
        facilitator = room.world.users["facilitator_a"]
        changed = await post_form(
            coordinator,
            f"/tables/flamants-iris/residents/{facilitator}/role",
            {"role": "resident"},
        )
        assert changed.status_code == 303, changed.text[-2000:]


async def _coordination_withdrawn(room: Room, _: AsyncClient, __: object) -> None:
    await Coordinator.delete().where(Coordinator.user == room.world.users["coordinator_a"])


async def _account_erased(room: Room, own_phone: AsyncClient, _: object) -> None:
    erased = await post_form(own_phone, "/account/erase", {"password": PASSWORD, "confirm": "yes"})
    assert erased.status_code == 303, erased.text[-2000:]


async def _vote_closed(room: Room, own_phone: AsyncClient, _: object) -> None:
    closed = await post_form(own_phone, f"/votes/{room.vote_id}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]


async def _vote_past_its_closing_time(room: Room, _: AsyncClient, __: object) -> None:
    await Vote.update({Vote.closes_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Vote.id == room.vote_id
    )


async def _meeting_closed(room: Room, own_phone: AsyncClient, _: object) -> None:
    closed = await post_form(own_phone, f"/meetings/{room.meeting_id}/close", {})
    assert closed.status_code == 303, closed.text[-2000:]


async def _meeting_not_started_yet(room: Room) -> None:
    """The tablet started before the meeting opened (people came in early)."""
    await Meeting.update({Meeting.status: SCHEDULED, Meeting.opened_at: None}).where(
        Meeting.id == room.meeting_id
    )


async def _meeting_cancelled(room: Room, own_phone: AsyncClient, _: object) -> None:
    cancelled = await post_form(own_phone, f"/meetings/{room.meeting_id}/cancel", {})
    assert cancelled.status_code == 303, cancelled.text[-2000:]
    assert (await Meeting.select(Meeting.status).where(Meeting.id == room.meeting_id))[0][
        "status"
    ] == CANCELLED


PATHS = [
    Path("membership removed", _membership_removed),
    Path("role withdrawn, facilitator elsewhere", _role_withdrawn_still_facilitating_elsewhere),
    Path("role changed by a coordinator", _role_changed_by_a_coordinator),
    Path("coordination withdrawn", _coordination_withdrawn, manager="coordinator_a"),
    Path("account erased", _account_erased, own_phone=GONE),
    Path("vote closed", _vote_closed),
    Path("vote past its closing time", _vote_past_its_closing_time),
    Path("meeting closed", _meeting_closed),
    Path("meeting cancelled", _meeting_cancelled, before=_meeting_not_started_yet),
]


@pytest.mark.parametrize("path", PATHS, ids=[path.name for path in PATHS])
async def test_a_tablet_ends_when_its_manager_may_no_longer_run_the_room(
    client: AsyncClient, app: object, path: Path
) -> None:
    room = await build_room(client)
    vote = room.vote_id
    manager = room.world.users[path.manager]
    if path.before:
        await path.before(room)
    await sign_in(client, manager)
    await start_tablet(client, room, manager=path.manager)
    handover = await hand_tablet(client, room, "Karim")
    (tablet,) = await Tablet.select(Tablet.session).where(Tablet.vote == vote)
    # Until then the tablet runs: a review of Karim's ballot is shown.
    review = await post_form(
        client, f"/votes/{vote}/tablet/ballot/review", {"choice": "yes", "handover": handover}
    )
    assert review.status_code == 200, review.text[-2000:]

    async with device(app, manager) as own_phone:
        await path.act(room, own_phone, app)
        # The tablet's next request finds it signed out: no ballot, no review, no list, and
        # nothing of the manager's account.
        sent = await post_form(
            client,
            f"/votes/{vote}/tablet/ballot",
            {"choice": "yes", "handover": handover, "confirm": "1"},
        )
        assert sent.headers.get("location") != f"/votes/{vote}/tablet/done"
        assert sent.status_code in (303, 401, 403), sent.status_code
        assert not await Session.exists().where(Session.id == tablet["session"])
        assert not await Tablet.exists().where(Tablet.session == tablet["session"])
        for where in (
            f"/votes/{vote}/tablet",
            f"/votes/{vote}/tablet/ballot",
            "/account",
            f"/votes/{vote}/room",
        ):
            away = await client.get(where)
            assert away.status_code != 200 or 'action="/logout"' not in away.text, where
        reviewed = await post_form(
            client, f"/votes/{vote}/tablet/ballot/review", {"choice": "yes", "handover": handover}
        )
        assert t("Check your ballot") not in reviewed.text
        assert await roll(vote) == {}
        # The manager's own phone is another session: it is not the tablet, and stays.
        mine = await own_phone.get("/account")
        assert (mine.status_code == 200) is (path.own_phone != GONE), path.name


async def test_a_tablet_still_runs_while_nothing_took_the_right_away(client: AsyncClient) -> None:
    """The check asked on each request lets a tablet run: the same requests as above, with
    nothing changed, send Karim's ballot."""
    room = await build_room(client)
    vote = room.vote_id
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    (tablet,) = await Tablet.select(Tablet.session).where(Tablet.vote == vote)
    sent = await post_form(
        client, f"/votes/{vote}/tablet/ballot", {"choice": "yes", "handover": handover}
    )
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    assert await Session.exists().where(Session.id == tablet["session"])
    assert await roll(vote) == {room.people["Karim"]: "tablet"}


async def test_no_tablet_starts_for_a_meeting_that_is_over(client: AsyncClient) -> None:
    room = await build_room(client)
    closed = await post_form(client, f"/meetings/{room.meeting_id}/close", {})
    assert closed.status_code == 303
    assert (await Meeting.select(Meeting.status).where(Meeting.id == room.meeting_id))[0][
        "status"
    ] == CLOSED
    from tests.room_world import fresh_code

    code = await fresh_code(room, room.world.users["facilitator_a"])
    refused = await post_form(
        client, f"/votes/{room.vote_id}/tablet/start", {"code": code, "pin": "2468"}
    )
    assert refused.status_code == 400
    assert t(room_service.MEETING_OVER) in refused.text
    assert await Tablet.count() == 0


# 4. The sign-up form links the privacy policy.


async def test_the_sign_up_form_links_the_privacy_policy(client: AsyncClient) -> None:
    world = await build_world()
    page = await client.get("/signup?lang=fr")
    assert page.status_code == 200
    form = page.text.split('action="/signup"', 1)[1].split("</form>", 1)[0]
    consent = form.split('class="field consent"', 1)[1].split("</div>", 1)[0]
    link = re.search(r'<a href="/legal/privacy"[^>]*>([^<]+)</a>', consent)
    assert link is not None
    assert link.group(1) == t("privacy policy")
    assert 'target="_blank"' in link.group(0)
    assert (await client.get("/legal/privacy")).status_code == 200
    # The facilitator's form for registering a resident links it as well.
    await sign_in(client, world.users["facilitator_a"])
    residents = await client.get("/tables/flamants-iris/residents?lang=fr")
    box = residents.text.split('name="consent"')[0].rsplit('<div class="field', 1)[1]
    link = re.search(r'<a href="/legal/privacy"[^>]*>([^<]+)</a>', box)
    assert link is not None
    assert link.group(1) == t("Read the privacy policy (opens in a new tab)")


# 5. Supporting a proposal comes back to the support block, focused.


async def test_supporting_comes_back_to_the_support_block_focused(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    url = f"/proposals/{proposal}/support"
    await sign_in(client, world.users["resident_a"], verified=False)
    page = await client.get(f"/proposals/{proposal}")
    assert '<div class="support-bar" id="support" tabindex="-1">' in page.text
    form = page.text.split(f'<form method="post" action="{url}"', 1)[1].split("</form>", 1)[0]
    assert f'hx-post="{url}"' in form
    assert 'hx-select="#support"' in form
    assert 'hx-target="#support"' in form
    assert 'id="support-button"' in form

    supported = await post_form(client, url, {"action": "support"})
    assert supported.status_code == 303
    assert supported.headers["location"] == f"/proposals/{proposal}#support"
    assert await Support.count() == 1
    # The button, in its other state, keeps its id: htmx gives it the focus back.
    page = await client.get(f"/proposals/{proposal}")
    form = page.text.split(f'action="{url}"', 1)[1].split("</form>", 1)[0]
    assert 'id="support-button"' in form
    assert t("Withdraw my support") in form

    withdrawn = await post_form(client, url, {"action": "withdraw"}, headers={"HX-Request": "true"})
    assert withdrawn.status_code == 303
    assert withdrawn.headers["location"] == f"/proposals/{proposal}#support"
    assert await Support.count() == 0
    # Refused (nothing to withdraw): without JavaScript the refusal is said on a page; with
    # htmx, which swaps no refusal in, the page is loaded again as it is now.
    plain = await post_form(client, url, {"action": "withdraw"})
    assert plain.status_code >= 400
    swapped = await post_form(client, url, {"action": "withdraw"}, headers={"HX-Request": "true"})
    assert swapped.status_code == 200
    assert swapped.headers["hx-refresh"] == "true"
    assert await Support.count() == 0

    # On a resident's behalf, given and withdrawn: back to the same block.
    await sign_in(client, world.users["facilitator_a"])
    for action in ("support", "withdraw"):
        behalf = await post_form(
            client,
            f"/proposals/{proposal}/on-behalf/support",
            {"resident": str(world.users["resident_a"]), "consent": "yes", "action": action},
        )
        assert behalf.status_code == 303, behalf.text[-2000:]
        assert behalf.headers["location"] == f"/proposals/{proposal}#support"
    assert await Support.count() == 0


# 6. One function makes typed Markdown inert, for the minutes and the legal pages.

MINUTES = {"headings": {1: 2, 2: 2, 3: 3, 4: 4}, "url_schemes": {"https", "http", "mailto"}}
LEGAL = {
    "headings": {1: 3, 2: 3, 3: 4, 4: 4, 5: 4, 6: 4},
    "url_schemes": {"https", "http", "mailto", "tel"},
}
SAMPLES = [
    "# Titre\n\n## Sous-titre\n\n### Trois\n\n#### Quatre\n\n##### Cinq\n\n###### Six",
    "[appeler](tel:+33491000000) [écrire](mailto:a@b.example) [site](https://ville.example)",
    '<h1>brut</h1><h3 class="x">trois</h3><h5>cinq</h5><script>alert(1)</script>ok',
    '[x](javascript:alert(1)) <a href="data:text/html,x">d</a> <img src=x onerror=alert(1)>',
    "Titre\n=====\n\n> cité\n\n- un\n- deux\n\n1. premier\n\n`code` **gras** *penché*\n\n---",
]


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_minutes_and_the_legal_pages_share_one_sanitiser(sample: str) -> None:
    assert minutes_html(sample) == markdown_html(sample, **MINUTES)
    assert legal_html(sample) == markdown_html(sample, **LEGAL)


def test_what_the_minutes_and_the_legal_pages_keep_differs_as_before() -> None:
    text = SAMPLES[0] + "\n\n" + SAMPLES[1]
    minutes, legal = minutes_html(text), legal_html(text)
    # Minutes sit under the page's h1: their h1 and h2 are h2, h3 and h4 stay, no h5 or h6.
    assert "<h2>Titre</h2>" in minutes
    assert "<h2>Sous-titre</h2>" in minutes
    assert "<h3>Trois</h3>" in minutes
    assert "<h4>Quatre</h4>" in minutes
    assert "<h5>" not in minutes
    assert "<h6>" not in minutes
    assert "Cinq" in minutes
    # The legal page has its h1 and each organisation its h2: h3 and h4 only.
    assert "<h3>Titre</h3>" in legal
    assert "<h3>Sous-titre</h3>" in legal
    assert "<h4>Trois</h4>" in legal
    assert "<h4>Six</h4>" in legal
    assert "<h2>" not in legal
    # A telephone link is for the legal pages (the organisation's number), not the minutes.
    assert 'href="tel:+33491000000"' in legal
    assert "tel:" not in minutes
    for html in (minutes, legal):
        assert 'href="https://ville.example" rel="noopener noreferrer nofollow"' in html
        assert 'href="mailto:a@b.example"' in html
    dangerous = markdown_html(SAMPLES[3], **LEGAL) + markdown_html(SAMPLES[2], **MINUTES)
    for bad in ('href="javascript', 'href="data:', "<img", "onerror", "<script", "<h1>"):
        assert bad not in dangerous
