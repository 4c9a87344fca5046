from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-12-01T03:00:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "notifications: deliveries found by the one whose message carried them"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="notifications", description=DESCRIPTION)
    manager.add_raw(index("notification_delivery", "bundle"))
    return manager
