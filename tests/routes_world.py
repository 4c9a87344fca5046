"""The people and the objects of table A that tests/test_routes.py walks every route with.

Everything is made through the project's services (or tests/factories.py), as a facilitator
of table A would make it, so each path parameter names a real object of table A.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from PIL import Image

from accounts import mfa
from accounts.models import User
from accounts.reset import make_token
from accounts.services import load_principal, open_session
from accounts.totp import generate_totp_secret
from exports import drafts
from exports import services as briefs
from exports.models import Brief, BriefItem
from followup import services as followup
from meetings import room as in_room
from meetings import services as meetings
from meetings.models import Attendance
from notifications import delivery as notification_delivery
from notifications.models import FAILED, SMS, Delivery, Event, Notification
from proposals import media
from proposals.models import ADOPTED, Media
from tests.factories import (
    PASSWORD,
    add_draft,
    add_institution,
    add_proposal,
    build_world,
    register_card_resident,
)
from voix import crypto
from voix.i18n import LOCAL_TIMEZONE
from voix.permissions import Principal
from votes import closing
from votes import services as votes
from votes.models import BOTH


@dataclass(frozen=True)
class Person:
    """Someone who makes requests: `user` is a key of RouteWorld.users (None: anonymous)."""

    name: str
    user: str | None
    verified: bool = False  # the session proved a TOTP code


PERSONS = (
    Person("anonymous", None),
    Person("resident_a", "resident_a"),
    Person("resident_b", "resident_b"),
    Person("card_resident_a", "card_resident_a"),  # registered at A, signs in with a card only
    Person("facilitator_a", "facilitator_a", verified=True),
    Person("facilitator_a_unverified", "facilitator_a"),
    Person("facilitator_b", "facilitator_b", verified=True),
    Person("coordinator_a", "coordinator_a", verified=True),
    Person("coordinator_b", "coordinator_b", verified=True),
    Person("admin", "admin", verified=True),
)
PERSON_NAMES = tuple(person.name for person in PERSONS)

# Those who hold keys enrol TOTP, so an unverified session is sent to the code step as in life.
# Every code of theirs counts as spent already: a code the walk types ("000000") is wrong, and
# never right by chance.
MANAGING_USERS = ("facilitator_a", "facilitator_b", "coordinator_a", "coordinator_b", "admin")


@dataclass
class RouteWorld:
    table_a: dict[str, Any]
    table_b: dict[str, Any]
    users: dict[str, int]
    manager: Principal  # facilitator of A, verified: makes objects during the walk
    objects: dict[str, Any] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)
    _walk_ins: int = 0
    _votables: int = 0

    async def walk_in(self) -> int:
        """A fresh check-in (by name) at the open meeting; its attendance id."""
        self._walk_ins += 1
        name = f"Visiteur {self._walk_ins}"
        meeting = await meetings.get(self.objects["meeting"])
        await meetings.check_in_walk_in(self.manager, self.table_a, meeting, {"name": name})
        row = (
            await Attendance.select(Attendance.id)
            .where((Attendance.meeting == meeting["id"]) & (Attendance.name == name))
            .first()
        )
        assert row is not None
        return int(row["id"])

    async def votable_proposal(self) -> int:
        """A new proposal of table A, still free to be put to a vote."""
        self._votables += 1
        return await add_proposal(self.table_a, f"Une proposition à voter {self._votables}")

    async def draft_stamp(self) -> str:
        """The walk's draft as an edit form carries it back: its `updated_at` set again, so
        each person's form is the current one (another's save would make it stale)."""
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        await Brief.update({Brief.updated_at: moment}).where(Brief.slug == self.objects["draft"])
        return drafts.stamp(moment)

    async def institution_name(self) -> str:
        """A name no institution of the organisation has yet."""
        self._votables += 1
        return f"Bailleur {self._votables}"

    async def room_batch(self) -> int:
        """A new batch of the room vote's paper, one person's entry in it: a count for the
        walk to drop."""
        vote_id = self.objects["vote_room"]
        count_id = await in_room.open_paper_batch(self.manager, self.table_a, vote_id)
        figures = one_paper_ballot(self.objects["room_option"])
        await in_room.enter_count(self.manager, self.table_a, vote_id, count_id, figures)
        return count_id

    async def failed_delivery(self) -> int:
        """A new SMS to resident A that failed (a message to table A): one for a coordinator
        to send again."""
        self._votables += 1
        now = datetime.now(UTC)
        event = await Event.insert(
            Event(
                key=f"message:walk-{self._votables}",
                kind="message",
                table=self.table_a["id"],
                params='{"table": "A", "author": "A", "text": "Bonjour"}',
                path=f"/tables/{self.table_a['slug']}",
                created_at=now,
            )
        ).returning(Event.id)
        resident = self.users["resident_a"]
        notification = await Notification.insert(
            Notification(event=event[0]["id"], user=resident, created_at=now)
        ).returning(Notification.id)
        delivery = await Delivery.insert(
            Delivery(
                notification=notification[0]["id"],
                user=resident,
                channel=SMS,
                status=FAILED,
                due_at=now,
                attempts=5,
                last_error="HTTP 500",
                created_at=now,
            )
        ).returning(Delivery.id)
        return int(delivery[0]["id"])


def one_paper_ballot(option_id: int) -> dict[str, str]:
    """A count's entry of one paper ballot, for (the room votes are for, against, abstain)."""
    return {
        "ballots": "1",
        "blank": "0",
        "spoilt": "0",
        f"o{option_id}-g0": "1",
        f"o{option_id}-g1": "0",
        f"o{option_id}-g2": "0",
    }


