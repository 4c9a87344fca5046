"""Many photos at once: decoded a few at a time from files on disk, none refused for the rush.

Thirty 8 MB photos sent together took an app process from 158 MB to 419 MB, and it stayed at
360 MB: every upload was read whole into memory and pickled into the worker pool's queue, and
once the queue was full the others were refused as "busy". The numbers are bench/uploads.py's;
these tests check the mechanics with real parallel requests and real worker processes.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

from proposals import media
from proposals.models import Media, Proposal
from voix import workers
from voix.web import FORM_BODY_MAX

from .factories import build_world, csrf_token, sign_in, t

FORM = {
    "title": "Des bancs devant l'école",
    "body": "Les parents attendent debout.",
    "theme": "school",
}
JOB_SECONDS = 0.4
LOG_FOLDER = Path(tempfile.gettempdir())  # as the workers see it: the tests move the uploads'


def decodings_log(parent: int) -> Path:
    """Where the worker processes of the test process `parent` write what they decoded."""
    return LOG_FOLDER / f"voix-test-decodings-{parent}.log"


@pytest.fixture
def uploads_folder(monkeypatch, tmp_path) -> Path:
    """The temporary folder of this test alone: what is left there was left by this test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()]


async def warm_workers() -> None:
    """Every worker process started and done importing, so the uploads can overlap."""
    for _ in range(120):
        pids = await asyncio.gather(*(workers.run(pid_after, 0.3) for _ in range(workers.size())))
        if len(set(pids)) == workers.size():
            return
    raise AssertionError("the worker processes never all started")


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def recorded_clean_photo(source: media.Source) -> media.Upload:
    """media.clean_photo, in the worker as ever, writing down when it ran and what it was given,
    and slow enough that uploads sent together really overlap."""
    started = time.time()
    time.sleep(JOB_SECONDS)
    upload = media.clean_photo(source)
    with decodings_log(os.getppid()).open("a") as log:
        log.write(f"{started} {time.time()} {type(source).__name__} {source!s:.200}\n")
    return upload


def photo(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (n * 20 % 256, 80, 60)).save(out, "JPEG")
    return out.getvalue()


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def still_there(paths: list[str]) -> list[str]:
    return [path for path in paths if Path(path).exists()]


async def propose_all(client, photos: list[bytes]) -> list:
    token = await csrf_token(client)
    return list(
        await asyncio.gather(
            *(
                client.post(
                    "/tables/flamants-iris/proposals",
                    data={**FORM, "title": f"{FORM['title']} {n}", "_csrf_token": token},
                    files={"photo": (f"IMG_{n}.jpg", content, "image/jpeg")},
                )
                for n, content in enumerate(photos)
            )
        )
    )


async def test_uploads_sent_together_wait_their_turn_on_disk_and_are_all_kept(
    client, monkeypatch, uploads_folder
) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    log = decodings_log(os.getpid())
    log.unlink(missing_ok=True)
    # A queue no longer than the pool: before the cap, photos beyond it were refused as "busy".
    monkeypatch.setenv("VOIX_CPU_QUEUE", str(workers.size()))
    monkeypatch.setattr(media, "clean_photo", recorded_clean_photo)
    count = 3 * workers.size() + 1
    await warm_workers()

    answers = await propose_all(client, [photo(n) for n in range(count)])

    assert [a.status_code for a in answers] == [303] * count, [a.text[:300] for a in answers]
    assert await Proposal.count() == count
    assert await Media.count() == count
    runs = [line.split(" ", 3) for line in log.read_text().splitlines()]
    log.unlink()
    assert len(runs) == count
    # Decoded side by side, never more at once than there are workers.
    overlap = most_at_once([(float(start), float(end)) for start, end, _, _ in runs])
    assert overlap <= workers.size()
    if workers.size() > 1:
        assert overlap > 1, "the uploads were decoded one after another"
    # Each worker was given a file to read, not the photo's bytes through the pipe, and the file
    # is gone once the proposal is recorded.
    assert {kind for _, _, kind, _ in runs} == {"PosixPath"}
    assert not still_there([path for _, _, _, path in runs])
    assert leftovers(uploads_folder) == []


async def test_an_upload_waiting_too_long_for_a_worker_is_told_to_come_back(
    client, monkeypatch, uploads_folder
) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    monkeypatch.setattr(media, "clean_photo", recorded_clean_photo)
    monkeypatch.setattr(media, "UPLOAD_WAIT_SECONDS", JOB_SECONDS / 4)
    count = 2 * workers.size()

    answers = await propose_all(client, [photo(n) for n in range(count)])

    decodings_log(os.getpid()).unlink(missing_ok=True)
    refused = [a for a in answers if a.status_code == 503]
    assert refused, [a.status_code for a in answers]
    assert all(a.status_code in (303, 503) for a in answers)
    for answer in refused:
        assert answer.headers["retry-after"]
        assert t(workers.BUSY) in answer.text  # translated, in French by default
    assert await Proposal.count() == await Media.count() == count - len(refused)
    assert leftovers(uploads_folder) == []


async def test_an_upload_over_the_form_limit_is_refused_with_a_page_and_nothing_is_kept(
    client, uploads_folder
) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    too_much = media.PHOTO_MAX_BYTES + media.VOICE_MAX_BYTES + FORM_BODY_MAX
    token = await csrf_token(client)
    for lang, files in (
        ("fr", {"photo": ("big.jpg", b"\xff\xd8" + b"0" * too_much, "image/jpeg")}),
        (
            "ar",
            {
                "photo": ("a.jpg", b"\xff\xd8" + b"0" * (too_much // 2), "image/jpeg"),
                "voice": ("b.wav", b"RIFF" + b"0" * (too_much // 2), "audio/wav"),
            },
        ),
    ):
        answer = await client.post(
            f"/tables/flamants-iris/proposals?lang={lang}",
            data={**FORM, "_csrf_token": token},
            files=files,
        )
        assert answer.status_code == 413
        assert t("What you sent is too large.", lang) in answer.text
        assert f'lang="{lang}"' in answer.text
    # One file over its own limit, the whole within the form's: its own message.
    big_photo = await client.post(
        "/tables/flamants-iris/proposals?lang=fr",
        data={**FORM, "_csrf_token": token},
        files={"photo": ("big.jpg", b"\xff\xd8" + b"0" * media.PHOTO_MAX_BYTES, "image/jpeg")},
    )
    assert big_photo.status_code == 413
    assert t("This photo is too large: %(max)d MB at most.", max=8) in big_photo.text
    assert await Proposal.count() == 0
    assert await Media.count() == 0
    assert leftovers(uploads_folder) == []
