from piccolo.columns import ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from tables.models import Table

SUBMITTED = "submitted"
VOTING = "voting"
ADOPTED = "adopted"
REJECTED = "rejected"


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
