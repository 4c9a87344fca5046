"""The one place the application is assembled."""

from __future__ import annotations

import asyncio
import hmac
import logging
from urllib.parse import urlencode

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins import PluginProtocol
from litestar.plugins.core import MsgspecDIPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.template.config import TemplateConfig

from accounts.controllers import ROUTES as ACCOUNT_ROUTES
from audit.controllers import ROUTES as AUDIT_ROUTES
from audit.keys import check_key
from exports.compose import ROUTES as COMPOSE_ROUTES
from exports.controllers import ROUTES as EXPORT_ROUTES
from exports.data_controllers import ROUTES as DATA_ROUTES
from followup.controllers import ROUTES as FOLLOWUP_ROUTES
from help.controllers import ROUTES as HELP_ROUTES
from maps.controllers import ROUTES as MAP_ROUTES
from meetings.controllers import ROUTES as MEETING_ROUTES
from meetings.room_controllers import ROUTES as ROOM_ROUTES
from notifications.controllers import ROUTES as NOTIFICATION_ROUTES
from notifications.inbound import ROUTES as INBOUND_ROUTES
from notifications.message_controllers import ROUTES as MESSAGE_ROUTES
from proposals.controllers import ROUTES as PROPOSAL_ROUTES
from tables.controllers import ROUTES as TABLE_ROUTES
from tables.institutions import ROUTES as INSTITUTION_ROUTES
from tables.settings_controllers import ROUTES as SETTINGS_ROUTES
from translations import services as content
from translations.controllers import ROUTES as TRANSLATION_ROUTES
from voix import db, jobs, live, logs, metrics, opendata, workers
from voix.forms import Message, UserError
from voix.i18n import N_
from voix.middleware import MAX_FORM_FIELDS, edge
from voix.permissions import VerificationRequired
from voix.settings import get_settings
from voix.static import serve_static
from voix.web import (
    FORM_BODY_MAX,
    VoixRequest,
    before_every_route,
    environment,
    page,
    provide_principal,
    redirect,
)
from votes.controllers import ROUTES as VOTE_ROUTES

logger = logging.getLogger("voix")

ERROR_MESSAGES = {
    400: N_("Something in the request was not understood."),
    401: N_("Please sign in first."),
    403: N_("You are not allowed to do this."),
    404: N_("This page does not exist, or no longer exists."),
    405: N_("This action is not possible here."),
    413: N_("What you sent is too large."),
    500: N_("Something went wrong on our side. Your last action may not have been saved."),
}
CONFIRM_FIRST = N_("Confirm your identity with the code of your authentication app first.")
CSRF_EXPIRED = N_("This form has expired. Go back, reload the page and try again.")


RESTING = N_("The site is resting for a moment. Try again in a minute.")
RETRY_AFTER_SECONDS = 30


async def _no_hooks(request: Request) -> None:
    """Health answers whatever cookie comes with it: no session is read from the database."""


class _Readiness:
    """One readiness check at a time per process, shared by every request that asks while it
    runs: a burst of probes (a proxy, a monitor, anyone: the path is public) then costs one
    check, and none of them waits behind the others past its deadline."""

    def __init__(self) -> None:
        self._running: asyncio.Future[BaseException | None] | None = None

    async def check(self) -> BaseException | None:
        """None when the database is ready, else what it said."""
        running = self._running
        if (
            running is None
            or running.done()
            or running.get_loop() is not asyncio.get_running_loop()
        ):
            running = self._running = asyncio.ensure_future(self._probe())
        return await asyncio.shield(running)

    @staticmethod
    async def _probe() -> BaseException | None:
        try:
            await asyncio.wait_for(db.engine().ready(), timeout=db.READY_TIMEOUT)
        except Exception as problem:
            return problem
        return None


_readiness = _Readiness()


@get("/health/live", include_in_schema=False, before_request=_no_hooks)
async def health_live() -> Response[dict[str, str]]:
    """The process answers; an orchestrator restarts it when this fails, so no database here."""
    return Response({"status": "ok"})


@get(["/health", "/health/ready"], include_in_schema=False, before_request=_no_hooks)
async def health_ready() -> Response[dict[str, str]]:
    """The database answers a read and accepts a write, within READY_TIMEOUT, on a connection
    of its own. `/health` is the same check, the name the contract gave it first."""
    if (problem := await _readiness.check()) is not None:
        cause = db.outage_cause(problem) or problem
        db.outage.failed(cause)
        state = "read-only" if db.writes_refused(cause) else "unreachable"
        return Response(
            {"status": "error", "database": state},
            status_code=503,
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )
    db.outage.answered(wrote=True)
    return Response({"status": "ok", "database": "ok"})


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/schema", "/health"))


