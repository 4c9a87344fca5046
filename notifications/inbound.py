"""Received SMS ("STOP") and the opt-out link (built by the delivery part of issue 16)."""

from typing import Any

ROUTES: list[Any] = []
