from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import Postgres, engine

ID = "2026-11-30T19:30:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "search and lists that stay fast as proposals grow: trigrams, FTS5, partial indexes"

# What the lists show (proposals.services._filter): neither hidden nor merged.
LISTED = "hidden_at IS NULL AND status <> 'merged'"


async def trigram_search() -> None:
    """PostgreSQL: parts of words in titles through a trigram index, beside the French tsvector
    of words (proposal_search_idx), so that `search @@ … OR title ILIKE …` is a BitmapOr of two
    index scans instead of a scan of the table. pg_trgm is a trusted extension (PostgreSQL 13+):
    the database's owner may create it.

    SQLite: an FTS5 index of titles and texts cut in trigrams (parts of words, case folded
    beyond ASCII), external content on `proposal`, kept in step by triggers; backfilled here.
    """
    db = engine()
    if isinstance(db, Postgres):
        await db.run_ddl("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await db.run_ddl(
            "CREATE INDEX IF NOT EXISTS proposal_title_trgm_idx "
            "ON proposal USING GIN (title gin_trgm_ops)"
        )
        # Finer statistics of words and titles (the default keeps 1,000 frequent words): with
        # them a rare word is estimated at a few rows, and the page of its results is read
        # from the two indexes and sorted, instead of walking the whole list in date order
        # for 20 matches that are not there (0.1 ms against 700 ms at 100,000 proposals).
        await db.run_ddl("ALTER TABLE proposal ALTER COLUMN search SET STATISTICS 1000")
        await db.run_ddl("ALTER TABLE proposal ALTER COLUMN title SET STATISTICS 1000")
        return
    await db.run_ddl(
        "CREATE VIRTUAL TABLE IF NOT EXISTS proposal_fts USING fts5("
        "title, body, content='proposal', content_rowid='id', "
        "tokenize='trigram case_sensitive 0')"
    )
    await db.run_ddl(
        "CREATE TRIGGER IF NOT EXISTS proposal_fts_insert AFTER INSERT ON proposal BEGIN "
        "INSERT INTO proposal_fts (rowid, title, body) VALUES (new.id, new.title, new.body); "
        "END"
    )
    await db.run_ddl(
        "CREATE TRIGGER IF NOT EXISTS proposal_fts_delete AFTER DELETE ON proposal BEGIN "
        "INSERT INTO proposal_fts (proposal_fts, rowid, title, body) "
        "VALUES ('delete', old.id, old.title, old.body); "
        "END"
    )
    # Only when the words change: supports and statuses change far more often.
    await db.run_ddl(
        "CREATE TRIGGER IF NOT EXISTS proposal_fts_update AFTER UPDATE OF id, title, body "
        "ON proposal BEGIN "
        "INSERT INTO proposal_fts (proposal_fts, rowid, title, body) "
        "VALUES ('delete', old.id, old.title, old.body); "
        "INSERT INTO proposal_fts (rowid, title, body) VALUES (new.id, new.title, new.body); "
        "END"
    )
    await db.run_ddl("INSERT INTO proposal_fts (proposal_fts) VALUES ('rebuild')")


async def partial_indexes() -> None:
    """The lists' orders among listed proposals only, and those with a place for the map
    (placed(), placed_filtered()); the same SQL on both engines. The newest-first index also
    carries the columns the page's count filters on (theme, status) and hidden_at, so that
    the count, filtered or not, reads the index alone (SQLite has no INCLUDE)."""
    for name, columns, where in (
        (
            "proposal_listed_recent_idx",
            '"table", created_at DESC, id DESC, theme, status, hidden_at',
            LISTED,
        ),
        (
            "proposal_listed_supports_idx",
            '"table", supports DESC, created_at DESC, id DESC',
            LISTED,
        ),
        (
            "proposal_placed_idx",
            '"table", created_at DESC',
            f"latitude IS NOT NULL AND {LISTED}",
        ),
    ):
        await engine().run_ddl(
            f"CREATE INDEX IF NOT EXISTS {name} ON proposal ({columns}) WHERE {where}"
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proposals", description=DESCRIPTION)
    manager.add_raw(trigram_search)
    manager.add_raw(partial_indexes)

    return manager
