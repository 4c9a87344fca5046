"""Memory of a real `voix serve` process while residents send photos at the same time.

    .venv/bin/python bench/uploads.py [N] [MB]

Starts `voix serve` on a free port with a fresh SQLite database in a temporary folder (a
table and a resident), signs the resident in, then sends N proposals (30 by default) at once, each with a JPEG photo of
about MB megabytes (8), through httpx. Prints the answers' status codes and the resident set
size (VmRSS, and VmHWM, its peak as the kernel counted it) of the server process and of its
worker processes before, at the peak (sampled every 50 ms) and 5 s after the last answer.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESIDENT = "samira@example.org"
PASSWORD = "bench-uploads-password"  # noqa: S105 - a throwaway database's
# A table and its resident, made by the project's own code in a process of its own.
SETUP = f"""
import asyncio
from tests.factories import add_table
from voix.demo import add_user

async def main():
    await add_table("flamants-iris", "avec-nous")
    await add_user("{RESIDENT}", "Samira", "{PASSWORD}", "resident", "flamants-iris")

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def photo(megabytes: float) -> bytes:
    """A phone-sized JPEG (6000×4000) of noise, whose size is about `megabytes`: noise does not
    compress, so the quality sets the size."""
    rng = random.Random(14)  # noqa: S311 - reproducible noise, not a secret
    small = Image.frombytes("RGB", (600, 400), rng.randbytes(600 * 400 * 3))
    image = small.resize((6000, 4000), Image.Resampling.BILINEAR)
    best = b""
    for quality in range(95, 20, -5):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        best = out.getvalue()
        if len(best) <= megabytes * 2**20:
            break
    return best


def kib(pid: int, field: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(child) for child in found]


def memory(server: int) -> dict[str, int]:
    """MB: the server's RSS, its workers' RSS added up, and the server's own peak (VmHWM)."""
    workers = children(server)
    return {
        "server": kib(server, "VmRSS") // 1024,
        "workers": sum(kib(w, "VmRSS") for w in workers) // 1024,
        "server_peak": kib(server, "VmHWM") // 1024,
        "worker_count": len(workers),
    }


async def sign_in(client: httpx.AsyncClient) -> str:
    await client.get("/login")
    token = client.cookies["csrftoken"]
    answer = await client.post(
        "/login", data={"login": RESIDENT, "password": PASSWORD, "_csrf_token": token}
    )
    assert answer.status_code in (302, 303), answer.text[:500]
    return token


def start_server(var: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOIX_VAR_DIR": var,
        "DATABASE_URL": f"sqlite:///{var}/bench.sqlite3",
        "VOIX_ENV": "development",
    }
    env.pop("VOIX_SECRET_KEY", None)
    for step in (["-m", "voix.cli", "migrate"], ["-c", SETUP]):
        subprocess.run([sys.executable, *step], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    with open(Path(var) / "server.log", "wb") as log:  # the server keeps its own descriptor
        return subprocess.Popen(  # noqa: S603 - this interpreter, arguments of our own
            [sys.executable, "-m", "voix.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def settled(server: int) -> dict[str, int]:
    """The memory once the worker processes have started and preloaded their modules (WeasyPrint,
    folium: a hundred MB or more each), so that "before" does not count their import as uploads'."""
    last = memory(server)
    for _ in range(120):
        await asyncio.sleep(2)
        now = memory(server)
        if now["worker_count"] and now == last:
            return now
        last = now
    return last


async def burst(base: str, server: int, count: int, picture: bytes) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        for _ in range(600):
            try:
                if (await client.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
        else:
            raise SystemExit("the server never answered; see server.log in its folder")
        token = await sign_in(client)
        before = await settled(server)
        peak = dict(before)
        done = False

        async def sample() -> None:
            while not done:
                now = memory(server)
                for key in ("server", "workers"):
                    peak[key] = max(peak[key], now[key])
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())

        async def propose(n: int) -> int:
            answer = await client.post(
                "/tables/flamants-iris/proposals",
                data={
                    "title": f"Des bancs devant l'école, numéro {n}",
                    "body": "Les parents attendent debout devant la grille.",
                    "theme": "school",
                    "_csrf_token": token,
                },
                files={"photo": (f"IMG_{n:04}.jpg", picture, "image/jpeg")},
            )
            return answer.status_code

        started = time.perf_counter()
        statuses = await asyncio.gather(*(propose(n) for n in range(count)))
        took = time.perf_counter() - started
        done = True
        await sampler
        await asyncio.sleep(5)
        return {
            "statuses": statuses,
            "took": took,
            "before": before,
            "peak": peak,
            "after": memory(server),
        }


def main(count: int, megabytes: float) -> None:
    picture = photo(megabytes)
    print(f"{count} proposals at once, each with a {len(picture) / 2**20:.1f} MB JPEG (6000×4000)")
    var = tempfile.mkdtemp(prefix="voix-bench-uploads-")
    server = start_server(var, port := free_port())
    try:
        result = asyncio.run(burst(f"http://127.0.0.1:{port}", server.pid, count, picture))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    statuses: list[int] = result["statuses"]  # type: ignore[assignment]
    before, peak, after = (dict(result[k]) for k in ("before", "peak", "after"))  # type: ignore[call-overload]
    answers = {code: statuses.count(code) for code in sorted(set(statuses))}
    print(f"answers: {answers} in {result['took']:.1f} s (server log: {var}/server.log)")
    print(f"worker processes (with multiprocessing's resource tracker): {before['worker_count']}")
    print(
        f"server RSS MB: before {before['server']}, peak {peak['server']} "
        f"(VmHWM {after['server_peak']}), 5 s after {after['server']}"
    )
    print(
        f"workers' RSS MB (sum): before {before['workers']}, peak {peak['workers']}, "
        f"5 s after {after['workers']}"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 30,
        float(sys.argv[2]) if len(sys.argv) > 2 else 8,
    )
