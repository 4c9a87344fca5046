"""Tables de quartier: finding them, and who sits at them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from litestar.exceptions import NotFoundException

from accounts.models import User
from audit import services as audit
from tables.models import RESIDENT, TABLE_ROLES, Membership, Organisation, Table, TableDistrict
from voix import cache, db
from voix.forms import Form, FormErrors, Message, UserError
from voix.i18n import N_
from voix.permissions import Principal, Scope, require, signed_in

CARD_ONLY_CANNOT_RUN = N_(
    "This resident signs in with a login card only. To help run a table, they first need an "
    "account with a password (and two-step sign-in): create one for them with their agreement."
)

NOT_A_MEMBER = N_("This person is not a member of this table.")


def scope_of(table: Mapping[str, Any]) -> Scope:
    return Scope(table_id=table["id"], organisation_id=table["organisation"])


_TABLE_COLUMNS = (
    Table.id,
    Table.slug,
    Table.name,
    Table.postcode,
    Table.description,
    Table.organisation,
    Table.organisation.name.as_alias("organisation_name"),
    Table.organisation.slug.as_alias("organisation_slug"),
    Table.revision,
)


DIRECTORY_SECONDS = 3600.0
# Every signed-in page reads the directory: kept up to a quarter of the cache (~2 KB a table:
# some 2,500 tables), where any other entry stops at a sixteenth (~600 tables, past which every
# signed-in page read all the tables again). One slot, replaced at each change anywhere: kept
# under each set of revisions, the copies a change left behind filled the cache (an outsider's
# review: 10 renames at 700 tables, 15.8 of its 20 MB).
DIRECTORY_LARGEST = cache.BYTES // 4
_DIRECTORY = ("tables",)

# Read on nearly every page: compiled to SQL once (voix.db.Prepared).
_ALL_TABLES = db.Prepared(
    lambda: Table.select(*_TABLE_COLUMNS).order_by(Table.organisation.name).order_by(Table.name)
)
_ALL_DISTRICTS = db.Prepared(
    lambda: TableDistrict.select(
        TableDistrict.table,
        TableDistrict.district.name.as_alias("name"),
        TableDistrict.district.slug.as_alias("slug"),
        TableDistrict.district.approximate.as_alias("approximate"),
    ).order_by(TableDistrict.district.name)
)
_BY_SLUG = db.Prepared(lambda slug: Table.select(*_TABLE_COLUMNS).where(Table.slug == slug))
_BY_ID = db.Prepared(lambda table_id: Table.select(*_TABLE_COLUMNS).where(Table.id == table_id))


async def list_tables(revisions: Mapping[int, int] | None = None) -> list[dict[str, Any]]:
    """Every table with its organisation and district names: one or two queries (see
    `_read_tables`), none given every table's revision as just read (the session's query
    reads them: Principal.revisions; see `_directory`)."""
    tables = await _directory(revisions) if revisions is not None else await _read_tables()
    return [{**table, "districts": [d["name"] for d in table["districts"]]} for table in tables]


async def _directory(revisions: Mapping[int, int]) -> list[dict[str, Any]]:
    """Every table as `_read_tables` reads it, without a query when what it kept was read
    under these very revisions: each change it shows (a table added or removed, its name,
    address, organisation or districts) moves a revision (tables/revision.py). The caller
    copies what it changes."""
    wanted = frozenset(revisions.items())
    kept = cache.pages.get(_DIRECTORY)
    if kept is not None and kept[0] == wanted:
        return cast("list[dict[str, Any]]", kept[1])
    # One read at a time for these revisions (those that arrive meanwhile wait for it).
    return await cache.pages.get_or_build(("tables-read", wanted), _read_tables, 0.0)


async def _read_tables() -> list[dict[str, Any]]:
    """Every table, with its districts: one query when the tables carry the revisions the
    kept directory was read under, two otherwise, however many tables.

    Kept under the revisions it read, not those a caller expected: a table made after the
    session's query and before this read, then deleted, would otherwise be kept under
    revisions that hold again, and shown, deleted, to every signed-in reader from then on."""
    tables = await _ALL_TABLES.rows()
    read = frozenset((table["id"], table["revision"]) for table in tables)
    kept = cache.pages.get(_DIRECTORY)
    if kept is not None and kept[0] == read:
        return cast("list[dict[str, Any]]", kept[1])
    by_table: dict[int, list[dict[str, Any]]] = {table["id"]: [] for table in tables}
    for row in await _ALL_DISTRICTS.rows():
        if (found := by_table.get(row.pop("table"))) is not None:
            found.append(row)
    for table in tables:
        table["districts"] = by_table[table["id"]]
    if not db.in_transaction():  # nothing read in a transaction is kept
        # Reads under other revisions may end in either order: the slot may then hold the
        # older, and the next reader of the newer reads again (never a stale answer).
        cache.pages.put(_DIRECTORY, (read, tables), DIRECTORY_SECONDS, DIRECTORY_LARGEST)
    return tables


async def districts(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table's districts, by name (kept until the table's revision changes): `table` needs
    its id and revision only."""

    async def read() -> list[dict[str, Any]]:
        return await (
            TableDistrict.select(
                TableDistrict.district.name.as_alias("name"),
                TableDistrict.district.slug.as_alias("slug"),
                TableDistrict.district.approximate.as_alias("approximate"),
            )
            .where(TableDistrict.table == table["id"])
            .order_by(TableDistrict.district.name)
        )

    kept = await cache.pages.get_or_build(("table-districts", table["id"], table["revision"]), read)
    return [dict(district) for district in kept]  # the caller's own copy


