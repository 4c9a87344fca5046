from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-21T22:09:00:000004"
VERSION = "1.38.0"
DESCRIPTION = "indexes, composite uniqueness"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="votes", description=DESCRIPTION)
    manager.add_raw(index("vote_participation", "vote", "user", unique=True))
    manager.add_raw(index("ballot", "vote"))
    manager.add_raw(index("vote", "table"))
    manager.add_raw(index("vote", "proposal"))

    return manager
