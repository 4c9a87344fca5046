from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-21T22:09:00:000005"
VERSION = "1.38.0"
DESCRIPTION = "indexes, composite uniqueness"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="exports", description=DESCRIPTION)
    manager.add_raw(index("brief_item", "brief", "proposal", unique=True))
    manager.add_raw(index("brief", "table"))

    return manager
