from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import engine

ID = "2026-12-01T03:11:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "notifications: consents given before now were for the number and address on file"


async def tie_consents_to_what_is_on_file() -> None:
    await engine().run_ddl(
        "UPDATE notification_preference SET sms_consent_phone ="
        ' (SELECT a.phone FROM account a WHERE a.id = notification_preference."user")'
        " WHERE sms_consent_at IS NOT NULL AND sms_consent_phone IS NULL"
    )
    await engine().run_ddl(
        "UPDATE notification_preference SET email_consent_address ="
        ' (SELECT a.email FROM account a WHERE a.id = notification_preference."user")'
        " WHERE email_consent_at IS NOT NULL AND email_consent_address IS NULL"
    )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="notifications", description=DESCRIPTION)
    manager.add_raw(tie_consents_to_what_is_on_file)
    return manager
