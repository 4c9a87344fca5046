from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import Postgres, engine, index

ID = "2026-11-22T01:00:00:000002"
VERSION = "1.38.0"
DESCRIPTION = "indexes for the filtered lists; French full-text search on PostgreSQL"


async def french_search_index() -> None:
    """PostgreSQL: a stored French tsvector of title and text, GIN-indexed.

    SQLite searches with LIKE (a scan, fast enough at tens of thousands of rows).
    """
    if isinstance(engine(), Postgres):
        await engine().run_ddl(
            "ALTER TABLE proposal ADD COLUMN IF NOT EXISTS search tsvector "
            "GENERATED ALWAYS AS (to_tsvector('french', title || ' ' || body)) STORED"
        )
        await engine().run_ddl(
            "CREATE INDEX IF NOT EXISTS proposal_search_idx ON proposal USING GIN (search)"
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proposals", description=DESCRIPTION)
    manager.add_raw(index("proposal", "table", "created_at"))
    manager.add_raw(index("proposal", "table", "supports"))
    manager.add_raw(french_search_index)

    return manager
