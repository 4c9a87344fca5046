"""Every route of the app, walked by every kind of person: does each route ask the right question?

`tests/test_permissions.py` tests `can()`; this tests that each route asks it, about the right
table. ROWS names every (method, path) the app declares: a route without a row, or a row without
a route, fails `test_every_route_has_a_row_and_every_row_a_route`. Each row says who may use the
route (an access class); the walk sends one request per row and person (PERSONS, in
tests/routes_world.py), its path naming real objects of table A, and checks that:

- those the class lets in get past the permission check: a page, a redirect elsewhere than the
  sign-in or code step, or for a form a refusal of what was sent (400, 409, 422);
- everyone else is refused first (401, 403, 404, or sent to sign in or to the code step), and the
  database did not change: row counts of every table and the columns in STATE, before and after.
  Forms are valid where an invalid one would come back through a page that asks again, so a
  missing check shows as a change, not as a form error;
- rows about another table's objects are refused whoever asks (`rejected`: any 4xx, no change).

A session made the shared tablet of a vote (meetings.room) reaches that tablet's pages and
nothing else: after the walk, facilitator A's session becomes the tablet of a vote held in the
room, locked as a handover leaves it, and asks for every page of ROWS (each GET row) and sends
every form of ROWS but its own pages': it is sent back to its tablet's list by all but its own
pages and what they show, and its list asks for the facilitator's PIN. Then it takes its own
steps (TABLET_STEPS): the PIN unlocks it, a handover locks it again
(`test_a_tablet_reaches_its_own_pages_and_nothing_else`).

The world is built and walked once, in one event loop (the `walk` fixture); each row and person
is then a test of its own, so a failure names the route and the person. A hole found here keeps
its row with the right expectation and a `Hole` (xfail, strict) until it is fixed.
A new route gets a row here.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.channels import ChannelsPlugin
from piccolo.conf.apps import Finder

from accounts.models import User
from accounts.services import open_session, session_id_of
from meetings import room
from meetings.models import Tablet
from tables.models import Membership
from tests.conftest import ALL_TABLES
from tests.factories import t
from tests.routes_world import PERSON_NAMES, PERSONS, Person, RouteWorld, build_route_world
from voix import crypto, db
from voix.app import CSRF_EXPIRED, create_app
from voix.web import SESSION_COOKIE

# Who gets past each access class (persons of tests/routes_world.py; table A is "the" table).
EVERYONE = frozenset(PERSON_NAMES)
SIGNED_IN = EVERYONE - {"anonymous"}
MEMBERS = frozenset({"resident_a", "card_resident_a", "facilitator_a", "facilitator_a_unverified"})
MANAGERS = frozenset({"facilitator_a", "coordinator_a", "admin"})  # verified sessions
COORDINATORS = frozenset({"coordinator_a", "admin"})
MANAGERS_B = frozenset({"facilitator_b", "coordinator_b", "admin"})  # those who run table B
JOINERS = frozenset({"resident_b", "facilitator_b", "coordinator_b"})


@dataclass(frozen=True)
class Access:
    name: str
    allowed: frozenset[str]


PUBLIC = Access("PUBLIC", EVERYONE)
SIGNED = Access("SIGNED_IN", SIGNED_IN)
SELF = Access("SELF", SIGNED_IN)  # signed in, and what comes back is one's own
MEMBER = Access("MEMBER_OF_TABLE", MEMBERS)
FOLLOWER = Access("MEMBER_OR_MANAGER", MEMBERS | MANAGERS)
MANAGER = Access("MANAGER_OF_TABLE", MANAGERS)
MANAGER_B = Access("MANAGER_OF_TABLE_B", MANAGERS_B)  # rows about table B's objects
COORDINATOR = Access("COORDINATOR_OF_ORG", COORDINATORS)
JOINER = Access("MAY_JOIN", JOINERS)  # signed in, no seat at the table, does not manage it
NOBODY = Access("NOBODY", frozenset())

PASS, REFUSE, REJECT = "past the permission check", "refused", "rejected (4xx)"
TABLET = "a tablet"  # a session made a vote's shared tablet: who asks, in Holes and outcomes


@dataclass(frozen=True)
class Hole:
    """A row that fails today for these persons: marked xfail(strict) until it is fixed."""

    reason: str
    persons: frozenset[str]


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the path as the app declares it
    access: Access
    url: str = ""  # the request's path; {name} from RouteWorld.objects (default: from `route`)
    form: dict[str, str] | None = None  # for POST, with a valid CSRF token; {names}, in keys too
    variant: str = ""  # tells apart rows of one route
    # Persons refused because of the target, not of who they are: any 4xx, nothing changed.
    rejected: frozenset[str] = frozenset()
    unchanged: bool = False  # nothing may change, whoever asks
    stream: bool = False  # server-sent events: read the status line only
    fresh: str = ""  # a RouteWorld method making a new object for each request, as {fresh}
    ends_sessions: str = ""  # whose sessions the request may end: "self", or a user's key
    undo: Callable[[RouteWorld], Awaitable[None]] | None = None
    hole: Hole | None = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.route}" + (f" ({self.variant})" if self.variant else "")

    def expectation(self, person: str) -> str:
        if person in self.access.allowed:
            return PASS
        return REJECT if person in self.rejected else REFUSE


# The object a path parameter names when a row does not say (RouteWorld.objects keys).
DEFAULT_OBJECTS = {
    "slug": "slug",
    "proposal_id": "proposal",
    "vote_id": "vote_open",
    "meeting_id": "meeting",
    "item_id": "agenda_item",
    "speaker_id": "speaker",
    "user_id": "card_resident",
    "code": "card_code",
}
_PARAMETER = re.compile(r"\{(\w+):\w+\}")


def _default_url(route: str) -> str:
    return _PARAMETER.sub(lambda m: "{" + DEFAULT_OBJECTS.get(m.group(1), m.group(1)) + "}", route)


def get(route: str, access: Access, **options: Any) -> Row:
    return Row("GET", route, access, **options)


def post(route: str, access: Access, form: dict[str, str] | None = None, **options: Any) -> Row:
    return Row("POST", route, access, form=form or {}, **options)


async def _leave_table_a(world: RouteWorld) -> None:
    """Undoes a join, so the person is again who the walk says they are."""
    joiners = [world.users[p.user] for p in PERSONS if p.name in JOINERS and p.user]
    await Membership.delete().where(
        (Membership.table == world.table_a["id"]) & Membership.user.is_in(joiners)
    )


# A batch of one paper ballot, for: valid, so a missing check would record it.
ROOM_COUNT_FORM = {
    "ballots": "1",
    "blank": "0",
    "spoilt": "0",
    "o{room_option}-g0": "1",
    "o{room_option}-g1": "0",
    "o{room_option}-g2": "0",
}

# The PIN the walk types: the tablet made after the walk (Walker.from_tablet) was given it.
TABLET_PIN = "2468"

ROWS: list[Row] = [
    # voix.app, the open-data API, static files, the OpenAPI schema
    get("/health", PUBLIC),
    get("/health/live", PUBLIC),
    get("/health/ready", PUBLIC),
    # Off unless VOIX_METRICS_TOKEN is set (tests/test_metrics.py): 404 to everyone, cookies or not.
    get("/metrics", NOBODY),
    get("/api/v1/tables", PUBLIC),
    get("/api/v1/tables/{slug:str}/proposals", PUBLIC),
    get("/api/v1/votes/{vote_id:int}", PUBLIC, variant="open vote"),
    get("/api/v1/votes/{vote_id:int}", PUBLIC, url="/api/v1/votes/{vote_closed}", variant="closed"),
    # open data (exports.data_controllers) and the organisation's settings (its licence)
    get("/data", PUBLIC),
    get("/data/{file:str}", PUBLIC, url="/data/proposals.csv"),
    get("/tables/{slug:str}/data/{file:str}", PUBLIC, url="/tables/{slug}/data/votes.jsonl"),
    get(
        "/organisations/{slug:str}/data/{file:str}",
        PUBLIC,
        url="/organisations/{organisation}/data/proposals.geojson",
    ),
    get(
        "/organisations/{slug:str}/settings",
        COORDINATOR,
        url="/organisations/{organisation}/settings",
    ),
    post(
        "/organisations/{slug:str}/settings",
        COORDINATOR,
        {"licence": "odbl-1.0"},
        url="/organisations/{organisation}/settings",
    ),
    get("/static/{file_path:path}", PUBLIC, url="/static/app.css"),
    Row("HEAD", "/static/{file_path:path}", PUBLIC, url="/static/app.css"),
    get("/schema", PUBLIC),
    get("/api/v1/tables/{slug:str}/follow-up", PUBLIC),
    get(
        "/api/v1/organisations/{slug:str}/follow-up",
        PUBLIC,
        url="/api/v1/organisations/{organisation}/follow-up",
    ),
    get("/schema/openapi.json", PUBLIC),
    get("/schema/{path:str}", NOBODY, url="/schema/swagger"),  # only the JSON is served
    # tables
    get("/", PUBLIC),
    get("/tables/{slug:str}", PUBLIC),
    post("/tables/{slug:str}/join", JOINER, undo=_leave_table_a),
    get("/tables/{slug:str}/residents", MANAGER),
    post(
        "/tables/{slug:str}/residents",
        MANAGER,
        {"display_name": "Habitante {login}", "language": "fr", "consent": "yes"},
    ),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card",
        MANAGER,
        {"reason": "Carte perdue"},
        variant="card resident",
        ends_sessions="card_resident_a",
    ),
    # A card signs in without a password: never one for someone who has a password or who
    # manages a table, whoever asks (this was the hole of issue 9, in this route).
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card",
        NOBODY,
        {"reason": "Carte perdue"},
        url="/tables/{slug}/residents/{facilitator_a}/card",
        variant="a facilitator",
        rejected=MANAGERS,
        ends_sessions="facilitator_a",
    ),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card",
        NOBODY,
        {"reason": "Carte perdue"},
        url="/tables/{slug}/residents/{resident_a}/card",
        variant="a resident with a password",
        rejected=MANAGERS,
        ends_sessions="resident_a",
    ),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card",
        NOBODY,
        {"reason": "Carte perdue"},
        url="/tables/{slug_b}/residents/{card_resident}/card",
        variant="A's resident through table B",
    ),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card/revoke",
        MANAGER,
        variant="card resident",
        ends_sessions="card_resident_a",
    ),
    # Someone who holds no card is not signed out everywhere by "revoking" it.
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card/revoke",
        MANAGER,
        url="/tables/{slug}/residents/{facilitator_a}/card/revoke",
        variant="a facilitator",
        unchanged=True,
        ends_sessions="facilitator_a",
    ),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/card/revoke",
        NOBODY,
        url="/tables/{slug_b}/residents/{card_resident}/card/revoke",
        variant="A's resident through table B",
    ),
    # The pages that say what printing or revoking a card will do, before it is done.
    get("/tables/{slug:str}/residents/{user_id:int}/card", MANAGER, variant="card resident"),
    get(
        "/tables/{slug:str}/residents/{user_id:int}/card",
        NOBODY,
        url="/tables/{slug}/residents/{facilitator_a}/card",
        variant="a facilitator",
        rejected=MANAGERS,
    ),
    get(
        "/tables/{slug:str}/residents/{user_id:int}/card",
        NOBODY,
        url="/tables/{slug_b}/residents/{card_resident}/card",
        variant="A's resident through table B",
    ),
    get(
        "/tables/{slug:str}/residents/{user_id:int}/card/revoke",
        MANAGER,
        variant="card resident",
    ),
    get(
        "/tables/{slug:str}/residents/{user_id:int}/card/revoke",
        NOBODY,
        url="/tables/{slug_b}/residents/{card_resident}/card/revoke",
        variant="A's resident through table B",
    ),
    post("/tables/{slug:str}/residents/{user_id:int}/role", COORDINATOR, {"role": "resident"}),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/role",
        NOBODY,
        {"role": "facilitator"},
        url="/tables/{slug}/residents/{resident_b}/role",
        variant="B's resident through table A",
        rejected=COORDINATORS,
    ),
    post(
        "/tables/{slug:str}/residents/{user_id:int}/role",
        NOBODY,
        url="/tables/{slug_b}/residents/{card_resident}/role",
        form={"role": "facilitator"},
        variant="A's resident through table B",
    ),
    # accounts
    get("/login", PUBLIC),
    post("/login", PUBLIC, {"login": "{login}", "password": "not the password"}),
    get("/login/verify", SIGNED),
    post("/login/verify", SIGNED),
    get("/account", SIGNED),
    post("/account/totp", SIGNED),
    post("/account/totp/reset", SIGNED),
    post("/account/sign-out-everywhere", SIGNED, ends_sessions="self"),
    post("/logout", PUBLIC, ends_sessions="self"),
    get("/signup", PUBLIC),
    post("/signup", PUBLIC),
    get("/card", PUBLIC),
    get("/card/{code:str}", PUBLIC),
    post("/card", PUBLIC),
    get("/account/data.json", SELF),
    get("/account/data", SIGNED),
    get("/account/data/{part:str}", SIGNED, url="/account/data/proposals"),
    post("/account/language", SIGNED, {"language": "fr"}),
    post("/account/erase", SIGNED),
    # notifications (issue 16): one's own list and channels, following, "I'll come"
    get("/notifications", SIGNED),
    post("/notifications/read", SIGNED),
    # Nobody's notification (the owner's own case: tests/test_notification_pages.py): not found.
    post(
        "/notifications/{notification_id:int}/read",
        NOBODY,
        url="/notifications/2147483647/read",
        rejected=SIGNED_IN,
    ),
    get("/account/notifications", SIGNED),
    post("/account/notifications", SIGNED, {"rhythm": "each"}),
    get(
        "/tables/{slug:str}/members/{user_id:int}/notifications",
        MANAGER,
        url="/tables/{slug}/members/{resident_a}/notifications",
    ),
    post(
        "/tables/{slug:str}/members/{user_id:int}/notifications",
        MANAGER,
        {"rhythm": "each", "consent": "yes"},
        url="/tables/{slug}/members/{resident_a}/notifications",
    ),
    post(
        "/tables/{slug:str}/members/{user_id:int}/notifications",
        NOBODY,
        {"rhythm": "each", "consent": "yes"},
        url="/tables/{slug}/members/{resident_b}/notifications",
        variant="of B's resident",
        rejected=MANAGERS,
    ),
    post("/proposals/{proposal_id:int}/follow", SIGNED),
    post("/proposals/{proposal_id:int}/unfollow", SIGNED),
    post("/tables/{slug:str}/follow", SIGNED),
    post("/tables/{slug:str}/unfollow", SIGNED),
    post(
        "/meetings/{meeting_id:int}/rsvp",
        MEMBER,
        {"coming": "yes"},
        url="/meetings/{meeting_scheduled}/rsvp",
    ),
    post(
        "/meetings/{meeting_id:int}/on-behalf/rsvp",
        MANAGER,
        {"member": "{resident_a}", "coming": "yes"},
        url="/meetings/{meeting_scheduled}/on-behalf/rsvp",
    ),
    # the facilitator's message to the members, and the coordinators' deliveries (issue 16)
    get("/meetings/{meeting_id:int}/message", MANAGER),
    post(
        "/meetings/{meeting_id:int}/message",
        MANAGER,
        {"text": "Message de {login}", "action": "preview", "token": "0" * 32},
        variant="preview",
    ),
    post(
        "/meetings/{meeting_id:int}/message",
        MANAGER,
        {"text": "Message de {login}", "action": "send", "token": "0123456789abcdef" * 2},
    ),
    get(
        "/organisations/{slug:str}/notifications",
        COORDINATOR,
        url="/organisations/{organisation}/notifications",
    ),
    post(
        "/organisations/{slug:str}/notifications/{delivery_id:int}/retry",
        COORDINATOR,
        url="/organisations/{organisation}/notifications/{fresh}/retry",
        fresh="failed_delivery",
    ),
    # received SMS ("STOP": off without its token, as in tests) and the opt-out link
    post(
        "/notifications/sms/inbound/{token:str}",
        NOBODY,
        url="/notifications/sms/inbound/not-the-token",
    ),
    get(
        "/notifications/stop/{token:str}",
        PUBLIC,
        url="/notifications/stop/{stop_token}",
        unchanged=True,
    ),
    post("/notifications/stop/{token:str}", PUBLIC, {}, url="/notifications/stop/{stop_token}"),
    get("/password/forgot", PUBLIC),
    post("/password/forgot", PUBLIC, {"email": "nobody-{person}@example.org"}),
    get("/password/reset/{token:str}", PUBLIC, url="/password/reset/{reset_token}"),
    post("/password/reset/{token:str}", PUBLIC, url="/password/reset/{reset_token}"),
    # proposals
    get("/tables/{slug:str}/proposals/new", FOLLOWER),
    post(
        "/tables/{slug:str}/proposals",
        FOLLOWER,
        {"title": "Un jardin partagé", "body": "Au pied de la tour G.", "theme": "housing"},
    ),
    get("/proposals/{proposal_id:int}", PUBLIC),
    # A resident's support and comment entered for them by those who run the table; before the
    # members' own support below, so that resident A's support is still theirs to give.
    *[
        post(
            "/proposals/{proposal_id:int}/on-behalf/{what:str}",
            access,
            {"resident": "{resident_a}", "consent": "yes", **form},
            url=f"/proposals/{{proposal}}/on-behalf/{what}",
            variant=f"on behalf: {variant}",
        )
        for what, variant, access, form in (
            ("support", "support", MANAGER, {}),
            ("support", "withdraw", MANAGER, {"action": "withdraw"}),
            ("comments", "comments", MANAGER, {"body": "Elle est d'accord."}),
            ("nonsense", "nonsense", NOBODY, {}),
        )
    ],
    # Only a resident of the proposal's table: not B's, nor a facilitator, whoever asks.
    *[
        post(
            "/proposals/{proposal_id:int}/on-behalf/{what:str}",
            NOBODY,
            {"resident": f"{{{person}}}", "consent": "yes", "body": "Il est d'accord."},
            url=f"/proposals/{{{proposal}}}/on-behalf/{what}",
            variant=f"on behalf: {what} {variant}",
            rejected=rejected,
        )
        for what in ("support", "comments")
        for variant, person, proposal, rejected in (
            ("of B's resident", "resident_b", "proposal", MANAGERS),
            ("of a facilitator", "facilitator_a", "proposal", MANAGERS),
            # Those who run table B (and the administrator) get past the check, to the form.
            (
                "of A's resident on B's proposal",
                "resident_a",
                "proposal_b",
                frozenset({"facilitator_b", "coordinator_b", "admin"}),
            ),
        )
    ],
    post("/proposals/{proposal_id:int}/support", MEMBER),
    *[
        post(
            "/proposals/{proposal_id:int}/{what:str}",
            access,
            form,
            url=f"/proposals/{{{proposal}}}/{what}",
            variant=what,
        )
        for what, access, proposal, form in (
            ("comments", MEMBER, "proposal", {"body": "Je suis d'accord."}),
            ("report", SIGNED, "proposal", {"reason": "Hors sujet"}),
            ("moderation", MANAGER, "proposal_to_hide", {"reason": "Propos blessants"}),
            ("status", MANAGER, "proposal", {"status": "discussion", "reason": "À discuter"}),
            ("merge", MANAGER, "duplicate", {"into": "{proposal}"}),
            ("transcription", MANAGER, "proposal", {"transcription": "Les ascenseurs."}),
            (
                "translations",
                MANAGER,
                "proposal",
                {"language": "en", "title": "Repair the lifts", "body": "They break every week."},
            ),
            ("nonsense", NOBODY, "proposal", {}),
        )
    ],
    post(
        "/proposals/{proposal_id:int}/{what:str}",
        NOBODY,
        {"into": "{proposal_b}"},
        url="/proposals/{duplicate}/merge",
        variant="merge into table B's proposal",
        rejected=MANAGERS,
    ),
    get("/media/{token:str}", PUBLIC, url="/media/{media}"),
    # votes
    post("/proposals/{proposal_id:int}/votes", MANAGER, {"question": "Adopter la proposition ?"}),
    get("/tables/{slug:str}/votes/new", MANAGER),
    # One proposal for or against: the form stays valid with the one value a row can send.
    post(
        "/tables/{slug:str}/votes",
        MANAGER,
        {"question": "Adopter ceci ?", "method": "yes_no_abstain", "proposals": "{fresh}"},
        fresh="votable_proposal",
    ),
    get("/votes/{vote_id:int}", PUBLIC, variant="open"),
    get("/votes/{vote_id:int}", PUBLIC, url="/votes/{vote_closed}", variant="closed"),
    post("/votes/{vote_id:int}/ballot", MEMBER, {"choice": "yes"}),
    # Only shows the ballot back: nothing is stored, whoever asks.
    post("/votes/{vote_id:int}/ballot/review", MEMBER, {"choice": "yes"}, unchanged=True),
    post("/votes/{vote_id:int}/close", MANAGER, url="/votes/{vote_to_close}/close"),
    post(
        "/votes/{vote_id:int}/receipt",
        PUBLIC,
        {"receipt": "ABCD1234"},
        url="/votes/{vote_closed}/receipt",
    ),
    get("/votes/{vote_id:int}/ballots.json", PUBLIC, url="/votes/{vote_closed}/ballots.json"),
    get("/votes/{vote_id:int}/paper.pdf", MANAGER, url="/votes/{vote_open}/paper.pdf?copies=2"),
    get(
        "/votes/{vote_id:int}/paper.pdf",
        NOBODY,
        url="/votes/{vote_closed}/paper.pdf",
        variant="closed",
        rejected=MANAGERS,
    ),
    # voting in the room (meetings.room_controllers): those who run the vote's table, on a
    # vote held by an open meeting of table A (resident A and a walk-in present, paper handed
    # to the walk-in, a batch of it to count); a second vote for the show of hands.
    get("/votes/{vote_id:int}/room", MANAGER, url="/votes/{vote_room}/room"),
    post(
        "/votes/{vote_id:int}/room/paper",
        MANAGER,
        {"person": "user:{resident_a}"},
        url="/votes/{vote_room}/room/paper",
    ),
    # Paper only for those present at a meeting holding the vote, of the vote's own table.
    post(
        "/votes/{vote_id:int}/room/paper",
        NOBODY,
        {"person": "user:{resident_b}"},
        url="/votes/{vote_room}/room/paper",
        variant="to B's resident",
        rejected=MANAGERS,
    ),
    post(
        "/votes/{vote_id:int}/room/paper",
        NOBODY,
        {"person": "user:{resident_a}"},
        url="/votes/{vote_b}/room/paper",
        variant="on B's vote to A's resident",
        rejected=MANAGERS_B,
    ),
    post("/votes/{vote_id:int}/room/batches", MANAGER, url="/votes/{vote_room}/room/batches"),
    post("/votes/{vote_id:int}/room/hands", MANAGER, url="/votes/{vote_hands}/room/hands"),
    get(
        "/votes/{vote_id:int}/room/counts/{count_id:int}",
        MANAGER,
        url="/votes/{vote_room}/room/counts/{room_count}",
    ),
    # One ballot, for: two managers agree and it is recorded; the next is told it is closed.
    post(
        "/votes/{vote_id:int}/room/counts/{count_id:int}",
        MANAGER,
        ROOM_COUNT_FORM,
        url="/votes/{vote_room}/room/counts/{room_count}",
    ),
    # A count is reached through its own vote only: never one table's through the other's.
    *[
        Row(
            method,
            "/votes/{vote_id:int}/room/counts/{count_id:int}",
            NOBODY,
            url=url,
            form=ROOM_COUNT_FORM if method == "POST" else None,
            variant=variant,
        )
        for method in ("GET", "POST")
        for variant, url in (
            ("A's count through B's vote", "/votes/{vote_b}/room/counts/{room_count}"),
            ("B's count through A's vote", "/votes/{vote_room}/room/counts/{room_count_b}"),
        )
    ],
    # A count not recorded yet is dropped with its entries (a new batch with one entry, for
    # each request); a recorded one stays, whoever asks; a count is dropped through its own
    # vote only (those who run the other table get past the check, to a refusal).
    post(
        "/votes/{vote_id:int}/room/counts/{count_id:int}/discard",
        MANAGER,
        url="/votes/{vote_room}/room/counts/{fresh}/discard",
        fresh="room_batch",
    ),
    post(
        "/votes/{vote_id:int}/room/counts/{count_id:int}/discard",
        MANAGER,
        url="/votes/{vote_room}/room/counts/{room_count}/discard",
        variant="a recorded count",
        unchanged=True,
    ),
    post(
        "/votes/{vote_id:int}/room/counts/{count_id:int}/discard",
        NOBODY,
        url="/votes/{vote_b}/room/counts/{room_count_entered}/discard",
        variant="A's count through B's vote",
        rejected=MANAGERS_B,
    ),
    post(
        "/votes/{vote_id:int}/room/counts/{count_id:int}/discard",
        NOBODY,
        url="/votes/{vote_room}/room/counts/{room_count_b}/discard",
        variant="B's count through A's vote",
        rejected=MANAGERS,
    ),
    # The shared tablet, asked by sessions that are none: a manager gets past the check and
    # is sent to the room page or the tablet's list, with nothing changed; a wrong code
    # ("000000": every code of the walk's managers is spent) starts nothing, with a PIN of the
    # right form; it counts as a failed attempt for the code's throttle, as at sign-in. A PIN
    # of the wrong form is refused before the code is tried: no attempt is counted.
    post(
        "/votes/{vote_id:int}/tablet/start",
        MANAGER,
        {"code": "000000", "pin": TABLET_PIN},
        url="/votes/{vote_room}/tablet/start",
    ),
    post(
        "/votes/{vote_id:int}/tablet/start",
        MANAGER,
        {"code": "000000", "pin": "12"},
        url="/votes/{vote_room}/tablet/start",
        variant="a PIN too short",
        unchanged=True,
    ),
    get("/votes/{vote_id:int}/tablet", MANAGER, url="/votes/{vote_room}/tablet"),
    post(
        "/votes/{vote_id:int}/tablet/unlock",
        MANAGER,
        {"pin": TABLET_PIN},
        url="/votes/{vote_room}/tablet/unlock",
        unchanged=True,
    ),
    post(
        "/votes/{vote_id:int}/tablet/unlock",
        MANAGER_B,
        {"pin": TABLET_PIN},
        url="/votes/{vote_b}/tablet/unlock",
        variant="B's vote",
        unchanged=True,
    ),
    # Without a tablet a manager gets 404 (NotFoundException) after the check: the walk
    # cannot tell it from a refusal, so the row says the route hands over nothing to anyone.
    post(
        "/votes/{vote_id:int}/tablet/hand",
        NOBODY,
        {"person": "user:{resident_a}"},
        url="/votes/{vote_room}/tablet/hand",
        variant="not a tablet",
        rejected=MANAGERS,
    ),
    get("/votes/{vote_id:int}/tablet/ballot", MANAGER, url="/votes/{vote_room}/tablet/ballot"),
    post(
        "/votes/{vote_id:int}/tablet/language",
        MANAGER,
        {"language": "ar"},
        url="/votes/{vote_room}/tablet/language",
        unchanged=True,
    ),
    post(
        "/votes/{vote_id:int}/tablet/ballot",
        MANAGER,
        {"choice": "yes", "handover": "not-the-handover"},
        url="/votes/{vote_room}/tablet/ballot",
        unchanged=True,
    ),
    get("/votes/{vote_id:int}/tablet/done", MANAGER, url="/votes/{vote_room}/tablet/done"),
    post(
        "/votes/{vote_id:int}/tablet/quit",
        MANAGER,
        {"code": "000000"},
        url="/votes/{vote_room}/tablet/quit",
        unchanged=True,
    ),
    post(
        "/proposals/{proposal_id:int}/decision",
        MANAGER,
        {"decision": "adopted", "reason": "Consensus en réunion"},
    ),
    # meetings
    get("/tables/{slug:str}/meetings", PUBLIC),
    get("/tables/{slug:str}/meetings.ics", PUBLIC),
    get("/tables/{slug:str}/meetings/new", MANAGER),
    post("/tables/{slug:str}/meetings", MANAGER),
    get("/meetings/{meeting_id:int}/edit", MANAGER, url="/meetings/{meeting_scheduled}/edit"),
    post("/meetings/{meeting_id:int}/edit", MANAGER, url="/meetings/{meeting_scheduled}/edit"),
    get("/meetings/{meeting_id:int}", PUBLIC),
    get("/meetings/{meeting_id:int}/poster.pdf", PUBLIC),
    post("/meetings/{meeting_id:int}/open", MANAGER, url="/meetings/{meeting_to_open}/open"),
    # help and legal pages
    get("/help", PUBLIC),
    get("/help/{topic:str}", PUBLIC, url="/help/votes"),
    get("/legal/{kind:str}", PUBLIC, url="/legal/privacy"),
    get(
        "/organisations/{slug:str}/legal/{kind:str}/edit",
        COORDINATOR,
        url="/organisations/{organisation}/legal/privacy/edit",
    ),
    post(
        "/organisations/{slug:str}/legal/{kind:str}/edit",
        COORDINATOR,
        {"language": "fr", "body": "Texte de l'association, écrit par {login}."},
        url="/organisations/{organisation}/legal/privacy/edit",
    ),
    get("/votes/{vote_id:int}/close", MANAGER, url="/votes/{vote_to_close}/close"),
    post(
        "/votes/{vote_id:int}/tablet/ballot/review",
        MANAGER,
        {"choice": "yes", "handover": "not-the-handover"},
        url="/votes/{vote_room}/tablet/ballot/review",
        unchanged=True,
    ),
    # the facilitators' translations of what the table wrote
    get("/tables/{slug:str}/translations", MANAGER),
    get("/translate/{kind:str}/{object_id:int}", MANAGER, url="/translate/meeting/{meeting}"),
    post(
        "/translate/{kind:str}/{object_id:int}",
        MANAGER,
        {"language": "ar", "written_in": "fr", "field-title": "اجتماع الحي، كتبه {login}"},
        url="/translate/meeting/{meeting}",
    ),
    get("/meetings/{meeting_id:int}/close", MANAGER, url="/meetings/{meeting_to_close}/close"),
    get("/meetings/{meeting_id:int}/cancel", MANAGER, url="/meetings/{meeting_to_cancel}/cancel"),
    post("/meetings/{meeting_id:int}/close", MANAGER, url="/meetings/{meeting_to_close}/close"),
    # Its minutes are published: a coordinator gets past the check and is told it is too late.
    post(
        "/meetings/{meeting_id:int}/reopen",
        COORDINATOR,
        url="/meetings/{meeting_closed}/reopen",
    ),
    post("/meetings/{meeting_id:int}/cancel", MANAGER, url="/meetings/{meeting_to_cancel}/cancel"),
    post("/meetings/{meeting_id:int}/agenda", MANAGER, {"title": "Point ajouté"}),
    post(
        "/meetings/{meeting_id:int}/agenda",
        NOBODY,
        {"proposal": "{proposal_b}"},
        variant="table B's proposal",
        rejected=MANAGERS,
    ),
    post("/meetings/{meeting_id:int}/agenda/{item_id:int}", MANAGER, {"action": "current"}),
    get("/meetings/{meeting_id:int}/check-in", PUBLIC),
    post("/meetings/{meeting_id:int}/check-in", MEMBER),
    get("/meetings/{meeting_id:int}/attendance", MANAGER),
    post(
        "/meetings/{meeting_id:int}/attendance/members/{user_id:int}",
        MANAGER,
        url="/meetings/{meeting}/attendance/members/{resident_a}",
    ),
    post(
        "/meetings/{meeting_id:int}/attendance/members/{user_id:int}",
        NOBODY,
        url="/meetings/{meeting}/attendance/members/{resident_b}",
        variant="B's resident",
        rejected=MANAGERS,
    ),
    post("/meetings/{meeting_id:int}/attendance/walk-in", MANAGER, {"name": "Passant {login}"}),
    post(
        "/meetings/{meeting_id:int}/attendance/{attendance_id:int}/remove",
        MANAGER,
        url="/meetings/{meeting}/attendance/{fresh}/remove",
        fresh="walk_in",
    ),
    get("/meetings/{meeting_id:int}/sign-in-sheet.pdf", MANAGER),
    get("/meetings/{meeting_id:int}/screen", FOLLOWER),
    get("/meetings/{meeting_id:int}/control", MANAGER),
    get("/meetings/{meeting_id:int}/events", FOLLOWER, stream=True),
    post("/meetings/{meeting_id:int}/speakers", MANAGER, {"name": "Intervenant {login}"}),
    post("/meetings/{meeting_id:int}/speakers/{speaker_id:int}", MANAGER, {"action": "up"}),
    get("/meetings/{meeting_id:int}/minutes", PUBLIC, url="/meetings/{meeting_closed}/minutes"),
    get(
        "/meetings/{meeting_id:int}/minutes/edit",
        MANAGER,
        url="/meetings/{meeting_closed}/minutes/edit",
    ),
    post(
        "/meetings/{meeting_id:int}/minutes",
        MANAGER,
        {"body": "Brouillon du compte rendu."},
        url="/meetings/{meeting_closed}/minutes",
    ),
    get(
        "/meetings/{meeting_id:int}/minutes.pdf",
        PUBLIC,
        url="/meetings/{meeting_closed}/minutes.pdf",
    ),
    # maps
    get("/tables/{slug:str}/map", PUBLIC),
    get("/tables/{slug:str}/map/points", PUBLIC),
    get("/map", PUBLIC),
    get("/map/points", PUBLIC),
    get("/tables/{slug:str}/districts.geojson", PUBLIC),
    # audit
    get("/organisations/{slug:str}/audit", COORDINATOR, url="/organisations/{organisation}/audit"),
    # briefs: composing, publishing
    get("/tables/{slug:str}/briefs/new", MANAGER),
    post("/tables/{slug:str}/briefs", MANAGER, {"title": "Deuxième envoi", "language": "fr"}),
    get("/briefs/{slug:str}/edit", MANAGER, url="/briefs/{draft}/edit"),
    post(
        "/briefs/{slug:str}/edit",
        MANAGER,
        {
            "title": "En préparation, relu",
            "language": "fr",
            "introduction": "Le contexte.",
            "addressee": "{institution}",
            "updated_at": "{fresh}",
        },
        url="/briefs/{draft}/edit",
        fresh="draft_stamp",
    ),
    get("/briefs/{slug:str}/preview", MANAGER, url="/briefs/{draft}/preview"),
    post("/briefs/{slug:str}/publish", MANAGER, url="/briefs/{draft}/publish"),
    post(
        "/proposals/{proposal_id:int}/media/{media_id:int}/publication",
        MANAGER,
        {"action": "allow", "author_agreed": "yes"},
        url="/proposals/{proposal}/media/{media_id}/publication",
    ),
    # the organisation's institutions
    get(
        "/organisations/{slug:str}/institutions",
        COORDINATOR,
        url="/organisations/{organisation}/institutions",
    ),
    post(
        "/organisations/{slug:str}/institutions",
        COORDINATOR,
        {"name": "{fresh}", "service": "Agence Nord"},
        url="/organisations/{organisation}/institutions",
        fresh="institution_name",
    ),
    post(
        "/institutions/{institution_id:int}",
        COORDINATOR,
        {"name": "{fresh}", "service": ""},
        url="/institutions/{institution}",
        fresh="institution_name",
    ),
    post(
        "/institutions/{institution_id:int}/archive",
        COORDINATOR,
        url="/institutions/{institution}/archive",
    ),
    get("/briefs/{slug:str}", PUBLIC, url="/briefs/{brief}"),
    get("/briefs/{slug:str}/v/{number:int}", PUBLIC, url="/briefs/{brief}/v/1"),
    get("/briefs/{slug:str}/v/{number:int}/{file:str}", PUBLIC, url="/briefs/{brief}/v/1/ar.pdf"),
    get("/briefs/{slug:str}/pdf/{lang:str}", PUBLIC, url="/briefs/{brief}/pdf/fr"),
    get(
        "/briefs/{slug:str}/v/{number:int}/photos/{media_id:int}",
        PUBLIC,
        url="/briefs/{brief}/v/1/photos/{brief_photo}",
    ),
    # the follow-up of what institutions answered
    get("/tables/{slug:str}/follow-up", PUBLIC),
    get(
        "/organisations/{slug:str}/follow-up", PUBLIC, url="/organisations/{organisation}/follow-up"
    ),
    get("/tables/{slug:str}/follow-up.pdf", PUBLIC),
    post("/tables/{slug:str}/follow-up/delay", MANAGER, {"answer_delay_months": "3"}),
    get(
        "/tables/{slug:str}/follow-up/briefs/{brief_slug:str}/answer",
        MANAGER,
        url="/tables/{slug}/follow-up/briefs/{brief}/answer",
    ),
    get(
        "/tables/{slug:str}/follow-up/answers/{answer_id:int}/letter",
        MANAGER,
        url="/tables/{slug}/follow-up/answers/{answer}/letter",
    ),
    get(
        "/tables/{slug:str}/follow-up/briefs/{brief_slug:str}/reminders/{institution_id:int}",
        MANAGER,
        url="/tables/{slug}/follow-up/briefs/{brief}/reminders/{institution}",
    ),
    post(
        "/tables/{slug:str}/follow-up/briefs/{brief_slug:str}/answer",
        MANAGER,
        {
            "institution": "{answering}",
            "received_on": "{today}",
            "summary": "La réponse du conseil citoyen, reçue en main propre.",
        },
        url="/tables/{slug}/follow-up/briefs/{brief}/answer",
    ),
]


# --- the table is complete -----------------------------------------------------------------

# Litestar answers OPTIONS on every path by itself; it is no route of ours.
IMPLICIT_METHODS = {"OPTIONS"}


def app_routes() -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in create_app().routes
        for method in getattr(route, "methods", ())
        if method not in IMPLICIT_METHODS
    }


def test_every_route_has_a_row_and_every_row_a_route() -> None:
    declared = app_routes()
    rows = {(row.method, row.route) for row in ROWS}
    missing = [f"add a row for {m} {p} in tests/test_routes.py" for m, p in sorted(declared - rows)]
    stale = [
        f"no route {m} {p}: remove its row from tests/test_routes.py"
        for m, p in sorted(rows - declared)
    ]
    assert not missing + stale, "\n".join(missing + stale)


def test_rows_are_distinct() -> None:
    labels = [row.label for row in ROWS]
    assert len(labels) == len(set(labels)), [x for x in labels if labels.count(x) > 1]


# What a session made a tablet asks for (voix.web.tablet_guard), locked as after a handover:
# every page of ROWS (its GET rows) and every form of ROWS but those of its own pages, and the
# tablet of another vote of the same meeting. The guard leaves open what the tablet's pages
# show: style and scripts, and the photos and voice notes of the proposals on the ballot. The
# health checks never read a session (a proxy asks them, not a person) and show nobody's data.
TABLET_OPEN = ("/static/", "/media/", "/health")
_OWN_FORM = re.compile(
    r"/votes/\{vote_room\}/tablet/(?:ballot|ballot/review|hand|language|quit|unlock)"
)
TABLET_ROWS = [
    *(row for row in ROWS if row.method == "GET"),
    *(row for row in ROWS if row.method == "POST" and not _OWN_FORM.fullmatch(row.url)),
    get(
        "/votes/{vote_id:int}/tablet",
        NOBODY,
        url="/votes/{vote_hands}/tablet",
        variant="another vote's tablet",
    ),
    post(
        "/votes/{vote_id:int}/tablet/unlock",
        NOBODY,
        {"pin": TABLET_PIN},
        url="/votes/{vote_hands}/tablet/unlock",
        variant="another vote's tablet",
    ),
]

# What the tablet must get (test_a_tablet_reaches_its_own_pages_and_nothing_else).
NAMES, PIN_FORM, PIN_AGAIN = "its list of names", "its PIN form", "its PIN form again (400)"
BACK, TO_BALLOT, BALLOT = "back to its list", "sent to its ballot", "its ballot"
SHOWN, REFUSED_HERE = "what its pages show", "a refusal (4xx)"


@dataclass(frozen=True)
class TabletStep:
    """A request of the tablet's own, after TABLET_ROWS and in this order: what it must get,
    and whether the tablet is locked after it."""

    row: Row
    answer: str
    locked: bool


def _own(method: str, page: str, variant: str, form: dict[str, str] | None = None) -> Row:
    route = "/votes/{vote_id:int}/tablet" + page
    return Row(
        method, route, NOBODY, url=f"/votes/{{vote_room}}/tablet{page}", form=form, variant=variant
    )


# Locked, the tablet hands over to nobody until the facilitator's PIN; handed over, it locks
# again, and taking it back (its list) leaves it locked.
TABLET_STEPS = [
    TabletStep(_own("POST", "/hand", "locked", {"person": "{tablet_voter}"}), REFUSED_HERE, True),
    TabletStep(_own("POST", "/unlock", "a wrong PIN", {"pin": "0000"}), PIN_AGAIN, True),
    TabletStep(_own("POST", "/unlock", "its PIN", {"pin": TABLET_PIN}), BACK, False),
    TabletStep(_own("GET", "", "unlocked"), NAMES, False),
    TabletStep(_own("POST", "/hand", "unlocked", {"person": "{tablet_voter}"}), TO_BALLOT, True),
    TabletStep(_own("GET", "/ballot", "handed over"), BALLOT, True),
    TabletStep(_own("GET", "", "after a handover"), PIN_FORM, True),
    TabletStep(_own("GET", "/ballot", "taken back"), BACK, True),
    TabletStep(
        _own("POST", "/hand", "after a handover", {"person": "{tablet_voter}"}), REFUSED_HERE, True
    ),
]


# --- the walk ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    location: str = ""
    changed: list[str] = field(default_factory=list)  # fingerprint entries a request changed
    csrf: bool = False  # refused as a forged form: the walk's own mistake, not an answer
    own_data: bool | None = None  # SELF rows: the data that came back is the person's own
    text: str = ""
    url: str = ""  # asked from a tablet: the address asked, and the tablet's list
    tablet: str = ""
    pin_form: bool = False  # asked from a tablet: the page asks for the facilitator's PIN
    locked: bool | None = None  # asked from a tablet: the tablet is locked after the request

    def describe(self) -> str:
        where = f" -> {self.location}" if self.location else ""
        changed = f"; changed: {', '.join(self.changed)}" if self.changed else ""
        return f"{self.status}{where}{changed}"


# State a refused request must not touch, beyond the row counts of every table.
STATE = {
    "votes open": "SELECT COALESCE(SUM(id), 0) FROM vote WHERE status = 'open'",
    "meeting states": "SELECT COALESCE(SUM(id * LENGTH(status)), 0) FROM meeting",
    "current items": "SELECT COALESCE(SUM(current_item), 0) FROM meeting",
    "agenda order": "SELECT COALESCE(SUM(id * position), 0) FROM agenda_item",
    "speakers": "SELECT COALESCE(SUM(id * position), 0) + COUNT(started_at) FROM speaker",
    "proposal states": "SELECT COALESCE(SUM(id * LENGTH(status)), 0) FROM proposal",
    "hidden": "SELECT COUNT(hidden_at) FROM proposal",
    "supports": "SELECT COALESCE(SUM(supports), 0) FROM proposal",
    "transcriptions": "SELECT COALESCE(SUM(LENGTH(transcription)), 0) FROM proposal",
    "roles": "SELECT COALESCE(SUM(id * LENGTH(role)), 0) FROM membership",
    "cards revoked": "SELECT COUNT(revoked_at) FROM login_card",
    "totp": "SELECT COUNT(totp_enabled_at) + COUNT(totp_secret) FROM account",
    "passwords": "SELECT COALESCE(SUM(LENGTH(password_hash)), 0) FROM account",
    "minutes": "SELECT COALESCE(SUM(LENGTH(body)), 0) + COUNT(published_at) FROM minutes",
    "throttle": "SELECT COALESCE(SUM(failures), 0) FROM throttle",
    "totp steps": "SELECT COALESCE(SUM(totp_last_step), 0) FROM account",
    "roll channels": "SELECT COALESCE(SUM(id * LENGTH(channel)), 0) FROM vote_participation",
    "room counts": (
        "SELECT COALESCE(SUM(id * LENGTH(status) + ballots + blank + spoilt), 0)"
        " + COUNT(recorded_at) FROM room_count"
    ),
    "count rounds": 'SELECT COALESCE(SUM(id * "round" + LENGTH(differ)), 0) FROM room_count',
    "count entries": (
        'SELECT COALESCE(SUM(id * (LENGTH(figures) + "round")), 0) FROM room_count_entry'
    ),
    "tablets": (
        "SELECT COALESCE(SUM(vote + LENGTH(person) + LENGTH(language) + LENGTH(handover)"
        " + LENGTH(pin_hash)), 0) + COUNT(handed_at) FROM tablet"
    ),
    "tablets locked": "SELECT COUNT(CASE WHEN locked THEN 1 END) FROM tablet",
}


def fingerprint_query() -> tuple[list[str], str]:
    names = sorted(table._meta.tablename for table in Finder().get_table_classes())
    parts = [(f"rows of {name}", f'SELECT COUNT(*) FROM "{name}"') for name in names]
    parts += list(STATE.items())
    sql = "SELECT " + ", ".join(f"({query}) AS f{i}" for i, (_, query) in enumerate(parts))
    return [label for label, _ in parts], sql


BASE_URL = "http://testserver.local"


class Walker:
    def __init__(self, app: Any, world: RouteWorld) -> None:
        self.app = app
        self.world = world
        self.labels, self.sql = fingerprint_query()
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.sessions: dict[str, str] = {}
        self.csrf: dict[str, str] = {}
        # The database as the last refused request left it; None once anything may have changed.
        self.known: list[Any] | None = None

    async def start(self) -> None:
        for number, person in enumerate(PERSONS, start=10):
            # A client address of their own: throttles count per client, as for real people.
            transport = httpx.ASGITransport(app=self.app, client=(f"10.0.0.{number}", 40000))
            client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            await client.get("/login")  # the CSRF cookie forms are posted with
            self.csrf[person.name] = str(client.cookies["csrftoken"])
            self.clients[person.name] = client
            await self.open_session(person)

    async def stop(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def open_session(self, person: Person) -> None:
        self.known = None
        if person.user is not None:
            user_id = self.world.users[person.user]
            self.sessions[person.name] = await open_session(user_id, verified=person.verified)

    async def fingerprint(self) -> list[Any]:
        rows = await User.raw(self.sql)
        return list(rows[0].values())

    def cookies(self, person: Person) -> dict[str, str]:
        cookies = {"csrftoken": self.csrf[person.name]}
        if person.name in self.sessions:
            cookies[SESSION_COOKIE] = self.sessions[person.name]
        return cookies

    def values(self, person: Person) -> dict[str, Any]:
        """What a row's URL and form may name: the world's objects, and who asks."""
        return {
            **self.world.objects,
            "person": person.name,
            "login": self.world.logins.get(person.user or "", "nobody"),
        }

    async def request(self, row: Row, person: Person) -> Outcome:
        values = self.values(person)
        if row.fresh:
            values["fresh"] = await getattr(self.world, row.fresh)()
            self.known = None
        url = (row.url or _default_url(row.route)).format_map(values)
        # Only a refused request must leave the database as it was (and any, on some rows).
        watched = row.unchanged or row.expectation(person.name) != PASS
        before = (self.known or await self.fingerprint()) if watched else []
        self.known = None
        if row.stream:
            outcome = await self.stream_status(url, self.cookies(person))
        else:
            client = self.clients[person.name]
            client.cookies.clear()
            for name, value in self.cookies(person).items():
                client.cookies.set(name, value)
            if row.form is None:
                response = await client.request(row.method, url)
            else:
                form = {k.format_map(values): v.format_map(values) for k, v in row.form.items()}
                response = await client.post(
                    url, data={**form, "_csrf_token": self.csrf[person.name]}
                )
            outcome = self.outcome(response)
            if row.access is SELF and 200 <= response.status_code < 300:
                outcome.own_data = response.json()["account"]["login"] == values["login"]
        if watched:
            after = await self.fingerprint()
            outcome.changed = [
                label for label, b, a in zip(self.labels, before, after, strict=True) if a != b
            ]
            self.known = after
        if row.undo is not None:
            await row.undo(self.world)
            self.known = None
        if row.ends_sessions:
            # Signing out, or a card printed or revoked, ends sessions: open new ones.
            user = person.user if row.ends_sessions == "self" else row.ends_sessions
            for each in PERSONS:
                if user is not None and each.user == user:
                    await self.open_session(each)
        return outcome

    def outcome(self, response: httpx.Response) -> Outcome:
        text = response.text if "text" in response.headers.get("content-type", "") else ""
        return Outcome(
            status=response.status_code,
            location=response.headers.get("location", ""),
            csrf=bool(text) and t(CSRF_EXPIRED) in text,
            text=text[-300:],
        )

    async def from_tablet(self) -> dict[str, Outcome]:
        """Facilitator A's session made the room vote's tablet, as meetings.room.start_tablet
        makes one (a Tablet row for the session, with the PIN TABLET_PIN), locked as a handover
        leaves it; then each row of TABLET_ROWS, and each step of TABLET_STEPS in order, asked
        through it: the outcomes by row label."""
        facilitator = next(person for person in PERSONS if person.name == "facilitator_a")
        token = await open_session(self.world.users["facilitator_a"], verified=True)
        objects = self.world.objects
        made = await Tablet.insert(
            Tablet(
                session=await session_id_of(token),
                vote=objects["vote_room"],
                meeting=objects["meeting_room"],
                locked=True,
                pin_hash=crypto.keyed_hash(TABLET_PIN, room.TABLET_PIN),
                started_at=datetime.now(UTC),
            )
        ).returning(Tablet.id)
        self.known = None
        tablet = f"/votes/{objects['vote_room']}/tablet"
        csrf = self.csrf[facilitator.name]
        cookies = {SESSION_COOKIE: token, "csrftoken": csrf}
        transport = httpx.ASGITransport(app=self.app, client=("10.0.0.98", 40000))
        outcomes: dict[str, Outcome] = {}
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            for name, value in cookies.items():
                client.cookies.set(name, value)
            for row in [*TABLET_ROWS, *(step.row for step in TABLET_STEPS)]:
                values = self.values(facilitator)
                if row.fresh:
                    values["fresh"] = await getattr(self.world, row.fresh)()
                url = (row.url or _default_url(row.route)).format_map(values)
                if row.stream:
                    outcome = await self.stream_status(url, cookies)
                elif row.form is None:
                    response = await client.request(row.method, url)
                    outcome = self.outcome(response)
                else:
                    form = {k.format_map(values): v.format_map(values) for k, v in row.form.items()}
                    response = await client.post(url, data={**form, "_csrf_token": csrf})
                    outcome = self.outcome(response)
                if not row.stream:
                    outcome.pin_form = f'action="{tablet}/unlock"' in response.text
                after = await Tablet.select(Tablet.locked).where(Tablet.id == made[0]["id"]).first()
                outcome.locked = None if after is None else bool(after["locked"])
                outcome.url, outcome.tablet = url, tablet
                outcomes[row.label] = outcome
        return outcomes

    async def stream_status(self, url: str, cookies: dict[str, str]) -> Outcome:
        """The status of a streamed response; then the client goes away (server-sent events)."""
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": url,
            "raw_path": url.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver.local"), (b"cookie", cookie.encode())],
            "client": ("10.0.0.99", 40000),
            "server": ("testserver.local", 80),
        }
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        gone = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not started.done():
                started.set_result(message)

        task = asyncio.create_task(self.app(scope, receive, send))
        try:
            start = await asyncio.wait_for(asyncio.shield(started), timeout=10)
        finally:
            gone.set()
            with contextlib.suppress(TimeoutError):  # wait_for cancels the stream then
                await asyncio.wait_for(task, timeout=3)
        headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
        return Outcome(status=start["status"], location=headers.get("location", ""))


async def _walk() -> dict[tuple[str, str], Outcome]:
    await db.engine().start()
    application = create_app()
    results: dict[tuple[str, str], Outcome] = {}
    try:
        async with application.plugins.get(ChannelsPlugin):
            world = await build_route_world()
            walker = Walker(application, world)
            await walker.start()
            try:
                for row in ROWS:
                    for person in PERSONS:
                        results[(row.label, person.name)] = await walker.request(row, person)
                for label, outcome in (await walker.from_tablet()).items():
                    results[(label, TABLET)] = outcome
            finally:
                await walker.stop()
    finally:
        async with db.engine().transaction():
            for table in ALL_TABLES:
                await db.engine().run_ddl(f'DELETE FROM "{table}"')
        await db.engine().stop()
    return results


@pytest.fixture(autouse=True)
def clean_database() -> None:
    """Replaces the suite's per-test clean-up: the walk builds once and cleans up itself."""


