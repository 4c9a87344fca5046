"""Static files (voix/static), under names that carry a hash of their content.

`static_url("app.css")` (a Jinja global) gives `/static/app.<hash8>.css`: a browser keeps it a
year without asking again (`immutable`), and a new version of the file is a new address. The
plain name (`/static/app.css`) still answers, kept five minutes only: pages cached before a
release, and the files that a stylesheet names relatively (leaflet.css's `images/…`).

Each file is read and hashed when first asked for, and again only when its modification time
or size changes (a release, an edit in development). Text files are also kept compressed
(brotli at its best quality, gzip), made once per version in a thread, so a static response
costs no compression at all; the edge's compression (voix.middleware) leaves them alone as
they already say how they are encoded, and compresses (at its own, faster level) those asked
for before their best version is ready. ETag and Last-Modified come with every file, and
If-None-Match / If-Modified-Since answer 304. No cookie is ever set here (the CSRF middleware
skips /static/; voix.middleware strips any Set-Cookie on the way out).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path, PurePath

import brotli
from litestar import Request, Response, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from voix.middleware import STATIC_PREFIX, accepted_encodings
from voix.settings import PROJECT_ROOT

__all__ = ["STATIC_DIR", "static_file", "static_url"]

STATIC_DIR = PROJECT_ROOT / "voix" / "static"

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"  # the unhashed names: old pages, relative references

# Compressed once per version of a file; worth it from this size on.
COMPRESS_MIN_SIZE = 500
COMPRESSIBLE = frozenset(
    {
        "text/css",
        "text/javascript",
        "text/plain",
        "application/javascript",
        "application/json",
        "application/geo+json",
        "image/svg+xml",
    }
)
TYPES = {
    # Litestar adds "; charset=utf-8" to every text/* type itself.
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".txt": "text/plain",
    ".png": "image/png",
}

# name.<8 hex>.ext, as static_url writes it
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{8})(?P<ext>\.[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class StaticFile:
    name: str  # relative to STATIC_DIR, with "/"
    path: Path
    stamp: tuple[int, int]  # (mtime_ns, size): a new one means a new version
    body: bytes
    digest: str  # sha-256 of the content, hex
    media_type: str
    last_modified: str
    _variants: dict[str, bytes | None] = field(default_factory=dict, compare=False)

    @property
    def short_hash(self) -> str:
        return self.digest[:8]

    @property
    def hashed_name(self) -> str:
        stem, dot, ext = self.name.rpartition(".")
        if not dot or "/" in ext:
            return f"{self.name}.{self.short_hash}"
        return f"{stem}.{self.short_hash}.{ext}"

    @property
    def compressible(self) -> bool:
        return self.media_type.split(";")[0] in COMPRESSIBLE and len(self.body) >= COMPRESS_MIN_SIZE

    def etag(self, encoding: str | None) -> str:
        return f'"{self.digest[:20]}{"-" + encoding if encoding else ""}"'

    def has(self, encoding: str) -> bool:
        return encoding in self._variants

    def ready(self, encoding: str) -> bytes | None:
        return self._variants[encoding]

    def variant(self, encoding: str) -> bytes | None:
        """The body compressed with `encoding` ("br" or "gzip"), or None when that does not
        make it smaller. Computed once (a second thread asking meanwhile computes it too)."""
        if encoding not in self._variants:
            if encoding == "br":
                packed = brotli.compress(self.body, quality=11, mode=brotli.MODE_TEXT)
            else:
                packed = gzip.compress(self.body, compresslevel=9, mtime=0)
            self._variants[encoding] = packed if len(packed) < len(self.body) else None
        return self._variants[encoding]


_files: dict[str, StaticFile] = {}
_lock = threading.Lock()
_preparing: set[tuple[str, str, str]] = set()  # (name, digest, encoding)


def _prepare(file: StaticFile, encoding: str) -> None:
    """Compresses the file in a thread of its own, once per version and encoding: brotli 11
    takes ~1 s of CPU for leaflet.js (off the event loop: brotli lets go of the GIL)."""
    key = (file.name, file.digest, encoding)
    with _lock:
        if key in _preparing:
            return
        _preparing.add(key)
    threading.Thread(target=file.variant, args=(encoding,), daemon=True).start()


def _media_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in TYPES:
        return TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _inside(path: Path) -> bool:
    try:
        path.resolve().relative_to(STATIC_DIR.resolve())
    except ValueError:
        return False
    return True


def static_file(name: str) -> StaticFile | None:
    """The current version of voix/static/<name>, or None: no such file, a directory, a hidden
    file, or a path that leads out of voix/static."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return None
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = STATIC_DIR.joinpath(*parts)
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if not path.is_file() or not _inside(path):
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _files.get(name)
    if known is not None and known.stamp == stamp:
        return known
    with _lock:
        body = path.read_bytes()
        loaded = StaticFile(
            name=name,
            path=path,
            stamp=stamp,
            body=body,
            digest=hashlib.sha256(body).hexdigest(),
            media_type=_media_type(name),
            last_modified=formatdate(stat.st_mtime, usegmt=True),
        )
        _files[name] = loaded
    return loaded


