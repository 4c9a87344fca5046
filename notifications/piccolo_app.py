from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="notifications",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=table_finder(["notifications.models"], exclude_imported=True),
    migration_dependencies=["accounts.piccolo_app", "tables.piccolo_app", "meetings.piccolo_app"],
    commands=[],
)
