from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-12-01T01:49:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "notifications: once per follow, RSVP, event and person, delivery and channel"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="notifications", description=DESCRIPTION)
    manager.add_raw(index("follow", "user", "kind", "target", unique=True))
    manager.add_raw(index("follow", "kind", "target"))
    manager.add_raw(index("rsvp", "meeting", "user", unique=True))
    manager.add_raw(index("notification", "event", "user", unique=True))
    manager.add_raw(index("notification", "user", "read_at"))
    manager.add_raw(index("notification_delivery", "notification", "channel", unique=True))
    manager.add_raw(index("notification_delivery", "status", "due_at"))
    manager.add_raw(index("notification_delivery", "user", "channel", "sent_at"))
    return manager
