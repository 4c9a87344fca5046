"""A consistent copy of the database, and back (`voix backup`, `voix restore`).

A backup is the database's own format, whose first bytes say which kind it is: a pg_dump
archive (custom format) for PostgreSQL, a plain SQLite file for SQLite. So a dump is never
restored into the other kind, and each can be opened with its own tools without ours.

Everything the site keeps is in the database (photos and PDFs included); the secret key is
not, on purpose: whoever finds a backup cannot open its secrets (two-step sign-in secrets,
sealed ballots) without the key, which is kept apart (see voix.settings.key_directory).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from voix.db import SQLite, engine_from_url

SQLITE = "SQLite"
POSTGRESQL = "PostgreSQL"
_MAGIC = {b"SQLite format 3\x00": SQLITE, b"PGDMP": POSTGRESQL}


_SHUFFLE_SEALED = """
DO $$ BEGIN
  IF to_regclass('sealed_ballot') IS NOT NULL
     AND EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('sealed_ballot_pkey')) THEN
    CLUSTER sealed_ballot USING sealed_ballot_pkey;
  END IF;
END $$;
"""


class BackupError(Exception):
    """A backup or restore that cannot be done; its message says why, for the operator."""


def database_kind(database_url: str) -> str:
    return SQLITE if isinstance(engine_from_url(database_url), SQLite) else POSTGRESQL


def file_kind(path: Path) -> str | None:
    """Which database a backup file is of, from its first bytes; None when neither."""
    with path.open("rb") as file:
        head = file.read(16)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def backup(database_url: str, output: Path) -> str:
    """Writes a consistent copy of the database to `output`, whole or not at all (a partial
    file beside it, renamed once complete and on disk); returns the database's kind."""
    kind = database_kind(database_url)
    partial = output.with_name(f".{output.name}.partial")
    try:
        if kind == SQLITE:
            _sqlite_backup(_sqlite_path(database_url), partial)
        else:
            # PostgreSQL keeps rows in the order they came, and pg_dump writes them so: the
            # sealed ballots of an open vote would line up with the participations written in
            # the same transactions. Sorting them by their random key first breaks that order
            # (the table lives only while votes are open: small, locked for milliseconds).
            _postgres("psql", database_url, "--quiet", "--command", _SHUFFLE_SEALED)
            _postgres("pg_dump", database_url, "--format=custom", f"--file={partial}")
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return kind


def restore(database_url: str, source: Path) -> None:
    """Replaces the database's content by the backup's, in one transaction: on failure the
    database is left as it was. Meant for a stopped site: requests served during the restore
    may act on data that is about to be replaced."""
    kind, found = database_kind(database_url), file_kind(source)
    if found is None:
        raise BackupError(f"{source} is not a backup made by `voix backup` (SQLite or pg_dump).")
    if found != kind:
        raise BackupError(
            f"{source} is a {found} backup and DATABASE_URL is a {kind} database: a backup "
            f"is restored into the kind of database it was taken from."
        )
    if kind == SQLITE:
        _sqlite_restore(source, _sqlite_path(database_url))
    else:
        _postgres_restore(database_url, source)


def _sqlite_path(database_url: str) -> Path:
    engine = engine_from_url(database_url)
    if not isinstance(engine, SQLite):
        raise BackupError("DATABASE_URL is not a SQLite database.")  # only called for SQLite
    return Path(engine.path)


def _read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: a mistyped path is an error, not a new empty database.
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30)


def _sqlite_backup(path: Path, output: Path) -> None:
    """SQLite's online backup API: a snapshot of one moment, while the site goes on writing
    (in WAL mode writers do not wait for it); then one self-contained file (no -wal beside)."""
    try:
        with closing(_read_only(path)) as source, closing(sqlite3.connect(output)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as cannot:
        raise BackupError(f"Cannot copy the database {path} to {output}: {cannot}.") from None


def _sqlite_restore(source: Path, path: Path) -> None:
    """The backup API again, into the live file: SQLite writes the new pages in one
    transaction under its own locks, so a crash leaves the old database or the new one, and
    its write-ahead log stays consistent. (Renaming a new file over it would not: a connection
    still open writes on into the old, unlinked file, and a stale -wal beside the new file
    would be replayed into it.)"""
    try:
        with closing(_read_only(source)) as backup_db:
            if backup_db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise BackupError(f"{source} is damaged (SQLite's quick_check fails).")
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(path, timeout=30)) as live:
                backup_db.backup(live)
                live.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as wrong:
        raise BackupError(f"Cannot restore {source} into {path}: {wrong}.") from None


def _postgres_restore(database_url: str, source: Path) -> None:
    """pg_restore's script, run by psql in one transaction after dropping the tables the
    backup does not have (made by a newer version's migrations: left in place they would
    stop the next `voix migrate`). pg_restore alone cannot add those drops to its transaction."""
    listed = _postgres("pg_restore", None, "--list", str(source))
    in_backup = {line.split()[5] for line in listed.splitlines() if " TABLE public " in line}
    present = _postgres(
        "psql",
        database_url,
        "--no-psqlrc",
        "--tuples-only",
        "--no-align",
        "--command=SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    ).split()
    newer = ", ".join(f'public."{table}"' for table in sorted(set(present) - in_backup))
    # Written out whole first: psql must never commit the script of a pg_restore that failed
    # half-way (a damaged file) — the tables would be dropped and half the data missing.
    with tempfile.TemporaryDirectory(prefix="voix-restore-") as work:
        script = Path(work) / "restore.sql"
        _postgres(
            "pg_restore",
            None,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            f"--file={script}",
            str(source),
        )
        _postgres(
            "psql",
            database_url,
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            *([f"--command=DROP TABLE IF EXISTS {newer} CASCADE"] if newer else []),
            f"--file={script}",
        )


def _binary(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise BackupError(f"{program} is not installed (PostgreSQL's client tools are needed).")
    return found


def _postgres(program: str, database_url: str | None, *args: str) -> str:
    """A PostgreSQL client tool on DATABASE_URL, its output; the password goes through the
    environment, not the command line that every local user can read (ps)."""
    env, target = dict(os.environ), []
    if database_url is not None:
        parts = urlsplit(database_url)
        if parts.password is not None:
            env["PGPASSWORD"] = parts.password
            host = parts.netloc.rsplit("@", 1)[1]
            parts = parts._replace(netloc=f"{parts.username or ''}@{host}")
        target = [f"--dbname={urlunsplit(parts)}"]
    done = subprocess.run(  # noqa: S603 — fixed program, arguments of our own
        [_binary(program), *target, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"{program} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout
