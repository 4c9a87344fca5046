"""Light on the wire (issue 15): brotli and gzip for text, never for the room's event stream
(each event still leaves at once, checked through a real compressed server), nor for images and
PDFs; static files under hashed names kept a year, with no cookie, ETag and 304; HEAD answered
on every GET route with the GET's headers and no body."""

from __future__ import annotations

import asyncio
import gzip
import os
import re
from urllib.parse import urljoin

import brotli
import httpx
import pytest

from accounts.services import open_session
from tests.factories import add_proposal, build_world, draw_district, sign_in
from tests.servers import replica
from tests.test_live import next_event, open_meeting_with_vote, post
from voix import middleware, static
from voix.middleware import compression_middleware, head_middleware
from voix.static import IMMUTABLE, SHORT, STATIC_DIR, static_file, static_url
from voix.web import SESSION_COOKIE

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

BOTH = {"accept-encoding": "br, gzip"}
GZIP_ONLY = {"accept-encoding": "gzip"}
NONE = {"accept-encoding": "identity"}


def vary(response: httpx.Response) -> list[str]:
    """The response's Vary headers, as sent (one header, several names)."""
    return response.headers.get_list("vary")


async def a_big_enough_world() -> None:
    """Two tables with enough proposals that the pages and the JSON pass the minimum size."""
    world = await build_world()
    for n in range(12):
        await add_proposal(world.table_a, f"Proposition numéro {n} pour le quartier")


# --- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "encoding"), [(BOTH, "br"), (GZIP_ONLY, "gzip")])
async def test_pages_and_json_are_compressed_as_the_client_accepts(
    client, headers: dict[str, str], encoding: str
) -> None:
    await a_big_enough_world()
    for path, kind in (
        ("/tables/flamants-iris", "text/html"),
        ("/api/v1/tables/flamants-iris/proposals", "application/json"),
    ):
        plain = await client.get(path, headers=NONE)
        packed = await client.get(path, headers=headers)
        assert plain.status_code == packed.status_code == 200, path
        assert packed.headers["content-type"].startswith(kind), path
        assert packed.headers["content-encoding"] == encoding, path
        assert "content-encoding" not in plain.headers, path
        # What came over the wire is the compressed size, and it decodes to the same thing.
        assert int(packed.headers["content-length"]) == packed.num_bytes_downloaded
        assert packed.num_bytes_downloaded < len(packed.content) / 2, path
        if kind == "application/json":
            assert packed.json() == plain.json()
        # One Vary header, with the language and the encoding in it.
        assert len(vary(packed)) == 1, vary(packed)
        names = {n.strip().lower() for n in vary(packed)[0].split(",")}
        assert {"accept-encoding", "accept-language", "cookie"} <= names


async def test_geojson_is_compressed(client) -> None:
    world = await build_world()
    ring = [[5.40 + i / 1000, 43.35 + (i % 7) / 1000] for i in range(80)]
    await draw_district(world.table_a, {"type": "Polygon", "coordinates": [[*ring, ring[0]]]})
    plain = await client.get("/tables/flamants-iris/districts.geojson", headers=NONE)
    assert len(plain.content) >= middleware.COMPRESS_MIN_SIZE  # else the test proves nothing
    response = await client.get("/tables/flamants-iris/districts.geojson", headers=BOTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert response.headers["content-encoding"] == "br"
    assert response.json() == plain.json()
    assert response.num_bytes_downloaded < len(plain.content)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("app.css", "text/css"),
        ("htmx-2.0.11.min.js", "text/javascript"),
        ("themes.svg", "image/svg+xml"),
    ],
)
@pytest.mark.parametrize(("headers", "encoding"), [(BOTH, "br"), (GZIP_ONLY, "gzip")])
async def test_stylesheets_scripts_and_svg_are_compressed(
    client, name: str, kind: str, headers: dict[str, str], encoding: str
) -> None:
    raw = (STATIC_DIR / name).read_bytes()
    for url in (static_url(name), f"/static/{name}"):
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
        assert response.headers["content-encoding"] == encoding
        assert response.content == raw  # decoded by the client, byte for byte the file
        assert response.num_bytes_downloaded < len(raw)
        assert vary(response) == ["Accept-Encoding"]
    plain = await client.get(static_url(name), headers=NONE)
    assert "content-encoding" not in plain.headers
    assert plain.content == raw
    assert vary(plain) == ["Accept-Encoding"]


