"""Photos and voice notes: what comes in is checked by content, and comes out clean."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import time
import wave
import zlib
from fractions import Fraction
from functools import cache

import av
import pytest
from PIL import Image

from proposals.models import Media, Proposal

from .factories import build_world, post_form, sign_in, sign_out, t

FORM = {
    "title": "Des bancs devant l'école",
    "body": "Les parents attendent debout.",
    "theme": "school",
}


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (2400, 1600), (200, 80, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:20 18:04:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (43.0, 20.0, 51.0)  # near the Flamants
    gps[3], gps[4] = "E", (5.0, 24.0, 30.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"secret place")
    return out.getvalue()


def wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(1)
        sound.setframerate(8000)
        sound.writeframes(b"\x80" * int(8000 * seconds))
    return out.getvalue()


async def propose(client, world, **files):
    await sign_in(client, world.users["resident_a"])
    return await post_form(
        client,
        "/tables/flamants-iris/proposals",
        FORM,
        files={
            name: (filename, content, kind) for name, (filename, content, kind) in files.items()
        },
    )


async def test_a_photo_with_gps_comes_out_with_no_metadata_at_all(client) -> None:
    world = await build_world()
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # GPS is there before
    response = await propose(client, world, photo=("IMG_0042.jpg", original, "image/jpeg"))
    assert response.status_code == 303
    stored = await Media.select().where(Media.kind == "photo").first()
    photo = Image.open(io.BytesIO(bytes(stored["data"])))
    assert photo.format == "JPEG"
    assert max(photo.size) == 1600
    assert dict(photo.getexif()) == {}
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(photo.info)
    assert b"PhoneMaker" not in bytes(stored["data"])
    assert b"secret place" not in bytes(stored["data"])

    sign_out(client)
    page = await client.get(response.headers["location"])
    assert f'src="/media/{stored["token"]}"' in page.text
    served = await client.get(f"/media/{stored['token']}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == bytes(stored["data"])


async def test_fake_and_oversized_photos_are_refused_and_nothing_is_stored(client) -> None:
    world = await build_world()
    fake = await propose(
        client, world, photo=("photo.jpg", b"<?php system($_GET['c']); ?>", "image/jpeg")
    )
    assert fake.status_code == 400
    assert t("This file is not a photo we can read (JPEG, PNG or WebP).") in fake.text
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    assert (await propose(client, world, photo=("x.png", svg, "image/png"))).status_code == 400
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    assert (
        await propose(client, world, photo=("x.gif", gif.getvalue(), "image/gif"))
    ).status_code == 400
    huge = await propose(
        client, world, photo=("big.jpg", b"\xff\xd8" + b"0" * (9 * 2**20), "image/jpeg")
    )
    assert huge.status_code == 413
    assert t("This photo is too large: %(max)d MB at most.", max=8) in huge.text
    assert await Proposal.count() == 0
    assert await Media.count() == 0


async def test_a_transparent_png_becomes_a_plain_jpeg(client) -> None:
    world = await build_world()
    png = io.BytesIO()
    Image.new("RGBA", (400, 300), (0, 0, 0, 0)).save(png, "PNG")
    assert (
        await propose(client, world, photo=("a.png", png.getvalue(), "image/png"))
    ).status_code == 303
    stored = await Media.select(Media.data, Media.content_type).first()
    assert stored["content_type"] == "image/jpeg"
    assert Image.open(io.BytesIO(bytes(stored["data"]))).getpixel((5, 5)) == (255, 255, 255)


async def test_a_voice_note_within_limits_with_a_transcription(client) -> None:
    world = await build_world()
    response = await propose(client, world, voice=("note.wav", wav(2.5), "audio/wav"))
    assert response.status_code == 303
    stored = await Media.select(Media.token, Media.seconds, Media.content_type).first()
    assert (stored["seconds"], stored["content_type"]) == (2, "audio/ogg")
    proposal_url = response.headers["location"]
    proposal_id = int(proposal_url.rsplit("/", 1)[1])

    refused = await post_form(
        client, f"/proposals/{proposal_id}/transcription", {"transcription": "x"}
    )
    assert refused.status_code == 403
    await sign_in(client, world.users["facilitator_a"])
    saved = await post_form(
        client, f"/proposals/{proposal_id}/transcription", {"transcription": "Il faut des bancs."}
    )
    assert saved.status_code == 303
    page = await client.get(proposal_url)
    assert "Il faut des bancs." in page.text
    assert f'src="/media/{stored["token"]}"' in page.text


async def test_audio_that_is_not_audio_or_too_long_is_refused(client) -> None:
    world = await build_world()
    text = await propose(
        client, world, voice=("note.m4a", b"just some text, not audio", "audio/mp4")
    )
    assert text.status_code == 400
    assert t("This file is not a sound recording we can read.") in text.text
    long = await propose(client, world, voice=("long.wav", wav(200), "audio/wav"))
    assert long.status_code == 400
    assert t("This recording is too long: %(max)d minutes at most.", max=3) in long.text
    assert await Proposal.count() == 0


async def test_a_hidden_proposal_s_photo_is_no_longer_served(client) -> None:
    world = await build_world()
    response = await propose(client, world, photo=("p.jpg", jpeg_with_gps(), "image/jpeg"))
    proposal_id = int(response.headers["location"].rsplit("/", 1)[1])
    token = (await Media.select(Media.token).first())["token"]
    await sign_in(client, world.users["facilitator_a"])
    await post_form(
        client, f"/proposals/{proposal_id}/moderation", {"reason": "Visage d'un enfant"}
    )
    assert (await client.get(f"/media/{token}")).status_code == 404
    assert (await client.get("/media/not-a-token")).status_code in (400, 404)


async def test_on_behalf_needs_the_resident_s_consent(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    data = {**FORM, "author": str(world.users["resident_a"])}
    refused = await post_form(client, "/tables/flamants-iris/proposals", data)
    assert refused.status_code == 400
    assert (
        t("Confirm that the resident agrees to this proposal being recorded for them.")
        in refused.text
    )
    assert await Proposal.count() == 0
    accepted = await post_form(
        client, "/tables/flamants-iris/proposals", {**data, "consent": "yes"}
    )
    assert accepted.status_code == 303
    row = await Proposal.select(Proposal.consent_recorded_at, Proposal.recorded_by).first()
    assert row["consent_recorded_at"] is not None
    assert row["recorded_by"] == world.users["facilitator_a"]


# --- heavy and hostile photos -------------------------------------------------------------


@cache
def large_photo() -> bytes:
    """36 megapixels, what a good phone takes: accepted, and seconds of work to decode."""
    shade = Image.radial_gradient("L").resize((6000, 6000))
    image = Image.merge("RGB", (shade, shade.transpose(Image.Transpose.ROTATE_90), shade))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def png_header_and_blank_rows(width: int, height: int) -> bytes:
    """A real 1-bit PNG of any size, written row by row: a few KB for a huge picture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    squeeze = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the bits of the row
    pixels = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_the_event_loop_keeps_serving_while_a_large_photo_is_decoded(client) -> None:
    world = await build_world()
    photo = large_photo()
    assert Image.open(io.BytesIO(photo)).size == (6000, 6000)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        response = await propose(client, world, photo=("IMG_1234.jpg", photo, "image/jpeg"))
    finally:
        done.set()
        await ticking
    assert response.status_code == 303
    stored = await Media.select(Media.data).where(Media.kind == "photo").first()
    assert max(Image.open(io.BytesIO(bytes(stored["data"]))).size) == 1600
    assert len(gaps) > 5  # the ticker did run during the upload
    # Decoding on the event loop stalled every other request for the whole decode (seconds).
    assert max(gaps) < 0.25, f"the event loop stalled {max(gaps):.2f} s"


