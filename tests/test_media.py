"""Photos and voice notes: what comes in is checked by content, and comes out clean."""

from __future__ import annotations

import io
import wave

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
    assert (stored["seconds"], stored["content_type"]) == (2, "audio/wav")
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
