from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from proposals.models import Proposal
from tables.models import Table


class Brief(Model, tablename="brief"):
    """A position document: what a table adopted, addressed to an institution."""

    id: Serial
    slug = Varchar(length=80, unique=True)
    table = ForeignKey(Table, null=False, on_delete=OnDelete.restrict)
    title = Varchar(length=160)
    addressed_to = Varchar(length=160)
    introduction = Text(default="")
    created_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    published_at = Timestamptz()


class BriefItem(Model, tablename="brief_item"):
    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.restrict)
    position = Integer()
    # unique together: brief, proposal
