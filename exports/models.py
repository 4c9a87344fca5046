from piccolo.columns import Boolean, Bytea, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from proposals.models import Proposal
from tables.models import Institution, Table


class Brief(Model, tablename="brief"):
    """A position document: what a table adopted, addressed to institutions.

    The row is the draft the facilitators edit; each publication freezes it as a BriefVersion
    (numbered from 1), which never changes afterwards. `version` is the newest one's number, 0
    for a draft never published; `published_at` its time (the creation time for a draft)."""

    id: Serial
    slug = Varchar(length=80, unique=True)
    table = ForeignKey(Table, null=False, on_delete=OnDelete.restrict)
    title = Varchar(length=160)
    addressed_to = Varchar(length=160)  # the draft's addressees' names
    introduction = Text(default="")  # the context, in Markdown (voix.richtext)
    created_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    published_at = Timestamptz()
    created_at = Timestamptz()
    updated_at = Timestamptz()
    version = Integer(default=0)
    language = Varchar(length=8, default="fr")  # what the title and context are written in
    show_participation = Boolean(default=True)
    show_votes = Boolean(default=True)


class BriefItem(Model, tablename="brief_item"):
    """A proposal the draft includes, in its order (grouped by theme when printed)."""

    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.restrict)
    position = Integer()
    # The proposal's photo to print (proposals.models.Media id), if its author consented.
    photo = Integer(null=True, default=None)
    # unique together: brief, proposal


class BriefAddressee(Model, tablename="brief_addressee"):
    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    institution = ForeignKey(Institution, null=False, on_delete=OnDelete.restrict)
    position = Integer()
    # unique together: brief, institution


class BriefSignatory(Model, tablename="brief_signatory"):
    """Who signs: an organisation, or a resident who consented to be named on this brief (the
    facilitator who recorded that consent, and when)."""

    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    position = Integer()
    name = Varchar(length=160)
    capacity = Varchar(length=160, default="")  # "présidente", "habitante des Flamants"…
    user = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    consent_recorded_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    consent_at = Timestamptz(null=True, default=None)


class BriefVersion(Model, tablename="brief_version"):
    """A published version: the whole document as it was sent, frozen (exports.snapshot)."""

    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    number = Integer()
    published_at = Timestamptz()
    published_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    language = Varchar(length=8)  # the language it was written in
    # As published, for the lists and the follow-up (the draft's may have changed since).
    title = Varchar(length=160, default="")
    addressed_to = Varchar(length=500, default="")
    document = Text()  # JSON, format "voix-brief/1"
    # unique together: brief, number


class BriefPhoto(Model, tablename="brief_photo"):
    """A photo as a version printed it: a copy, so the version stays whole if the photo goes."""

    id: Serial
    version = ForeignKey(BriefVersion, null=False, on_delete=OnDelete.cascade)
    media = Integer()  # the proposals.models.Media it was copied from
    content_type = Varchar(length=40)
    data = Bytea()
    # unique together: version, media


class BriefSent(Model, tablename="brief_sent"):
    """A brief was sent to an institution: first with which version, when (the follow-up's
    clock for that institution's answer starts then)."""

    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    institution = ForeignKey(Institution, null=False, on_delete=OnDelete.restrict)
    version = Integer()
    sent_at = Timestamptz()
    # unique together: brief, institution


class SentProposal(Model, tablename="brief_sent_proposal"):
    """A proposal went out in a brief: first with which version, when."""

    id: Serial
    brief = ForeignKey(Brief, null=False, on_delete=OnDelete.cascade)
    proposal = ForeignKey(Proposal, null=False, on_delete=OnDelete.restrict)
    version = Integer()
    sent_at = Timestamptz()
    # unique together: brief, proposal


class StoredPdf(Model, tablename="stored_pdf"):
    """A published document's PDF, rendered once and served as stored afterwards.

    `fingerprint` is the SHA-256 of everything the rendering was given (the document's data, the
    language, the templates and catalogs): when any of it changes, the next download renders
    anew instead of serving a PDF that no longer matches the page.
    """

    id: Serial
    document = Varchar(length=100)  # "brief:SLUG:vN:variant", "minutes:ID" (one version each)
    language = Varchar(length=8)
    fingerprint = Varchar(length=64)
    content = Bytea()
    sha256 = Varchar(length=64)  # of `content`
    created_at = Timestamptz()
    # unique together: document, language, fingerprint