def _meeting_form(title: str, agenda: str = "") -> dict[str, Any]:
    day = (datetime.now(LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    return {
        "title": title,
        "date": day,
        "start": "18:30",
        "end": "20:00",
        "place": "Centre social Flamants-Iris",
        "address": "12 avenue Salvador Allende, 13014 Marseille",
        "languages": ["fr", "ar"],
        "agenda": agenda,
    }


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 60)).save(out, "JPEG")
    return out.getvalue()


# The walk checks who gets in, not argon2's cost: passwords are hashed with the lightest
# parameters (a hash carries its own), so the forms that check one (sign-in, removing TOTP)
# answer quickly for each person.
_LIGHT_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


async def build_route_world() -> RouteWorld:
    base = await build_world()
    users = dict(base.users)
    await User.update({User.password_hash: _LIGHT_HASH}).where(User.id.is_in(list(users.values())))
    now = datetime.now(UTC)
    for key in MANAGING_USERS:
        await User.update(
            {
                User.totp_secret: crypto.encrypt(generate_totp_secret(), mfa.TOTP),
                User.totp_enabled_at: now,
                User.totp_last_step: 2**40,
            }
        ).where(User.id == users[key])
    manager = await load_principal(await open_session(users["facilitator_a"], verified=True))
    table = base.table_a
    world = RouteWorld(table_a=table, table_b=base.table_b, users=users, manager=manager)
    objects = world.objects
    objects["slug"] = table["slug"]
    objects["slug_b"] = base.table_b["slug"]
    objects["organisation"] = table["organisation_slug"]

    # Residents: one registered with a card (no password), and a link to reset a password.
    card_user, card_code = await register_card_resident(manager, table)
    users["card_resident_a"] = card_user
    objects.update(
        card_resident=card_user,
        card_code=card_code,
        resident_a=users["resident_a"],
        resident_b=users["resident_b"],
        facilitator_a=users["facilitator_a"],
    )
    by_id = {row["id"]: row["login"] for row in await User.select(User.id, User.login)}
    world.logins = {key: by_id[user_id] for key, user_id in users.items()}
    objects["reset_token"] = make_token(users["resident_a"], _LIGHT_HASH)

    # Proposals: one to discuss (with a photo), one to hide, a duplicate of it to merge,
    # others for the votes, one adopted for the brief.
    objects["proposal"] = await add_proposal(table, "Réparer les ascenseurs de la tour G")
    objects["media"] = await media.store(objects["proposal"], media.clean_photo(_photo()))
    objects["media_id"] = (
        await Media.select(Media.id).where(Media.token == objects["media"]).first()
    )["id"]
    objects["proposal_to_hide"] = await add_proposal(table, "Une proposition à cacher")
    objects["duplicate"] = await add_proposal(table, "Réparer les ascenseurs, encore")
    voted_on = [await add_proposal(table, f"Des bancs devant l'école {n}") for n in range(3)]
    lit = await add_proposal(table, "Un éclairage pour le parking", status=ADOPTED)
    lit_photo = await media.store(lit, media.clean_photo(_photo()))
    await Media.update({Media.publication_consent_at: datetime.now(UTC)}).where(
        Media.token == lit_photo
    )
    objects["proposal_b"] = await add_proposal(base.table_b, "Un terrain de foot aux Aygalades")

    # Votes: open, closed, and one open for the walk to close.
    async def opened(proposal_id: int, question: str) -> int:
        return await votes.open_vote(manager, table, [proposal_id], {"question": question})

    objects["vote_open"] = await opened(voted_on[0], "Adopter les bancs ?")
    objects["vote_closed"] = await opened(voted_on[1], "Adopter ceci ?")
    await closing.close_vote(manager, table, objects["vote_closed"])
    objects["vote_to_close"] = await opened(voted_on[2], "Et cela ?")

    # Meetings: one being held (agenda, a speaker waiting), one scheduled to edit, one each
    # for the walk to open, cancel and close, and a closed one with published minutes.
    async def scheduled(title: str, agenda: str = "") -> dict[str, Any]:
        meeting_id = await meetings.schedule(manager, table, _meeting_form(title, agenda))
        return await meetings.get(meeting_id)

    async def held(title: str, agenda: str = "") -> dict[str, Any]:
        meeting = await scheduled(title, agenda)
        await meetings.open_meeting(manager, table, meeting)
        return await meetings.get(meeting["id"])

    room = await held("Réunion de la table", "Accueil\nLes ascenseurs")
    objects["meeting"] = room["id"]
    objects["agenda_item"] = (await meetings.agenda(room["id"]))[-1]["id"]
    await meetings.add_speaker(manager, table, room, {"name": "Nadia"})
    await meetings.add_speaker(manager, table, room, {"name": "Karim"})
    objects["speaker"] = (await meetings.queue(room["id"]))["waiting"][-1]["id"]
    objects["meeting_scheduled"] = (await scheduled("Réunion à venir"))["id"]
    objects["meeting_to_open"] = (await scheduled("Réunion à ouvrir"))["id"]
    objects["meeting_to_cancel"] = (await scheduled("Réunion à annuler"))["id"]
    objects["meeting_to_close"] = (await held("Réunion à clore"))["id"]
    past = await held("Réunion passée")
    await meetings.close_meeting(manager, table, past)
    past = await meetings.get(past["id"])
    await meetings.save_minutes(
        manager, table, past, {"body": "# Compte rendu\n\nLes bancs."}, publish=True
    )
    objects["meeting_closed"] = past["id"]

    # Voting in the room (meetings.room): a meeting being held with a member and two walk-ins
    # checked in, and two votes it holds (its members and those present may vote): one with
    # paper handed to a walk-in, a batch of it one person has entered (nothing records or
    # drops it: the rows that mix tables aim at it) and a batch to count, one for a show of
    # hands. The other walk-in is who the tablet is handed to once the walk is over.
    hall = await held("Réunion avec votes en salle")
    objects["meeting_room"] = hall["id"]
    await meetings.check_in_member(manager, table, hall, users["resident_a"])
    # Not "Fatou": that is the card resident's name, and a member is no walk-in.
    await meetings.check_in_walk_in(manager, table, hall, {"name": "Aïcha"})
    await meetings.check_in_walk_in(manager, table, hall, {"name": "Samir"})
    samir = (
        await Attendance.select(Attendance.person)
        .where((Attendance.meeting == hall["id"]) & (Attendance.name == "Samir"))
        .first()
    )
    assert samir is not None
    objects["tablet_voter"] = samir["person"]

    async def held_vote(
        who: Principal, at: dict[str, Any], meeting: dict[str, Any], question: str
    ) -> int:
        proposal_id = await add_proposal(at, question)
        form = {"question": question, "meeting": str(meeting["id"]), "electorate": BOTH}
        return await votes.open_vote(who, at, [proposal_id], form)

    vote_room = await held_vote(manager, table, hall, "Des bancs dans le hall ?")
    objects["vote_room"] = vote_room
    objects["room_option"] = (await votes.options([vote_room]))[vote_room][0]["id"]
    await in_room.hand_out_paper(manager, table, vote_room, ["name:aïcha"])
    entered = await in_room.open_paper_batch(manager, table, vote_room)
    figures = one_paper_ballot(objects["room_option"])
    await in_room.enter_count(manager, table, vote_room, entered, figures)
    objects["room_count_entered"] = entered
    objects["room_count"] = await in_room.open_paper_batch(manager, table, vote_room)
    objects["vote_hands"] = await held_vote(manager, table, hall, "Un goûter après ?")

    # The same at table B: its vote and its batch, for the rows that mix tables.
    table_b = base.table_b
    manager_b = await load_principal(await open_session(users["facilitator_b"], verified=True))
    hall_b = await meetings.get(
        await meetings.schedule(manager_b, table_b, _meeting_form("Réunion aux Aygalades"))
    )
    await meetings.open_meeting(manager_b, table_b, hall_b)
    hall_b = await meetings.get(hall_b["id"])
    await meetings.check_in_walk_in(manager_b, table_b, hall_b, {"name": "Inès"})
    vote_b = await held_vote(manager_b, table_b, hall_b, "Des filets pour les buts ?")
    objects["vote_b"] = vote_b
    await in_room.hand_out_paper(manager_b, table_b, vote_b, ["name:inès"])
    objects["room_count_b"] = await in_room.open_paper_batch(manager_b, table_b, vote_b)

    # The brief of what the table adopted.
    draft = await add_draft(
        table,
        "Nos propositions",
        slug="nos-propositions",
        addressees=("Conseil citoyen du 14e", "Métropole"),
    )
    photo = await Media.select(Media.id).where(Media.token == lit_photo).first()
    objects["brief_photo"] = photo["id"]
    await BriefItem.update({BriefItem.photo: photo["id"]}).where(
        (BriefItem.brief == draft["id"]) & (BriefItem.proposal == lit)
    )
    await briefs.publish_version(manager, draft)
    objects["brief"] = draft["slug"]
    objects["brief_id"] = draft["id"]
    # The conseil citoyen answered (with its letter); the Métropole has not.
    answering = await add_institution(table, "Conseil citoyen du 14e")
    objects["answering"] = answering
    objects["institution"] = await add_institution(table, "Métropole")
    objects["today"] = datetime.now(LOCAL_TIMEZONE).date().isoformat()
    objects["answer"] = await followup.record_answer(
        manager,
        table,
        await followup.get_brief(table, draft["slug"]),
        {"institution": str(answering), "received_on": objects["today"], "summary": "Reçu."},
        letter=b"%PDF-1.4\n% a letter\n%%EOF\n",
    )
    # A draft not yet published, for the composer's rows.
    objects["draft"] = (await add_draft(table, "En préparation", slug="en-preparation"))["slug"]
    objects["stop_token"] = await notification_delivery.stop_token(users["resident_a"], "email")
    return world