_WALKED: list[dict[tuple[str, str], Outcome] | BaseException] = []


@pytest.fixture
def walk() -> dict[tuple[str, str], Outcome]:
    """The walk's outcomes, walked once (a failed walk fails every row at once, not again)."""
    if not _WALKED:
        try:
            _WALKED.append(asyncio.run(_walk()))
        except Exception as error:
            _WALKED.append(error)
    if isinstance(_WALKED[0], BaseException):
        raise RuntimeError("the walk failed") from _WALKED[0]
    return _WALKED[0]


# --- one test per row and person -----------------------------------------------------------

AUTH_STEPS = {"/login", "/login/verify", "/account"}


def sent_to_sign_in(outcome: Outcome) -> bool:
    """A redirect to the sign-in or code step, which always says where to come back to."""
    target = urlsplit(outcome.location)
    return 300 <= outcome.status < 400 and target.path in AUTH_STEPS and "next=" in target.query


def verdict(row: Row, expectation: str, outcome: Outcome) -> str | None:
    """What is wrong with this outcome, or None."""
    if outcome.csrf:
        return "refused as a forged form: the walk sent a bad CSRF token"
    if outcome.status >= 500:
        return "server error"
    if expectation == PASS:
        return _not_passed(row, outcome)
    return _not_refused(expectation, outcome)


