from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from tables.models import Organisation


class LegalText(Model, tablename="legal_text"):
    """One version of an organisation's own wording of a legal page, in one language.

    Versions are never changed: each save adds one, and the newest is shown. An empty body
    gives the page back its default text (from the catalogs) and keeps the earlier versions.
    """

    id: Serial
    organisation = ForeignKey(Organisation, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=16)  # help.content.LEGAL_KINDS
    language = Varchar(length=2)  # voix.i18n.LANGUAGES
    version = Integer()
    body = Text(default="")  # Markdown, as typed
    # `body` rendered and sanitised (nh3) once, when saved, in a worker process.
    body_html = Text(default="")
    updated_at = Timestamptz()
    updated_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    # unique together: organisation, kind, language, version
