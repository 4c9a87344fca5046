"""Configuration from the environment, read once per process."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "test")
DEFAULT_PORT = 8000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A host as a browser sends it: a name or an IPv4 address, or an IPv6 literal in brackets,
# then an optional port. Anything else (user info, spaces, commas, paths) is not a host.
_HOST = re.compile(r"(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::[0-9]{1,5})?", re.ASCII)


class ConfigurationError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: bytes
    var_dir: Path
    allowed_hosts: tuple[str, ...]
    # Every absolute link (e-mail, calendar feed, posters, QR codes) starts with this, never
    # with what a request claims its host to be.
    base_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    # Proxies whose X-Forwarded-For is believed; nobody's by default.
    trusted_proxies: tuple[Network, ...] = ()
    smtp_url: str | None = None  # smtp://user:password@host:587 (STARTTLS) or smtps://…:465
    mail_from: str = "Voix des Quartiers <noreply@localhost>"
    # The one external resource of the interactive maps.
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "© OpenStreetMap contributors"

    @property
    def mail_mode(self) -> str | None:
        """ "smtp" when configured; "log" in development; None (no e-mail features) otherwise."""
        if self.smtp_url:
            return "smtp"
        return None if self.production else "log"

    @property
    def production(self) -> bool:
        return self.env == "production"


def _secret_key(env: str, var_dir: Path) -> bytes:
    if key := os.environ.get("VOIX_SECRET_KEY"):
        if len(key) < 32:
            raise ConfigurationError("VOIX_SECRET_KEY must be at least 32 characters long.")
        return key.encode()
    if env == "production":
        raise ConfigurationError("VOIX_SECRET_KEY is required in production.")
    # Development only: a key generated once and kept beside the local database.
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


@cache
def get_settings() -> Settings:
    env = os.environ.get("VOIX_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigurationError(f"VOIX_ENV must be one of {', '.join(ENVIRONMENTS)}.")
    var_dir = Path(os.environ.get("VOIX_VAR_DIR", "var")).resolve()
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir / 'voix.sqlite3'}"
    base_url = _base_url(env)
    return Settings(
        env=env,
        database_url=database_url,
        secret_key=_secret_key(env, var_dir),
        var_dir=var_dir,
        allowed_hosts=_allowed_hosts(env, base_url),
        base_url=base_url,
        trusted_proxies=_trusted_proxies(),
        smtp_url=os.environ.get("VOIX_SMTP_URL") or None,
        mail_from=os.environ.get("VOIX_MAIL_FROM", "Voix des Quartiers <noreply@localhost>"),
        tile_url=os.environ.get("VOIX_TILE_URL") or Settings.tile_url,
        tile_attribution=os.environ.get("VOIX_TILE_ATTRIBUTION") or Settings.tile_attribution,
    )


def _allowed_hosts(env: str, base_url: str) -> tuple[str, ...]:
    """The host names this site answers to; a request for any other gets 400."""
    if configured := os.environ.get("VOIX_ALLOWED_HOSTS"):
        hosts = tuple(host.strip().lower() for host in configured.split(",") if host.strip())
    elif env == "production":
        raise ConfigurationError(
            "VOIX_ALLOWED_HOSTS is required in production (e.g. voix.example.org)."
        )
    else:
        hosts = ("localhost", "127.0.0.1", "[::1]", "testserver.local")
    # The site's own links must work: its base URL's host is always answered.
    own = host_name(urlsplit(base_url).netloc)
    return hosts if own is None or own in hosts else (*hosts, own)


def host_name(value: str) -> str | None:
    """The host of a Host header or URL authority, lower-case and without its port, or None
    when it is not one: "Voix.Example:8443" → "voix.example", "[::1]:80" → "[::1]"."""
    value = value.strip(" \t").lower()
    if not _HOST.fullmatch(value):
        return None
    try:
        parts = urlsplit(f"//{value}")
        parts.port  # noqa: B018 — raises ValueError for a port beyond 65535
    except ValueError:
        return None
    name = parts.hostname or ""
    if value.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(name).compressed}]"
        except ValueError:
            return None
    name = name.removesuffix(".")  # "voix.example." is the same DNS name
    if not name or "" in name.split("."):
        return None
    return name


def _base_url(env: str) -> str:
    if configured := os.environ.get("VOIX_BASE_URL", "").strip():
        return parse_base_url(configured)
    if env == "production":
        raise ConfigurationError(
            "VOIX_BASE_URL is required in production (e.g. https://voix.example.org)."
        )
    # Development and tests: where `voix serve` listens (it exports its --port).
    port = os.environ.get("VOIX_PORT") or str(DEFAULT_PORT)
    return parse_base_url(f"http://127.0.0.1:{port}")


def parse_base_url(value: str) -> str:
    """ "https://Voix.Example.org/" → "https://voix.example.org": scheme, host, optional port."""
    wrong = ConfigurationError(
        "VOIX_BASE_URL must be http(s)://host[:port] with no user, path, query or fragment "
        f"(e.g. https://voix.example.org), not {value!r}."
    )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise wrong from None
    host = host_name(parts.netloc)
    if (
        parts.scheme.lower() not in ("http", "https")
        or host is None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or any(ord(c) <= 0x20 or c == "\x7f" for c in value)
    ):
        raise wrong
    return f"{parts.scheme.lower()}://{host}{'' if port is None else f':{port}'}"


def _trusted_proxies() -> tuple[Network, ...]:
    """VOIX_TRUSTED_PROXIES: addresses or networks, comma-separated (10.0.0.0/8, 127.0.0.1)."""
    networks = []
    for item in os.environ.get("VOIX_TRUSTED_PROXIES", "").split(","):
        if not (item := item.strip()):
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"VOIX_TRUSTED_PROXIES: {item!r} is not an IP address or network "
                "(e.g. 127.0.0.1, 10.0.0.0/8)."
            ) from None
    return tuple(networks)
