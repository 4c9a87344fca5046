"""Facilitators' translations of what the table writes: vote questions, agendas, minutes, briefs.

Proposals keep their own table (proposals.models.Translation). Here one row holds every field of
one object in one language, as JSON, with the fingerprint of the original it was made from: when
the original changes, the translation is shown as older than it and listed again as to redo.
"""

from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from tables.models import Table


class ContentTranslation(Model, tablename="content_translation"):
    id: Serial
    table = ForeignKey(Table, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=16)  # translations.kinds.KINDS
    object_id = Integer()
    language = Varchar(length=5)
    fields = Text()  # JSON: {field: text}
    source = Varchar(length=64)  # SHA-256 of the original's fields when translated
    translated_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz()
    # unique together: kind, object_id, language


class ContentOrigin(Model, tablename="content_origin"):
    """The language an object was written in, when a facilitator corrected the guess."""

    id: Serial
    kind = Varchar(length=16)
    object_id = Integer()
    language = Varchar(length=5)
    # unique together: kind, object_id


class ContentRead(Model, tablename="content_read"):
    """How often readers of a language opened an object: what to translate first."""

    id: Serial
    kind = Varchar(length=16)
    object_id = Integer()
    language = Varchar(length=5)
    reads = Integer(default=0)
    # unique together: kind, object_id, language
