from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T06:40:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "a person's own rows, newest first, for their account page and data export"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proposals", description=DESCRIPTION)
    manager.add_raw(index("proposal", "author", "created_at"))
    manager.add_raw(index("proposal_comment", "author", "created_at"))
    manager.add_raw(index("proposal_report", "reporter"))
    manager.add_raw(index("proposal_support", "user", "created_at"))
    return manager
