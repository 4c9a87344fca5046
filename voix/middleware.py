"""ASGI middleware at the edge of every request, matched route or not: who the client is,
which host was asked for, the language, the headers every response carries, the size of forms,
HEAD answered as a GET without its body, and compression (brotli or gzip) of what is text."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import zlib
from typing import cast
from urllib.parse import parse_qs

import brotli
from litestar._multipart import parse_content_header
from litestar._parsers import parse_cookie_string
from litestar.enums import RequestEncodingType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response.base import ASGIResponse
from litestar.types import (
    ASGIApp,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from voix import i18n, logs, metrics
from voix.i18n import N_
from voix.settings import Network, get_settings, host_name

__all__ = [
    "accepted_encodings",
    "client_address",
    "edge",
    "host_allowed",
    "host_name",
    "merge_vary",
]

UNKNOWN_HOST = N_("This site does not answer to that address.")

# No form of the site has nearly this many fields; parsing millions of them froze the server.
MAX_FORM_FIELDS = 200

LANGUAGE_COOKIE = "lang"
STATIC_PREFIX = "/static/"
ONE_YEAR = 365 * 24 * 3600

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    """A cookie, read as Litestar's requests read them (SimpleCookie took a tenth of a
    millisecond per request, and gave up on the whole header for one odd cookie)."""
    raw = _header(scope, b"cookie")
    return parse_cookie_string(raw).get(name) if raw else None


def merge_vary(headers: list[tuple[bytes, bytes]], *names: str) -> None:
    """Adds `names` to the response's one Vary header (made when missing, several merged into
    one), each name once whatever its case."""
    tokens: list[str] = []
    kept = []
    for key, value in headers:
        if key.lower() == b"vary":
            tokens.extend(t.strip() for t in value.decode("latin-1").split(",") if t.strip())
        else:
            kept.append((key, value))
    seen = set()
    merged = []
    for token in [*tokens, *names]:
        if token.lower() not in seen:
            seen.add(token.lower())
            merged.append(token)
    headers[:] = [*kept, (b"vary", ", ".join(merged).encode("latin-1"))]


def language_middleware(app: ASGIApp) -> ASGIApp:
    """?lang= chooses (and is remembered), then the cookie, then Accept-Language, then French."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        chosen = i18n.normalise(query.get("lang", [None])[0])
        lang = (
            chosen
            or i18n.normalise(_cookie(scope, LANGUAGE_COOKIE))
            or i18n.negotiate(_header(scope, b"accept-language"))
        )

        # A static file or an open-data download is the same in every language: no Vary on the
        # language, no cookie.
        path = str(scope.get("path", ""))
        static = path.startswith(STATIC_PREFIX) or bool(DOWNLOAD_PATH.fullmatch(path))

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start" and not static:
                headers = list(message.get("headers", []))
                headers.append((b"content-language", lang.encode()))
                # A page's address answers the page, or (htmx) a part of it: caches and the
                # browser's history must keep them apart.
                html = any(
                    k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
                )
                merge_vary(headers, "Accept-Language", "Cookie", *(("HX-Request",) if html else ()))
                if chosen:
                    cookie = f"{LANGUAGE_COOKIE}={chosen}; Path=/; Max-Age={ONE_YEAR}; SameSite=Lax"
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        token = i18n.current_language.set(lang)
        try:
            await app(scope, receive, send_with_language)
        finally:
            i18n.current_language.reset(token)

    return middleware


def security_headers_middleware(app: ASGIApp) -> ASGIApp:
    extra = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    ]

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A page may carry a policy of its own (the maps: hashes of their inline code).
                own = any(name.lower() == b"content-security-policy" for name, _ in headers)
                message["headers"] = [
                    *headers,
                    *(h for h in extra if not (own and h[0] == b"content-security-policy")),
                ]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


# The open data's downloads (exports/data_controllers.py): the same file for everyone, kept by
# shared caches (Cache-Control: public).
DOWNLOAD_PATH = re.compile(r"/(?:(?:tables|organisations)/[^/]+/)?data/[^/]+")