# static_url's answers, each checked against the file again after RECHECK_SECONDS: a page
# may name a pictogram per row, and a stat per row is wasted.
RECHECK_SECONDS = 2.0
_urls: dict[str, tuple[float, str]] = {}


def static_url(name: str) -> str:
    """The address of voix/static/<name> with its content's hash in the name (a Jinja global).
    An unknown name is an error of the template, raised where it renders."""
    now = time.monotonic()
    known = _urls.get(name)
    if known is not None and now - known[0] < RECHECK_SECONDS:
        return known[1]
    found = static_file(name)
    if found is None:
        raise LookupError(f"no static file {name!r} in {STATIC_DIR}")
    url = STATIC_PREFIX + found.hashed_name
    _urls[name] = (now, url)
    return url


def _resolve(requested: str) -> tuple[StaticFile, bool] | None:
    """The file a request names and whether its name carried the file's current hash."""
    found = static_file(requested)
    if found is not None:
        return found, False
    matched = _HASHED.match(requested)
    if matched is None:
        return None
    found = static_file(matched["stem"] + matched["ext"])
    if found is None:
        return None
    # An older hash (a page from before a release) gets today's file, not to be kept long.
    return found, matched["hash"] == found.short_hash


def _not_modified(request: Request, file: StaticFile, etag: str) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        ours = {file.etag(None), file.etag("br"), file.etag("gzip")}
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return bool(tags & ours)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(file.stamp[0] // 1_000_000_000) <= since
    return False


async def _no_hooks(request: Request) -> None:
    """Static files read no session and no path parameter: the app-wide hooks are skipped."""


@route(
    "/static/{file_path:path}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    name="static",
    include_in_schema=False,
    before_request=_no_hooks,
)
async def serve_static(request: Request, file_path: FromPath[PurePath]) -> Response[bytes]:
    """One file of voix/static, compressed ahead of time when it is text. HEAD reaches here
    as a GET (voix.middleware.head_middleware drops the body)."""
    resolved = _resolve(file_path.as_posix().lstrip("/"))
    if resolved is None:
        raise NotFoundException()
    file, hashed = resolved
    encoding: str | None = None
    body = file.body
    headers = {
        "cache-control": IMMUTABLE if hashed else SHORT,
        "last-modified": file.last_modified,
    }
    if file.compressible:
        headers["vary"] = "Accept-Encoding"
        accepted = accepted_encodings(request.headers.get("accept-encoding"))
        for candidate in ("br", "gzip"):
            if candidate in accepted or "*" in accepted:
                if not file.has(candidate):
                    # Until it is ready, the edge compresses this one as it does a page.
                    _prepare(file, candidate)
                    break
                packed = file.ready(candidate)
                if packed is not None:
                    encoding, body = candidate, packed
                    headers["content-encoding"] = candidate
                    break
    headers["etag"] = file.etag(encoding)
    if _not_modified(request, file, headers["etag"]):
        headers.pop("content-encoding", None)
        return Response(b"", status_code=304, headers=headers, media_type=file.media_type)
    return Response(body, headers=headers, media_type=file.media_type)