async def test_a_20000_by_20000_png_is_refused_before_it_is_decoded(client) -> None:
    world = await build_world()
    bomb = png_header_and_blank_rows(20_000, 20_000)
    assert len(bomb) < 200_000
    with pytest.raises(Image.DecompressionBombError):  # a real bomb, as Pillow sees it
        Image.open(io.BytesIO(bomb))
    started = time.perf_counter()
    response = await propose(client, world, photo=("plan.png", bomb, "image/png"))
    assert response.status_code == 400
    assert t("This photo has too many pixels: %(max)d megapixels at most.", max=40) in response.text
    assert time.perf_counter() - started < 2  # the header is enough: nothing is decoded
    # Over our budget but under Pillow's own bomb threshold: the same refusal.
    wide = await propose(
        client, world, photo=("wide.png", png_header_and_blank_rows(7000, 7000), "image/png")
    )
    assert wide.status_code == 400
    assert t("This photo has too many pixels: %(max)d megapixels at most.", max=40) in wide.text
    assert await Proposal.count() == 0
    assert await Media.count() == 0


async def test_broken_and_truncated_images_are_refused_and_nothing_is_stored(client) -> None:
    world = await build_world()
    jpeg = jpeg_with_gps()
    png = io.BytesIO()
    Image.radial_gradient("L").save(png, "PNG")
    good_png = png.getvalue()
    bad_crc = bytearray(good_png)
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    broken = {
        # Was stored, half grey: WeasyPrint makes Pillow accept truncated files process-wide.
        "half.jpg": jpeg[: len(jpeg) // 2],
        "start.jpg": jpeg[:200],
        "half.png": good_png[: len(good_png) // 2],
        "header.png": good_png[:33],  # signature and IHDR, no pixels
        "crc.png": bytes(bad_crc),
        "zero.png": png_header_and_blank_rows(0, 0),
    }
    for name, content in broken.items():
        response = await propose(client, world, photo=(name, content, "image/png"))
        assert response.status_code == 400, name
        assert t("This file is not a photo we can read (JPEG, PNG or WebP).") in response.text
    assert await Proposal.count() == 0
    assert await Media.count() == 0


# --- voice notes ------------------------------------------------------------------------------

TONE = [round(0.3 * math.sin(2 * math.pi * i / 120), 6) for i in range(120)]  # 400 Hz at 48 kHz


class Stream:
    """Where a browser's MediaRecorder writes: forward only, so a WebM says no duration."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


def recording(
    container: str, codec: str, seconds: float, rate: int = 48000, layout: str = "mono"
) -> bytes:
    """A phone's recording made with PyAV: WebM/Opus streamed as Chrome and Android record
    it (no duration in it), M4A/AAC as an iPhone saves it, and the others phones make."""
    step = 960
    tone = struct.pack(f"<{step}f", *(TONE * (step // len(TONE))))
    # The tone at 48 kHz, converted to what the encoder takes (AMR: 8 kHz integers).
    convert = av.AudioResampler(
        format=av.Codec(codec, "w").audio_formats[0].name, layout=layout, rate=rate
    )
    out = Stream() if container == "webm" else io.BytesIO()
    with av.open(out, "w", format=container) as target:
        stream = target.add_stream(codec, rate=rate, layout=layout)
        for start in range(0, int(seconds * 48000), step):
            frame = av.AudioFrame(format="flt", layout="mono", samples=step)
            frame.planes[0].update(tone)
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            for converted in convert.resample(frame):
                target.mux(stream.encode(converted))
        for converted in convert.resample(None):
            target.mux(stream.encode(converted))
        target.mux(stream.encode(None))
    return out.getvalue()


def wav_with_info(seconds: float) -> bytes:
    """A WAV whose LIST/INFO chunk says who recorded it, their number, and where."""

    def field(tag: bytes, text: str) -> bytes:
        value = text.encode() + b"\x00"
        return tag + struct.pack("<I", len(value)) + value + b"\x00" * (len(value) % 2)

    info = (
        b"INFO"
        + field(b"INAM", "Fatima Benali")
        + field(b"IART", "06 12 34 56 78")
        + field(b"ICMT", "GPS 43.3451,5.4012")
    )
    plain = wav(seconds)
    body = plain[12:] + b"LIST" + struct.pack("<I", len(info)) + info
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


async def stored_voice() -> dict:
    return await Media.select().where(Media.kind == "voice").first()


def assert_clean_ogg_opus(data: bytes, seconds: float) -> None:
    assert data[:4] == b"OggS"
    assert data[28:36] == b"OpusHead"  # the first page holds the Opus header, nothing else
    with av.open(io.BytesIO(data)) as sound:
        assert sound.format.name == "ogg"
        (stream,) = sound.streams
        assert stream.codec_context.name == "opus"
        assert stream.codec_context.channels == 1
        assert dict(sound.metadata) == {}
        assert dict(stream.metadata) == {}
        decoded = sum(frame.samples / frame.sample_rate for frame in sound.decode(stream))
    assert abs(decoded - seconds) < 0.1


async def test_webm_and_m4a_recordings_become_clean_ogg_opus(client) -> None:
    world = await build_world()
    phones = {
        "webm": ("note.webm", recording("webm", "libopus", 3), "audio/webm;codecs=opus"),
        "m4a": ("note.m4a", recording("ipod", "aac", 3), "audio/mp4"),
    }
    assert phones["webm"][1][:4] == b"\x1a\x45\xdf\xa3"
    with av.open(io.BytesIO(phones["webm"][1])) as webm:
        assert webm.duration is None  # only decoding tells how long it is
    assert phones["m4a"][1][4:8] == b"ftyp"
    for name, upload in phones.items():
        response = await propose(client, world, voice=upload)
        assert response.status_code == 303, name
        stored = await stored_voice()
        assert stored["content_type"] == "audio/ogg"
        assert stored["seconds"] == 3
        assert stored["size"] == len(bytes(stored["data"]))
        assert_clean_ogg_opus(bytes(stored["data"]), 3)
        served = await client.get(f"/media/{stored['token']}")
        assert served.status_code == 200
        assert served.headers["content-type"] == "audio/ogg"
        assert served.content == bytes(stored["data"])
        await Media.delete(force=True)


async def test_a_wav_s_name_phone_number_and_gps_do_not_survive(client) -> None:
    world = await build_world()
    original = wav_with_info(2)
    with av.open(io.BytesIO(original)) as sound:  # the tags are really there, and readable
        assert sound.metadata["comment"] == "GPS 43.3451,5.4012"
    response = await propose(client, world, voice=("note.wav", original, "audio/wav"))
    assert response.status_code == 303
    data = bytes((await stored_voice())["data"])
    for secret in (b"Fatima", b"Benali", b"06 12 34 56 78", b"GPS", b"43.3451", b"INFO", b"LIST"):
        assert secret not in data
    assert_clean_ogg_opus(data, 2)


async def test_recordings_too_long_too_large_or_not_audio_are_refused(client) -> None:
    world = await build_world()
    too_long = t("This recording is too long: %(max)d minutes at most.", max=3)
    not_audio = t("This file is not a sound recording we can read.")
    refusals = {
        "long.webm": (recording("webm", "libopus", 200), 400, too_long),
        "note.webm": (b"\x1a\x45\xdf\xa3" + b"not really a recording" * 50, 400, not_audio),
        "note.m4a": (b"\x00\x00\x00\x18ftypM4A " + b"text " * 100, 400, not_audio),
        "list.m3u8": (
            b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n",
            400,
            not_audio,
        ),
        "big.wav": (
            b"RIFF" + b"\x00" * (7 * 2**20),
            413,
            t("This recording is too large: %(max)d MB at most.", max=6),
        ),
    }
    for name, (content, status, message) in refusals.items():
        response = await propose(client, world, voice=(name, content, "audio/webm"))
        assert response.status_code == status, name
        assert message in response.text, name
    assert await Proposal.count() == 0
    assert await Media.count() == 0


PHONES = {
    "ogg-opus": ("ogg", "libopus", 48000, "mono", b"OggS"),  # Firefox
    "mp3": ("mp3", "libmp3lame", 44100, "stereo", b"ID3"),  # its ID3 tag names the encoder
    "aac-adts": ("adts", "aac", 44100, "mono", b"\xff\xf1"),  # bare AAC frames
    "3gp-amr": ("3gp", "libopencore_amrnb", 8000, "mono", b"\x00\x00\x00"),  # older Android
    "amr": ("amr", "libopencore_amrnb", 8000, "mono", b"#!AMR"),
    "wav": ("wav", "pcm_s16le", 44100, "stereo", b"RIFF"),
    "flac": ("flac", "flac", 44100, "mono", b"fLaC"),
}


@pytest.mark.parametrize("phone", PHONES.values(), ids=PHONES.keys())
async def test_what_phones_record_becomes_clean_ogg_opus(client, phone) -> None:
    container, codec, rate, layout, magic = phone
    world = await build_world()
    original = recording(container, codec, 2, rate=rate, layout=layout)
    assert original.startswith(magic)
    response = await propose(client, world, voice=(f"note.{container}", original, "audio/*"))
    assert response.status_code == 303
    stored = await stored_voice()
    assert (stored["content_type"], stored["seconds"]) == ("audio/ogg", 2)
    assert_clean_ogg_opus(bytes(stored["data"]), 2)
