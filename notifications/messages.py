"""What each event says, in the reader's language, by channel (site, sms, email).

Interface (the delivery part of issue 16 fills it in):
    render(event, language, channel) -> Rendered
where `event` is a mapping with "kind", "params" (dict, already decoded from JSON) and "path".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rendered:
    subject: str  # an e-mail's subject; the site's title
    text: str  # the SMS, the e-mail's body, the site's line
    path: str  # the link, relative to the base URL


def render(event: Mapping[str, Any], language: str, channel: str) -> Rendered:
    return Rendered(subject=str(event["kind"]), text=str(event["kind"]), path=str(event["path"]))
