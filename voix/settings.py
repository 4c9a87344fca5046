"""Configuration from the environment, read once per process."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "test")


class ConfigurationError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: bytes
    var_dir: Path
    allowed_hosts: tuple[str, ...]
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
    return Settings(
        env=env,
        database_url=database_url,
        secret_key=_secret_key(env, var_dir),
        var_dir=var_dir,
        allowed_hosts=_allowed_hosts(env),
        smtp_url=os.environ.get("VOIX_SMTP_URL") or None,
        mail_from=os.environ.get("VOIX_MAIL_FROM", "Voix des Quartiers <noreply@localhost>"),
        tile_url=os.environ.get("VOIX_TILE_URL") or Settings.tile_url,
        tile_attribution=os.environ.get("VOIX_TILE_ATTRIBUTION") or Settings.tile_attribution,
    )


def _allowed_hosts(env: str) -> tuple[str, ...]:
    """The host names this site answers to; a request for any other gets 400."""
    if configured := os.environ.get("VOIX_ALLOWED_HOSTS"):
        return tuple(host.strip() for host in configured.split(",") if host.strip())
    if env == "production":
        raise ConfigurationError(
            "VOIX_ALLOWED_HOSTS is required in production (e.g. voix.example.org)."
        )
    return ("localhost", "127.0.0.1", "[::1]", "testserver.local")
