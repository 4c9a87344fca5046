"""Recount a large public ballot box: time, and memory that must not grow with the ballots.

    .venv/bin/python bench/recount.py [N] [--compare]

Writes N majority-judgment ballots (default 1,000,000) over 10 options with
votes.ballot_box.write into a temporary directory (seeded random grades, about 5% of marks
left ungraded, a receipt on each ballot), then times count() + result() in a fresh process,
wall and CPU time (the machine may be shared), and prints that process's peak resident
memory (getrusage ru_maxrss, read by the process itself at the end) next to the peak of a
process that only imports the module. Then times write() of 100,000 ballots. --compare
also times the standard library's json.load of the same file, in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from votes.ballot_box import count, write
from votes.scales import SCALES, SEVEN

OPTIONS = 10
GRADES = SCALES[SEVEN]
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def vote() -> dict[str, Any]:
    return {
        "title": "Budget participatif (bench)",
        "method": "majority_judgment",
        "options": [{"id": f"p{n}", "label": f"Projet {n}"} for n in range(1, OPTIONS + 1)],
        "grades": list(GRADES),
        "adopt_top": 3,
    }


def ballots(number: int, seed: int = 2026) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    ids = [f"p{n}" for n in range(1, OPTIONS + 1)]
    for _ in range(number):
        choices = {option: rng.choice(GRADES) for option in ids if rng.random() > 0.05}
        receipt = "".join(rng.choices(RECEIPT_ALPHABET, k=8))
        yield {"receipt": receipt, "choices": choices}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(mode: str, path: str) -> None:
    """Runs in a fresh process, so that ru_maxrss is this work's peak and nothing else's."""
    start, cpu = time.perf_counter(), time.process_time()
    if mode == "count":
        count(path).result()
    elif mode == "json.load":
        with open(path, "rb") as raw:
            json.load(raw)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": peak_mib()}))


def in_a_process(mode: str, path: Path) -> dict[str, float]:
    run = subprocess.run(  # noqa: S603 - this very script, with our own arguments
        [sys.executable, __file__, "--child", mode, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


def time_write(path: Path, number: int) -> float:
    start = time.perf_counter()
    with path.open("wb") as out:
        write(out, vote(), ballots(number))
    return time.perf_counter() - start


def main(number: int, compare: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="voix-bench-") as folder:
        big = Path(folder) / "ballots.json"
        took = time_write(big, number)
        size = big.stat().st_size / 1e6
        print(f"write {number:,} ballots x {OPTIONS} options: {took:.1f} s, {size:.0f} MB")

        counted = count(big)  # once here too: the figures below come from the fresh process
        winners = [placed.option for placed in counted.result().ranking[:3]]
        baseline = in_a_process("import", big)
        recount = in_a_process("count", big)
        print(
            f"count + result of {counted.ballots:,} ballots (fresh process): "
            f"{recount['seconds']:.2f} s ({recount['cpu']:.2f} s CPU), "
            f"{size / recount['seconds']:.0f} MB/s, "
            f"peak RSS {recount['peak_mib']:.0f} MiB (import alone {baseline['peak_mib']:.0f} MiB)"
            f"; first three: {', '.join(winners)}"
        )
        if compare:
            loaded = in_a_process("json.load", big)
            print(
                f"json.load of the same file (fresh process): {loaded['seconds']:.2f} s "
                f"({loaded['cpu']:.2f} s CPU), "
                f"peak RSS {loaded['peak_mib']:.0f} MiB"
            )

        small = Path(folder) / "small.json"
        took = time_write(small, 100_000)
        print(
            f"write 100,000 ballots: {took:.2f} s ({100_000 / took:,.0f} ballots/s), "
            f"{small.stat().st_size / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("ballots", nargs="?", type=int, default=1_000_000)
    arguments.add_argument("--compare", action="store_true", help="also time json.load")
    arguments.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    given = arguments.parse_args()
    if given.child:
        child(*given.child)
    else:
        main(given.ballots, given.compare)
