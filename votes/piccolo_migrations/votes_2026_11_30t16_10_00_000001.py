"""Sealed ballots get a random key instead of a serial, and lose the order of casting.

A serial written in the same transaction as the participation's serial links the two (the
k-th sealed ballot is the k-th voter's). The table is rebuilt rather than altered: neither
engine turns a serial into a UUID in place, and a rebuilt table keeps no trace of the old
order. Sealed ballots of votes open during the upgrade are copied, each under a new random
key, in random order; on SQLite the new table is stored by that key (WITHOUT ROWID), so the
file lists them shuffled. On PostgreSQL rows still sit where they are appended (see
votes.models.SealedBallot).
"""

import uuid

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.indexes import IndexMethod

from voix.db import SQLite, engine, secure_delete

ID = "2026-11-30T16:10:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "sealed ballots with a random key, in no order of casting"

_COLUMNS = (
    '"vote" INTEGER NOT NULL REFERENCES "vote" ("id") ON DELETE CASCADE ON UPDATE CASCADE, '
    "\"sealed\" TEXT NOT NULL DEFAULT ''"
)


async def _rebuild_sqlite() -> None:
    db = engine()
    await db.run_ddl(
        f'CREATE TABLE "sealed_ballot_new" ("id" UUID PRIMARY KEY NOT NULL, {_COLUMNS}) '
        "WITHOUT ROWID"
    )
    rows = await db.run_ddl('SELECT "vote", "sealed" FROM "sealed_ballot"')
    connection = db.current_transaction.get().connection  # the migration's transaction
    await connection.executemany(
        'INSERT INTO "sealed_ballot_new" ("id", "vote", "sealed") VALUES (?, ?, ?)',
        [(str(uuid.uuid4()), row["vote"], row["sealed"]) for row in rows],
    )
    await secure_delete()  # the old pages are overwritten, not only freed
    await db.run_ddl('DROP TABLE "sealed_ballot"')
    await db.run_ddl('ALTER TABLE "sealed_ballot_new" RENAME TO "sealed_ballot"')


async def _rebuild_postgres() -> None:
    db = engine()
    await db.run_ddl(
        'CREATE TABLE "sealed_ballot_new" '
        f'("id" UUID PRIMARY KEY NOT NULL DEFAULT gen_random_uuid(), {_COLUMNS})'
    )
    await db.run_ddl(
        'INSERT INTO "sealed_ballot_new" ("id", "vote", "sealed") '
        'SELECT gen_random_uuid(), "vote", "sealed" FROM "sealed_ballot" ORDER BY random()'
    )
    await db.run_ddl('DROP TABLE "sealed_ballot"')
    await db.run_ddl('ALTER TABLE "sealed_ballot_new" RENAME TO "sealed_ballot"')
    # The names a fresh table would have, so later migrations find them.
    for old, new in (("new_pkey", "pkey"), ("new_vote_fkey", "vote_fkey")):
        await db.run_ddl(
            f'ALTER TABLE "sealed_ballot" RENAME CONSTRAINT "sealed_ballot_{old}" '
            f'TO "sealed_ballot_{new}"'
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="votes", description=DESCRIPTION)

    async def rebuild() -> None:
        await (_rebuild_sqlite() if isinstance(engine(), SQLite) else _rebuild_postgres())

    manager.add_raw(rebuild)
    # For Piccolo's record of the schema only (what `migrations new --auto` compares the
    # models with): the rebuild above already made this column, which ADD COLUMN cannot.
    manager.add_column(
        table_class_name="SealedBallot",
        tablename="sealed_ballot",
        column_name="id",
        db_column_name="id",
        column_class_name="UUID",
        column_class=UUID,
        params={
            "default": UUID4(),
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    async def recorded_not_run(backwards: bool = False) -> None:
        """The column exists: made by the rebuild."""

    manager._run_add_columns = recorded_not_run  # type: ignore[method-assign]
    return manager