def static_cookies_middleware(app: ASGIApp) -> ASGIApp:
    """No cookie on a static file or an open-data download, whoever tried to set one (CSRF, a
    language chosen): a response a shared cache may keep must not hand a cookie (a CSRF token)
    to everyone, and such a file is the same for all."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (
            path.startswith(STATIC_PREFIX) or DOWNLOAD_PATH.fullmatch(path)
        ):
            await app(scope, receive, send)
            return

        async def send_without_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"set-cookie"
                ]
            await send(message)

        await app(scope, receive, send_without_cookies)

    return middleware


def host_allowed(name: str | None, allowed: tuple[str, ...]) -> bool:
    return name is not None and any(
        name == host or (host.startswith("*.") and name.endswith(host[1:])) for host in allowed
    )


def allowed_hosts_middleware(app: ASGIApp) -> ASGIApp:
    """Refuses requests addressed to another host name (DNS rebinding, forged links), and Host
    headers that are not one host (user info, two hosts, a port that is not a number)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            hosts = [value for key, value in scope.get("headers", []) if key == b"host"]
            name = host_name(hosts[0].decode("latin-1")) if len(hosts) == 1 else None
            if not host_allowed(name, get_settings().allowed_hosts):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": None})
                    return
                refusal = ASGIResponse(
                    body=i18n.gettext(UNKNOWN_HOST).encode(),
                    status_code=400,
                    media_type="text/plain",
                )
                await refusal(scope, receive, send)
                return
        await app(scope, receive, send)

    return middleware


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy; then X-Forwarded-For
    read from the right (each proxy appends whom it heard from), skipping trusted hops. What is
    left of the first untrusted hop was written by the client and is ignored."""

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in trusted)

    current = _address(peer)
    if current is None or not is_trusted(current):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage: the last proxy we trust is the best we know
        current = address
        if not is_trusted(address):
            break
    return str(current)


def client_address_middleware(app: ASGIApp) -> ASGIApp:
    """Sets scope["client"] once for everyone (throttles, logs): uvicorn runs without
    proxy_headers, so nothing else believes X-Forwarded-For."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        trusted = get_settings().trusted_proxies
        peer = scope.get("client")
        if trusted and peer and scope["type"] in ("http", "websocket"):
            forwarded = [
                value.decode("latin-1")
                for key, value in scope.get("headers", [])
                if key == b"x-forwarded-for"
            ]
            address = client_address(peer[0], forwarded, trusted)
            if address != peer[0]:
                # In place: uvicorn's access log reads this same dict.
                scope["client"] = (address, 0)
        await app(scope, receive, send)

    return middleware


def _is_url_encoded_form(scope: Scope) -> bool:
    """Decided exactly as Litestar decides it when it parses the form (the first Content-Type,
    read by its own parser): "…urlencoded\xa0" once slipped past a stricter reading of ours."""
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            kind, _ = parse_content_header(value.decode("latin-1"))
            return kind == RequestEncodingType.URL_ENCODED
    return False


