"""Casting ballots through HTTP against the raw asyncpg floor, in one run (issue 15).

    createdb -h 127.0.0.1 -U postgres voix_bench_casting   # once; one run at a time per database
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/voix_bench_casting \
        .venv/bin/python bench/casting.py [VOTERS] [--rounds=3] [--port=8821] [--app=OTHER_CHECKOUT]

The database is migrated and seeded with the demo (once), then with VOTERS residents of the
Flamants table (default 3,000), each with a session whose token the bench knows. Each run opens
fresh for/against votes, one for the app and one for the floor in each round, and one for the
database alone.

Rounds: the app and the floor are both served for the whole run and measured in turn, each
round on votes of its own (every voter casts once in each), the first to go alternating, so
that what the machine does meanwhile falls on both alike. A round takes a few seconds; one
alone moved by a tenth from a run to the next. Each round's ratio is printed, and the run's
figures are those of the round with the median ratio.

- App: the real server as in production (uvicorn, 2 workers, uvloop, httptools) on the port
  given; VOIX_ENV=production with plain http on 127.0.0.1. 20 connections (keep-alive) post
  each voter's ballot once, as the form does (CSRF field, a submission code, the choice); each
  answer must be 200 with a receipt. The client is a small HTTP/1.1 client on asyncio in this
  process (its CPU time is printed: it must stay far from a core).
- Floor, as the app is measured: a bare Litestar app (this module's `floor_app`) served the
  same way (uvicorn, 2 workers, uvloop, httptools, FLOOR_PORT), the same client and
  connections; per ballot it reads the form, seals the ballot (AES-GCM) and runs one asyncpg
  transaction (a pool of 10 per worker, as the app's) inserting the rows casting inserts: the
  roll's row, unique per vote and person (ON CONFLICT DO NOTHING RETURNING: the uniqueness
  check), and the sealed ballot. No session, no CSRF, no page: what the app does beyond that
  is what the ratio measures.
- The database alone, for reference: the same transaction from this process, 20 asyncpg
  connections, no HTTP.

Prints ballots/s and p99 for each, and the ratio. Timings on a shared machine are noisy:
compare runs made in the same conditions.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg  # type: ignore[import-untyped]
from litestar import Litestar, Request, Response, get, post
from servers import settle  # bench/servers.py

from accounts.models import Session, User
from proposals.models import Proposal
from tables.models import Membership, Table
from voix import db
from voix.demo import seed
from voix.settings import get_settings
from votes import sealing
from votes.models import OPEN, Vote, VoteOption

ROOT = Path(__file__).resolve().parent.parent
# The server's code: this checkout, or another one (--app=DIR) to compare two versions in the
# same run and conditions.
APP_ROOT = ROOT

CONNECTIONS = 20
FLOOR_PORT = 8822
WARM_UP = 4 * CONNECTIONS  # untimed requests first
WORKERS = 2
TOKEN_PREFIX = "bench-casting-voter-"  # noqa: S105 — session tokens of bench voters


def _token(n: int) -> str:
    return f"{TOKEN_PREFIX}{n:06d}"


async def prepare(voters: int, votes_wanted: int) -> list[int]:
    """Demo, voters with sessions, and fresh open votes: the app's and the floors'."""

    await db.migrate()
    await seed()
    await db.engine().start()
    table = await Table.select(Table.id).where(Table.slug == "flamants-iris").first()
    assert table is not None, "the demo's Flamants table"
    have = await User.count().where(User.login.like("bench-voter-%"))
    earlier = datetime.now(UTC) - timedelta(days=1)
    async with db.engine().transaction():
        for start in range(have, voters, 1000):
            numbers = range(start, min(start + 1000, voters))
            users = await User.insert(
                *[
                    User(login=f"bench-voter-{n:06d}", display_name=f"Voter {n}", password_hash="")
                    for n in numbers
                ]
            ).returning(User.id)
            ids = [row["id"] for row in users]
            await Membership.insert(
                *[Membership(user=i, table=table["id"], created_at=earlier) for i in ids]
            )
            await Session.insert(
                *[
                    Session(
                        token_hash=hashlib.sha256(_token(n).encode()).hexdigest(),
                        user=i,
                        created_at=datetime.now(UTC),
                        last_seen_at=datetime.now(UTC),
                    )
                    for n, i in zip(numbers, ids, strict=True)
                ]
            )
    # Sessions stay fresh (idle and maximum ages) whenever the bench runs again.
    now = datetime.now(UTC)
    await Session.raw(
        'UPDATE login_session SET created_at = {}, last_seen_at = {} WHERE "user" IN '
        "(SELECT id FROM account WHERE login LIKE 'bench-voter-%')",
        now,
        now,
    )
    proposal = (
        await Proposal.select(Proposal.id, Proposal.title)
        .where(Proposal.table == table["id"])
        .first()
    )
    assert proposal is not None, "a proposal of the demo"
    votes = []
    for _ in range(votes_wanted):
        rows = await Vote.insert(
            Vote(
                table=table["id"],
                proposal=proposal["id"],
                question=proposal["title"][:200],
                status=OPEN,
                opened_at=datetime.now(UTC),
            )
        ).returning(Vote.id)
        vote_id = rows[0]["id"]
        await VoteOption.insert(
            VoteOption(
                vote=vote_id, position=0, proposal=proposal["id"], label=proposal["title"][:200]
            )
        )
        votes.append(vote_id)
    if isinstance(db.engine(), db.Postgres):
        await db.engine().run_ddl("ANALYZE")
    voters_ids = (
        await User.select(User.id).where(User.login.like("bench-voter-%")).order_by(User.id)
    )
    await db.engine().stop()
    assert len(voters_ids) >= voters, "fewer bench voters than asked"
    return votes


# A small HTTP/1.1 client: keep-alive, Content-Length or chunked answers.


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(part[:-2] for part in parts)
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        return status, body


async def _csrf(port: int) -> str:
    conn = Connection(port)
    raw = f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    assert conn.reader is None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("set-cookie:") and "csrftoken=" in line:
            return line.split("csrftoken=", 1)[1].split(";", 1)[0]
    raise RuntimeError("no CSRF cookie from /login")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def drive_http_floor(
    server: subprocess.Popen[bytes], port: int, vote_id: int, voters: int
) -> dict[str, Any]:
    users = await _voter_ids(voters)
    requests = []
    for n in range(voters):
        body = urlencode({"user": users[n], "choice": ("yes", "no", "abstain")[n % 3]}).encode()
        requests.append(
            (
                f"POST /floor/{vote_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    health = f"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    return await _drive(server, port, requests, [health] * WARM_UP)


async def _voter_ids(voters: int) -> list[int]:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    rows = await conn.fetch(
        "SELECT id FROM account WHERE login LIKE 'bench-voter-%' ORDER BY id LIMIT $1", voters
    )
    await conn.close()
    return [row["id"] for row in rows]


async def drive_app(
    server: subprocess.Popen[bytes], port: int, vote_id: int, voters: int
) -> dict[str, Any]:
    csrf = await _csrf(port)
    requests = []
    for n in range(voters):
        body = urlencode(
            {
                "_csrf_token": csrf,
                "submission": secrets.token_urlsafe(16),
                "choice": ("yes", "no", "abstain")[n % 3],
            }
        ).encode()
        requests.append(
            (
                f"POST /votes/{vote_id}/ballot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Cookie: voix_session={_token(n)}; csrftoken={csrf}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    # Voters look at the vote's page before casting; some do it here, untimed.
    pages = [
        (
            f"GET /votes/{vote_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: voix_session={_token(n)}; csrftoken={csrf}\r\n\r\n"
        ).encode()
        for n in range(WARM_UP)
    ]
    return await _drive(server, port, requests, pages)


async def _drive(
    server: subprocess.Popen[bytes], port: int, requests: list[bytes], warm_up: list[bytes]
) -> dict[str, Any]:
    """Sends the requests over CONNECTIONS connections, after the warm-up ones (untimed: each
    worker's first requests compile templates and open database connections)."""
    warmers = [Connection(port) for _ in range(CONNECTIONS)]

    async def warm(conn: Connection, raws: list[bytes]) -> None:
        for raw in raws:
            status, _ = await conn.request(raw)
            assert status == 200, status

    await asyncio.gather(*(warm(conn, warm_up[i::CONNECTIONS]) for i, conn in enumerate(warmers)))
    voters = len(requests)
    queue = iter(requests)
    latencies: list[float] = []
    failures: dict[int, int] = {}

    async def client() -> None:
        conn = Connection(port)
        for raw in queue:
            started = time.perf_counter()
            status, body = await conn.request(raw)
            latencies.append(time.perf_counter() - started)
            if status != 200 or b"receipt" not in body:
                failures[status] = failures.get(status, 0) + 1

    cpu = time.process_time()
    server_before = server_cpu(server)
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    return {
        "server_cpu_ms": (server_cpu(server) - server_before) / voters * 1000,
        "rate": voters / elapsed,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "failures": failures,
        "client_cpu": (time.process_time() - cpu) / elapsed,
    }


async def drive_floor(dsn: str, vote_id: int, voters: int) -> dict[str, Any]:
    get_settings()  # the sealing key
    pool = await asyncpg.create_pool(dsn, min_size=CONNECTIONS, max_size=CONNECTIONS)
    users = [
        row["id"]
        for row in await pool.fetch(
            "SELECT id FROM account WHERE login LIKE 'bench-voter-%' ORDER BY id LIMIT $1", voters
        )
    ]
    # Sealed as the app seals (AES-GCM, same size), outside the timing like the floor's SQL.
    sealed = [sealing.seal(vote_id, "ABCDEFGH", [(1, n % 3)]) for n in range(voters)]
    latencies: list[float] = []
    work = iter(range(voters))

    async def client() -> None:
        async with pool.acquire() as conn:
            for n in work:
                started = time.perf_counter()
                assert await _floor_transaction(conn, vote_id, users[n], sealed[n])
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {
        "rate": voters / elapsed,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
    }


_INSERT_ROLL = (
    "INSERT INTO vote_participation "
    '(vote, "user", person, name, channel, recorded_by, cast_at, submission) '
    "VALUES ($1, $2, $3, '', 'online', NULL, $4, $5) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_INSERT_SEALED = "INSERT INTO sealed_ballot (id, vote, sealed) VALUES ($1, $2, $3)"


async def _floor_transaction(
    conn: asyncpg.Connection, vote_id: int, user: int, sealed: str
) -> bool:
    async with conn.transaction():
        row = await conn.fetchrow(
            _INSERT_ROLL, vote_id, user, f"user:{user}", datetime.now(UTC), secrets.token_hex(32)
        )
        if row is None:
            return False
        await conn.execute(_INSERT_SEALED, uuid.uuid4(), vote_id, sealed)
    return True


def floor_app() -> Any:
    """The HTTP floor (uvicorn --factory casting:floor_app --app-dir bench)."""
    pools: list[asyncpg.Pool] = []

    async def start() -> None:
        pools.append(await asyncpg.create_pool(os.environ["DATABASE_URL"], max_size=10))

    @get("/health/live", sync_to_thread=False)
    def health() -> str:
        return "ok"

    @post("/floor/{vote_id:int}", status_code=200)
    async def ballot(request: Request, vote_id: int) -> Response[str]:
        form = await request.form()
        user = int(form["user"])
        receipt = secrets.token_hex(4).upper()
        sealed = sealing.seal(
            vote_id, receipt, [(1, ("yes", "no", "abstain").index(form["choice"]))]
        )
        async with pools[0].acquire() as conn:
            stored = await _floor_transaction(conn, vote_id, user, sealed)
        if not stored:
            return Response("already voted", status_code=409, media_type="text/plain")
        return Response(f"<p>receipt {receipt}</p>", media_type="text/html")

    return Litestar(
        route_handlers=[health, ballot], on_startup=[start], openapi_config=None, debug=False
    )


def start_server(port: int, floor: bool = False) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOIX_ENV": "production",
        "VOIX_SECRET_KEY": os.environ.get("VOIX_SECRET_KEY") or "bench-casting-" + "k" * 40,
        "VOIX_ALLOWED_HOSTS": f"127.0.0.1:{port},127.0.0.1",
        "VOIX_BASE_URL": f"http://127.0.0.1:{port}",
        "VOIX_LOG_FORMAT": "json",
        "PICCOLO_CONF": "voix.piccolo_conf",
        "PYTHONPATH": str(ROOT / "bench") if floor else str(APP_ROOT),
    }
    server = subprocess.Popen(  # noqa: S603 — our own command line
        [
            str(ROOT / ".venv" / "bin" / "uvicorn"),
            *(
                ("casting:floor_app", f"--app-dir={ROOT / 'bench'}")
                if floor
                # As `voix serve` serves it; a checkout older than voix.asgi, as it served it.
                else (
                    "voix.asgi:create_app"
                    if (APP_ROOT / "voix" / "asgi.py").exists()
                    else "voix.app:create_app",
                )
            ),
            "--factory",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--workers={WORKERS}",
            "--loop=uvloop",
            "--http=httptools",
            "--no-access-log",
            "--log-level=warning",
        ],
        cwd=APP_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "ab"),  # noqa: SIM115
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            out = subprocess.run(  # noqa: S603
                ["curl", "-sf", f"http://127.0.0.1:{port}/health/live"],  # noqa: S607
                capture_output=True,
                timeout=5,
                check=False,
            )
            if out.returncode == 0:
                if not floor:
                    settle(server.pid)  # the app's CPU workers preload after /health
                return server
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError("the server did not start")


def server_cpu(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by the server's processes (its session: master and workers)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == server.pid:  # the session id, after the state and two ids
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _line(name: str, figures: dict[str, Any]) -> str:
    line = (
        f"  {name + ':':9} {figures['rate']:7.1f} ballots/s  p50 {figures['p50'] * 1000:6.1f} ms"
        f"  p99 {figures['p99'] * 1000:6.1f} ms"
    )
    if "server_cpu_ms" in figures:
        line += (
            f"  failures {figures['failures'] or 'none'}"
            f"  server CPU {figures['server_cpu_ms']:.1f} ms/ballot"
            f"  client CPU {figures['client_cpu']:.0%}"
        )
    return line


def main() -> None:
    global APP_ROOT  # noqa: PLW0603
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    for a in sys.argv[1:]:
        if a.startswith("--app="):
            APP_ROOT = Path(a.split("=", 1)[1]).resolve()
    port = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--port=")), 8821)
    rounds = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), 3)
    voters = int(args[0]) if args else 3000
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database (the floor is asyncpg).")
    os.environ.setdefault("PICCOLO_CONF", "voix.piccolo_conf")
    votes = asyncio.run(prepare(voters, 2 * rounds + 1))
    # Both servers up for the whole run, the app and the floor measured in turn, round after
    # round, each on a vote of its own, the first to go alternating: what the machine does
    # meanwhile (a busy neighbour, a CPU's clock) falls on both alike.
    app_server = start_server(port)
    floor_server = start_server(FLOOR_PORT, floor=True)
    measured: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        for n in range(rounds):

            async def app(n: int = n) -> dict[str, Any]:
                return await drive_app(app_server, port, votes[2 * n], voters)

            async def floor(n: int = n) -> dict[str, Any]:
                return await drive_http_floor(floor_server, FLOOR_PORT, votes[2 * n + 1], voters)

            if n % 2:
                floor_figures, app_figures = asyncio.run(floor()), asyncio.run(app())
            else:
                app_figures, floor_figures = asyncio.run(app()), asyncio.run(floor())
            measured.append((app_figures, floor_figures))
    finally:
        stop_server(app_server)
        stop_server(floor_server)
    database = asyncio.run(drive_floor(url, votes[-1], voters))
    print(
        f"casting ({APP_ROOT}), {voters} voters, {CONNECTIONS} connections, "
        f"{WORKERS} workers (PostgreSQL), {rounds} rounds of the app and the floor in turn"
    )
    ratios = []
    for n, (app_figures, floor_figures) in enumerate(measured, 1):
        ratios.append(app_figures["rate"] / floor_figures["rate"])
        print(f"  round {n}: {ratios[-1]:.1%}")
        print(_line("  app", app_figures))
        print(_line("  floor", floor_figures))
    # The round whose ratio is the median: its figures are the run's.
    middle = sorted(range(rounds), key=lambda n: ratios[n])[(rounds - 1) // 2]
    app_figures, floor_figures = measured[middle]
    print(f"the median round ({middle + 1}):")
    for name, figures in (("app", app_figures), ("floor", floor_figures), ("database", database)):
        print(_line(name, figures))
    print(
        f"  ratio app/floor: {ratios[middle]:.2%}  (rounds: "
        + ", ".join(f"{r:.1%}" for r in ratios)
        + f"; app/database alone: {app_figures['rate'] / database['rate']:.0%})"
    )


if __name__ == "__main__":
    main()
