"""Parts of pages rendered once and kept (voix.cache), written in the template itself:

    {% cache "comments", proposal.id, table.revision, moderator %} … {% endcache %}

The key is what the template names (each part must be hashable: numbers, strings, booleans)
with the template's name and the reader's language. Name in it everything the part's output
depends on: a table's revision covers its data (tables/revision.py); who reads it must be
named by what changes the output (a role, "signed in"), never by a person unless the part
shows that person's own things.

A part holding forms holds the reader's CSRF token: it is kept with a placeholder in its place
and each reader gets their own back, so a kept part never carries another person's token.
`{% cache_personal … %}` is the same for a part one reader alone sees (named by what shows it:
their id, their name, their count), kept apart (voix.cache.personal) so that many readers do not
push out what everyone shares. Entries expire after SECONDS at most, like the rest of voix.cache: time alone moves some things
on (a vote closes).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from litestar.template.base import csrf_token
from markupsafe import Markup

from voix import cache
from voix.i18n import current_language

SECONDS = 60.0
# Never in a rendered page: not valid text in HTML, escaped by Jinja if a user wrote it.
TOKEN_PLACEHOLDER = "\x00csrf-token\x00"  # noqa: S105 — a marker, not a secret


def _token(context: Context) -> str:
    try:
        return csrf_token(context)  # type: ignore[arg-type]
    except KeyError:  # rendered outside a request (a part rendered for voix.cache)
        return ""


class FragmentCache(Extension):
    tags = {"cache", "cache_personal"}  # noqa: RUF012 — as jinja2.ext.Extension declares it

    def parse(self, parser: Parser) -> nodes.Node:
        tag = next(parser.stream)
        parts = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            parts.append(parser.parse_expression())
        body = parser.parse_statements((f"name:end{tag.value}",), drop_needle=True)
        call = self.call_method(
            "_cached",
            [nodes.List(parts), nodes.ContextReference(), nodes.Const(tag.value == "cache")],
        )
        return nodes.CallBlock(call, [], [], body).set_lineno(tag.lineno)

    def _cached(
        self, parts: list[Hashable], context: Context, shared: bool, caller: Callable[[], str]
    ) -> Any:
        if any(isinstance(part, Undefined) for part in parts):  # not named: not kept
            return Markup(caller())  # noqa: S704 — rendered by Jinja, escaped
        key = ("fragment", context.name, *parts, current_language.get())
        token = _token(context)
        kept_in = cache.pages if shared else cache.personal
        kept = kept_in.get(key)
        if kept is None:
            rendered = str(caller())
            if TOKEN_PLACEHOLDER in rendered:  # a reader wrote it (forms strip NUL): not kept
                return Markup(rendered)  # noqa: S704 — rendered by Jinja, escaped
            kept = rendered.replace(token, TOKEN_PLACEHOLDER) if token else rendered
            kept_in.put(key, kept, seconds=SECONDS)
        return Markup(kept.replace(TOKEN_PLACEHOLDER, token))  # noqa: S704 — as above
