"""Markdown typed by the people who run the tables (minutes, legal pages), made into HTML that
can be shown as it is: whatever was typed comes out inert.

Raw HTML passes Markdown and meets nh3, which keeps only the tags below and the headings the
page makes room for (a <script> goes with its content); markdown-it itself refuses
javascript: and data: links. CPU work (a second or so for 50 000 characters of `[`): callers
run it in the worker pool (voix.workers), once, when a text is saved, and store the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "blockquote", "a", "hr", "code"})
_HEADING = re.compile(r"<(/?)h([1-6])>")
LINK_REL = "noopener noreferrer nofollow"


def markdown_html(body: str, *, headings: Mapping[int, int], url_schemes: Iterable[str]) -> str:
    """Markdown to HTML, then through nh3.

    `headings`: each heading level of the text (1 to 6) and the level it becomes on the page,
    which has headings of its own above the text. The levels it becomes are the only
    headings kept, raw HTML ones included: any other loses its tag (its words stay).
    `url_schemes`: what links may lead to ("https", "mailto"…).
    """
    html = _HEADING.sub(
        lambda tag: f"<{tag[1]}h{headings[int(tag[2])]}>" if int(tag[2]) in headings else tag[0],
        _markdown.render(body),
    )
    return nh3.clean(
        html,
        tags=set(_TAGS) | {f"h{level}" for level in headings.values()},
        attributes={"a": {"href"}},
        url_schemes=set(url_schemes),
        link_rel=LINK_REL,
    )


# A brief's context sits under the document's h1 and its "Context" h2 (exports.snapshot).
_BRIEF_CONTEXT_HEADINGS = {1: 3, 2: 3, 3: 4, 4: 4, 5: 4, 6: 4}


def brief_context_html(body: str) -> str:
    """A brief's context (or its translation) as HTML: CPU work, for the worker pool."""
    return markdown_html(
        body, headings=_BRIEF_CONTEXT_HEADINGS, url_schemes=("https", "http", "mailto")
    )
