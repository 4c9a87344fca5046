"""What meetings look like outside the page: the iCalendar feed, the attendance chart, QR codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import segno

from meetings.models import CANCELLED
from voix import i18n
from voix.web import absolute_url

CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 640, 240, 32


def ics(
    table: dict[str, Any],
    meetings: list[dict[str, Any]],
    agendas: dict[int, list[dict[str, Any]]],
) -> bytes:
    """A calendar phones can subscribe to: every meeting of the table, in UTC."""
    from icalendar import Calendar, Event  # noqa: PLC0415 — loaded when first asked, not at start-up

    calendar = Calendar()
    calendar.add("prodid", "-//Voix des Quartiers//tables de quartier//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{table['name']} — Voix des Quartiers")
    calendar.add("x-wr-timezone", str(i18n.LOCAL_TIMEZONE))
    stamp = datetime.now(UTC)
    # The UID's domain is the site's, whatever address the feed was fetched at.
    host = urlsplit(absolute_url("")).netloc
    for meeting in meetings:
        event = Event()
        event.add("uid", f"meeting-{meeting['id']}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", meeting["starts_at"])
        event.add("dtend", meeting["ends_at"])
        event.add("summary", meeting["title"])
        event.add("location", f"{meeting['place']}, {meeting['address']}")
        event.add("url", absolute_url(f"/meetings/{meeting['id']}"))
        items = agendas.get(meeting["id"], [])
        event.add(
            "description", "\n".join(f"{i}. {item['title']}" for i, item in enumerate(items, 1))
        )
        event.add("status", "CANCELLED" if meeting["status"] == CANCELLED else "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()


def chart(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of attendance per meeting held, laid out for an SVG drawn by the template."""
    top = max([m["present"] for m in history] + [1])
    slot = (CHART_WIDTH - 2 * CHART_MARGIN) / max(len(history), 1)
    usable = CHART_HEIGHT - 2 * CHART_MARGIN
    bars = []
    for index, meeting in enumerate(history):
        height = round(usable * meeting["present"] / top, 1)
        bars.append(
            {
                "x": round(CHART_MARGIN + index * slot + slot * 0.15, 1),
                "y": round(CHART_HEIGHT - CHART_MARGIN - height, 1),
                "width": round(slot * 0.7, 1),
                "height": height,
                "label_x": round(CHART_MARGIN + index * slot + slot / 2, 1),
                "meeting": meeting,
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "margin": CHART_MARGIN,
        "baseline": CHART_HEIGHT - CHART_MARGIN,
        "top": top,
        "bars": bars,
    }


def qr_data_uri(url: str, scale: int = 6) -> str:
    return str(segno.make(url, error="m").svg_data_uri(scale=scale, border=2))
