"""ASGI middleware: the request's language, and headers every response carries."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from voix import i18n
from voix.i18n import N_

UNKNOWN_HOST = N_("This site does not answer to that address.")

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


def host_name(header: str) -> str:
    """The host without its port: "voix.example:8000" → "voix.example", "[::1]:80" → "[::1]"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(name: str, allowed: tuple[str, ...]) -> bool:
    return any(
        name == host or (host.startswith("*.") and name.endswith(host[1:])) for host in allowed
    )


def allowed_hosts_middleware(allowed: tuple[str, ...]) -> Callable[[ASGIApp], ASGIApp]:
    """Refuses requests addressed to another host name (DNS rebinding, forged links)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket") and not host_allowed(
                host_name(_header(scope, b"host") or ""), allowed
            ):
                refusal = ASGIResponse(
                    body=i18n.gettext(UNKNOWN_HOST).encode(),
                    status_code=400,
                    media_type="text/plain",
                )
                await refusal(scope, receive, send)
                return
            await app(scope, receive, send)

        return middleware

    return wrap
