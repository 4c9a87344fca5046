"""The notifications' pages (built by the web part of issue 16)."""

from typing import Any

ROUTES: list[Any] = []
