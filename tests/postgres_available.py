"""Exit 0 when the test PostgreSQL server answers within a few seconds."""

import asyncio
import os
import sys

import asyncpg


async def main() -> int:
    try:
        connection = await asyncpg.connect(os.environ["VOIX_TEST_POSTGRES_URL"], timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return 1
    await connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
