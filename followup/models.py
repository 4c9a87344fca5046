"""What institutions answered to the briefs, and what they committed to."""

from piccolo.columns import Bytea, Date, ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from exports.models import Brief
from proposals.models import Proposal
from tables.models import Institution


class Response(Model, tablename="institution_response"):
    """An institution's answer to a brief: its letter, what it says, what it commits to."""

    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    institution = ForeignKey(Institution, null=False, on_delete=OnDelete.restrict)
    received_on = Date()
    summary = Text()
    commitments = Text(default="")
    # The letter as received: a PDF as sent, or a photo re-encoded without its metadata.
    letter = Bytea(null=True, default=None)
    letter_type = Varchar(length=40, default="")
    letter_sha256 = Varchar(length=64, default="")
    look_again_on = Date(null=True, default=None)
    recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    recorded_at = Timestamptz()


class ResponseItem(Model, tablename="institution_response_item"):
    """A proposal the answer speaks of, and the status it moved it to ("" when it did not)."""

    id: Serial
    response = ForeignKey(Response, null=False, on_delete=OnDelete.cascade)
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.restrict)
    status = Varchar(length=16, default="")
    note = Varchar(length=300, default="")
    # unique together: response, proposal
