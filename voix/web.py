"""Pages: the Jinja environment, the one way handlers render, redirects and flash notes."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    pass_eval_context,
    select_autoescape,
)
from jinja2.environment import TemplateModule
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request
from litestar.connection.base import empty_receive, empty_send
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.plugins.htmx import HTMXDetails, HTMXRequest
from litestar.response import Redirect
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send
from markupsafe import Markup

from accounts.services import load_principal
from proposals.discussion import STATUS_LABELS
from proposals.themes import THEMES
from tables.services import organisation_scope
from voix import i18n
from voix.forms import Message, ascii_slug
from voix.fragments import FragmentCache
from voix.i18n import N_
from voix.permissions import ANONYMOUS, Principal, can
from voix.settings import PROJECT_ROOT, get_settings
from voix.static import static_url


class VoixRequest(HTMXRequest):
    """The app's request: HTMXRequest without its reference cycle.

    HTMXRequest keeps `self.htmx = HTMXDetails(self)`, and HTMXDetails keeps the request: each
    request (its scope, headers, send wrappers: ~115 objects) then waited for the cyclic
    garbage collector instead of going when answered, and a full collection (5–11 ms with the
    loop stopped) ran about every 2 seconds in each worker under load. Here `htmx` is made
    when read, and nothing the request holds points back at it.
    """

    __slots__ = ()

    def __init__(
        self, scope: Scope, receive: Receive = empty_receive, send: Send = empty_send
    ) -> None:
        Request.__init__(self, scope=scope, receive=receive, send=send)

    @property
    def htmx(self) -> HTMXDetails:  # type: ignore[override]
        return HTMXDetails(self)


# Path parameters, bounded: an id beyond PostgreSQL's integer or a slug with odd bytes is
# refused before any query (it used to reach the database and fail there).
MAX_ID = 2**31 - 1
ObjectId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Slug = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
CardCode = Annotated[str, PathParameter(pattern=r"^[0-9A-Za-z-]{1,40}$")]
ResetToken = Annotated[str, PathParameter(pattern=r"^[0-9]{1,10}\.[0-9]{1,12}\.[0-9a-f]{32}$")]

# Request bodies. Every form fits in FORM_BODY_MAX, even in Arabic (6 bytes a letter once
# url-encoded); the minutes (50,000 characters) and uploads say more on their own routes.
FORM_BODY_MAX = 128 * 1024
LONG_FORM_BODY_MAX = 1024 * 1024


def _reads_as_int(segment: str) -> bool:
    try:
        int(segment)
    except ValueError:
        return False
    return True


async def one_address_per_object(request: Request) -> None:
    """Refuses (404) a path segment that Litestar's `{…:int}` would read but that is not plain
    ASCII digits: int() takes "١", "１", "+1", " 1", "1_0" and "01", so one proposal had many
    addresses. An app-wide hook, so no route can forget it."""
    for segment in request.scope["path"].split("/"):
        plain = segment.isascii() and segment.isdigit() and not segment.startswith("0")
        if segment and not plain and _reads_as_int(segment):
            raise NotFoundException()


_TABLET_PAGES = re.compile(
    r"^/votes/(\d+)/tablet(?:/(?:ballot|ballot/review|done|hand|language|quit|unlock))?$"
)


async def tablet_guard(request: Request) -> Redirect | None:
    """A session turned into a shared tablet (meetings.room) reaches the tablet's pages of its
    vote and nothing else: every other address leads back to the tablet's list. Only the
    facilitator's code ends it, or their losing the right to run the room (load_principal
    signs the tablet out then, whatever took that right). An app-wide hook, so no route can
    forget it."""
    path = request.scope["path"]
    if path.startswith("/static/") or not request.cookies.get(SESSION_COOKIE):
        return None
    if path.startswith("/media/") and request.method in ("GET", "HEAD"):
        return None  # the photos and voice notes of the proposals on the ballot
    principal = await provide_principal(request)
    if principal.tablet_vote is None:
        return None
    matched = _TABLET_PAGES.match(path)
    if matched and int(matched.group(1)) == principal.tablet_vote:
        return None
    return Redirect(
        path=f"/votes/{principal.tablet_vote}/tablet", status_code=303, media_type=MediaType.TEXT
    )


async def before_every_route(request: Request) -> Redirect | None:
    """What every matched route goes through first."""
    await one_address_per_object(request)
    return await tablet_guard(request)


DOMAINS = (
    "voix", "accounts", "tables", "maps", "proposals", "votes", "meetings", "exports", "audit",
    "help", "translations", "followup", "notifications",
)  # fmt: skip
SESSION_COOKIE = "voix_session"
FLASH_COOKIE = "voix_flash"

# Flash notes are keys into this table, so a cookie can carry nothing but known text.
FLASH_MESSAGES = {
    "signed_in": N_("Welcome! You are signed in."),
    "signed_out": N_("You are signed out."),
    "signed_up": N_("Your account is ready. Welcome to the table!"),
    "joined": N_("You have joined this table."),
    "proposal_created": N_("Thank you! Your proposal has been added."),
    "proposal_recorded": N_("The proposal has been recorded on the resident's behalf."),
    "vote_opened": N_("The vote is open."),
    "vote_closed": N_("The vote is closed; the results are published."),
    "decision_recorded": N_("The table's decision has been recorded."),
    "brief_published": N_("The position document has been published."),
    "verified": N_("Identity confirmed. You can act for your table."),
    "totp_reset": N_("Two-step sign-in has been removed. Set it up again to act for your table."),
    "signed_out_everywhere": N_("You are signed out on every device."),
    "account_erased": N_("Your account is erased. Your proposals stay, signed “a resident”."),
    "role_changed": N_("The role has been changed."),
    "password_changed": N_("Your password is changed. You can sign in with it."),
    "card_revoked": N_("The card is revoked: it no longer signs anyone in."),
    "card_signed_in": N_("Welcome! You are signed in with your card."),
    "supported": N_("You support this proposal."),
    "support_withdrawn": N_("Your support is withdrawn."),
    "commented": N_("Your comment is published."),
    "supported_on_behalf": N_("The support is recorded on the resident's behalf."),
    "support_withdrawn_on_behalf": N_("The resident's support is withdrawn."),
    "commented_on_behalf": N_("The comment is published on the resident's behalf."),
    "reported": N_("Thank you. The facilitators will look at it."),
    "moderated": N_("Done. The journal keeps a trace of it."),
    "status_changed": N_("The status is changed; the history keeps who, when and why."),
    "translated": N_("The translation is saved."),
    "transcribed": N_("The transcription is saved."),
    "merged": N_("The duplicate is merged: its supports and comments are on the proposal kept."),
    "meeting_scheduled": N_("The meeting is scheduled. It appears in the table's calendar."),
    "meeting_updated": N_("The meeting is changed. The calendar follows."),
    "meeting_opened": N_("The meeting has started: check-in is open."),
    "meeting_closed": N_("The meeting is closed. You can now write the minutes."),
    "meeting_cancelled": N_("The meeting is cancelled. The calendar says so."),
    "meeting_reopened": N_("The meeting is open again: check-in and the room are back."),
    "checked_in": N_("You are checked in. Welcome!"),
    "minutes_saved": N_("The draft is saved."),
    "minutes_published": N_("The minutes are published."),
    "legal_saved": N_("The text is saved. The page shows it from now on."),
    "brief_saved": N_("The draft of the document is saved. Nothing is published yet."),
    "answer_recorded": N_("The answer is recorded; the follow-up shows it."),
    "delay_saved": N_("The delay is saved: overdue answers are counted with it."),
    "institutions_saved": N_("The list of institutions is saved."),
    "photo_consent_saved": N_("Saved: the documents for institutions follow this choice."),
}


def _translations_gettext(message: str) -> str:
    return i18n.catalog(i18n.current_language.get()).gettext(message)


def _translations_ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.catalog(i18n.current_language.get()).ngettext(singular, plural, n)


# What templates call for `_()`, `gettext()` and `{% trans %}`: what Jinja's newstyle gettext
# does (translated, marked safe where the template autoescapes, then formatted with its escaped
# variables), in one call. Jinja's own goes through three, each checking what its function
# asks for: a twentieth of a small page's time.
@pass_eval_context
def _gettext(eval_context: EvalContext, message: str, /, **variables: Any) -> str:
    return _formatted(eval_context, _translations_gettext(message), variables)


@pass_eval_context
def _ngettext(
    eval_context: EvalContext, singular: str, plural: str, n: int, /, **variables: Any
) -> str:
    variables.setdefault("num", n)
    return _formatted(eval_context, _translations_ngettext(singular, plural, n), variables)


def _formatted(eval_context: EvalContext, translated: str, variables: dict[str, Any]) -> str:
    # The catalog's text is ours, as Jinja's newstyle gettext takes it; the variables escape.
    return (Markup(translated) if eval_context.autoescape else translated) % variables  # noqa: S704


class _Languages:
    """The languages of the site, for templates to loop over; their names are read from Babel's
    locale data when first shown, not when the app starts (0.1 s of its start-up)."""

    def __iter__(self) -> Iterator[i18n.Language]:
        return (i18n.language(code) for code in i18n.LANGUAGES)


# The contexts made while a page renders (see _Template), to take apart once it has.
_RENDERING: ContextVar[list[Context] | None] = ContextVar("voix_rendering", default=None)


class _Template(Template):
    """A template whose contexts, made while a page renders, are taken apart once it has.

    A context's variables hold its template's macros, and each macro holds the context: a
    reference cycle, so the context, the page's variables and the request they hold (~200
    objects a proposal page) waited for Python's cyclic collector instead of going when the
    page was sent (see VoixRequest)."""

    def new_context(self, *args: Any, **kwargs: Any) -> Context:
        context = super().new_context(*args, **kwargs)
        if (made := _RENDERING.get()) is not None:
            made.append(context)
        return context

    def make_module(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> TemplateModule:
        if shared:  # `import … with context`: made for this page alone
            return super().make_module(vars, shared, locals)
        # An import without context: the module Jinja keeps for every later page (or, were a
        # page to add globals, one made for it alone, which would then merely stay garbage).
        token = _RENDERING.set(None)
        try:
            return super().make_module(vars, shared, locals)
        finally:
            _RENDERING.reset(token)


class _Page(HTMXBlockTemplate):
    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        made: list[Context] = []
        token = _RENDERING.set(made)
        try:
            return super().to_asgi_response(*args, **kwargs)
        finally:
            _RENDERING.reset(token)
            for context in made:
                context.vars.clear()  # the page is rendered: nothing reads them again


class _Environment(Environment):
    """Jinja's environment, whose templates share its globals as they are: no template here has
    globals of its own. Jinja gives each template a ChainMap over them instead, read key by key
    in Python at each page (a new context copies it, an `import` compares its keys): a twentieth
    of a small page's time."""

    template_class = _Template

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return super().make_globals(d) if d else self.globals

    def _load_template(self, name: Any, globals: MutableMapping[str, Any] | None) -> Any:
        # Jinja adds the globals given for a template already loaded to that template's own,
        # which here are the environment's: every template would see them.
        if globals:
            raise TypeError("Templates take no globals of their own here: pass a context.")
        return super()._load_template(name, globals)