def _not_passed(row: Row, outcome: Outcome) -> str | None:
    if outcome.status in (401, 403, 404) or sent_to_sign_in(outcome):
        return "refused"
    if row.method in ("GET", "HEAD") and not 200 <= outcome.status < 400:
        return "no page"
    if outcome.status >= 400 and outcome.status not in (400, 409, 413, 422, 429):
        return "unexpected status"
    if outcome.own_data is False:
        return "someone else's data"
    return "the database changed" if outcome.changed else None  # rows that must change nothing


def _not_refused(expectation: str, outcome: Outcome) -> str | None:
    if expectation == REFUSE and not (
        outcome.status in (401, 403, 404) or sent_to_sign_in(outcome)
    ):
        return "not refused before validation" if outcome.status >= 400 else "not refused"
    if expectation == REJECT and not 400 <= outcome.status < 500:
        return "not refused"
    return "refused, yet the database changed" if outcome.changed else None


def _cases() -> Iterator[Any]:
    for row in ROWS:
        for person in PERSON_NAMES:
            marks = []
            if row.hole is not None and person in row.hole.persons:
                marks.append(pytest.mark.xfail(strict=True, reason=row.hole.reason))
            yield pytest.param(row, person, id=f"{row.label} as {person}", marks=marks)


@pytest.mark.parametrize(("row", "person"), list(_cases()))
def test_route(walk: dict[tuple[str, str], Outcome], row: Row, person: str) -> None:
    outcome = walk[(row.label, person)]
    expectation = row.expectation(person)
    problem = verdict(row, expectation, outcome)
    assert problem is None, (
        f"{row.label} [{row.access.name}] as {person}: expected {expectation}, "
        f"got {outcome.describe()}: {problem}\n{outcome.text}"
    )


