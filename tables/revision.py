"""A table's revision: a number the database changes whenever something the table's pages show
changes, so that what those pages cache (voix.cache) is keyed on it and never served stale.

The database keeps it, not the application: triggers on every table a table's pages read bump
`neighbourhood_table.revision` in the same transaction as the change, whichever code path (a
form, the command line, a migration, a job, psql) made it. A reader who sees the new revision
sees the change with it. A new table starts at a random revision, so that a table created again
with an id used before (a restored backup, a test) never finds the entries of the old one.

Not bumped, on purpose: ballots and participations. Casting must not queue every voter of a
table behind one row lock, and the pages read the live turnout with a query of their own.

The triggers are code, not data: at each `voix migrate` (voix.db.migrate), `install()` drops
every trigger it made before and creates the current set, in one transaction, unless the
database has that set already.
"""

# ruff: noqa: S608 — every name in these statements is a constant of this module, none from input

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tables.models import Table
from voix.db import Postgres, SQLite, engine

TABLE = "neighbourhood_table"
PREFIX = "voix_revision"


@dataclass(frozen=True)
class Source:
    """A table whose rows belong to neighbourhood tables: `tables` selects their ids from the
    row `R` (NEW or OLD)."""

    name: str
    tables: str
    # Only these columns' changes count (an UPDATE of others does not bump); None: any.
    columns: tuple[str, ...] | None = None


def _direct(name: str) -> Source:
    return Source(name, 'SELECT R."table"')


def _through(name: str, parent: str, column: str) -> Source:
    return Source(name, f'SELECT "table" FROM {parent} WHERE id = R."{column}"')


SOURCES = (
    _direct("proposal"),
    _direct("meeting"),
    _direct("vote"),
    _direct("brief"),
    _direct("content_translation"),
    _direct("table_district"),
    _through("proposal_status_change", "proposal", "proposal"),
    _through("proposal_support", "proposal", "proposal"),
    _through("proposal_comment", "proposal", "proposal"),
    _through("proposal_media", "proposal", "proposal"),
    _through("proposal_translation", "proposal", "proposal"),
    _through("vote_decision", "proposal", "proposal"),
    _through("vote_option", "vote", "vote"),
    _through("agenda_item", "meeting", "meeting"),
    _through("brief_version", "brief", "brief"),
    _through("brief_sent", "brief", "brief"),
    _through("institution_response", "brief", "brief"),
    # A district's name and slug (the list's filter), and its boundary (imported again: the
    # map and its "approximate" note). JSON has no equality on PostgreSQL: compared as text.
    Source(
        "district",
        'SELECT "table" FROM table_district WHERE district = R.id',
        ("name", "slug", "approximate", "boundary::text"),
    ),
    # An institution's name beside the briefs sent to it and their answers overdue.
    Source(
        "institution",
        'SELECT "table" FROM brief WHERE id IN (SELECT brief FROM brief_sent WHERE institution = '
        "R.id UNION SELECT brief FROM brief_addressee WHERE institution = R.id)",
        ("name", "service"),
    ),
    # The organisation's name and address, shown with each of its tables (the list of tables
    # on the home page is kept under the tables' revisions: tables.services.list_tables).
    Source(
        "organisation",
        "SELECT id FROM neighbourhood_table WHERE organisation = R.id",
        ("name", "slug"),
    ),
    # Names shown on a table's pages: its members, the authors of proposals and comments and
    # those who recorded them for a resident, who changed a status, who decided without a vote.
    Source(
        "account",
        'SELECT "table" FROM membership WHERE "user" = R.id '
        'UNION SELECT "table" FROM proposal WHERE author = R.id OR recorded_by = R.id '
        'UNION SELECT p."table" FROM proposal_comment c JOIN proposal p ON p.id = c.proposal '
        "WHERE c.author = R.id OR c.recorded_by = R.id "
        'UNION SELECT p."table" FROM proposal_status_change s JOIN proposal p ON p.id = s.proposal '
        "WHERE s.actor = R.id "
        'UNION SELECT p."table" FROM vote_decision d JOIN proposal p ON p.id = d.proposal '
        "WHERE d.decided_by = R.id",
        ("display_name",),
    ),
)
# The table's own row: what its pages show of it (its name, its address, its organisation, how
# long it waits for answers). Its revision moves with them; an update changing none of them
# (exports.drafts locks the row that way) does not.
OWN_COLUMNS = ("name", "slug", "postcode", "description", "organisation", "answer_delay_months")


