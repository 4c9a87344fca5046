"""Photos as the documents print them: small enough for a brief of 200 of them to stay a file
one can send, made once when a version is published (exports.services) rather than at each
rendering of each of its files. Pillow alone: the web process imports this, not WeasyPrint."""

from __future__ import annotations

import io
import math

from PIL import Image

# A photo is printed 46 mm wide (exports/pdf/brief_style.html): 400 pixels are 220 dpi there.
# Stored photos are 1600 pixels at most (proposals.media.PHOTO_SIDE), which JPEG decodes at a
# quarter scale, straight to that size.
PRINTED_PHOTO_SIDE = 400


def printed_photo(content_type: str, data: bytes) -> tuple[str, bytes] | None:
    """The photo as a document carries it: no larger than it prints, as a JPEG; as it is when
    it is that already (only its header is read). None if it cannot be read: left out, rather
    than fail the brief."""
    if not content_type.startswith("image/"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            if max(image.size) <= PRINTED_PHOTO_SIDE and image.format == "JPEG":
                return content_type, data
            scale = min(1.0, PRINTED_PHOTO_SIDE / max(image.size))
            wanted = (math.ceil(image.width * scale), math.ceil(image.height * scale))
            image.draft("RGB", wanted)  # JPEG: decoded at 1/2, 1/4… scale, no larger than needed
            small = image.convert("RGB")
            small.thumbnail(wanted, reducing_gap=2.0)
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80)
            return "image/jpeg", out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def printed_photos(photos: dict[int, tuple[str, bytes]] | None) -> dict[int, tuple[str, bytes]]:
    """Those of `photos` (media id → content type, bytes) that can be printed, as printed_photo
    makes them. CPU work: in a worker process."""
    return {
        media: printed
        for media, (content_type, data) in (photos or {}).items()
        if (printed := printed_photo(content_type, data))
    }
