"""Who may do what: one function, `can`, asked by every controller and service.

Roles are held per table (resident, facilitator) and per organisation (coordinator);
an administrator manages everything but, holding no seat at a table, does not vote.
Managing anything needs a *verified* session: one that proved a TOTP or recovery code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from tables.models import FACILITATOR, RESIDENT


@dataclass(frozen=True)
class Scope:
    """What a permission is checked against: a table and the organisation running it."""

    table_id: int
    organisation_id: int


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    display_name: str = ""
    is_admin: bool = False
    table_roles: Mapping[int, str] = field(default_factory=dict)
    coordinated_organisations: frozenset[int] = frozenset()
    verified: bool = False  # this session proved a second factor
    totp_enabled: bool = False
    # This session is a shared tablet for this vote (meetings.room): it reaches nothing else.
    tablet_vote: int | None = None
    unread: int = 0  # notifications not yet read (up to 100), for the header
    # Every table's revision (tables/revision.py) as the session's query read it, in the same
    # round trip; None when nothing was read (an anonymous reader): what tables.services
    # keeps the list of tables under.
    revisions: Mapping[int, int] | None = None

    @property
    def privileged(self) -> bool:
        """Holds keys to votes or to people's data: must use TOTP to act as such."""
        return (
            self.is_admin
            or bool(self.coordinated_organisations)
            or FACILITATOR in self.table_roles.values()
        )

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def role_at(self, table_id: int) -> str | None:
        return self.table_roles.get(table_id)


ANONYMOUS = Principal()


@dataclass(frozen=True)
class CardHolder:
    """Whom a login card would sign in as. A card is a way in without a password, so it is only
    for residents registered in person who have none, never for anyone who manages a table."""

    user_id: int
    has_password: bool
    manages: bool  # facilitates or coordinates a table anywhere, or administers

    @property
    def card_only(self) -> bool:
        return not self.has_password and not self.manages


Rule = Callable[[Principal, Scope], bool]


def _member(who: Principal, scope: Scope) -> bool:
    return who.role_at(scope.table_id) in (RESIDENT, FACILITATOR)


def _manager(who: Principal, scope: Scope) -> bool:
    return who.verified and (
        who.is_admin
        or who.role_at(scope.table_id) == FACILITATOR
        or scope.organisation_id in who.coordinated_organisations
    )


def _coordinator(who: Principal, scope: Scope) -> bool:
    return who.verified and (who.is_admin or scope.organisation_id in who.coordinated_organisations)


def _signed_in(who: Principal, scope: Scope) -> bool:
    return who.authenticated


def _member_or_manager(who: Principal, scope: Scope) -> bool:
    return _member(who, scope) or _manager(who, scope)


def _may_join(who: Principal, scope: Scope) -> bool:
    """Residents join tables; those who manage a table do not sit at it to vote."""
    return (
        who.authenticated
        and who.role_at(scope.table_id) is None
        and not who.is_admin
        and scope.organisation_id not in who.coordinated_organisations
    )


RULES: dict[str, Rule] = {
    "tables.join": _may_join,
    "proposals.create": _member,
    "proposals.create_on_behalf": _manager,
    "proposals.decide": _manager,
    "proposals.support": _member,
    "proposals.comment": _member,
    "proposals.discuss_on_behalf": _manager,
    "proposals.report": _signed_in,
    "proposals.moderate": _manager,
    "votes.cast": _member,
    "votes.manage": _manager,
    "briefs.manage": _manager,  # compose, publish, and record what institutions answered
    "institutions.manage": _coordinator,  # the organisation's list of addressees
    "meetings.manage": _manager,
    "meetings.check_in": _member,
    "meetings.follow": _member_or_manager,
    "meetings.reopen": _coordinator,  # undoes a closing made by mistake, the same evening
    "residents.register": _manager,
    "cards.print": _manager,
    "audit.read": _coordinator,
    "members.change_role": _coordinator,
    "pages.edit": _coordinator,  # the organisation's wording of the legal pages
    "organisation.settings": _coordinator,  # its open-data licence
    "content.translate": _manager,  # votes, agendas, minutes and briefs in other languages
}


# Actions about one person: the rule above for the table, and this one for the person.
SUBJECT_RULES: dict[str, Callable[[Principal, CardHolder], bool]] = {
    "cards.print": lambda who, holder: holder.card_only and holder.user_id != who.user_id,
}


def can(who: Principal, action: str, scope: Scope, subject: CardHolder | None = None) -> bool:
    """`subject` is the person an act is about; without it, whether the act is open at all."""
    if not RULES[action](who, scope):
        return False
    rule = SUBJECT_RULES.get(action)
    return rule is None or subject is None or rule(who, subject)


class VerificationRequired(NotAuthorizedException):
    """Allowed, once this session has proved a second factor."""


def require(who: Principal, action: str, scope: Scope) -> None:
    """Refuses with 401 (sign in, or confirm with a code first) or 403 (not allowed)."""
    if can(who, action, scope):
        return
    if not who.authenticated:
        raise NotAuthorizedException()
    if not who.verified and can(replace(who, verified=True), action, scope):
        raise VerificationRequired()
    raise PermissionDeniedException()


def signed_in(who: Principal) -> int:
    """The user's id; anonymous callers are asked to sign in."""
    if who.user_id is None:
        raise NotAuthorizedException()
    return who.user_id