def _column(spec: str) -> str:
    return spec.split("::", 1)[0]


def _changed(columns: tuple[str, ...], different: str) -> str:
    return " OR ".join(
        f"OLD.{_column(c)}{c[len(_column(c)) :]} {different} NEW.{_column(c)}{c[len(_column(c)) :]}"
        for c in columns
    )


_BUMP = f"UPDATE {TABLE} SET revision = revision + 1 WHERE id IN ({{tables}})"
# A random start (below 2**31: the column is a 32-bit integer on PostgreSQL).
_PG_START = "floor(random() * 1000000000)::integer"
_SQLITE_START = "abs(random()) % 1000000000"


def _rows(source: Source, row: str) -> str:
    return source.tables.replace("R.", f"{row}.")


def _sqlite_statements() -> list[str]:
    statements = [
        f"CREATE TRIGGER {PREFIX}_start AFTER INSERT ON {TABLE} BEGIN "
        f"UPDATE {TABLE} SET revision = {_SQLITE_START} WHERE id = NEW.id; END"
    ]
    own = ", ".join(OWN_COLUMNS)
    statements.append(
        f"CREATE TRIGGER {PREFIX}_own AFTER UPDATE OF {own} ON {TABLE} "
        f"WHEN {_changed(OWN_COLUMNS, 'IS NOT')} "
        f"BEGIN UPDATE {TABLE} SET revision = revision + 1 WHERE id = NEW.id; END"
    )
    for source in SOURCES:
        events = [("insert", "INSERT", ["NEW"]), ("delete", "DELETE", ["OLD"])]
        of = f" OF {', '.join(map(_column, source.columns))}" if source.columns else ""
        events.append(("update", f"UPDATE{of}", ["OLD", "NEW"]))
        if source.columns:
            events = events[2:]  # a change of these columns only: rows come and go elsewhere
        # An UPDATE writing the same values (help.services locks an organisation's row by
        # writing its slug to itself at each legal text saved) moves nothing, as on PostgreSQL.
        when = (
            " WHEN " + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in map(_column, source.columns))
            if source.columns
            else ""
        )
        for suffix, event, rows in events:
            body = " ".join(_BUMP.format(tables=_rows(source, row)) + ";" for row in rows)
            statements.append(
                f"CREATE TRIGGER {PREFIX}_{source.name}_{suffix} AFTER {event} ON {source.name}"
                f"{when if suffix == 'update' else ''} BEGIN {body} END"
            )
    return statements


def _postgres_statements() -> list[str]:
    statements = [
        f"CREATE OR REPLACE FUNCTION {PREFIX}_start() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN NEW.revision := {_PG_START}; RETURN NEW; END $$",
        f"CREATE TRIGGER {PREFIX} BEFORE INSERT ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {PREFIX}_start()",
        f"CREATE OR REPLACE FUNCTION {PREFIX}_own() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $$",
        f"CREATE TRIGGER {PREFIX}_own BEFORE UPDATE OF {', '.join(OWN_COLUMNS)} ON {TABLE} "
        f"FOR EACH ROW WHEN ({_changed(OWN_COLUMNS, 'IS DISTINCT FROM')}) "
        f"EXECUTE FUNCTION {PREFIX}_own()",
    ]
    for source in SOURCES:
        if source.name == "proposal":
            statements += _postgres_per_statement(source)
            continue
        function = f"{PREFIX}_{source.name}"
        old = _BUMP.format(tables=_rows(source, "OLD"))
        new = _BUMP.format(tables=_rows(source, "NEW"))
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF TG_OP <> 'INSERT' THEN {old}; END IF; "
            f"IF TG_OP <> 'DELETE' THEN {new}; END IF; RETURN NULL; END $$"
        )
        if source.columns:
            changed = _changed(source.columns, "IS DISTINCT FROM")
            event = f"UPDATE OF {', '.join(map(_column, source.columns))}"
            when = f" WHEN ({changed})"
        else:
            event, when = "INSERT OR UPDATE OR DELETE", ""
        statements.append(
            f"CREATE TRIGGER {PREFIX} AFTER {event} ON {source.name} "
            f"FOR EACH ROW{when} EXECUTE FUNCTION {function}()"
        )
    return statements