async def test_static_files_are_compressed_once_at_the_best_quality(client) -> None:
    url = static_url("app.css")
    static._files.pop("app.css", None)  # as after a release: a new version, nothing ready
    first = await client.get(url, headers=BOTH)  # compressed by the edge meanwhile
    assert first.headers["content-encoding"] == "br"
    best = static_file("app.css").variant("br")  # what the thread started then makes
    assert best == brotli.compress((STATIC_DIR / "app.css").read_bytes(), quality=11)
    later = await client.get(url, headers=BOTH)
    assert later.headers["content-encoding"] == "br"
    assert later.num_bytes_downloaded == len(best) < first.num_bytes_downloaded
    assert later.headers["etag"] != first.headers["etag"]  # another representation


async def test_images_are_never_compressed_again(client) -> None:
    for name in ("leaflet-1.9.4/images/marker-icon-2x.png", "leaflet-1.9.4/images/layers-2x.png"):
        raw = (STATIC_DIR / name).read_bytes()
        assert len(raw) >= middleware.COMPRESS_MIN_SIZE, name  # else the test proves nothing
        response = await client.get(static_url(name), headers=BOTH)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert "content-encoding" not in response.headers
        assert response.num_bytes_downloaded == len(raw)
        assert "vary" not in response.headers


async def asgi_call(app, headers: dict[str, str] | None = None, method: str = "GET"):
    """Runs an ASGI app once; returns the messages it sent, in order."""
    sent: list[dict] = []
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or BOTH).items()],
    }

    async def receive():
        await asyncio.sleep(3600)

    async def send(message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def one_shot_app(media_type: bytes, body: bytes):
    async def app(scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", media_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


@pytest.mark.parametrize(
    "media_type",
    [
        b"application/pdf",
        b"image/png",
        b"image/jpeg",
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"application/zip",
        b"audio/ogg",
    ],
)
async def test_pdf_docx_and_images_pass_through_untouched(media_type: bytes) -> None:
    body = b"%PDF-1.7 " + b"the same bytes again and again " * 200
    sent = await asgi_call(compression_middleware(one_shot_app(media_type, body)))
    start, message = sent
    names = [name for name, _ in start["headers"]]
    assert b"content-encoding" not in names
    assert b"vary" not in names
    assert message["body"] == body


async def test_a_small_or_already_encoded_body_is_left_alone() -> None:
    small = b"<p>bonjour</p>"
    sent = await asgi_call(compression_middleware(one_shot_app(b"text/html; charset=utf-8", small)))
    assert sent[1]["body"] == small
    assert dict(sent[0]["headers"])[b"vary"] == b"Accept-Encoding"  # another client may get br

    async def encoded(scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/css"), (b"content-encoding", b"gzip")],
            }
        )
        await send({"type": "http.response.body", "body": gzip.compress(b"a{}" * 500)})

    sent = await asgi_call(compression_middleware(encoded))
    assert gzip.decompress(sent[1]["body"]) == b"a{}" * 500  # not compressed twice


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("br, gzip", "br"),
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=0", None),
        ("identity", None),
        ("", None),
        ("*", "br"),
    ],
)
def test_the_encoding_is_what_the_client_accepts(header: str, expected: str | None) -> None:
    assert middleware.preferred_encoding(header) == expected


