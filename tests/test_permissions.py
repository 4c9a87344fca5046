"""Who may do what: the whole matrix of roles × actions, asked of the one `can`."""

from __future__ import annotations

import pytest

from tables.models import FACILITATOR, RESIDENT
from voix.permissions import ANONYMOUS, RULES, Principal, Scope, can

TABLE, OTHER_TABLE, ORGANISATION, OTHER_ORGANISATION = 1, 2, 10, 20
SCOPE = Scope(table_id=TABLE, organisation_id=ORGANISATION)

PEOPLE = {
    "anonymous": ANONYMOUS,
    "resident of this table": Principal(user_id=1, table_roles={TABLE: RESIDENT}),
    "facilitator of this table, not verified": Principal(
        user_id=9, table_roles={TABLE: FACILITATOR}
    ),
    "coordinator of the organisation, not verified": Principal(
        user_id=10, coordinated_organisations=frozenset({ORGANISATION})
    ),
    "resident of another table": Principal(user_id=2, table_roles={OTHER_TABLE: RESIDENT}),
    "facilitator of this table": Principal(
        user_id=3, table_roles={TABLE: FACILITATOR}, verified=True
    ),
    "facilitator of another table": Principal(
        user_id=4, table_roles={OTHER_TABLE: FACILITATOR}, verified=True
    ),
    "coordinator of the organisation": Principal(
        user_id=5, coordinated_organisations=frozenset({ORGANISATION}), verified=True
    ),
    "coordinator of the other organisation": Principal(
        user_id=6, coordinated_organisations=frozenset({OTHER_ORGANISATION}), verified=True
    ),
    "administrator": Principal(user_id=7, is_admin=True, verified=True),
    "signed-in, no table": Principal(user_id=8),
}

ALLOWED = {
    # Those who manage this table (its organisation's coordinators, administrators) do not
    # join it: a seat at a table is a vote at it.
    "tables.join": {
        "resident of another table",
        "facilitator of another table",
        "coordinator of the other organisation",
        "signed-in, no table",
    },
    # Unverified, a facilitator still takes part as a member; managing waits for the code.
    "proposals.create": {
        "resident of this table",
        "facilitator of this table",
        "facilitator of this table, not verified",
    },
    "proposals.create_on_behalf": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    "proposals.decide": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    # Supporting and commenting are a member's own acts.
    "proposals.support": {
        "resident of this table",
        "facilitator of this table",
        "facilitator of this table, not verified",
    },
    "proposals.comment": {
        "resident of this table",
        "facilitator of this table",
        "facilitator of this table, not verified",
    },
    # Supports and comments of a resident who asked, as proposals are entered for them.
    "proposals.discuss_on_behalf": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    # Anyone signed in may point out a problem; only those who run the table act on it.
    "proposals.report": {name for name, who in PEOPLE.items() if who.authenticated},
    "proposals.moderate": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    "votes.cast": {
        "resident of this table",
        "facilitator of this table",
        "facilitator of this table, not verified",
    },
    "votes.manage": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    "briefs.manage": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    "content.translate": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    "meetings.manage": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    # Checking in is a member's own act; the facilitator ticks others through meetings.manage.
    "meetings.check_in": {
        "resident of this table",
        "facilitator of this table",
        "facilitator of this table, not verified",
    },
    # The room screen shows names said aloud in the room: members and managers only.
    "meetings.follow": {
        "resident of this table",
        "facilitator of this table",
        "facilitator of this table, not verified",
        "coordinator of the organisation",
        "administrator",
    },
    # A closing made by mistake is undone by the organisation, not by whoever closed it.
    "meetings.reopen": {"coordinator of the organisation", "administrator"},
    "residents.register": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    # Which person may hold a card is the subject rule's (tests/test_cards.py).
    "cards.print": {
        "facilitator of this table",
        "coordinator of the organisation",
        "administrator",
    },
    "audit.read": {"coordinator of the organisation", "administrator"},
    "pages.edit": {"coordinator of the organisation", "administrator"},
    "organisation.settings": {"coordinator of the organisation", "administrator"},
    "institutions.manage": {"coordinator of the organisation", "administrator"},
    "members.change_role": {"coordinator of the organisation", "administrator"},
}


def test_every_action_has_an_expectation() -> None:
    assert set(ALLOWED) == set(RULES)


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_matrix(action: str, person: str) -> None:
    assert can(PEOPLE[person], action, SCOPE) is (person in ALLOWED[action])
