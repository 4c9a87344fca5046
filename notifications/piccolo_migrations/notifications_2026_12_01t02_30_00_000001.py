from datetime import UTC, datetime

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

from voix.db import SQLite, engine

ID = "2026-12-01T02:30:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "notifications: members follow their tables, authors and supporters their proposals"


class _Follow(Table, tablename="follow"):
    """The table as it is at this migration, not as the model may later become."""


# Who sat at a table, wrote or supported a proposal before following existed follows it now,
# as those who join, write or support from now on do. Run again, it adds nothing.
BACKFILL = (
    'INSERT INTO follow ("user", kind, target, created_at)'
    ' SELECT DISTINCT m."user", CAST({} AS VARCHAR), m."table", %s FROM membership m WHERE m."user" IS NOT NULL'
    " ON CONFLICT DO NOTHING",
    'INSERT INTO follow ("user", kind, target, created_at)'
    " SELECT DISTINCT p.author, CAST({} AS VARCHAR), p.id, %s FROM proposal p WHERE p.author IS NOT NULL"
    " ON CONFLICT DO NOTHING",
    'INSERT INTO follow ("user", kind, target, created_at)'
    ' SELECT DISTINCT s."user", CAST({} AS VARCHAR), s.proposal, %s FROM proposal_support s'
    ' WHERE s."user" IS NOT NULL ON CONFLICT DO NOTHING',
)


async def follow_what_one_took_part_in() -> None:
    now = datetime.now(UTC)
    # PostgreSQL must be told a parameter's type in a SELECT list; SQLite must not be (a
    # CAST to a type it does not know would read the date as a number).
    at = "{}" if isinstance(engine(), SQLite) else "CAST({} AS timestamptz)"
    for statement, kind in zip(BACKFILL, ("table", "proposal", "proposal"), strict=True):
        await _Follow.raw(statement % at, kind, now)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="notifications", description=DESCRIPTION)
    manager.add_raw(follow_what_one_took_part_in)
    return manager
