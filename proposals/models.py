from piccolo.columns import (
    Bytea,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from maps.models import District
from tables.models import Table

# The life of a proposal: déposée → en discussion → au vote → adoptée / non retenue → transmise →
# réponse reçue → réalisée / refusée; a duplicate is merged into the proposal it repeats.
SUBMITTED = "submitted"
DISCUSSION = "discussion"
VOTING = "voting"
ADOPTED = "adopted"
REJECTED = "rejected"
TRANSMITTED = "transmitted"
ANSWERED = "answered"
DONE = "done"
REFUSED = "refused"
MERGED = "merged"


class Proposal(Model, tablename="proposal"):
    id: Serial
    table = ForeignKey(Table, null=False, on_delete=OnDelete.restrict)
    title = Varchar(length=140)
    body = Text()
    theme = Varchar(length=32)
    language = Varchar(length=5)
    status = Varchar(length=16, default=SUBMITTED)
    # When the author is erased, the proposal stays, signed "habitant·e".
    author = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    # Set when a facilitator entered the proposal on the author's behalf.
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz()
    # Moderation: hidden by a facilitator, with the reason shown in its place.
    hidden_at = Timestamptz(null=True, default=None)
    hidden_reason = Varchar(length=300, default="")
    # A merged duplicate points to the proposal it was merged into.
    merged_into = Integer(null=True, default=None)
    # How many support it: kept exact by the transactions that add or remove a support.
    supports = Integer(default=0)
    # Entered on a resident's behalf: when their consent was recorded (by `recorded_by`).
    consent_recorded_at = Timestamptz(null=True, default=None)
    # A facilitator's transcription of the voice note, for those who read.
    transcription = Text(default="")
    # Where it is, if placed: a point inside one of the table's districts.
    latitude = DoublePrecision(null=True, default=None)
    longitude = DoublePrecision(null=True, default=None)
    district = ForeignKey(District, null=True, on_delete=OnDelete.set_null)


class StatusChange(Model, tablename="proposal_status_change"):
    """The history of a proposal's status: who, when, why."""

    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    from_status = Varchar(length=16)
    to_status = Varchar(length=16)
    actor = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    reason = Varchar(length=300, default="")
    at = Timestamptz()


class Support(Model, tablename="proposal_support"):
    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    created_at = Timestamptz()
    # Set when a facilitator recorded it on the resident's behalf, as for proposals; the consent
    # time stays when the facilitator is erased, so it is still known not to be the person's click.
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    consent_recorded_at = Timestamptz(null=True, default=None)
    # unique together: proposal, user


class Comment(Model, tablename="proposal_comment"):
    """A comment, or a reply to one (one level: a reply's parent is never a reply)."""

    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    parent = Integer(null=True, default=None)
    author = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    body = Text()
    created_at = Timestamptz()
    hidden_at = Timestamptz(null=True, default=None)
    hidden_reason = Varchar(length=300, default="")
    # Written down by a facilitator for the author, who agreed to it (as Support above).
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    consent_recorded_at = Timestamptz(null=True, default=None)


class Report(Model, tablename="proposal_report"):
    """A resident's report of a proposal or a comment, for the facilitators to look at."""

    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    comment = ForeignKey(Comment, null=True, on_delete=OnDelete.cascade)
    target = Varchar(length=40)  # "proposal:12" or "comment:7"
    reporter = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    reason = Varchar(length=300, default="")
    created_at = Timestamptz()
    # unique together: target, reporter


PHOTO = "photo"
VOICE = "voice"


class Media(Model, tablename="proposal_media"):
    """A proposal's photo (re-encoded, no metadata) or voice note, kept in the database so
    that every app process and machine serves it, and backups hold it."""

    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=8)
    token = Varchar(length=32, unique=True)  # the unguessable name in its URL
    content_type = Varchar(length=40)
    data = Bytea()
    size = Integer()
    seconds = Integer(default=0)  # a voice note's duration
    created_at = Timestamptz()
    # A photo goes into documents sent to institutions only once its author said yes (or a
    # facilitator recorded that they did: who, in `publication_consent_recorded_by`).
    publication_consent_at = Timestamptz(null=True, default=None)
    publication_consent_recorded_by = Integer(null=True, default=None)


class Translation(Model, tablename="proposal_translation"):
    """A facilitator's translation of a proposal into one of the site's languages."""

    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    language = Varchar(length=5)
    title = Varchar(length=140)
    body = Text()
    translated_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz()
    # unique together: proposal, language
