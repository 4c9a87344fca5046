from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T08:16:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "one translation per object and language, one origin per object, one read count per language"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="translations", description=DESCRIPTION)
    manager.add_raw(index("content_translation", "kind", "object_id", "language", unique=True))
    manager.add_raw(index("content_translation", "table", "language"))
    manager.add_raw(index("content_origin", "kind", "object_id", unique=True))
    manager.add_raw(index("content_read", "kind", "object_id", "language", unique=True))

    return manager
