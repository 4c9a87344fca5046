from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-21T22:09:00:000002"
VERSION = "1.38.0"
DESCRIPTION = "indexes, composite uniqueness"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)
    manager.add_raw(index("table_district", "table", "district", unique=True))
    manager.add_raw(index("membership", "user", "table", unique=True))
    manager.add_raw(index("coordinator", "user", "organisation", unique=True))
    manager.add_raw(index("neighbourhood_table", "organisation"))
    manager.add_raw(index("membership", "table"))

    return manager
