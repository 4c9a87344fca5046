from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import engine, index

ID = "2026-11-30T13:13:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "brief drafts and versions: one row per brief and addressee, number, photo, sending"


async def mark_legacy() -> None:
    """Briefs published before versions existed: `voix migrate` freezes them as version 1
    (exports.services.freeze_legacy)."""
    await engine().run_ddl('UPDATE "brief" SET "version" = -1 WHERE "version" = 0')


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="exports", description=DESCRIPTION)
    manager.add_raw(index("brief_addressee", "brief", "institution", unique=True))
    manager.add_raw(index("brief_signatory", "brief"))
    manager.add_raw(index("brief_version", "brief", "number", unique=True))
    manager.add_raw(index("brief_photo", "version", "media", unique=True))
    manager.add_raw(index("brief_sent", "brief", "institution", unique=True))
    manager.add_raw(index("brief_sent", "institution"))
    manager.add_raw(index("brief_sent_proposal", "brief", "proposal", unique=True))
    manager.add_raw(index("brief_sent_proposal", "proposal"))
    manager.add_raw(mark_legacy)
    return manager
