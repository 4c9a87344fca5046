from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import engine

ID = "2026-11-30T02:10:00:000002"
VERSION = "1.38.0"
DESCRIPTION = "a ballot's choices live in its marks"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="votes", description=DESCRIPTION)

    async def drop_vote_index() -> None:
        # (vote, id) and (vote, receipt, id) serve every query that used it.
        await engine().run_ddl('DROP INDEX IF EXISTS "ballot_vote_idx"')

    manager.add_raw(drop_vote_index)
    manager.drop_column(
        table_class_name="Ballot", tablename="ballot", column_name="choice", db_column_name="choice"
    )
    return manager
