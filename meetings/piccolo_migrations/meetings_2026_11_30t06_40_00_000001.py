from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T06:40:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "a person's own rows, newest first, for their account page and data export"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="meetings", description=DESCRIPTION)
    manager.add_raw(index("attendance", "user", "checked_in_at"))
    return manager
