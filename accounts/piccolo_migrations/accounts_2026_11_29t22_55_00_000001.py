from datetime import UTC, datetime

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T22:55:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "login cards only for card-only residents: revoke the others, end their sessions"

# Tables as they are at this migration, not as the models may later become.


class _Card(Table, tablename="login_card"):
    pass


class _Membership(Table, tablename="membership"):
    pass


class _Coordinator(Table, tablename="coordinator"):
    pass


# Cards were printed for anyone at a table, and signed in as them: someone with a password,
# or who manages a table, never holds a card. Their sessions may have been opened with one.
END_SESSIONS = """
DELETE FROM login_session
WHERE "user" IN (SELECT "user" FROM login_card)
  AND "user" IN (
    SELECT id FROM account WHERE password_hash <> '' OR is_admin
    UNION SELECT "user" FROM membership WHERE role = 'facilitator'
    UNION SELECT "user" FROM coordinator
  )
"""
REVOKE_CARDS = """
UPDATE login_card SET revoked_at = {}
WHERE revoked_at IS NULL
  AND "user" IN (
    SELECT id FROM account WHERE password_hash <> '' OR is_admin
    UNION SELECT "user" FROM membership WHERE role = 'facilitator'
    UNION SELECT "user" FROM coordinator
  )
"""


async def revoke_cards_of_those_who_may_not_hold_one() -> None:
    # Without a password, a card was the only way in: those sessions were opened with one.
    await _Card.raw(
        "UPDATE login_session SET by_card = {} "
        "WHERE \"user\" IN (SELECT id FROM account WHERE password_hash = '')",
        True,
    )
    # A new database runs this before the tables app creates its tables: nothing to fix then.
    if not (await _Membership.table_exists() and await _Coordinator.table_exists()):
        return
    await _Card.raw(END_SESSIONS)
    await _Card.raw(REVOKE_CARDS, datetime.now(UTC))


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="accounts", description=DESCRIPTION)
    manager.add_raw(revoke_cards_of_those_who_may_not_hold_one)
    return manager
