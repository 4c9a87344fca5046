from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-22T01:40:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "proposals by district"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proposals", description=DESCRIPTION)
    manager.add_raw(index("proposal", "district"))

    return manager
