"""A facilitator's message to a table's members, and the coordinators' view of deliveries
(built by a part of issue 16)."""

from typing import Any

ROUTES: list[Any] = []
