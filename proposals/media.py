"""Photos and voice notes of proposals: checked by what they are, not by what they are called.

A photo is decoded by Pillow, turned upright, resized and re-encoded as a new JPEG: nothing of
the original file survives, metadata least of all (EXIF, GPS, XMP, ICC, comments). A voice
note is decoded by FFmpeg (PyAV) from what phones and browsers record (WebM/Opus, M4A/AAC,
3GP/AMR, Ogg, MP3, WAV) and re-encoded as a new Ogg/Opus file with no tags at all: a WAV's
LIST/INFO chunk or an M4A's atoms may hold a name, a phone number, a place. Both are stored in
the database, so every app process serves them.

Decoding takes seconds of CPU for a large photo or a long recording, so it runs in the worker
processes (voix.workers); the event loop only does the cheap checks (sizes, an image's header,
a recording's first bytes), which also keep a decompression bomb from tying up a worker.

Uploads never sit whole in the app's memory: Litestar's form parser spools each file to disk
past 1 MB (and enforces the route's body limit as the bytes arrive), `received` copies it into a
named file, and the worker is given that file's path, not its bytes through the pipe. Thirty
8 MB photos at once used to take the app process from 175 MB to 331 MB (bench/uploads.py), held
as bytes and as pickles in the pool's queue, 255 MB still after, and 22 of the 30 were refused
as "busy". At most `workers.size()` decodings run at once per process; the other uploads wait
their turn on disk (UPLOAD_WAIT_SECONDS at most) instead of being refused because the pool's
queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import shutil
import struct
import tempfile
import warnings
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from litestar.datastructures import UploadFile
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from proposals.models import PHOTO, VOICE, Media
from voix import workers
from voix.forms import UserError
from voix.i18n import N_

if TYPE_CHECKING:
    import av

PHOTO_MAX_BYTES = 8 * 1024 * 1024
PHOTO_MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "MPO")  # MPO: what some phones call their JPEGs
_PHOTO_OPENERS = ("JPEG", "PNG", "WEBP")  # Pillow opens an MPO with its JPEG opener
PHOTO_SIDE = 1600
VOICE_MAX_BYTES = 6 * 1024 * 1024
VOICE_MAX_SECONDS = 180
# A recording stopped at 3:00 decodes a few milliseconds longer (encoders pad their frames).
_VOICE_GRACE_SECONDS = 1
VOICE_RATE = 48_000
# Beyond what any phone records; a file claiming more would make the resampler work for nothing.
_VOICE_MAX_INPUT_RATE = 96_000
_VOICE_MAX_INPUT_CHANNELS = 8
VOICE_BIT_RATE = 32_000  # mono speech: clear at 32 kbit/s, 720 KB for three minutes

PHOTO_TOO_LARGE = N_("This photo is too large: %(max)d MB at most.")
PHOTO_TOO_MANY_PIXELS = N_("This photo has too many pixels: %(max)d megapixels at most.")
NOT_A_PHOTO = N_("This file is not a photo we can read (JPEG, PNG or WebP).")
VOICE_TOO_LARGE = N_("This recording is too large: %(max)d MB at most.")
VOICE_TOO_LONG = N_("This recording is too long: %(max)d minutes at most.")
NOT_AUDIO = N_("This file is not a sound recording we can read.")

# Every way Pillow says a file is not a picture it can decode: malformed headers (SyntaxError,
# struct.error), truncated data (OSError, EOFError), absurd values (ValueError, IndexError), and
# the bomb checks themselves.
_PILLOW_FAILURES = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    struct.error,
)
# With av.FFmpegError: PyAV (FFmpeg) is imported by the worker that transcodes, not at start-up.
_FFMPEG_FAILURES = (ValueError, OSError, EOFError, IndexError)

# What phones and browsers record, told by the first bytes, and FFmpeg's demuxer for each.
# FFmpeg is never left to guess: some of its formats (HLS playlists, concat lists) open the
# files or URLs they name, and a recording must not make the server read anything else.
_AUDIO_MAGIC = (
    (0, b"\x1a\x45\xdf\xa3", "matroska"),  # WebM: Chrome, Firefox and Android's MediaRecorder
    (4, b"ftyp", "mov"),  # M4A/AAC (iPhone), MP4, 3GP/AMR (older Android)
    (0, b"OggS", "ogg"),  # Opus, Vorbis
    (0, b"#!AMR", "amr"),
    (0, b"ID3", "mp3"),
    (0, b"fLaC", "flac"),
)


# What a photo or a recording comes as: a file's path (an upload, spooled to disk) or bytes
# (a letter's photo, a test's).
Source = bytes | Path
T = TypeVar("T")

# How long an upload may wait for a decoding slot before the resident is told to try again.
UPLOAD_WAIT_SECONDS = 60
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    kind: str
    data: bytes
    content_type: str
    seconds: int = 0


@contextlib.asynccontextmanager
async def received(*fields: Any) -> AsyncIterator[list[Path | None]]:
    """Each file field as a named file on disk (None when no file was chosen), for the workers
    to read by path; the files are removed on leaving, whatever happened."""
    paths: list[Path | None] = []
    try:
        for field in fields:
            paths.append(await _to_named_file(field))
        yield paths
    finally:
        for path in paths:
            if path is not None:
                path.unlink(missing_ok=True)


async def _to_named_file(field: Any) -> Path | None:
    if not (isinstance(field, UploadFile) and field.filename):
        return None
    try:
        # A rolled-over spool has no name a worker could open: copied by chunks, in a thread,
        # so neither the event loop nor the memory carries the whole file.
        return await asyncio.to_thread(_copy_to_named_file, field.file)
    finally:
        await field.close()


def _copy_to_named_file(spool: IO[bytes]) -> Path | None:
    spool.seek(0)
    descriptor, name = tempfile.mkstemp(prefix="voix-upload-")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as copy:
            shutil.copyfileobj(spool, copy, _COPY_CHUNK)
            empty = copy.tell() == 0
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if empty:  # a file field sent with a name but nothing in it: as if none was chosen
        path.unlink()
        return None
    return path


async def clean_uploads(photo: Source | None, voice: Source | None) -> list[Upload]:
    """The photo and voice note as they will be stored; refused (UserError) if either is not
    what it claims to be or is over a limit. Cheap checks of both come first, then the decoding
    runs in worker processes, as many at once as there are workers."""
    if photo:
        check_photo(photo).close()
    if voice:
        check_voice(voice)
    uploads = [await decode(clean_photo, photo)] if photo else []
    uploads += [await decode(clean_voice, voice)] if voice else []
    return uploads


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _decoding_slots() -> asyncio.Semaphore:
    # One per event loop: a semaphore belongs to the loop it first waited in (tests run many).
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(workers.size())
    return slots


async def decode(job: Callable[[Source], T], source: Source) -> T:
    """`job(source)` in a worker once one of this process's decoding slots is free.

    Without the cap, a burst of uploads filled the pool's whole queue (VOIX_CPU_QUEUE) with
    photos, each held in memory until its turn, and refused the rest as "busy"; now an upload
    waits on disk, and the queue keeps room for the other jobs (PDFs, maps)."""
    slots = _decoding_slots()
    acquired = False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(UPLOAD_WAIT_SECONDS):
            acquired = await slots.acquire()
    if not acquired:
        # Raised outside the timeout's handling: a TimeoutError in its context would read as
        # the database timing out (voix.db), and the resident would see the wrong page.
        raise workers.Busy
    try:
        running = asyncio.ensure_future(workers.run(job, source))
    except BaseException:
        slots.release()
        raise
    # The slot is freed when the job ends, not when its request does: a resident who closes the
    # page leaves the decoding running, and it must still count.
    running.add_done_callback(_free_slot(slots))
    return await asyncio.shield(running)


def _free_slot(slots: asyncio.Semaphore) -> Callable[[asyncio.Future[Any]], None]:
    def free(job: asyncio.Future[Any]) -> None:
        slots.release()
        if not job.cancelled():
            job.exception()  # retrieved: nobody may be awaiting it any more

    return free


def _size(source: Source) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def _opened(source: Source) -> IO[bytes]:
    return io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")


def check_photo(source: Source) -> Image.Image:
    """Size, format and pixel count, from the header alone: milliseconds, even for a bomb.
    Returns the image opened, not yet decoded."""
    if _size(source) > PHOTO_MAX_BYTES:
        raise UserError(PHOTO_TOO_LARGE, status_code=413, max=PHOTO_MAX_BYTES // 2**20)
    try:
        # A path, not a file object of ours: Pillow then closes the file with the image.
        image = Image.open(
            source if isinstance(source, Path) else io.BytesIO(source), formats=_PHOTO_OPENERS
        )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels() from error
    except _PILLOW_FAILURES as error:
        raise UserError(NOT_A_PHOTO, status_code=400) from error
    if image.format not in PHOTO_FORMATS or not image.width or not image.height:
        image.close()
        raise UserError(NOT_A_PHOTO, status_code=400)
    if image.width * image.height > PHOTO_MAX_PIXELS:
        image.close()
        raise _too_many_pixels()
    return image


def _too_many_pixels() -> UserError:
    return UserError(PHOTO_TOO_MANY_PIXELS, status_code=400, max=PHOTO_MAX_PIXELS // 10**6)


def clean_photo(source: Source) -> Upload:
    """A new JPEG made from the photo's pixels alone. Runs in a worker process."""
    # WeasyPrint, which the workers also load, makes Pillow accept truncated files process-wide
    # (ImageFile.LOAD_TRUNCATED_IMAGES). An upload cut short must be refused, so this job loads
    # strictly and puts the setting back: a worker runs one job at a time.
    lenient = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with check_photo(source) as image:
                # JPEG only: libjpeg decodes at 1/2, 1/4 or 1/8 scale, still above PHOTO_SIDE,
                # so a 36-megapixel photo costs a quarter of the work or less.
                image.draft("RGB", (PHOTO_SIDE, PHOTO_SIDE))
                image.load()
                upright = ImageOps.exif_transpose(image)
            upright.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
            with_alpha = upright.convert("RGBA")
            clean = Image.new("RGB", upright.size, "white")  # a new image: no info carried over
            clean.paste(with_alpha, mask=with_alpha.getchannel("A"))
            del upright, with_alpha  # tens of MB for a large photo, freed before encoding
            out = io.BytesIO()
            clean.save(out, "JPEG", quality=82, optimize=True, progressive=True)
    except _PILLOW_FAILURES as error:
        raise UserError(NOT_A_PHOTO, status_code=400) from error
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient
    return Upload(PHOTO, out.getvalue(), "image/jpeg")


