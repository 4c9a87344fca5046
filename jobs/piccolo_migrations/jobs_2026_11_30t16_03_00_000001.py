from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-30T16:03:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "jobs: one pending job per key; due jobs found by status and time"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="jobs", description=DESCRIPTION)
    manager.add_raw(index("job", "pending_key", unique=True))
    manager.add_raw(index("job", "status", "run_at"))
    return manager
