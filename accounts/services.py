"""Accounts: creating people, checking passwords, opening and closing sessions."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from accounts.models import Session, User
from tables.models import RESIDENT, Membership
from voix import db
from voix.forms import Form, FormErrors, Message
from voix.i18n import LANGUAGES, N_
from voix.permissions import ANONYMOUS, Principal

_hasher = PasswordHasher()


@functools.cache
def _unknown_user_hash() -> str:
    """Verified when the login is unknown, so that timing does not reveal who has an account.
    Made on first use, in the thread that verifies (_verify_unknown), not at import: an argon2
    hash is a tenth of a second of every start-up, before /health answers."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify_unknown(password: str) -> bool:
    return verify_password(_unknown_user_hash(), password)


LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{2,253}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 200
LOGIN_TAKEN = N_("This login is already taken.")
LOGIN_INVALID = N_("Use 3 or more letters, digits, dots or dashes, without spaces or accents.")
PASSWORD_LENGTH = N_("The password needs between %(min)d and %(max)d characters.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# argon2 takes ~0.1 s and 64 MiB by design: run it beside the event loop, not on it (argon2-cffi
# releases the GIL). A limiter of its own keeps a burst of sign-ins from taking every thread
# and 64 MiB per request; they queue for a core instead.
_argon2_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    WeakKeyDictionary()
)


def _argon2_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _argon2_limiters.get(loop)
    if limiter is None:
        limiter = _argon2_limiters[loop] = anyio.CapacityLimiter(max(2, os.cpu_count() or 1))
    return limiter


async def hash_password_async(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_argon2_limiter())


async def verify_password_async(password_hash: str, password: str) -> bool:
    return await anyio.to_thread.run_sync(
        verify_password, password_hash, password, limiter=_argon2_limiter()
    )


def normalise_login(raw: str) -> str:
    return raw.strip().lower()


def read_account_form(form: Form) -> dict[str, str | None]:
    """Validates the fields every new account needs; raises nothing, collects errors."""
    login = normalise_login(form.text("login", max_length=254))
    if login and not LOGIN_PATTERN.match(login):
        form.error("login", LOGIN_INVALID)
    display_name = form.text("display_name", max_length=80)
    password = form.data.get("password") or ""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        form.error("password", PASSWORD_LENGTH, min=PASSWORD_MIN, max=PASSWORD_MAX)
        password = ""
    email = form.email("email")
    language = form.choice("language", LANGUAGES, required=False) or "fr"
    return {
        "login": login,
        "display_name": display_name,
        "password": password,
        "email": email,
        "language": language,
    }


