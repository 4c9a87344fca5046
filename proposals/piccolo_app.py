from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="proposals",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=table_finder(["proposals.models"], exclude_imported=True),
    migration_dependencies=["tables.piccolo_app"],
    commands=[],
)
