from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T12:10:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "answers: found by brief and institution; one line per answer and proposal"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="followup", description=DESCRIPTION)
    manager.add_raw(index("institution_response", "brief", "institution"))
    manager.add_raw(index("institution_response_item", "response", "proposal", unique=True))
    manager.add_raw(index("institution_response_item", "proposal"))
    return manager
