from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-22T01:00:00:000003"
VERSION = "1.38.0"
DESCRIPTION = "media by proposal"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proposals", description=DESCRIPTION)
    manager.add_raw(index("proposal_media", "proposal", "kind"))

    return manager
