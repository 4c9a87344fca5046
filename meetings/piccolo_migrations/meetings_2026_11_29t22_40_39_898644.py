from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-29T22:40:39:898644"
VERSION = "1.38.0"
DESCRIPTION = "minutes: the HTML rendered once when saved"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="meetings", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Minutes",
        tablename="minutes",
        column_name="body_html",
        db_column_name="body_html",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
