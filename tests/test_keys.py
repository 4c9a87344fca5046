"""The secret key: made once however many workers start together, kept out of the data
directory, and checked against the database at start-up (issue 14, failure 7 and "Backups and
keys")."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.keys import WrongKey, check_key, key_matches
from audit.models import KeyCheck
from tests.factories import run_voix
from tests.servers import free_port
from voix import crypto
from voix.settings import PROJECT_ROOT, ConfigurationError

OTHER_KEY = "another-key-restored-by-mistake-0123456789"
WRONG_KEY_MESSAGE = "VOIX_SECRET_KEY is not the key this database was used with"

# Prints the development key as a process asking at `argv[1]` (an instant shared by all) sees
# it. Imported first, then a spin to the instant: the processes ask within a fraction of a
# millisecond of each other (with the old exists-then-write, 1 round in 10 gave two keys).
PRINT_KEY = """
import sys, time
from voix.settings import get_settings
at = float(sys.argv[1])
time.sleep(max(0.0, at - time.time() - 0.02))
while time.time() < at:
    pass
print(get_settings().secret_key.decode())
"""

# Another process creating the key file and taking its time to write it.
SLOW_WRITER = """
import os, sys, time
descriptor = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
time.sleep(3)
os.write(descriptor, b"written-late-by-the-process-that-created-the-file")
os.close(descriptor)
"""


def development_env(key_dir: Path, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VOIX_SECRET_KEY"}
    return env | {
        "VOIX_ENV": "development",
        "VOIX_KEY_DIR": str(key_dir),
        "VOIX_VAR_DIR": str(var_dir),
    }


def keys_seen(env: dict[str, str], processes: int, after: float = 2.0) -> list[str]:
    """The key each of `processes` processes gets, all asking at the same instant, `after`
    seconds from now (once every interpreter has started)."""
    start = time.time() + after
    running = [
        subprocess.Popen(
            [sys.executable, "-c", PRINT_KEY, str(start)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    seen = []
    for process in running:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        seen.append(out.strip())
    return seen


@pytest.mark.parametrize("round_", range(3))
def test_workers_starting_together_on_an_empty_directory_share_one_key(
    tmp_path: Path, round_: int
) -> None:
    key_dir = tmp_path / "keys"
    seen = keys_seen(development_env(key_dir, tmp_path / "var"), processes=8)
    assert len(set(seen)) == 1, seen
    key_file = key_dir / "secret_key"
    assert key_file.read_text() == seen[0]
    assert len(seen[0]) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # ... and the ones that start later read it back.
    assert keys_seen(development_env(key_dir, tmp_path / "var"), processes=1) == seen[:1]


def test_a_key_file_still_being_written_is_waited_for_not_read_empty(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(key_dir / "secret_key")])
    try:
        while not (key_dir / "secret_key").exists():
            time.sleep(0.01)
        # The old code read "" here, and signed and encrypted with an empty key.
        seen = keys_seen(development_env(key_dir, tmp_path / "var"), processes=1, after=1.0)
    finally:
        writer.wait(timeout=30)
    assert seen == ["written-late-by-the-process-that-created-the-file"]


def test_the_development_key_is_kept_out_of_the_data_directory(tmp_path: Path) -> None:
    env = development_env(tmp_path / "unused", tmp_path / "var")
    del env["VOIX_KEY_DIR"]
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    [key] = keys_seen(env, processes=1)
    assert (tmp_path / "config" / "voix" / "secret_key").read_text() == key
    assert not (tmp_path / "var" / "secret_key").exists()


def test_a_key_left_in_the_data_directory_moves_to_the_key_directory(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    old = tmp_path / "var" / "secret_key"
    old.write_text("an-existing-development-key-of-an-older-checkout")
    seen = keys_seen(development_env(tmp_path / "keys", tmp_path / "var"), processes=4)
    assert set(seen) == {"an-existing-development-key-of-an-older-checkout"}
    assert (tmp_path / "keys" / "secret_key").read_text() == seen[0]
    assert not old.exists()


def test_an_old_key_that_differs_from_the_new_place_keeps_its_database_working(
    tmp_path: Path,
) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("the-key-this-checkout-database-was-made-with")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "secret_key").write_text("another-checkout-key-already-in-the-key-dir")
    env = development_env(tmp_path / "keys", tmp_path / "var")
    assert keys_seen(env, processes=1) == ["the-key-this-checkout-database-was-made-with"]
    assert (tmp_path / "var" / "secret_key").exists()  # left where it is, with a warning


def test_an_empty_key_file_is_named_not_used(tmp_path: Path) -> None:
    from voix.settings import _read_back

    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ConfigurationError, match="is empty: delete it"):
        _read_back(tmp_path / "secret_key", wait_seconds=0.05)


async def test_the_first_start_remembers_the_key_once() -> None:
    assert await key_matches() is None
    await asyncio.gather(*(check_key() for _ in range(5)))
    rows = await KeyCheck.select(KeyCheck.value)
    assert rows == [{"value": crypto.key_check_value()}]
    assert await key_matches() is True
    await check_key()  # the same key again: accepted


async def test_a_database_remembering_another_key_refuses_in_process() -> None:
    await KeyCheck.insert(KeyCheck(id=1, value="0" * 64))
    assert await key_matches() is False
    with pytest.raises(WrongKey, match=WRONG_KEY_MESSAGE):
        await check_key()


async def test_commands_refuse_a_wrong_key_with_a_message_not_a_traceback() -> None:
    # Made with the suite's key, as a database restored from this site's backup would be.
    await check_key()
    wrong = {**os.environ, "VOIX_SECRET_KEY": OTHER_KEY}
    for command in (("migrate",), ("close-due",), ("demo",)):
        refused = run_voix(*command, env=wrong)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert WRONG_KEY_MESSAGE in refused.stderr
        assert "Traceback" not in refused.stderr
    assert await key_matches() is True  # nothing was overwritten
    assert run_voix("close-due").returncode == 0  # the right key still works


def test_a_server_started_with_a_wrong_key_refuses_to_start() -> None:
    asyncio.run(check_key())  # a database used with the suite's key
    env = {**os.environ, "VOIX_SECRET_KEY": OTHER_KEY}
    port = str(free_port())

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *command, "--port", port],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    serve = run("voix.cli", "serve")
    assert serve.returncode == 2, serve.stdout
    assert WRONG_KEY_MESSAGE in serve.stderr
    assert "Traceback" not in serve.stderr  # said in one line, before anything listens
    # Started otherwise, the app's own start-up refuses too.
    uvicorn = run("uvicorn", "--factory", "voix.asgi:create_app")
    assert uvicorn.returncode != 0, uvicorn.stdout
    assert WRONG_KEY_MESSAGE in uvicorn.stderr + uvicorn.stdout


def test_a_fresh_clone_migrates_into_a_var_folder_nobody_made(tmp_path: Path) -> None:
    """`make run` on a fresh clone: the development key no longer lives in var/ (so nothing
    creates that folder on the way), and SQLite creates a database file but not its folder."""
    env = dict(os.environ)
    env.pop("VOIX_SECRET_KEY")
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path}/var/voix.sqlite3",
        "VOIX_VAR_DIR": str(tmp_path / "var"),
        "VOIX_KEY_DIR": str(tmp_path / "keys"),
        "VOIX_ENV": "development",
    }
    done = run_voix("migrate", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "var" / "voix.sqlite3").stat().st_size > 0
    assert (tmp_path / "keys" / "secret_key").exists()
    assert not (tmp_path / "var" / "secret_key").exists()  # the key apart from the data
