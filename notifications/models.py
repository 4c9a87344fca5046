"""Who follows what, how each resident wants to hear of it, and what was sent to whom.

An event (a meeting scheduled, a reminder, a vote opened…) is one row with a unique key: two
replicas, or a retried job, that emit the same event add it once. Its audience gets one
notification each (unique per event and person): that row is the site channel. Each
notification gets one delivery per channel the person consented to (unique per notification
and channel), claimed by one sender at a time: nothing is sent twice.
"""

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from meetings.models import Meeting
from tables.models import Table

# What a person follows (Follow.kind).
TABLE = "table"
PROPOSAL = "proposal"
MEETING = "meeting"
FOLLOW_KINDS = (TABLE, PROPOSAL, MEETING)

# Channels besides the site (Delivery.channel).
SMS = "sms"
EMAIL = "email"
CHANNELS = (SMS, EMAIL)

# Delivery.status
QUEUED = "queued"  # waits for due_at (quiet hours, the daily SMS, the e-mail digest)
SENDING = "sending"  # claimed by a sender until locked_until
SENT = "sent"
RETRY = "retry"  # failed, tried again at due_at
FAILED = "failed"  # gave up after the last attempt
UNCERTAIN = "uncertain"  # the provider may have it: not sent again, shown to coordinators
CANCELLED = "cancelled"  # consent withdrawn, STOP, or the account erased before it went
BUNDLED = "bundled"  # carried by another delivery's message (Delivery.bundle)


class Preference(Model, tablename="notification_preference"):
    """A resident's channels: SMS or e-mail only with recorded consent (when, and which
    facilitator recorded it, if one did); the site always."""

    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade, unique=True)
    sms_consent_at = Timestamptz(null=True, default=None)
    sms_consent_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    email_consent_at = Timestamptz(null=True, default=None)
    email_consent_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    # The number and address each consent was given for: a new one needs consent again.
    sms_consent_phone = Varchar(length=32, null=True, default=None)
    email_consent_address = Varchar(length=254, null=True, default=None)
    email_digest = Boolean(default=False)  # one e-mail a day rather than one per event
    sms_stopped_at = Timestamptz(null=True, default=None)  # last "STOP" received
    updated_at = Timestamptz()


class Follow(Model, tablename="follow"):
    """A person follows a table, a proposal or a meeting (unique per person, kind, target)."""

    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=12)
    target = Integer()
    created_at = Timestamptz()


class Rsvp(Model, tablename="rsvp"):
    """ "I'll come" / "I can't" for a meeting (unique per meeting and person), said by the
    person or recorded on their behalf by a facilitator."""

    id: Serial
    meeting = ForeignKey(Meeting, null=False, on_delete=OnDelete.cascade)
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    coming = Boolean()
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz()


class Event(Model, tablename="notification_event"):
    id: Serial
    key = Varchar(length=160, unique=True)  # "meeting.reminder:42:2026-12-02" — once ever
    kind = Varchar(length=32)
    table = ForeignKey(Table, null=True, on_delete=OnDelete.cascade)
    params = Text(default="{}")  # JSON: what the message needs, rendered in each language
    path = Varchar(length=300, default="/")  # the link, relative to the base URL
    # SMS about it may pass the daily limit until then (a meeting tomorrow).
    urgent_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class Notification(Model, tablename="notification"):
    """One event for one person: what the site shows (unique per event and person)."""

    id: Serial
    event = ForeignKey(Event, null=False, on_delete=OnDelete.cascade)
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)


class Delivery(Model, tablename="notification_delivery"):
    """A notification by SMS or e-mail (unique per notification and channel)."""

    id: Serial
    notification = ForeignKey(Notification, null=False, on_delete=OnDelete.cascade)
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    channel = Varchar(length=8)
    status = Varchar(length=10, default=QUEUED)
    due_at = Timestamptz()
    attempts = Integer(default=0)
    locked_by = Varchar(length=64, null=True, default=None)
    locked_until = Timestamptz(null=True, default=None)
    last_error = Text(default="")
    sent_at = Timestamptz(null=True, default=None)
    segments = Integer(default=0)  # SMS segments billed
    bundle = Integer(null=True, default=None)  # the delivery whose message carried this one
    created_at = Timestamptz()