def check_voice(source: Source) -> None:
    """Size, and a container phones record, from the first bytes."""
    if _size(source) > VOICE_MAX_BYTES:
        raise UserError(VOICE_TOO_LARGE, status_code=413, max=VOICE_MAX_BYTES // 2**20)
    _audio_container(_head(source))


def _head(source: Source) -> bytes:
    with _opened(source) as file:
        return file.read(16)


def _audio_container(raw: bytes) -> str:
    for offset, magic, demuxer in _AUDIO_MAGIC:
        if raw[offset : offset + len(magic)] == magic:
            return demuxer
    if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE":
        return "wav"
    if len(raw) > 1 and raw[0] == 0xFF and raw[1] & 0xE0 == 0xE0:
        # An MPEG frame header with no tag before it: layer bits 00 are AAC's ADTS, else MP3.
        return "aac" if raw[1] & 0x06 == 0 else "mp3"
    raise UserError(NOT_AUDIO, status_code=400)


def clean_voice(source: Source) -> Upload:
    """A new mono Ogg/Opus file made from the decoded sound alone. Runs in a worker process."""
    import av  # noqa: PLC0415 — loaded where it is used: a worker, not the web process

    check_voice(source)
    out = io.BytesIO()
    try:
        with _opened(source) as recording:
            seconds = _transcode(recording, _audio_container(_head(source)), out)
    except (av.FFmpegError, *_FFMPEG_FAILURES) as error:
        raise UserError(NOT_AUDIO, status_code=400) from error
    if seconds <= 0:
        raise UserError(NOT_AUDIO, status_code=400)
    return Upload(VOICE, out.getvalue(), "audio/ogg", round(seconds))


def _transcode(recording: IO[bytes], demuxer: str, out: io.BytesIO) -> Fraction:
    """Decodes the first sound stream into `out` as Opus; returns the decoded duration, which is
    what counts (a header may claim anything). Stops as soon as it is over the limit."""
    import av  # noqa: PLC0415 — see clean_voice

    limit = VOICE_MAX_SECONDS + _VOICE_GRACE_SECONDS
    seconds = Fraction(0)  # exact: a sum of floats drifts across thousands of frames
    written = 0
    with av.open(recording, "r", format=demuxer) as source:
        if not source.streams.audio:
            return seconds
        sound = source.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=VOICE_RATE)
        # bitexact: no "encoder" tag naming FFmpeg's version; nothing else is written either,
        # since the output starts empty and no tag is copied from the input.
        with av.open(out, "w", format="ogg", container_options={"fflags": "+bitexact"}) as ogg:
            opus = ogg.add_stream(
                "libopus",
                rate=VOICE_RATE,
                layout="mono",
                options={"application": "voip", "vbr": "constrained"},
            )
            opus.bit_rate = VOICE_BIT_RATE

            def encode(frames: list[av.AudioFrame]) -> None:
                nonlocal written
                for frame in frames:
                    # Our own clock: phones' timestamps have gaps and overlaps the muxer refuses.
                    frame.pts, frame.time_base = written, Fraction(1, VOICE_RATE)
                    written += frame.samples
                    ogg.mux(opus.encode(frame))

            for frame in source.decode(sound):
                if not 0 < frame.sample_rate <= _VOICE_MAX_INPUT_RATE or not (
                    0 < frame.layout.nb_channels <= _VOICE_MAX_INPUT_CHANNELS
                ):
                    raise UserError(NOT_AUDIO, status_code=400)
                seconds += Fraction(frame.samples, frame.sample_rate)
                if seconds > limit:
                    raise UserError(VOICE_TOO_LONG, status_code=400, max=VOICE_MAX_SECONDS // 60)
                encode(resampler.resample(frame))
            encode(resampler.resample(None))
            ogg.mux(opus.encode(None))
    return seconds


async def store(proposal_id: int, upload: Upload) -> str:
    token = secrets.token_urlsafe(16)
    await Media.insert(
        Media(
            proposal=proposal_id,
            kind=upload.kind,
            token=token,
            content_type=upload.content_type,
            data=upload.data,
            size=len(upload.data),
            seconds=upload.seconds,
            created_at=datetime.now(UTC),
        )
    )
    return token


async def for_proposal(proposal_id: int) -> dict[str, dict[str, Any]]:
    """The proposal's photo and voice note; the photo with whether its author agreed to see it
    printed in documents for institutions (the proposal's page asks them: exports.compose)."""
    rows = await Media.select(
        Media.id,
        Media.kind,
        Media.token,
        Media.seconds,
        Media.publication_consent_at,
        Media.publication_consent_recorded_by,
        Media.proposal.author.as_alias("author"),
    ).where(Media.proposal == proposal_id)
    return {row["kind"]: row for row in rows}


async def for_proposals(proposal_ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """The photo and voice note of many proposals (a ballot's options), in one query."""
    found: dict[int, dict[str, dict[str, Any]]] = {pid: {} for pid in proposal_ids}
    if proposal_ids:
        rows = await Media.select(Media.proposal, Media.kind, Media.token, Media.seconds).where(
            Media.proposal.is_in(proposal_ids)
        )
        for row in rows:
            found[row["proposal"]][row["kind"]] = row
    return found


async def get(token: str) -> dict[str, Any] | None:
    return await (
        Media.select(
            Media.data,
            Media.content_type,
            Media.proposal.hidden_at.as_alias("hidden_at"),
        )
        .where(Media.token == token)
        .first()
    )