async def get_table(slug: str, revisions: Mapping[int, int] | None = None) -> dict[str, Any]:
    """The table, its organisation and its districts: one query once its districts are kept,
    none given every table's revision as just read (Principal.revisions: see `_directory`)."""
    if revisions is not None:
        for kept in await _directory(revisions):
            if kept["slug"] == slug:
                return {**kept, "districts": [dict(d) for d in kept["districts"]]}
        raise NotFoundException()
    table = await _BY_SLUG.first(slug)
    if table is None:
        raise NotFoundException()
    table["districts"] = await districts(table)
    return table


async def get_table_by_id(table_id: int) -> dict[str, Any]:
    table = await _BY_ID.first(table_id)
    if table is None:
        raise NotFoundException()
    table["districts"] = await districts(table)
    return table


async def join(who: Principal, table: dict[str, Any]) -> None:
    require(who, "tables.join", scope_of(table))
    user_id = signed_in(who)
    async with db.write_transaction():
        await Membership.insert(
            Membership(user=user_id, table=table["id"], role=RESIDENT)
        ).on_conflict(action="DO NOTHING")
        await follow_table(user_id, table["id"])


async def follow_table(user_id: int, table_id: int) -> None:
    """A member hears of their table's news (every way a seat is given calls it)."""
    from notifications import services as notify  # noqa: PLC0415 (notifications build on tables)

    await notify.follow(user_id, notify.TABLE, table_id)


async def residents(table_id: int, role: str | None = None) -> list[dict[str, Any]]:
    """The table's members (or those of one role), for a facilitator choosing on whose behalf
    they write."""
    condition: Any = Membership.table == table_id
    if role is not None:
        condition &= Membership.role == role
    return await (
        Membership.select(
            Membership.user.id.as_alias("id"),
            Membership.user.display_name.as_alias("display_name"),
        )
        .where(condition)
        .order_by(Membership.user.display_name)
    )


async def is_member(user_id: int, table_id: int, role: str | None = None) -> bool:
    condition: Any = (Membership.user == user_id) & (Membership.table == table_id)
    if role is not None:
        condition &= Membership.role == role
    return await Membership.exists().where(condition)


async def get_organisation(slug: str) -> dict[str, Any]:
    organisation = await Organisation.select().where(Organisation.slug == slug).first()
    if organisation is None:
        raise NotFoundException()
    return organisation


def organisation_scope(organisation_id: int) -> Scope:
    """For what concerns a whole organisation rather than one of its tables."""
    return Scope(table_id=0, organisation_id=organisation_id)


async def change_role(who: Principal, table: dict[str, Any], user_id: int, role: str) -> None:
    """A coordinator makes a member facilitator, or resident again. Audited."""
    require(who, "members.change_role", scope_of(table))
    form = Form({"role": role})
    role = form.choice("role", TABLE_ROLES)
    form.validate()
    async with db.write_transaction():
        if not await is_member(user_id, table["id"]):  # before anything is said of the person
            raise UserError(NOT_A_MEMBER, status_code=404)
        if role != RESIDENT and await User.exists().where(
            (User.id == user_id) & (User.password_hash == "")
        ):
            # A login card never signs in someone who runs a table, and they have no password:
            # promoted, they could no longer sign in at all.
            raise FormErrors({"role": Message(CARD_ONLY_CANNOT_RUN)})
        changed = await (
            Membership.update({Membership.role: role})
            .where((Membership.user == user_id) & (Membership.table == table["id"]))
            .returning(Membership.id)
        )
        if not changed:
            raise UserError(NOT_A_MEMBER, status_code=404)
        await audit.record(
            who, "role.changed", scope_of(table), subject=f"user:{user_id}", role=role
        )
        if role == RESIDENT:
            await _end_tablets_of(user_id, table["id"])


async def _end_tablets_of(user_id: int, table_id: int) -> None:
    """A facilitator made resident again no longer runs the shared tablets they left in the
    room: those sessions end, so whoever holds the device is not left signed in as them.

    At once, here; whatever else takes the right to run a room away, the tablet's next request
    ends it (accounts.services.load_principal asks meetings.room.still_runs each time)."""
    from accounts.models import Session  # noqa: PLC0415
    from meetings.models import Tablet  # noqa: PLC0415 (meetings build on tables)

    tablets = await Tablet.select(Tablet.session).where(
        (Tablet.session.user == user_id) & (Tablet.vote.table == table_id)
    )
    if tablets:
        await Session.delete().where(Session.id.is_in([row["session"] for row in tablets]))
