"""ASGI middleware at the edge of every request, matched route or not: who the client is,
which host was asked for, the language, the headers every response carries, the size of forms."""

from __future__ import annotations

import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from litestar._multipart import parse_content_header
from litestar.enums import RequestEncodingType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from voix import i18n, logs, metrics
from voix.i18n import N_
from voix.settings import Network, get_settings, host_name

__all__ = ["client_address", "edge", "host_allowed", "host_name"]

UNKNOWN_HOST = N_("This site does not answer to that address.")

# No form of the site has nearly this many fields; parsing millions of them froze the server.
MAX_FORM_FIELDS = 200

LANGUAGE_COOKIE = "lang"
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
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(raw)
    except Exception:
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel else None


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

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-language", lang.encode()))
                headers.append((b"vary", b"Accept-Language, Cookie"))
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


def edge(app: ASGIApp) -> ASGIApp:
    """Wraps the whole application, not only matched routes (Litestar's own middleware list
    skips 404, 405 and everything its router refuses), outermost first: the request log and
    metrics time everything inside them."""
    return logs.access_middleware(
        client_address_middleware(
            language_middleware(
                security_headers_middleware(allowed_hosts_middleware(form_fields_middleware(app)))
            )
        ),
        observe=metrics.observe,
        stream_started=metrics.stream_started,
    )