# --- a tablet reaches its own pages and nothing else ------------------------------------------


def _tablet_cases() -> Iterator[Any]:
    steps = [TabletStep(row, "", locked=True) for row in TABLET_ROWS] + TABLET_STEPS
    for step in steps:
        marks = []
        if step.row.hole is not None and TABLET in step.row.hole.persons:
            marks.append(pytest.mark.xfail(strict=True, reason=step.row.hole.reason))
        yield pytest.param(step, id=f"{step.row.label} from a tablet", marks=marks)


def test_tablet_rows_are_distinct() -> None:
    labels = [row.label for row in TABLET_ROWS] + [step.row.label for step in TABLET_STEPS]
    assert len(labels) == len(set(labels)), [x for x in labels if labels.count(x) > 1]


def _by_path(outcome: Outcome) -> str:
    """What a page of ROWS must give the tablet (locked all along): its own list asks for
    the PIN; its ballot and "thank you" pages, in the hands of nobody and with no receipt,
    go back to the list; what its pages show is shown; anything else goes back to the list."""
    path = urlsplit(outcome.url).path
    if path == outcome.tablet:
        return PIN_FORM
    if path.startswith(TABLET_OPEN):
        return SHOWN
    return BACK


def _answered(answer: str, outcome: Outcome) -> bool:
    got = (outcome.status, outcome.location)
    return {
        NAMES: outcome.status == 200 and not outcome.pin_form,
        PIN_FORM: outcome.status == 200 and outcome.pin_form,
        PIN_AGAIN: outcome.status == 400 and outcome.pin_form,
        BACK: got == (303, outcome.tablet),
        TO_BALLOT: got == (303, f"{outcome.tablet}/ballot"),
        BALLOT: outcome.status == 200 and not outcome.pin_form,
        SHOWN: outcome.status == 200,
        REFUSED_HERE: 400 <= outcome.status < 500 and not outcome.pin_form,
    }[answer]


@pytest.mark.parametrize("step", list(_tablet_cases()))
def test_a_tablet_reaches_its_own_pages_and_nothing_else(
    walk: dict[tuple[str, str], Outcome], step: TabletStep
) -> None:
    outcome = walk[(step.row.label, TABLET)]
    answer = step.answer or _by_path(outcome)
    states = {True: "locked", False: "unlocked", None: "gone"}
    assert not outcome.csrf, "refused as a forged form: the walk sent a bad CSRF token"
    right = _answered(answer, outcome) and outcome.locked is step.locked
    assert right, (
        f"{step.row.label} asked from the tablet of {outcome.tablet} ({outcome.url}): expected "
        f"{answer}, the tablet {states[step.locked]}; got {outcome.describe()}, the tablet "
        f"{states[outcome.locked]}\n{outcome.text}"
    )
