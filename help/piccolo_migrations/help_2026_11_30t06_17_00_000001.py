from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T06:17:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "one row per version of an organisation's legal page in a language"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="help", description=DESCRIPTION)
    manager.add_raw(index("legal_text", "organisation", "kind", "language", "version", unique=True))

    return manager