def build_environment() -> Environment:
    env = _Environment(
        loader=FileSystemLoader([PROJECT_ROOT / domain / "templates" for domain in DOMAINS]),
        autoescape=select_autoescape(["html", "svg"]),
        extensions=["jinja2.ext.i18n", FragmentCache],
        undefined=StrictUndefined,
        # Templates change with a deployment, which restarts the process; looking for changes
        # costs a stat() of each template at each page (a tenth of a page's time), so only
        # `make run`'s development server does.
        auto_reload=get_settings().env == "development",
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Jinja formats newstyle gettext itself (with autoescaping), so it gets the raw lookups.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _translations_gettext, _translations_ngettext, newstyle=True
    )
    env.globals.update(_=_gettext, gettext=_gettext, ngettext=_ngettext)
    env.filters["date"] = i18n.date
    env.filters["datetime"] = i18n.datetime
    env.filters["time"] = i18n.time
    env.filters["direction"] = i18n.direction
    # User-written text inside a translated sentence: isolated, so a French name in an Arabic
    # sentence (or the reverse) keeps its own order and does not reorder the sentence around it.
    env.filters["bdi"] = lambda text: Markup("<bdi>{}</bdi>").format(text)
    env.filters["css_name"] = ascii_slug  # a class name for a label: "Très bien" → "tres-bien"
    env.globals["can"] = can
    env.globals["static_url"] = static_url  # "/static/app.<hash8>.css", kept a year (voix.static)
    env.globals["organisation_scope"] = organisation_scope
    env.globals["languages"] = _Languages()
    env.globals["language_name"] = i18n.language_name
    env.globals["status_labels"] = STATUS_LABELS  # msgids, translated where shown
    env.globals["themes_colours"] = {slug: theme.colour for slug, theme in THEMES.items()}
    return env


