from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-22T00:10:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "indexes, composite uniqueness"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="meetings", description=DESCRIPTION)
    manager.add_raw(index("meeting", "table", "starts_at"))
    manager.add_raw(index("agenda_item", "meeting", "position"))
    manager.add_raw(index("attendance", "meeting", "person", unique=True))
    manager.add_raw(index("speaker", "meeting", "position"))
    manager.add_raw(index("minutes", "meeting", "version", unique=True))
    manager.add_raw(index("minutes_link", "minutes"))

    return manager