def _postgres_per_statement(source: Source) -> list[str]:
    """Proposals come in thousands at a time (imports, seeds): once per statement, from its
    transition tables, rather than once per row on the same table's row."""
    statements = []
    for event, tables in (
        ("INSERT", "NEW TABLE AS changed"),
        ("UPDATE", "OLD TABLE AS before NEW TABLE AS changed"),
        ("DELETE", "OLD TABLE AS before"),
    ):
        rows = {"INSERT": ["changed"], "UPDATE": ["before", "changed"], "DELETE": ["before"]}
        ids = " UNION ".join(f'SELECT "table" FROM {row}' for row in rows[event])
        function = f"{PREFIX}_{source.name}_{event.lower()}"
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_BUMP.format(tables=ids)}; RETURN NULL; END $$"
        )
        statements.append(
            f"CREATE TRIGGER {PREFIX}_{event.lower()} AFTER {event} ON {source.name} "
            f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return statements


# What the database holds of the triggers: each one's table, definition, whether it is
# enabled, and its function's body. Fingerprinted when they are installed, and again at each
# install: a trigger disabled, dropped, made again or a function changed by hand (psql) shows.
_CATALOG = """
SELECT t.tgname AS name, t.tgrelid::regclass::text AS relation, t.tgenabled::text AS enabled,
       pg_get_triggerdef(t.oid) AS definition, p.prosrc AS body
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND t.tgname LIKE {}
ORDER BY t.tgname, t.tgrelid::regclass::text
"""


async def install() -> bool:
    """Makes the database's triggers the current set, in one transaction: drops every trigger
    made before and creates the current ones. Returns whether it changed anything.

    A database that has the current set already (each deployment's `voix migrate` when this
    module did not change) is left alone: dropping and creating a trigger locks its table
    (ACCESS EXCLUSIVE), so every page of a replica still serving waited on the migration, and
    could deadlock with it (seen beside a benchmark's ballots: a session read failed).
    PostgreSQL keeps, as the comment of the start function, a fingerprint of the statements
    and one of what the catalog held once they ran (each trigger's definition, whether it is
    enabled, its function's body): a trigger disabled, dropped or made again, or a function
    changed by hand since, is installed again. SQLite keeps each trigger's statement as it was
    written, and cannot disable one."""
    db = engine()
    async with db.transaction():
        changed = await (_install_sqlite(db) if isinstance(db, SQLite) else _install_postgres(db))
    return changed  # noqa: RET504 — after the commit (mypy: the block may swallow errors)


async def _install_sqlite(db: SQLite) -> bool:
    statements = _sqlite_statements()
    old = await Table.raw(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE {}",
        f"{PREFIX}%",
    )
    if sorted(row["sql"] for row in old) == sorted(statements):
        return False
    for row in old:
        await db.run_ddl(f'DROP TRIGGER IF EXISTS "{row["name"]}"')
    for statement in statements:
        await db.run_ddl(statement)
    return True


async def _install_postgres(db: Postgres) -> bool:
    statements = _postgres_statements()
    code = hashlib.sha256("\n".join(statements).encode()).hexdigest()
    noted = await Table.raw(
        "SELECT obj_description(to_regproc({}), 'pg_proc') AS note", f"{PREFIX}_start"
    )
    old = await _catalog()
    if noted[0]["note"] == f"{code}:{_fingerprint(old)}":
        return False
    for row in old:
        await db.run_ddl(f'DROP TRIGGER IF EXISTS "{row["name"]}" ON {row["relation"]}')
    for statement in statements:
        await db.run_ddl(statement)
    note = f"{code}:{_fingerprint(await _catalog())}"
    await db.run_ddl(f"COMMENT ON FUNCTION {PREFIX}_start() IS '{note}'")
    return True


async def _catalog() -> list[dict[str, Any]]:
    return await Table.raw(_CATALOG, f"{PREFIX}%")


def _fingerprint(catalog: list[dict[str, Any]]) -> str:
    return hashlib.sha256(repr([sorted(row.items()) for row in catalog]).encode()).hexdigest()
