"""The `voix` command: serve, migrate, seed the demo, add users, export briefs, back up."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import importlib.util
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from voix.forms import FormErrors
from voix.settings import ConfigurationError, get_settings


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def check_key() -> None:
    """Before a command reads or writes encrypted data: refuses (WrongKey, said plainly by
    `main`) when VOIX_SECRET_KEY is not the database's key; remembers it on first use."""
    from audit.keys import check_key

    _run(check_key())


def cmd_migrate(args: argparse.Namespace) -> int:
    from voix.db import migrate

    _run(migrate())
    check_key()  # compose runs this first: a wrong key stops the deployment here
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from voix.demo import print_logins, seed

    check_key()
    created = _run(seed())
    print("Demo data seeded." if created else "Demo data already present; left as it is.")
    print_logins()
    return 0


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def server_options() -> tuple[str, str]:
    """uvicorn's event loop and HTTP parser: uvloop and httptools (requirements.txt), said
    explicitly, so that a missing one is a choice seen here rather than uvicorn's silent
    fallback; asyncio's loop and h11 where they are not installed. Granian was measured
    against them (bench/servers.py) and not kept: within a few per cent on the app's pages,
    where the app's own Python is the cost, and `voix serve`'s stop (event streams ended on
    SIGTERM, graceful timeout, log configuration) is uvicorn's."""
    return (
        "uvloop" if _installed("uvloop") else "asyncio",
        "httptools" if _installed("httptools") else "h11",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    # No garbage collection until the app has started (voix.asgi switches it back on, after
    # freezing what start-up made): start-up makes ~150,000 objects and nothing to collect.
    gc.disable()
    import uvicorn

    from voix import logs

    # Outside production the base URL of links is derived from the port we listen on.
    os.environ["VOIX_PORT"] = str(args.port)
    get_settings()  # a wrong configuration stops here, said plainly, not in a traceback
    if args.demo:
        cmd_migrate(args)
        cmd_demo(args)
        gc.collect()  # what the migration and the seed left, before start-up's objects freeze
    check_key()
    loop, http = server_options()
    if get_settings().log_format == "text":  # for a person at a terminal; JSON logs stay JSON
        print(f"Voix des Quartiers: http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(
        "voix.asgi:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        loop=loop,
        http=http,
        log_level="info",
        # One line per request comes from voix.logs (redacted, timed to a stream's end), in
        # VOIX_LOG_FORMAT like every other record; uvicorn's own access line would repeat it.
        log_config=logs.config(get_settings().log_format),
        access_log=False,
        # X-Forwarded-For is read by voix.middleware, from VOIX_TRUSTED_PROXIES only
        # (uvicorn's would believe any client connecting through loopback).
        proxy_headers=False,
        # Event streams end on SIGTERM (voix.live); any other response still running after
        # this is cut, so a stop never waits on a client (it once took over two minutes).
        timeout_graceful_shutdown=3,
    )
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from voix.demo import add_user

    check_key()
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
    try:
        _run(add_user(args.email, args.name, password, args.role, args.table))
    except FormErrors as invalid:
        for field, message in invalid.errors.items():
            print(f"{field}: {message}", file=sys.stderr)
        return 2
    except LookupError as missing:
        print(str(missing), file=sys.stderr)
        return 2
    print(f"User {args.email} added as {args.role}.")
    return 0


def cmd_export_brief(args: argparse.Namespace) -> int:
    from litestar.exceptions import NotFoundException

    from exports import services, stored

    async def export() -> bytes:
        _brief, row = await services.version(args.ref, args.version)
        document, _shown = await services.read(row, args.lang)
        return await stored.version_file(
            args.ref,
            row["number"],
            document,
            args.lang,
            args.format,
            await services.photos(row["id"]),
        )

    try:
        content = _run(export())
    except NotFoundException:
        print(f"No published brief with reference {args.ref!r}.", file=sys.stderr)
        return 2
    # The same bytes the site serves: stored once made, by whichever came first.
    Path(args.output).write_bytes(content)
    print(f"Wrote {args.output}")
    return 0


def cmd_export_ballots(args: argparse.Namespace) -> int:
    from votes import ballot_box, box

    vote_id = args.ref.removeprefix("vote-")
    if not vote_id.isdigit() or not 0 < int(vote_id) < 2**31:
        print(f"voix export ballots: {args.ref!r} is not a vote number.", file=sys.stderr)
        return 2

    async def run(out: Any) -> str | None:
        from litestar.exceptions import NotFoundException

        from voix import db

        await db.engine().start()
        try:
            return await box.export(int(vote_id), out)
        except NotFoundException:
            return None
        except ballot_box.BallotBoxError:
            raise  # the stored vote does not make a valid box: a bug to see, not "no vote"
        except ValueError:  # the vote is still open
            return None
        finally:
            await db.engine().stop()

    check_key()
    try:
        out = Path(args.output).open("wb")  # noqa: SIM115 - closed below, whatever happens
    except OSError as cannot:
        print(
            f"voix export ballots: cannot write {args.output}: {cannot.strerror}", file=sys.stderr
        )
        return 2
    with out:
        digest = _run(run(out))
    if digest is None:
        Path(args.output).unlink(missing_ok=True)
        print(f"voix export ballots: no closed vote {vote_id}.", file=sys.stderr)
        return 2
    print(f"Wrote {args.output} (SHA-256 {digest})")
    return 0


def cmd_export_open_data(args: argparse.Namespace) -> int:
    """`voix export proposals|votes|meetings|briefs`: the open data the site publishes, streamed
    to a file (written aside, then renamed: a failed export leaves no partial file) or stdout."""
    from exports import open_data
    from tables.models import Organisation, Table

    name = f"voix export {args.what}"
    try:
        open_data.media_type(args.format)
        open_data.filename(args.what, args.format, "")
    except ValueError:
        print(f"{name}: no {args.format} format for {args.what}.", file=sys.stderr)
        return 2

    async def scope() -> tuple[open_data.Scope, str] | None:
        if args.table:
            table = await (
                Table.select(Table.id, Table.organisation.licence.as_alias("licence"))
                .where(Table.slug == args.table)
                .first()
            )
            if table is None:
                return None
            return open_data.Scope(table_id=table["id"]), table["licence"]
        if args.organisation:
            organisation = await (
                Organisation.select(Organisation.id, Organisation.licence)
                .where(Organisation.slug == args.organisation)
                .first()
            )
            if organisation is None:
                return None
            return open_data.Scope(organisation_id=organisation["id"]), organisation["licence"]
        return open_data.Scope(), ""

    async def run(out: Any) -> bool:
        from voix import db

        await db.engine().start()
        try:
            found = await scope()
            if found is None:
                return False
            chosen, licence = found
            async for chunk in open_data.stream(args.what, args.format, chosen, licence=licence):
                out.write(chunk)
            return True
        finally:
            await db.engine().stop()

    check_key()  # a vote past its closing time is closed by reading it, as its page does
    missing = f"no table {args.table!r}" if args.table else f"no organisation {args.organisation!r}"
    if args.output == "-":
        if not _run(run(sys.stdout.buffer)):
            print(f"{name}: {missing}.", file=sys.stderr)
            return 2
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.output)
    aside = target.with_name(target.name + ".tmp")
    try:
        out = aside.open("wb")
    except OSError as cannot:
        print(f"{name}: cannot write {args.output}: {cannot.strerror}", file=sys.stderr)
        return 2
    try:
        with out:
            written = _run(run(out))
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    if not written:
        aside.unlink(missing_ok=True)
        print(f"{name}: {missing}.", file=sys.stderr)
        return 2
    aside.replace(target)
    print(f"Wrote {args.output}")
    return 0