def form_fields_middleware(app: ASGIApp) -> ASGIApp:
    """Refuses (413) a url-encoded body with more than MAX_FORM_FIELDS fields while it arrives,
    before anything parses it (Litestar parses such a body whole, on the event loop). Multipart
    bodies are bounded by the app's multipart_form_part_limit; sizes by request_max_body_size."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_url_encoded_form(scope):
            await app(scope, receive, send)
            return
        separators = 0

        async def counting_receive() -> ReceiveMessage:
            nonlocal separators
            message = await receive()
            if message["type"] == "http.request":
                separators += message.get("body", b"").count(b"&")
                if separators >= MAX_FORM_FIELDS:
                    # Raised where the body is read, so the app's handlers answer with a page.
                    raise RequestEntityTooLarge()
            return message

        await app(scope, counting_receive, send)

    return middleware


# --- HEAD -----------------------------------------------------------------------------------

DISCONNECT: ReceiveMessage = {"type": "http.disconnect"}


def head_middleware(app: ASGIApp) -> ASGIApp:
    """HEAD on any path is answered as the GET of that path without its body: the same status
    and headers (Content-Length, Content-Type, Content-Encoding: those of the GET), and nothing
    done that the GET would not do. Litestar answers HEAD only where a route declares it (405
    elsewhere), and its HEAD handlers may not build a body to measure.

    The body's first message ends the response; the app is then told the client left, so a
    stream (the room's events) stops instead of running for nobody."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await app(scope, receive, send)
            return
        # A copy: the server reads the method of its own scope to send no body after headers
        # that announce one.
        inner = cast("Scope", {**scope, "method": "GET"})
        answered = asyncio.Event()

        async def headless_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not answered.is_set():
                    answered.set()
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        async def headless_receive() -> ReceiveMessage:
            if answered.is_set():
                return DISCONNECT
            receiving = asyncio.ensure_future(receive())
            waiting = asyncio.ensure_future(answered.wait())
            try:
                await asyncio.wait({receiving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
                if not receiving.done():
                    receiving.cancel()
            return receiving.result() if not receiving.cancelled() else DISCONNECT

        try:
            await app(inner, headless_receive, headless_send)
        finally:
            # The access log reads the route Litestar's router wrote into the scope.
            if "path_template" in inner:
                scope["path_template"] = inner["path_template"]

    return middleware


# --- compression ----------------------------------------------------------------------------

# What is text and worth compressing. Never text/event-stream (the room's events: each must
# leave at once, whole), nor images, PDFs, DOCX, archives: already compressed.
COMPRESSIBLE_TYPES = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "text/plain",
        "text/csv",
        "text/calendar",
        "text/xml",
        "application/javascript",
        "application/json",
        "application/geo+json",
        "application/x-ndjson",  # the open data as JSON Lines
        "application/problem+json",
        "application/xml",
        "image/svg+xml",
    }
)
COMPRESS_MIN_SIZE = 500  # below, the headers and the framing outweigh the gain
# Per request, on a 2-core server (issue 15): a table's page is ~108 KB of HTML, most of it the
# static map and the list kept by voix.cache, yet compressed anew for each reader. There brotli 5
# took ~1 ms in a loop and ~2 ms in the server (more than the rest of the page: 2.6 ms against
# 6.0 ms of CPU a request, identity against br) for 9.8 KB; brotli 3 takes 0.25 ms for 11.6 KB
# (brotli 4: 0.56 ms, 10.9 KB); gzip 6 took 1.0 ms for 11.8 KB, gzip 3 0.24 ms for 13.3 KB.
# Static files are compressed once, at the best quality, by voix.static.
BROTLI_QUALITY = 3
GZIP_LEVEL = 3


def accepted_encodings(header: str | None) -> set[str]:
    """The content codings an Accept-Encoding header accepts (those with q=0 are refused)."""
    accepted: set[str] = set()
    for item in (header or "").lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding and quality > 0:
            accepted.add(coding)
    return accepted


def preferred_encoding(header: str | None) -> str | None:
    accepted = accepted_encodings(header)
    if "br" in accepted or "*" in accepted:
        return "br"
    return "gzip" if "gzip" in accepted else None


def _compressible(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    if status < 200 or status in (204, 304):
        return False
    media_type = b""
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-encoding":
            return False  # already encoded (static files, compressed ahead of time)
        if lower == b"cache-control" and b"no-transform" in value.lower():
            return False
        if lower == b"content-type":
            media_type = value.split(b";")[0].strip().lower()
    return media_type.decode("latin-1") in COMPRESSIBLE_TYPES


class Compressor:
    """One response's compression; each chunk comes out flushed, whole, at once."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "br":
            self._brotli = brotli.Compressor(quality=BROTLI_QUALITY, mode=brotli.MODE_TEXT)
        else:
            self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def chunk(self, data: bytes, last: bool) -> bytes:
        if self.encoding == "br":
            out = self._brotli.process(data)
            return out + (self._brotli.finish() if last else self._brotli.flush())
        out = self._gzip.compress(data)
        return out + self._gzip.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def compression_middleware(app: ASGIApp) -> ASGIApp:
    """brotli, else gzip, as the client accepts, for the text types of COMPRESSIBLE_TYPES from
    COMPRESS_MIN_SIZE bytes; a streamed body is compressed chunk by chunk, each flushed.
    Vary: Accept-Encoding on every response that could be compressed, merged into the one
    Vary header. (Litestar's CompressionMiddleware compresses every media type, server-sent
    events and PNGs alike, wraps only matched routes, reads "gzip;q=0" as gzip, and adds a
    Vary header of its own.)"""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        encoding = preferred_encoding(_header(scope, b"accept-encoding"))
        held: HTTPResponseStartEvent | None = None  # the start, until the first body decides
        compressor: Compressor | None = None

        async def compressing_send(message: Message) -> None:
            nonlocal held, compressor
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if _compressible(message["status"], headers):
                    merge_vary(headers, "Accept-Encoding")
                    message["headers"] = headers
                    if encoding is not None:
                        held = message
                        return
                await send(message)
                return
            if message["type"] != "http.response.body" or encoding is None:
                await send(message)
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if held is not None:
                start, held = held, None
                if not more and len(body) < COMPRESS_MIN_SIZE:
                    await send(start)
                    await send(message)
                    return
                compressor = Compressor(encoding)
                packed = compressor.chunk(body, last=not more)
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-encoding", encoding.encode()))
                if not more:
                    headers.append((b"content-length", str(len(packed)).encode()))
                start["headers"] = headers
                await send(start)
            elif compressor is not None:
                packed = compressor.chunk(body, last=not more)
            else:
                await send(message)
                return
            await send({"type": "http.response.body", "body": packed, "more_body": more})

        await app(scope, receive, compressing_send)

    return middleware


def edge(app: ASGIApp) -> ASGIApp:
    """Wraps the whole application, not only matched routes (Litestar's own middleware list
    skips 404, 405 and everything its router refuses), outermost first: the request log and
    metrics time everything inside them (and count the bytes sent, compressed). HEAD is turned
    into a GET outside the compression, so its headers are the compressed GET's."""
    return logs.access_middleware(
        client_address_middleware(
            head_middleware(
                compression_middleware(
                    language_middleware(
                        security_headers_middleware(
                            static_cookies_middleware(
                                allowed_hosts_middleware(form_fields_middleware(app))
                            )
                        )
                    )
                )
            )
        ),
        observe=metrics.observe,
        stream_started=metrics.stream_started,
    )
