from piccolo.columns import UUID, ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from proposals.models import Proposal
from tables.models import Table

OPEN = "open"
CLOSED = "closed"
YES_NO_ABSTAIN = "yes_no_abstain"
YES, NO, ABSTAIN = "yes", "no", "abstain"
CHOICES = (YES, NO, ABSTAIN)


class Vote(Model, tablename="vote"):
    id: Serial
    table = ForeignKey(Table, null=False, on_delete=OnDelete.restrict)
    proposal = ForeignKey(Proposal, null=True, on_delete=OnDelete.restrict)
    question = Varchar(length=200)
    method = Varchar(length=24, default=YES_NO_ABSTAIN)
    status = Varchar(length=8, default=OPEN)
    opened_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    opened_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)


class Participation(Model, tablename="vote_participation"):
    """Who took part. Kept apart from ballots: nothing links a row here to a ballot."""

    id: Serial
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    # Kept when the voter is erased (set null): the ballot stays counted.
    user = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    cast_at = Timestamptz()
    # unique together: vote, user


class SealedBallot(Model, tablename="sealed_ballot"):
    """A ballot while its vote is open: receipt and choice encrypted (voix.crypto, "ballot").

    Written in the same transaction as the participation, so the database can link the two;
    that is why it is sealed, and why it only lives until the vote closes.
    """

    id: Serial
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    sealed = Text()


class Ballot(Model, tablename="ballot"):
    """What was voted, written when the vote closes: all ballots of a vote in one transaction,
    in shuffled order, with a random key and no timestamp. Nothing ties a row to a voter.
    """

    id = UUID(primary_key=True)
    vote = ForeignKey(Vote, null=False, on_delete=OnDelete.cascade)
    receipt = Varchar(length=12)
    choice = Varchar(length=16)
