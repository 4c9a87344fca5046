from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import index

ID = "2026-11-29T22:41:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "stored PDFs: one per document, language and fingerprint"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="exports", description=DESCRIPTION)
    manager.add_raw(index("stored_pdf", "document", "language", "fingerprint", unique=True))

    return manager