@functools.cache
def environment() -> Environment:
    """The one Jinja environment of the process: the app renders pages with it, and the parts
    of pages kept in voix.cache are rendered with it too."""
    return build_environment()


def language_url(request: Request, code: str) -> str:
    """The same page in another language: a query-only URL, so it cannot leave the site.

    A page that answers a form (an error, a receipt) has no address to show again: its
    links lead to the page the form was sent from (the Referer's path, never its host), or
    home, where a GET of the form's address would only be refused."""
    if request.method in ("GET", "HEAD"):
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        return "?" + urlencode({**query, "lang": code})
    back = urlsplit(request.headers.get("referer") or "")
    path = back.path if back.path.startswith("/") and not back.path.startswith("//") else "/"
    query = {k: v for k, v in parse_qsl(back.query) if k != "lang"}
    return path + "?" + urlencode({**query, "lang": code})


def page(
    request: Request,
    template: str,
    *,
    block: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMXBlockTemplate:
    """The page, or only `block` of it: htmx asks for fragments, browsers for pages."""
    flash_key = request.cookies.get(FLASH_COOKIE)
    flash = FLASH_MESSAGES.get(flash_key or "")
    lang = i18n.language(i18n.current_language.get())
    response = _Page(
        template_name=template,
        block_name=block,
        status_code=status_code,
        # Said, not guessed from the template's name at each page (pathlib and mimetypes).
        media_type=MediaType.HTML if template.endswith(".html") else None,
        context={
            "principal": getattr(request.state, "principal", ANONYMOUS),
            "lang": lang,
            "language_url": lambda code: language_url(request, code),
            # What the language links depend on (language_url), for the header kept in cache.
            "here": request.scope["query_string"]
            if request.method in ("GET", "HEAD")
            else ("referer", request.headers.get("referer")),
            "flash": Message(flash) if flash else None,
            "errors": {},
            "values": {},
            **context,
        },
    )
    if flash_key:
        response.cookies.append(Cookie(key=FLASH_COOKIE, value="", max_age=0, path="/"))
    return response


def absolute_url(path: str) -> str:
    """The one way to build a link that leaves the page (e-mail, calendar, poster, QR code):
    from VOIX_BASE_URL, never from the request's Host header, which the client chooses."""
    if path and not path.startswith("/"):
        raise ValueError(f"absolute_url takes a path from the site's root, not {path!r}")
    return get_settings().base_url + path


def redirect(path: str, flash: str | None = None) -> Redirect:
    """After a successful form, the browser is sent on with a GET (post/redirect/get)."""
    response = Redirect(path=path, status_code=303)
    if flash:
        if flash not in FLASH_MESSAGES:
            raise KeyError(f"unknown flash message {flash!r}")
        response.cookies.append(
            Cookie(
                key=FLASH_COOKIE, value=flash, max_age=60, path="/", httponly=True, samesite="lax"
            )
        )
    return response


async def provide_principal(request: Request) -> Principal:
    """Who asks, loaded once per request (the tablet guard may have loaded it already)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = await load_principal(request.cookies.get(SESSION_COOKIE))
        request.state.principal = principal
    return principal


async def form_data(request: Request, *lists: str) -> dict[str, Any]:
    """The submitted fields; those named in `lists` (checkboxes) as lists of every value."""
    form = await request.form()
    data: dict[str, Any] = {key: form.get(key) for key in form}
    for key in lists:
        data[key] = form.getall(key, [])
    return data
