from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T12:10:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "institutions: one per organisation, name and service"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)
    manager.add_raw(index("institution", "organisation", "name", "service", unique=True))
    return manager