def streaming_app(media_type: bytes, chunks: list[bytes], between: asyncio.Event):
    """Sends its first chunk, then waits for `between` before the others: a chunk held back
    by the compression would never reach the client while the app waits."""

    async def app(scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", media_type)],
            }
        )
        await send({"type": "http.response.body", "body": chunks[0], "more_body": True})
        await between.wait()
        for chunk in chunks[1:]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def test_events_pass_uncompressed_each_at_once() -> None:
    between = asyncio.Event()
    event = b"event: changed\ndata: 1\n\n"
    app = compression_middleware(
        streaming_app(b"text/event-stream; charset=utf-8", [b": connected\n\n", event], between)
    )
    call = asyncio.ensure_future(asgi_call(app))
    await asyncio.sleep(0.2)
    assert not call.done()  # the app waits; what it sent so far must be out already
    between.set()
    start, first, second, last = await call
    assert b"content-encoding" not in dict(start["headers"])
    assert b"vary" not in dict(start["headers"])
    assert first["body"] == b": connected\n\n"
    assert second["body"] == event
    assert last == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.parametrize(("encoding", "decode"), [("br", brotli.decompress), ("gzip", None)])
async def test_a_compressed_stream_flushes_each_chunk(encoding: str, decode) -> None:
    """A streamed text body (not the events: those are never compressed) leaves chunk by
    chunk, each decodable on arrival."""
    between = asyncio.Event()
    sent: list[dict] = []
    app = compression_middleware(
        streaming_app(b"text/html", [b"<p>premier</p>" * 10, b"<p>second</p>" * 10], between)
    )

    async def record(message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"accept-encoding", encoding.encode())],
    }
    call = asyncio.ensure_future(app(scope, None, record))
    await asyncio.sleep(0.2)
    start, first = sent
    assert dict(start["headers"])[b"content-encoding"] == encoding.encode()
    if encoding == "br":
        partial = brotli.Decompressor().process(first["body"])
    else:
        import zlib

        partial = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(first["body"])
    assert partial == b"<p>premier</p>" * 10  # all of it, before the app goes on
    between.set()
    await call
    whole = b"".join(m["body"] for m in sent[1:])
    assert (decode or gzip.decompress)(whole) == b"<p>premier</p>" * 10 + b"<p>second</p>" * 10


async def test_the_room_s_events_arrive_at_once_through_the_compressed_server() -> None:
    """A real `voix serve`, asked with Accept-Encoding: br, gzip: the stream is not compressed
    and each event arrives while the stream stays open."""
    world = await build_world()
    meeting_id, _ = await open_meeting_with_vote(world)
    facilitator = await open_session(world.users["facilitator_a"], verified=True)
    resident = await open_session(world.users["resident_a"])
    with replica(dict(os.environ)) as base:
        # The same server compresses pages: the test is about the one that does.
        async with httpx.AsyncClient(base_url=base) as probe:
            page = await probe.get("/", headers=BOTH)
            assert page.headers["content-encoding"] == "br"
        async with (
            httpx.AsyncClient(
                base_url=base, cookies={SESSION_COOKIE: resident}, headers=BOTH
            ) as screen,
            screen.stream("GET", f"/meetings/{meeting_id}/events", timeout=15) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers
            lines = stream.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 10) == ": connected"
            added = await post(
                base, facilitator, f"/meetings/{meeting_id}/speakers", {"name": "Nadia"}
            )
            assert added.status_code == 303
            assert await next_event(lines) == "changed"


# --- static files -----------------------------------------------------------------------------


async def test_pages_name_static_files_by_their_hash_and_those_are_kept_a_year(client) -> None:
    page = await client.get("/")
    urls = re.findall(r'(?:href|src)="(/static/[^"#]+)', page.text)
    assert urls, "the home page names no static file"
    for url in urls:
        assert re.search(r"\.[0-9a-f]{8}\.[a-z]+$", url), url
        client.cookies.clear()
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE
        assert "set-cookie" not in response.headers, url
        assert "etag" in response.headers
        assert "last-modified" in response.headers
    assert static_url("app.css") in urls


async def test_the_hash_follows_the_content() -> None:
    import hashlib

    for name in ("app.css", "themes.svg", "leaflet-1.9.4/leaflet.css"):
        digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:8]
        stem, ext = name.rsplit(".", 1)
        assert static_url(name) == f"/static/{stem}.{digest}.{ext}"
    with pytest.raises(LookupError):
        static_url("no-such-file.css")