async def create_user(
    login: str,
    display_name: str,
    password_hash: str,
    *,
    email: str | None = None,
    language: str = "fr",
    is_admin: bool = False,
) -> User:
    """Creates the account; a taken login is reported on the form, not as a crash."""
    inserted = (
        await User.insert(
            User(
                login=normalise_login(login),
                display_name=display_name,
                email=email,
                password_hash=password_hash,
                language=language,
                is_admin=is_admin,
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(User.id)
    )
    if not inserted:
        raise FormErrors({"login": Message(LOGIN_TAKEN)})
    return await User.objects().get(User.id == inserted[0]["id"]).run()  # type: ignore[return-value]


async def authenticate(login: str, password: str) -> User | None:
    login = normalise_login(login)
    if (not LOGIN_PATTERN.match(login) and "@" not in login) or "\x00" in login:
        await anyio.to_thread.run_sync(_verify_unknown, password, limiter=_argon2_limiter())
        return None
    user = await User.objects().where(User.login == login).first()
    if user is None:
        await anyio.to_thread.run_sync(_verify_unknown, password, limiter=_argon2_limiter())
        return None
    return user if await verify_password_async(user.password_hash, password) else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Residents stay signed in on their phone; a verified (TOTP) session is short-lived.
SESSION_IDLE = timedelta(days=14)
SESSION_MAX = timedelta(days=60)
VERIFIED_IDLE = timedelta(hours=2)
VERIFIED_MAX = timedelta(hours=12)
LAST_SEEN_GRANULARITY = timedelta(minutes=5)


async def open_session(user_id: int, verified: bool = False, by_card: bool = False) -> str:
    """A new session (so a new identifier); returns the cookie value, only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await Session.insert(
        Session(
            token_hash=_token_hash(token),
            user=user_id,
            created_at=now,
            last_seen_at=now,
            verified_at=now if verified else None,
            by_card=by_card,
        )
    )
    await Session.delete().where(
        (Session.user == user_id) & (Session.last_seen_at < now - SESSION_IDLE)
    )
    return token


async def rotate_session(token: str, user_id: int, verified: bool) -> str:
    """At a change of privilege the old identifier dies and a new one is issued."""
    old = await Session.select(Session.by_card).where(Session.token_hash == _token_hash(token))
    await close_session(token)
    by_card = bool(old and old[0]["by_card"])  # still a card's session, with what that implies
    return await open_session(user_id, verified=verified, by_card=by_card)


async def session_id_of(token: str | None) -> int | None:
    """The row of the session this cookie opens, if any (not checked for expiry)."""
    if not token or len(token) > 100:
        return None
    row = await Session.select(Session.id).where(Session.token_hash == _token_hash(token)).first()
    return int(row["id"]) if row else None


async def close_session(token: str) -> None:
    await Session.delete().where(Session.token_hash == _token_hash(token))


async def close_all_sessions(user_id: int) -> None:
    await Session.delete().where(Session.user == user_id)


# Who asks, in one query (every page asks it): the session, its account, the account's roles
# at tables and in organisations, and the shared tablet the session may be (with what
# meetings.room.still_runs asks of it), how many notifications wait unread (the header's
# count, up to 100: "99+" past that, so the count stays an index probe), and every table's
# revision (the home page's list of tables is kept under them: one query fewer on the page
# every signed-in visit starts from, issue 15). Roles travel as "table:role", revisions as
# "table:revision" and organisation ids joined by commas: ids, revisions are digits, roles are
# words, none holds a comma.
_PRINCIPAL = """
SELECT s.id AS session_id, s.last_seen_at, s.verified_at, s.by_card,
       u.id AS user_id, u.display_name, u.is_admin, u.totp_enabled_at,
       u.password_hash <> '' AS has_password,
       (SELECT {joined_roles} FROM membership m WHERE m."user" = u.id) AS roles,
       (SELECT {joined_organisations} FROM coordinator c WHERE c."user" = u.id) AS coordinated,
       (SELECT {joined_revisions} FROM neighbourhood_table) AS revisions,
       (SELECT count(*) FROM (SELECT 1 FROM notification n
         WHERE n."user" = u.id AND n.read_at IS NULL LIMIT 100) unread) AS unread,
       t.vote AS tablet_vote, v."table" AS tablet_table, nt.organisation AS tablet_organisation,
       v.status AS vote_status, v.closes_at AS closes_at, mt.status AS meeting_status
FROM login_session s
JOIN account u ON u.id = s."user"
LEFT JOIN tablet t ON t.session = s.id
LEFT JOIN vote v ON v.id = t.vote
LEFT JOIN neighbourhood_table nt ON nt.id = v."table"
LEFT JOIN meeting mt ON mt.id = t.meeting
WHERE s.token_hash = {{}} AND s.created_at > {{}} AND s.last_seen_at > {{}}
"""
_PRINCIPAL_SQL = db.Statement(
    {
        "postgres": _PRINCIPAL.format(
            joined_roles="string_agg(m.\"table\"::text || ':' || m.role, ',')",
            joined_organisations="string_agg(c.organisation::text, ',')",
            joined_revisions="string_agg(id::text || ':' || revision::text, ',')",
        ),
        "sqlite": _PRINCIPAL.format(
            joined_roles="group_concat(m.\"table\" || ':' || m.role, ',')",
            joined_organisations="group_concat(c.organisation, ',')",
            joined_revisions="group_concat(id || ':' || revision, ',')",
        ),
    }
)


def _split(joined: str | None) -> list[str]:
    return joined.split(",") if joined else []


async def load_principal(token: str | None) -> Principal:
    if not token or len(token) > 100:
        return ANONYMOUS
    now = datetime.now(UTC)
    rows = await _PRINCIPAL_SQL.rows(_token_hash(token), now - SESSION_MAX, now - SESSION_IDLE)
    if not rows:
        return ANONYMOUS
    row = rows[0]
    row["id"] = row["session_id"]
    last_seen = db.utc(row["last_seen_at"])
    verified_at = db.utc(row["verified_at"]) if row["verified_at"] else None
    verified = bool(
        verified_at and verified_at > now - VERIFIED_MAX and last_seen > now - VERIFIED_IDLE
    )
    # Best effort: on a read-only database the page still shows (the lapsed verification is
    # refused anyway below, and an unrecorded sight only brings the idle limit closer).
    async with db.best_effort():
        if verified_at and not verified:
            # A lapsed verification is forgotten, not just ignored: seeing a page does not
            # revive it.
            await Session.update({Session.verified_at: None, Session.last_seen_at: now}).where(
                Session.id == row["id"]
            )
        elif last_seen < now - LAST_SEEN_GRANULARITY:  # a write every few minutes, not each time
            await Session.update({Session.last_seen_at: now}).where(Session.id == row["id"])
    user_id = row["user_id"]
    table_roles: dict[int, str] = {}
    for pair in _split(row["roles"]):
        table, role = pair.split(":", 1)
        table_roles[int(table)] = role
    coordinated = frozenset(int(organisation) for organisation in _split(row["coordinated"]))
    revisions: dict[int, int] = {}
    for pair in _split(row["revisions"]):
        table, number = pair.split(":", 1)
        revisions[int(table)] = int(number)
    from meetings import room  # noqa: PLC0415 (meetings build on accounts)

    tablet = (
        {
            "vote": row["tablet_vote"],
            "table": row["tablet_table"],
            "organisation": row["tablet_organisation"],
            "vote_status": row["vote_status"],
            "closes_at": row["closes_at"],
            "meeting_status": row["meeting_status"],
        }
        if row["tablet_vote"] is not None
        else None
    )
    principal = Principal(
        user_id=user_id,
        display_name=row["display_name"],
        is_admin=bool(row["is_admin"]),
        table_roles=table_roles,
        coordinated_organisations=coordinated,
        verified=verified,
        totp_enabled=row["totp_enabled_at"] is not None,
        tablet_vote=tablet["vote"] if tablet else None,
        unread=int(row["unread"] or 0),
        revisions=revisions,
    )
    if tablet is not None and not room.still_runs(principal, tablet):
        # The tablet's owner may no longer run this room (their code lapsed, their rights on
        # the table went, the vote or the meeting ended): whoever holds the tablet is not
        # handed their session. It is signed out, and the tablet with it.
        await Session.delete().where(Session.id == row["id"])
        return ANONYMOUS
    if row["by_card"] and (principal.privileged or row["has_password"]):
        # Whoever printed the card could have opened this session: it must not become a way
        # into a manager's account (or one with a password), whatever happened since.
        await Session.delete().where(Session.id == row["id"])
        return ANONYMOUS
    return principal


async def sign_up(data: Mapping[str, Any], table_ids: Mapping[str, int]) -> tuple[int, str]:
    """A resident creates their account and joins a table; returns (user id, table slug)."""
    form = Form(data)
    fields = read_account_form(form)
    table_slug = form.choice("table", table_ids)
    form.validate()
    password_hash = await hash_password_async(str(fields["password"]))  # before the write lock
    async with db.write_transaction():
        user = await create_user(
            str(fields["login"]),
            str(fields["display_name"]),
            password_hash,
            email=fields["email"],
            language=str(fields["language"]),
        )
        await Membership.insert(
            Membership(user=user.id, table=table_ids[table_slug], role=RESIDENT)
        )
        from tables.services import follow_table  # noqa: PLC0415 (tables build on accounts)

        await follow_table(user.id, table_ids[table_slug])
    return user.id, table_slug


async def login_of(user_id: int) -> str:
    row = await User.select(User.login).where(User.id == user_id).first()
    return str(row["login"]) if row else ""