def cmd_close_due(args: argparse.Namespace) -> int:
    from votes import box, closing

    async def run() -> list[int]:
        from voix import db

        await db.engine().start()
        try:
            closed = await closing.close_due()
            for vote_id in closed:
                await box.fingerprint(vote_id)
            return closed
        finally:
            await db.engine().stop()

    check_key()  # closing opens the sealed ballots
    closed = _run(run())
    print(f"Closed {len(closed)} vote(s) past their closing time: {closed or '-'}")
    return 0


def cmd_recount(args: argparse.Namespace) -> int:
    import json

    from votes.ballot_box import BallotBoxError, count

    # Needs no database and no settings: anyone can recount a published ballot box.
    try:
        counted = count(args.file)
    except BallotBoxError as wrong:
        print(f"voix recount: {args.file}: {wrong}", file=sys.stderr)
        return 2
    except OSError as unreadable:
        print(f"voix recount: {args.file}: {unreadable.strerror or unreadable}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(counted.as_json(), ensure_ascii=False, indent=2))
    else:
        print(counted.as_text())
    return 0


def cmd_districts_import(args: argparse.Namespace) -> int:
    from maps.services import DistrictFileError, import_contours
    from voix import db

    async def run(text: str) -> Any:
        await db.migrate()
        return await import_contours(Path(args.file), text)

    try:
        report = _run(run(Path(args.file).read_text(encoding="utf-8")))
    except FileNotFoundError:
        print(f"No such file: {args.file}", file=sys.stderr)
        return 1
    except DistrictFileError as wrong:
        print("Nothing was imported:", file=sys.stderr)
        for problem in wrong.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"Updated {len(report.updated)} district(s): {', '.join(report.updated) or '-'}")
    print(f"Added {len(report.created)} district(s): {', '.join(report.created) or '-'}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from voix.backup import BackupError, backup

    try:
        kind = backup(get_settings().database_url, Path(args.output))
    except (BackupError, OSError) as failed:
        print(f"voix backup: {getattr(failed, 'strerror', None) or failed}", file=sys.stderr)
        return 2
    size = Path(args.output).stat().st_size
    print(f"Wrote {args.output} ({kind}, {size:,} bytes).")
    print(
        "It holds no secret key: without VOIX_SECRET_KEY, kept apart from it, its two-step "
        "sign-in secrets and the sealed ballots of open votes cannot be opened."
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from audit.keys import key_matches
    from voix.backup import BackupError, restore
    from votes.closing import OpenVote, open_votes

    async def after() -> tuple[list[OpenVote], bool | None]:
        return await open_votes(), await key_matches()

    try:
        restore(get_settings().database_url, Path(args.file))
    except (BackupError, OSError) as failed:
        print(f"voix restore: {getattr(failed, 'strerror', None) or failed}", file=sys.stderr)
        return 2
    votes, key_matched = _run(after())
    print(f"Restored {args.file}.")
    if votes:
        print(
            "Votes open at backup time: ballots cast after the backup are lost, while their "
            "voters hold receipts for them. Tell these votes' voters to check their receipt "
            "and vote again:"
        )
        for vote in votes:
            print(
                f"  vote {vote.id}: {vote.question} ({vote.participants} voted before the backup)"
            )
    if key_matched is False:
        print(
            "This database was used with another VOIX_SECRET_KEY: the site will refuse to "
            "start until VOIX_SECRET_KEY is that key."
        )
    print(
        "Everything written since the backup is lost. For production, PostgreSQL's continuous "
        "archiving (WAL archiving, point-in-time recovery) loses nothing between backups."
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="voix", description="Voix des Quartiers")
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], **kw: Any) -> Any:
        sub = commands.add_parser(name, **kw)
        sub.set_defaults(handler=handler)
        return sub

    serve = command("serve", cmd_serve, help="serve the web application")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="migrate and seed the demo first")
    command("migrate", cmd_migrate, help="bring the database schema up to date")
    command("demo", cmd_demo, help="seed the demo data (once)")

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True
    )
    add = user.add_parser("add", help="add a user; the password is read from stdin")
    add.set_defaults(handler=cmd_user_add)
    add.add_argument("email")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=["admin", "facilitator", "resident"], required=True)
    add.add_argument("--table", help="the table's slug (for facilitators and residents)")

    export = commands.add_parser("export", help="export documents").add_subparsers(
        dest="what", required=True
    )
    brief = export.add_parser("brief", help="a brief as PDF")
    brief.set_defaults(handler=cmd_export_brief)
    brief.add_argument("ref", help="the brief's slug")
    brief.add_argument("--lang", choices=["fr", "ar", "en"], default="fr")
    brief.add_argument("--output", required=True)
    brief.add_argument(
        "--format",
        choices=["pdf", "pdfa", "docx"],
        default="pdf",
        help="pdf: tagged, accessible (PDF/UA); pdfa: for archiving (PDF/A); docx: editable",
    )
    brief.add_argument("--version", type=int, default=None, help="a version (default: newest)")
    ballots = export.add_parser(
        "ballots", help="a closed vote's public ballot box (voix-ballots/1)"
    )
    ballots.set_defaults(handler=cmd_export_ballots)
    ballots.add_argument("ref", help="the vote's number, as in /votes/NUMBER")
    ballots.add_argument("--output", required=True)
    for dataset, what in (
        ("proposals", "the tables' proposals (listed ones), as open data"),
        ("votes", "the votes and, once closed, their results, as open data"),
        ("meetings", "the tables' meetings and their attendance counts, as open data"),
        ("briefs", "the position documents sent, and the institutions' answers, as open data"),
    ):
        data = export.add_parser(dataset, help=what)
        data.set_defaults(handler=cmd_export_open_data)
        data.add_argument(
            "--format",
            choices=["csv", "csv-semicolon", "jsonl", "geojson"],
            default="csv",
            help="csv: UTF-8 with BOM; csv-semicolon: for French spreadsheets; jsonl: JSON Lines; "
            "geojson: placed proposals only",
        )
        where = data.add_mutually_exclusive_group()
        where.add_argument("--table", help="one table's (its slug); default: the whole site")
        where.add_argument("--organisation", help="one organisation's tables (its slug)")
        data.add_argument("--output", required=True, help="the file to write; - for stdout")
    command(
        "close-due",
        cmd_close_due,
        help="close every vote past its closing time (exactly once, whoever comes first)",
    )
    recount = command(
        "recount", cmd_recount, help="check and count a public ballot box (voix-ballots/1)"
    )
    recount.add_argument("file", help="the ballot box, as published or exported")
    recount.add_argument("--json", action="store_true", help="print the result as JSON")

    backup = command(
        "backup", cmd_backup, help="write a consistent copy of the database, while it serves"
    )
    backup.add_argument("--output", required=True)
    restore = command(
        "restore",
        cmd_restore,
        help="replace the database's content by a backup's (stop the site first)",
    )
    restore.add_argument("file", help="a file written by `voix backup`")

    districts = commands.add_parser("districts", help="district boundaries").add_subparsers(
        dest="action", required=True
    )
    contours = districts.add_parser(
        "import", help="load official contours from a GeoJSON file (WGS 84), all or nothing"
    )
    contours.set_defaults(handler=cmd_districts_import)
    contours.add_argument("file")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigurationError as wrong:
        print(f"voix: {wrong}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
