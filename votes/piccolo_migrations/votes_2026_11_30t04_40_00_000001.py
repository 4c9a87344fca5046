from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import engine, index

ID = "2026-11-30T04:40:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "one roll per vote: each participation names its person, unique per vote"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="votes", description=DESCRIPTION)

    async def name_people() -> None:
        # Every participation so far was cast online by a member; an erased one keeps a key
        # of its own that names nobody.
        await engine().run_ddl(
            "UPDATE vote_participation SET person = 'user:' || CAST(\"user\" AS TEXT) "
            "WHERE \"user\" IS NOT NULL AND person = ''"
        )
        await engine().run_ddl(
            "UPDATE vote_participation SET person = 'erased:' || CAST(id AS TEXT) "
            "WHERE person = ''"
        )

    manager.add_raw(name_people)
    manager.add_raw(index("vote_participation", "vote", "person", unique=True))
    return manager