async def test_the_plain_names_still_answer_kept_briefly(client) -> None:
    response = await client.get("/static/app.css")
    assert response.status_code == 200
    assert response.headers["cache-control"] == SHORT
    # An old page's hash (before a release): today's file, not kept long.
    old = await client.get("/static/app.00000000.css")
    assert old.status_code == 200
    assert old.content == response.content
    assert old.headers["cache-control"] == SHORT


async def test_leaflet_finds_its_images_from_the_hashed_stylesheet(client) -> None:
    css_url = static_url("leaflet-1.9.4/leaflet.css")
    css = (await client.get(css_url)).text
    images = re.findall(r"url\(([^)'\"]+)\)", css)
    images = [i for i in images if not i.startswith(("data:", "#"))]  # #default#VML: old IE
    assert len(images) == 3, images
    for image in images:
        response = await client.get(urljoin(css_url, image))
        assert response.status_code == 200, image
        assert response.headers["content-type"] == "image/png"


async def test_no_cookie_on_static_files_even_when_a_language_is_chosen(client) -> None:
    for url in (
        static_url("app.css") + "?lang=ar",
        "/static/app.css?lang=en",
        "/static/nothing.css",
    ):
        client.cookies.clear()
        response = await client.get(url)
        assert "set-cookie" not in response.headers, url
    # A page still sets both (the language chosen, the CSRF token).
    client.cookies.clear()
    page = await client.get("/?lang=ar")
    cookies = page.headers.get_list("set-cookie")
    assert any(c.startswith("lang=ar") for c in cookies)
    assert any(c.startswith("csrftoken=") for c in cookies)


async def test_static_files_answer_304_when_unchanged(client) -> None:
    url = static_url("app.css")
    for headers in (BOTH, NONE):
        first = await client.get(url, headers=headers)
        again = await client.get(url, headers={**headers, "if-none-match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == IMMUTABLE
        since = await client.get(
            url, headers={**headers, "if-modified-since": first.headers["last-modified"]}
        )
        assert since.status_code == 304
    changed = await client.get(url, headers={"if-none-match": '"something-else"'})
    assert changed.status_code == 200


async def test_nothing_outside_the_static_folder_is_served(client) -> None:
    for path in (
        "/static/../settings.py",
        "/static/%2e%2e/settings.py",
        "/static/..%2fsettings.py",
        "/static/.hidden",
        "/static/leaflet-1.9.4",
        "/static/",
    ):
        response = await client.get(path)
        assert response.status_code in (400, 404), (path, response.status_code)


# --- HEAD ------------------------------------------------------------------------------------


async def test_head_answers_like_get_without_a_body(client) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Des bancs")
    for path in (
        "/",
        "/tables/flamants-iris",
        "/api/v1/tables",
        "/health",
        static_url("app.css"),
        "/static/leaflet-1.9.4/images/layers.png",
    ):
        got = await client.get(path, headers=BOTH)
        head = await client.head(path, headers=BOTH)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers.get("content-encoding") == got.headers.get("content-encoding"), path
        if path.startswith(("/static/", "/api/", "/health")):  # the same bytes each time
            assert head.headers["content-length"] == got.headers["content-length"], path


async def test_head_is_answered_where_get_is_and_refused_where_it_is_not(client) -> None:
    assert (await client.head("/no-such-page")).status_code == 404
    assert (await client.head("/logout")).status_code == 405  # a form's address, POST only


async def test_head_on_the_event_stream_ends_at_once(client) -> None:
    world = await build_world()
    meeting_id, _ = await open_meeting_with_vote(world)
    await sign_in(client, world.users["resident_a"])
    head = await asyncio.wait_for(client.head(f"/meetings/{meeting_id}/events"), 10)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


async def test_head_changes_nothing_a_get_would_not() -> None:
    """HEAD reaches the app as a GET: a route that only takes POST is never run by a HEAD."""
    seen: list[str] = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["method"])
        await one_shot_app(b"text/plain", b"x" * 10)(scope, receive, send)

    sent = await asgi_call(head_middleware(app), method="HEAD")
    assert seen == ["GET"]
    assert sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert dict(sent[0]["headers"])[b"content-length"] == b"10"
