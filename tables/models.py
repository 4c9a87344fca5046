from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model

from accounts.models import User
from maps.models import District

RESIDENT = "resident"
FACILITATOR = "facilitator"
TABLE_ROLES = (RESIDENT, FACILITATOR)


# The licences an organisation may publish its open data under (exports.data_controllers),
# by key; the first is the default: the French administration's own open licence.
LICENCES = ("etalab-2.0", "odbl-1.0", "cc-by-4.0")


class Organisation(Model, tablename="organisation"):
    id: Serial
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=160)
    # The open-data licence its tables' exports are published under: a key of LICENCES.
    licence = Varchar(length=32, default=LICENCES[0])


class Table(Model, tablename="neighbourhood_table"):
    id: Serial
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=120)
    organisation = ForeignKey(Organisation, null=False, on_delete=OnDelete.restrict)
    postcode = Varchar(length=5)
    description = Text(default="")
    # How long the table waits for an institution's answer to a brief before it is overdue.
    answer_delay_months = Integer(default=2)
    # Bumped by the database itself (triggers: tables/revision.py) whenever something its pages
    # show changes: what those pages cache is keyed on it.
    revision = Integer(default=0)


class TableDistrict(Model, tablename="table_district"):
    id: Serial
    table = ForeignKey(Table, null=False, on_delete=OnDelete.cascade)
    district = ForeignKey(District, null=False, on_delete=OnDelete.cascade)
    # unique together: table, district


class Membership(Model, tablename="membership"):
    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    table = ForeignKey(Table, null=False, on_delete=OnDelete.cascade)
    role = Varchar(length=16, default=RESIDENT)
    created_at = Timestamptz()
    # unique together: user, table


class Coordinator(Model, tablename="coordinator"):
    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    organisation = ForeignKey(Organisation, null=False, on_delete=OnDelete.cascade)
    # unique together: user, organisation


class Institution(Model, tablename="institution"):
    """Who an organisation's briefs are addressed to: a conseil citoyen, the Métropole, a social
    landlord… Kept, once a brief was sent to it, for the follow-up (archived, never deleted)."""

    id: Serial
    organisation = ForeignKey(Organisation, null=False, on_delete=OnDelete.restrict)
    name = Varchar(length=160)
    service = Varchar(length=160, default="")
    address = Text(default="")
    contact = Varchar(length=254, default="")
    created_at = Timestamptz()
    archived_at = Timestamptz(null=True, default=None)
    # unique together: organisation, name, service
