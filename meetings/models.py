"""Meetings (séances) of a table: agenda, attendance, speakers' queue, minutes."""

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

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
