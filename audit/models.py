from piccolo.columns import JSON, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User


class AuditEntry(Model, tablename="audit_entry"):
    id: Serial
    at = Timestamptz()
    actor = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    actor_name = Varchar(length=80)  # kept when the account is erased
    action = Varchar(length=64)
    # Where it happened, for coordinators to read their organisation's entries.
    organisation_id = Integer(null=True, default=None)
    table_id = Integer(null=True, default=None)
    subject = Varchar(length=120, default="")  # e.g. "vote:12", "user:5"
    details = JSON(default={})


class KeyCheck(Model, tablename="key_check"):
    """One row: a value only the VOIX_SECRET_KEY that encrypted this database's secrets gives
    (voix.crypto.key_check_value), so that starting with another key is refused at once rather
    than discovered as "cannot decrypt" when a vote closes or a facilitator signs in."""

    id: Serial
    value = Varchar(length=64)
    at = Timestamptz()
