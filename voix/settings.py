"""Configuration from the environment, read once per process."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "test")
DEFAULT_PORT = 8000

logger = logging.getLogger("voix")

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
    # Logs as JSON lines for a collector, or text for a person at a terminal (voix.logs).
    log_format: str = "text"
    # /metrics answers to this bearer token only; unset, it does not exist (voix.metrics).
    metrics_token: str | None = None
    # SMS (notifications.providers): "brevo" (Brevo's transactional SMS API, a French
    # provider), "webhook" (a JSON POST to sms_url, for any other gateway), "log" (development:
    # written to the log, never sent). Unset: "log" in development, no SMS in production.
    sms_provider: str | None = None
    sms_url: str | None = None  # Brevo's API address (overridable) or the webhook's
    sms_api_key: str | None = None  # Brevo's api-key, or the webhook's bearer token
    sms_sender: str = "VoixQuart"  # the alphanumeric sender (11 characters at most)
    # The provider posts received SMS ("STOP") to /notifications/sms/inbound/<this token>.
    sms_inbound_token: str | None = None
    sms_segment_price: float = 0.045  # euros per SMS segment, for the facilitator's estimate

    @property
    def mail_mode(self) -> str | None:
        """ "smtp" when configured; "log" in development; None (no e-mail features) otherwise."""
        if self.smtp_url:
            return "smtp"
        return None if self.production else "log"

    @property
    def sms_mode(self) -> str | None:
        """The SMS provider in use, or None: SMS is then not offered to residents."""
        if self.sms_provider:
            return self.sms_provider
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
    # Development only: a key generated once, kept apart from the data directory so that
    # copying `var/` (or a backup of it) never carries the key that opens its secrets.
    key_file = key_directory() / "secret_key"
    if (old := _old_key(var_dir / "secret_key", key_file)) is not None:
        return old
    return _read_or_create(key_file)


def key_directory() -> Path:
    """VOIX_KEY_DIR, else the user's configuration directory (~/.config/voix): one development
    key per user, outside every data directory."""
    if configured := os.environ.get("VOIX_KEY_DIR"):
        return Path(configured).resolve()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return (Path(config_home) / "voix").resolve()


def _old_key(old: Path, key_file: Path) -> bytes | None:
    """Before keys left the data directory they were written to var/secret_key: move such a
    key to its new place, so an existing development database keeps opening. When the new
    place already holds another key (another checkout's), keep using the old one, and say so."""
    try:
        old_key = old.read_bytes().strip()
    except FileNotFoundError:
        return None
    if not old_key:
        return None  # a half-written key of the old code: nothing was encrypted with it
    try:
        _create(key_file, old_key)
    except FileExistsError:
        if _read_back(key_file) != old_key:
            logger.warning(
                "Using the development key %s, left in the data directory because %s holds "
                "another key; move one of them (VOIX_KEY_DIR chooses where keys are kept).",
                old,
                key_file,
            )
            return old_key
    except ConfigurationError as cannot:  # keep an existing setup working, and say why
        logger.warning("Using the development key %s, left in the data directory: %s", old, cannot)
        return old_key
    old.unlink(missing_ok=True)
    return old_key


def _read_or_create(key_file: Path) -> bytes:
    """Several workers may start at once on an empty key directory: the first to create the
    file writes the key, the others read what it wrote, so all sign and encrypt alike."""
    key = secrets.token_urlsafe(48).encode()
    try:
        _create(key_file, key)
    except FileExistsError:
        return _read_back(key_file)
    return key


def _create(key_file: Path, key: bytes) -> None:
    """Writes a new key file; FileExistsError when one is already there (O_EXCL: never two)."""
    try:
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise
    except OSError as cannot:
        raise ConfigurationError(
            f"Cannot create the development key {key_file} ({cannot.strerror}): set "
            "VOIX_SECRET_KEY, or VOIX_KEY_DIR to a writable directory."
        ) from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())


def _read_back(key_file: Path, wait_seconds: float = 5.0) -> bytes:
    """The key another process created: it may not have written it yet (O_EXCL creates the
    file empty), so wait a little for its content."""
    deadline = time.monotonic() + wait_seconds
    while not (key := key_file.read_bytes().strip()):
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"The development key {key_file} is empty: delete it to have a new one made "
                "(nothing can have been encrypted with an empty key)."
            )
        time.sleep(0.01)
    return key


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
        log_format=_log_format(env),
        metrics_token=_metrics_token(),
        **_sms_settings(),
    )


SMS_PROVIDERS = ("brevo", "webhook", "log")
BREVO_URL = "https://api.brevo.com/v3/transactionalSMS/send"  # "/sms" is deprecated


def _sms_settings() -> dict[str, Any]:
    provider = os.environ.get("VOIX_SMS_PROVIDER", "").strip().lower() or None
    if provider is not None and provider not in SMS_PROVIDERS:
        raise ConfigurationError(f"VOIX_SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}.")
    url = os.environ.get("VOIX_SMS_URL") or (BREVO_URL if provider == "brevo" else None)
    api_key = os.environ.get("VOIX_SMS_API_KEY") or None
    if provider == "webhook" and not url:
        raise ConfigurationError("VOIX_SMS_PROVIDER=webhook needs VOIX_SMS_URL.")
    if provider == "brevo" and not api_key:
        raise ConfigurationError("VOIX_SMS_PROVIDER=brevo needs VOIX_SMS_API_KEY.")
    sender = os.environ.get("VOIX_SMS_SENDER", "VoixQuart")
    if not 1 <= len(sender) <= 11:
        raise ConfigurationError("VOIX_SMS_SENDER must be 1 to 11 characters long.")
    token = os.environ.get("VOIX_SMS_INBOUND_TOKEN") or None
    if token is not None and len(token) < 16:
        raise ConfigurationError("VOIX_SMS_INBOUND_TOKEN must be at least 16 characters long.")
    try:
        price = float(os.environ.get("VOIX_SMS_SEGMENT_PRICE", "0.045"))
    except ValueError:
        raise ConfigurationError("VOIX_SMS_SEGMENT_PRICE must be a number of euros.") from None
    return {
        "sms_provider": provider,
        "sms_url": url,
        "sms_api_key": api_key,
        "sms_sender": sender,
        "sms_inbound_token": token,
        "sms_segment_price": price,
    }


LOG_FORMATS = ("json", "text")
METRICS_TOKEN_MIN_LENGTH = 16


def _log_format(env: str) -> str:
    """VOIX_LOG_FORMAT: json (the default in production) or text (elsewhere)."""
    configured = os.environ.get("VOIX_LOG_FORMAT", "").strip().lower()
    if not configured:
        return "json" if env == "production" else "text"
    if configured not in LOG_FORMATS:
        raise ConfigurationError(f"VOIX_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}.")
    return configured


def _metrics_token() -> str | None:
    """VOIX_METRICS_TOKEN: unset, /metrics does not exist; a short one could be guessed."""
    token = os.environ.get("VOIX_METRICS_TOKEN", "").strip()
    if not token:
        return None
    if len(token) < METRICS_TOKEN_MIN_LENGTH:
        raise ConfigurationError(
            f"VOIX_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters long."
        )
    return token


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
