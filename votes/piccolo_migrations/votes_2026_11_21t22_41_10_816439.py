from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.base import OnUpdate
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import Serial
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class Vote(Table, tablename="vote", schema=None):
    id = Serial(
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name="id",
        secret=False,
    )


ID = "2026-11-21T22:41:10:816439"
VERSION = "1.38.0"
DESCRIPTION = "sealed ballots"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="votes", description=DESCRIPTION
    )

    manager.add_table(
        class_name="SealedBallot",
        tablename="sealed_ballot",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="SealedBallot",
        tablename="sealed_ballot",
        column_name="vote",
        db_column_name="vote",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Vote,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
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

    manager.add_column(
        table_class_name="SealedBallot",
        tablename="sealed_ballot",
        column_name="sealed",
        db_column_name="sealed",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
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
