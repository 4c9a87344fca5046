from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T04:40:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "room counts: numbered per vote, one entry per person"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="meetings", description=DESCRIPTION)
    manager.add_raw(index("room_count", "vote", "kind", "number", unique=True))
    manager.add_raw(index("room_count_entry", "count", "entered_by", unique=True))
    manager.add_raw(index("tablet", "vote"))
    return manager
