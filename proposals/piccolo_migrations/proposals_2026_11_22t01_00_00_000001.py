from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-22T01:00:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "indexes, composite uniqueness of supports and reports"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proposals", description=DESCRIPTION)
    manager.add_raw(index("proposal_support", "proposal", "user", unique=True))
    manager.add_raw(index("proposal_support", "user"))
    manager.add_raw(index("proposal_comment", "proposal", "created_at"))
    manager.add_raw(index("proposal_report", "target", "reporter", unique=True))
    manager.add_raw(index("proposal_report", "proposal"))
    manager.add_raw(index("proposal_status_change", "proposal", "at"))

    return manager
