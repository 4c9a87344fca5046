"""Meetings (séances) of a table: agenda, attendance, speakers' queue, minutes."""

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import Session as LoginSession
from accounts.models import User
from proposals.models import Proposal
from tables.models import Table
from votes.models import Vote

SCHEDULED = "scheduled"
OPEN = "open"  # the meeting is being held: check-in and the room screen are live
CLOSED = "closed"
CANCELLED = "cancelled"

# How an attendance was recorded.
BY_QR = "qr"  # the resident, on their own phone, from the meeting's QR code
BY_LIST = "list"  # ticked by a facilitator on the table's list
WALK_IN = "walk_in"  # a person without an account, by name only
CHECK_IN_METHODS = (BY_QR, BY_LIST, WALK_IN)


class Meeting(Model, tablename="meeting"):
    id: Serial
    table = ForeignKey(Table, null=False, on_delete=OnDelete.restrict)
    title = Varchar(length=160)
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    place = Varchar(length=160)
    address = Varchar(length=240)
    languages = Varchar(length=64)  # language codes, space-separated: "fr ar"
    status = Varchar(length=12, default=SCHEDULED)
    current_item = Integer(null=True, default=None)  # an agenda item of this meeting
    created_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz()
    opened_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)


class AgendaItem(Model, tablename="agenda_item"):
    id: Serial
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    position = Integer()
    title = Varchar(length=200)
    proposal = ForeignKey(Proposal, null=True, on_delete=OnDelete.set_null)
    vote = ForeignKey(Vote, null=True, on_delete=OnDelete.set_null)


class Attendance(Model, tablename="attendance"):
    """One person present at one meeting: `person` is unique per meeting, so nobody counts twice."""

    id: Serial
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    # Kept when the person's account is erased (set null): the meeting's count stays right.
    user = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    name = Varchar(length=80, default="")  # a walk-in's name; members show their display name
    person = Varchar(length=100)  # "user:12" or "name:<case-folded name>"
    method = Varchar(length=8)
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    checked_in_at = Timestamptz()
    # unique together: meeting, person


class Speaker(Model, tablename="speaker"):
    """A turn in the speakers' queue; waiting until started, speaking until ended."""

    id: Serial
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=80)
    position = Integer()
    started_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)


class Minutes(Model, tablename="minutes"):
    """One version of a meeting's minutes. At most one draft; published versions never change."""

    id: Serial
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    version = Integer()
    body = Text()  # Markdown, as typed
    # `body` rendered and sanitised (nh3) once, when saved, in a worker process: showing the
    # minutes never parses Markdown. Null for rows saved before the column: filled at first view.
    body_html = Text(null=True, default=None)
    published = Boolean(default=False)
    author = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz()
    published_at = Timestamptz(null=True, default=None)
    # unique together: meeting, version


class MinutesLink(Model, tablename="minutes_link"):
    """A decision the minutes point to: a vote or a proposal of the same table."""

    id: Serial
    minutes = ForeignKey(Minutes, null=False, on_delete=OnDelete.cascade)
    proposal = ForeignKey(Proposal, null=True, on_delete=OnDelete.cascade)
    vote = ForeignKey(Vote, null=True, on_delete=OnDelete.cascade)


# Voting in the room (meetings.room): the shared tablet, paper ballots and a show of hands.

PENDING = "pending"  # a count waiting for its two entries
MISMATCH = "mismatch"  # the two entries differ: nothing counted until they agree
RECORDED = "recorded"  # both entries agree: counted with the vote
PAPER_COUNT = "paper"
HANDS_COUNT = "hands"


class Tablet(Model, tablename="tablet"):
    """A facilitator's session turned into a shared tablet for one vote.

    While this row exists, the session reaches nothing but the tablet's pages (voix.web's
    guard); leaving takes the facilitator's code again. The receipt of a ballot sent from it
    is never stored here: it goes to the "thank you" screen in a short-lived encrypted cookie. `person` is the attendee the tablet
    was handed to, with a fresh `handover` nonce the ballot form must carry back: a form left
    on screen by the previous voter cannot be sent for the next one.
    """

    id: Serial
    session = ForeignKey(LoginSession, null=False, on_delete=OnDelete.cascade, unique=True)
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    person = Varchar(length=100, default="")
    name = Varchar(length=80, default="")
    language = Varchar(length=5, default="")
    handover = Varchar(length=32, default="")
    handed_at = Timestamptz(null=True, default=None)
    # Handed over, the tablet stays locked until the facilitator takes it back with the PIN
    # they chose when starting it (keyed hash, voix.crypto "tablet-pin"): the person who just
    # voted cannot pick the next name.
    locked = Boolean(default=False)
    pin_hash = Varchar(length=64, default="")
    started_at = Timestamptz()


class RoomCount(Model, tablename="room_count"):
    """A batch of paper ballots, or a show of hands, counted by two people apart.

    Each enters the figures on their own device (RoomCountEntry) without seeing the other's;
    when both agree the figures are copied here and the count is recorded with its meeting.
    `figures` is JSON: {"ballots": n, "blank": n, "spoilt": n, "options": {option id: tally}}
    where a tally reads as VoteOption.tally (grades best first, [yes, no, abstain], approvals).
    """

    id: Serial
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=8, default=PAPER_COUNT)
    number = Integer()  # 1, 2, … per vote and kind: "lot 2"
    status = Varchar(length=10, default=PENDING)
    figures = Text(default="")
    ballots = Integer(default=0)  # paper ballots in the batch, blank and spoilt included
    blank = Integer(default=0)
    spoilt = Integer(default=0)
    opened_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    opened_at = Timestamptz()
    recorded_at = Timestamptz(null=True, default=None)
    # After two entries differ, both count again: entries are compared within a round only,
    # so nobody can correct theirs towards the other's figures one try at a time.
    round = Integer(default=1)
    differ = Text(default="")  # JSON list of the lines the last round's entries differ on
    # unique together: vote, kind, number


class RoomCountEntry(Model, tablename="room_count_entry"):
    """One person's entry of a count's figures (same JSON as RoomCount.figures)."""

    id: Serial
    count = ForeignKey(RoomCount, null=False, on_delete=OnDelete.cascade)
    entered_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    figures = Text()
    round = Integer(default=1)
    entered_at = Timestamptz()
    # unique together: count, entered_by