def error_page(request: Request, exc: Exception) -> Response:
    """Every refusal as a translated page (JSON for the API); nothing was changed."""
    if (cause := db.outage_cause(exc)) is not None:
        return _resting(request, cause)
    if isinstance(exc, UserError):
        status, message = exc.status_code, exc.message
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        if isinstance(exc, ClientException) and exc.detail == "Request Entity Too Large":
            status = 413  # Litestar says 400 for too many multipart parts (until its 3.0)
        csrf = status == 403 and "CSRF" in str(exc.detail)
        message = Message(CSRF_EXPIRED if csrf else ERROR_MESSAGES.get(status, ERROR_MESSAGES[400]))
    else:
        logger.exception("Unhandled error on %s", request.url.path, exc_info=exc)
        status, message = HTTP_500_INTERNAL_SERVER_ERROR, Message(ERROR_MESSAGES[500])
    if _wants_json(request):
        return Response(
            {"status_code": status, "detail": str(message)},
            status_code=status,
            media_type=MediaType.JSON,
        )
    principal = getattr(request.state, "principal", None)
    if isinstance(exc, VerificationRequired):
        step = "/login/verify" if principal is not None and principal.totp_enabled else "/account"
        if request.method == "GET":
            return redirect(f"{step}?{urlencode({'next': request.url.path}, safe='/')}")
        message = Message(CONFIRM_FIRST)
        return page(
            request, "errors/error.html", status_code=401, message=message, status=401, action=step
        )
    if isinstance(exc, NotAuthorizedException) and request.method == "GET":
        return redirect(f"/login?{urlencode({'next': request.url.path}, safe='/')}")
    if isinstance(exc, NotAuthorizedException):
        status = 401
    response = page(
        request, "errors/error.html", status_code=status, message=message, status=status
    )
    if retry_after := getattr(exc, "retry_after_seconds", None):
        response.headers["retry-after"] = str(retry_after)
    return response


def _resting(request: Request, cause: BaseException) -> Response:
    """The database is away (down, restarting, read-only, full): a 503 that says to come back,
    logged once per outage by db.outage, not once per request."""
    db.outage.failed(cause)
    message = Message(RESTING)
    response: Response
    if _wants_json(request):
        response = Response(
            {"status_code": 503, "detail": str(message)}, status_code=503, media_type=MediaType.JSON
        )
    else:
        # Coming back is the way out: a link to ask again (a GET only; a form is sent again
        # from its page), on the site itself (never "//host").
        path = request.url.path
        again = request.method == "GET" and not path.startswith("//")
        query = request.url.query
        retry = (path + (f"?{query}" if query else "")) if again else None
        response = page(
            request,
            "errors/error.html",
            status_code=503,
            message=message,
            status=503,
            retry=retry,
        )
    response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
    return response


async def _start_database() -> None:
    await db.engine().start()
    # `voix serve` checked already; this is for servers started otherwise (uvicorn, gunicorn).
    await check_key()


async def _stop_database() -> None:
    await content.flush_reads()  # the reads counted since the last write
    await db.engine().stop()


class App(Litestar):
    """Litestar without the plugins it adds by default for pydantic and attrs models: no
    handler takes or returns one, and importing them was 0.1–0.2 s of every start-up."""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        plugins.append(MsgspecDIPlugin())
        return plugins


def create_app() -> Litestar:
    logs.install()  # before uvicorn logs a request: card codes and reset tokens stay out
    settings = get_settings()
    csrf_secret = hmac.new(settings.secret_key, b"csrf", "sha256").hexdigest()
    app = App(
        route_handlers=[
            health_live,
            health_ready,
            metrics.metrics,
            opendata.router,
            serve_static,  # voix/static, hashed names (voix.static)
            *TABLE_ROUTES,
            *ACCOUNT_ROUTES,
            *PROPOSAL_ROUTES,
            *VOTE_ROUTES,
            *MEETING_ROUTES,
            *ROOM_ROUTES,
            *MAP_ROUTES,
            *AUDIT_ROUTES,
            *EXPORT_ROUTES,
            *HELP_ROUTES,
            *TRANSLATION_ROUTES,
            *COMPOSE_ROUTES,
            *INSTITUTION_ROUTES,
            *FOLLOWUP_ROUTES,
            *DATA_ROUTES,
            *SETTINGS_ROUTES,
            *NOTIFICATION_ROUTES,
            *INBOUND_ROUTES,
            *MESSAGE_ROUTES,
        ],
        # The HTML pages stay out of the open-data schema (opendata.router says it is in). They
        # are registered here, not in a Router of their own: Litestar deep-copies a router as
        # it registers it, 0.1–0.2 s of every start-up for 170 routes.
        include_in_schema=False,
        dependencies={"principal": Provide(provide_principal)},
        before_request=before_every_route,
        csrf_config=CSRFConfig(
            secret=csrf_secret,
            cookie_secure=settings.production,
            cookie_httponly=True,  # no script reads it: forms carry the token
            # Litestar searches these patterns anywhere in the path: anchor them.
            # No cookie on static files (voix.static): they are the same for everyone.
            exclude=["^/api/", "^/health(/live|/ready)?$", "^/schema/", "^/static/"],
        ),
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment())),
        # Forms are small; the routes that take more (uploads, minutes) say so themselves.
        request_max_body_size=FORM_BODY_MAX,
        multipart_form_part_limit=MAX_FORM_FIELDS,
        exception_handlers={
            HTTPException: error_page,
            UserError: error_page,
            PermissionDeniedException: error_page,
            Exception: error_page,
        },
        request_class=VoixRequest,  # before HTMXPlugin, which sets its own when none is
        plugins=[HTMXPlugin(), live.channels_plugin()],
        openapi_config=OpenAPIConfig(
            title="Voix des Quartiers — open data",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        # The CPU workers start (and import WeasyPrint, folium) with the app, not with the first
        # PDF; test servers start often and render rarely, so there they start on first use.
        on_startup=[
            _start_database,
            jobs.start,  # off in tests unless VOIX_JOBS=1
            *(() if settings.env == "test" else (workers.warm_up,)),
        ],
        on_shutdown=[jobs.stop, _stop_database, workers.shutdown],
        debug=False,
        # voix serve configures logging (voix.logs.config): every line in one format.
        logging_config=None,
    )
    # Around the whole app, so that 404, 405 and static files get the host check and the
    # headers too (the `middleware=` list only wraps matched routes).
    app.asgi_handler = edge(app.asgi_handler)
    return app
