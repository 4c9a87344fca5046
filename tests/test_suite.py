"""The suite's own machinery (tests/conftest.py): every table is emptied after each test."""

from __future__ import annotations

from tests.conftest import ALL_TABLES, DATABASE_KIND, _delete_every_row
from tests.factories import add_proposal, build_world
from voix import db


async def _tables(kind: str = "table") -> set[str]:
    """The schema's tables; on SQLite, `kind` "virtual" names the full-text indexes instead,
    which their tables' triggers keep (and empty): neither they nor their shadow tables are
    cleaned up by name."""
    if DATABASE_KIND == "sqlite":
        rows = await db.engine().run_ddl(
            "SELECT name FROM pragma_table_list "
            f"WHERE schema = 'main' AND type = '{kind}' AND name NOT LIKE 'sqlite_%'"
        )
        return {row["name"] for row in rows}
    if kind != "table":
        return set()
    rows = await db.engine().run_ddl(
        "SELECT table_name AS name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )
    return {row["name"] for row in rows}


async def test_the_clean_up_names_every_table_but_the_migrations() -> None:
    tables = await _tables()
    assert "migration" in tables  # the query sees the schema
    assert sorted(tables - {"migration"} - set(ALL_TABLES)) == [], "add them to ALL_TABLES"
    assert sorted(set(ALL_TABLES) - tables) == [], "gone from the schema: remove them"
    assert len(ALL_TABLES) == len(set(ALL_TABLES))


async def test_the_clean_up_leaves_every_table_empty() -> None:
    world = await build_world()
    await add_proposal(world.table_a)
    assert await _rows("proposal") == 1
    await _delete_every_row()
    emptied = [*ALL_TABLES, *sorted(await _tables("virtual"))]
    assert {table: await _rows(table) for table in emptied} == dict.fromkeys(emptied, 0)


async def _rows(table: str) -> int:
    rows = await db.engine().run_ddl(f'SELECT count(*) AS n FROM "{table}"')
    return int(rows[0]["n"])
