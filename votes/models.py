from piccolo.columns import (
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from proposals.models import Proposal
from tables.models import Table
from votes.scales import YES_NO_ABSTAIN

OPEN = "open"
CLOSED = "closed"
# What a receipt proves once the vote is closed (see votes.services.RECEIPT_PROOFS).
INCLUSION = "inclusion"
CONTENT = "content"
# Who may vote, chosen when the vote opens.
MEMBERS = "members"  # the table's members when the vote opened
PRESENT = "present"  # the people checked in at a meeting whose agenda carries the vote
BOTH = "both"
ELECTORATES = (MEMBERS, PRESENT, BOTH)
# How a participant voted. Online and tablet ballots are electronic (sealed, then in the
# ballot box); paper and hands are counted by two facilitators (meetings.models.RoomCount).
ONLINE = "online"
TABLET = "tablet"
PAPER = "paper"
HANDS = "hands"
CHANNELS = (ONLINE, TABLET, PAPER, HANDS)
ELECTRONIC = (ONLINE, TABLET)


class Vote(Model, tablename="vote"):
    id: Serial
    table = ForeignKey(Table, null=False, on_delete=OnDelete.restrict)
    # A vote on one proposal (yes/no); a vote over several has its proposals in VoteOption.
    proposal = ForeignKey(Proposal, null=True, on_delete=OnDelete.restrict)
    question = Varchar(length=200)
    method = Varchar(length=24, default=YES_NO_ABSTAIN)
    status = Varchar(length=8, default=OPEN)
    opened_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    opened_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)
    # Closed by the first request or `voix close-due` after this moment, whichever comes first.
    closes_at = Timestamptz(null=True, default=None)
    # The rule, fixed when the vote opens: the result decides by it alone.
    scale = Varchar(length=8, default="")
    quorum = Integer(null=True, default=None)
    threshold = Varchar(length=16, default="majority")
    adopt_grade = SmallInt(null=True, default=None)
    adopt_top = SmallInt(null=True, default=None)
    receipts_prove = Varchar(length=12, default=INCLUSION)
    electorate = Varchar(length=8, default=MEMBERS)
    # Written when the vote closes.
    participants = Integer(null=True, default=None)
    box_sha256 = Varchar(length=64, default="")


class VoteOption(Model, tablename="vote_option"):
    """What is voted on, as it read when the vote opened: later edits or merges change nothing.

    The result of each option is stored here when the vote closes.
    """

    id: Serial
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    position = SmallInt()
    proposal = ForeignKey(Proposal, null=True, on_delete=OnDelete.set_null)
    label = Varchar(length=200)
    theme = Varchar(length=32, default="")
    # Counts best grade first (majority judgment), [approvals], or [yes, no, abstain], as JSON.
    tally = Text(default="")
    rank = SmallInt(null=True, default=None)
    majority_grade = SmallInt(null=True, default=None)
    adopted = Boolean(null=True, default=None)


class Participation(Model, tablename="vote_participation"):
    """The roll: who took part, and through which channel. Kept apart from ballots: nothing
    links a row here to a ballot. One row per person and vote, whatever the channel, so nobody
    votes twice: `person` is unique per vote and reads as meetings.models.Attendance.person
    ("user:12", or "name:<case-folded name>" for a walk-in without an account).

    A paper row means a paper ballot was handed out, a hands row that the person was in the
    room for the show of hands: neither says what, or whether, they voted.
    """

    id: Serial
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    # Kept when the voter is erased (set null): the ballot stays counted.
    user = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    person = Varchar(length=100, default="")
    name = Varchar(length=80, default="")  # a walk-in's name, as checked in
    channel = Varchar(length=8, default=ONLINE)
    # The facilitator who recorded it (tablet, paper, hands); null online.
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    cast_at = Timestamptz()
    # A keyed hash of the ballot form as sent (votes.services.submission_of): the same form
    # sent again is recognised and gets its receipt again. Not the receipt, nor anything that
    # opens to it: see votes.services.record_ballot.
    submission = Varchar(length=64, default="")
    # unique together: vote, user; and vote, person


class SealedBallot(Model, tablename="sealed_ballot"):
    """A ballot while its vote is open: receipt and choices encrypted (votes.sealing).

    Written in the same transaction as the participation, so the database can link the two;
    that is why it is sealed, and why it only lives until the vote closes. What the rows show
    without the key owes as little as we can to the order of casting: a random key (not a
    serial beside the participation's serial), no time, in clear or inside the token, and on
    SQLite a table stored in the order of that key (WITHOUT ROWID, votes migration of
    2026-11-30T16:10), so a copy of the file lists them shuffled.

    What still follows casting, said plainly: on PostgreSQL a row sits where it was appended,
    so a pg_dump (COPY in physical order) lists a vote's sealed ballots in the order of its
    participations; and both rows carry the inserting transaction's id (xmin) for whoever can
    query the live database. Those link a voter to a sealed ballot, not to what it says: the
    key is still needed to open it, and closing replaces them all by shuffled ballots.
    """

    id = UUID(primary_key=True)
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    sealed = Text()


class Ballot(Model, tablename="ballot"):
    """What was voted, written when the vote closes: all ballots of a vote in one transaction,
    in shuffled order, with a random key and no timestamp. Nothing ties a row to a voter.

    `marks` is a JSON array with one entry per option, in the vote's option order: the grade
    given (majority judgment: 0 is the best; yes/no: 0 yes, 1 no, 2 abstain; approval: 0 for
    approved) or null for an option left ungraded or not approved, which counts as the lowest
    grade. One row per ballot: closing 100,000 ballots writes 100,000 rows, not a million.
    """

    id = UUID(primary_key=True)
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    receipt = Varchar(length=12)
    marks = Text(default="[]")


class Decision(Model, tablename="vote_decision"):
    """How the table decided a proposal: by a vote's result, or by its own reasoned choice.

    A decision without a vote, or against one, carries its written reason, shown publicly.
    """

    id: Serial
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.cascade)
    vote = ForeignKey(Vote, null=True, on_delete=OnDelete.set_null)
    outcome = Varchar(length=16)
    follows_vote = Boolean(default=False)
    reason = Text(default="")
    decided_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    decided_at = Timestamptz()
