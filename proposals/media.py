"""Photos and voice notes of proposals: checked by what they are, not by what they are called.

A photo is decoded by Pillow, turned upright, resized and re-encoded as a new JPEG: nothing of
the original file survives, metadata least of all (EXIF, GPS, XMP, ICC, comments). A voice
note must be audio that mutagen recognises (the formats phones record: AAC/M4A, Ogg/Opus,
MP3, WebM, 3GP/AMR, WAV), within a size and a duration; its tags are removed where the format
allows. Both are stored in the database, so every app process serves them.
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mutagen
from PIL import Image, ImageOps, UnidentifiedImageError

from proposals.models import PHOTO, VOICE, Media
from voix.forms import UserError
from voix.i18n import N_

PHOTO_MAX_BYTES = 8 * 1024 * 1024
PHOTO_MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
PHOTO_FORMATS = {"JPEG", "PNG", "WEBP", "MPO"}  # MPO: what some phones call their JPEGs
PHOTO_SIDE = 1600
VOICE_MAX_BYTES = 6 * 1024 * 1024
VOICE_MAX_SECONDS = 180

PHOTO_TOO_LARGE = N_("This photo is too large: %(max)d MB at most.")
NOT_A_PHOTO = N_("This file is not a photo we can read (JPEG, PNG or WebP).")
VOICE_TOO_LARGE = N_("This recording is too large: %(max)d MB at most.")
VOICE_TOO_LONG = N_("This recording is too long: %(max)d minutes at most.")
NOT_AUDIO = N_("This file is not a sound recording we can read.")

_AUDIO_TYPES = {
    "MP4": "audio/mp4",
    "OggOpus": "audio/ogg",
    "OggVorbis": "audio/ogg",
    "MP3": "audio/mpeg",
    "WAVE": "audio/wav",
    "FLAC": "audio/flac",
    "AAC": "audio/aac",
}


@dataclass(frozen=True)
class Upload:
    kind: str
    data: bytes
    content_type: str
    seconds: int = 0


def clean_photo(raw: bytes) -> Upload:
    if len(raw) > PHOTO_MAX_BYTES:
        raise UserError(PHOTO_TOO_LARGE, status_code=413, max=PHOTO_MAX_BYTES // 2**20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            if image.format not in PHOTO_FORMATS:
                raise UserError(NOT_A_PHOTO, status_code=400)
            if image.width * image.height > PHOTO_MAX_PIXELS:
                raise UserError(NOT_A_PHOTO, status_code=400)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning) as error:
        raise UserError(NOT_A_PHOTO, status_code=400) from error
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
    clean = Image.new("RGB", upright.size, "white")  # a new image: no info carried over
    clean.paste(upright.convert("RGBA"), mask=upright.convert("RGBA").getchannel("A"))
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=82, optimize=True, progressive=True)
    return Upload(PHOTO, out.getvalue(), "image/jpeg")


def clean_voice(raw: bytes) -> Upload:
    if len(raw) > VOICE_MAX_BYTES:
        raise UserError(VOICE_TOO_LARGE, status_code=413, max=VOICE_MAX_BYTES // 2**20)
    try:
        audio: Any = mutagen.File(io.BytesIO(raw))
    except mutagen.MutagenError as error:
        raise UserError(NOT_AUDIO, status_code=400) from error
    if audio is None or not getattr(audio.info, "length", 0):
        raise UserError(NOT_AUDIO, status_code=400)
    if audio.info.length > VOICE_MAX_SECONDS:
        raise UserError(VOICE_TOO_LONG, status_code=400, max=VOICE_MAX_SECONDS // 60)
    kind = type(audio).__name__
    content_type = _AUDIO_TYPES.get(kind, "application/octet-stream")
    cleaned = io.BytesIO(raw)
    try:  # tags (a phone may write its model, a place, a name)
        audio.delete(cleaned)
    except (mutagen.MutagenError, NotImplementedError, TypeError):
        cleaned = io.BytesIO(raw)
    return Upload(VOICE, cleaned.getvalue(), content_type, round(audio.info.length))


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
    rows = await Media.select(Media.kind, Media.token, Media.seconds).where(
        Media.proposal == proposal_id
    )
    return {row["kind"]: row for row in rows}


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
