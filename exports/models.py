from piccolo.columns import Bytea, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
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


class StoredPdf(Model, tablename="stored_pdf"):
    """A published document's PDF, rendered once and served as stored afterwards.

    `fingerprint` is the SHA-256 of everything the rendering was given (the document's data, the
    language, the templates and catalogs): when any of it changes, the next download renders
    anew instead of serving a PDF that no longer matches the page.
    """

    id: Serial
    document = Varchar(length=100)  # "brief:SLUG", "minutes:ID" (a minutes row is one version)
    language = Varchar(length=8)
    fingerprint = Varchar(length=64)
    content = Bytea()
    sha256 = Varchar(length=64)  # of `content`
    created_at = Timestamptz()
    # unique together: document, language, fingerprint
