"""Signing up, in and out."""

from __future__ import annotations

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from accounts import services
from tables import services as tables
from voix.forms import FormErrors, Message
from voix.i18n import N_
from voix.permissions import Principal
from voix.settings import get_settings
from voix.web import SESSION_COOKIE, form_data, page, redirect

WRONG_CREDENTIALS = N_("This login and password do not match.")


def _safe_next(target: str | None) -> str:
    """Only paths on this site: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _signed_in(target: str, token: str, flash: str) -> Redirect:
    response = redirect(target, flash=flash)
    response.cookies.append(
        Cookie(
            key=SESSION_COOKIE,
            value=token,
            path="/",
            httponly=True,
            samesite="lax",
            secure=get_settings().production,
        )
    )
    return response


@get("/login", name="login")
async def login_form(request: Request, principal: NamedDependency[Principal]) -> Template:
    return page(request, "accounts/login.html", next=_safe_next(request.query_params.get("next")))


@post("/login")
async def login(request: Request) -> Template | Redirect:
    data = await form_data(request)
    target = _safe_next(str(data.get("next") or ""))
    user = await services.authenticate(
        str(data.get("login") or ""), str(data.get("password") or "")
    )
    if user is None:
        return page(
            request,
            "accounts/login.html",
            status_code=400,
            next=target,
            errors={"login": Message(WRONG_CREDENTIALS)},
            values={"login": data.get("login") or ""},
        )
    return _signed_in(target, await services.open_session(user.id), "signed_in")


@post("/logout", name="logout")
async def logout(request: Request) -> Redirect:
    await form_data(request)
    if token := request.cookies.get(SESSION_COOKIE):
        await services.close_session(token)
    response = redirect("/", flash="signed_out")
    response.cookies.append(Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/"))
    return response


@get("/signup", name="signup")
async def signup_form(request: Request, principal: NamedDependency[Principal]) -> Template:
    return page(
        request,
        "accounts/signup.html",
        tables=await tables.list_tables(),
        values={"table": request.query_params.get("table", "")},
    )


@post("/signup")
async def signup(request: Request) -> Template | Redirect:
    data = await form_data(request)
    all_tables = await tables.list_tables()
    try:
        user_id, slug = await services.sign_up(data, {t["slug"]: t["id"] for t in all_tables})
    except FormErrors as invalid:
        values = {k: v for k, v in data.items() if k != "password"}
        return page(
            request,
            "accounts/signup.html",
            status_code=400,
            tables=all_tables,
            errors=invalid.errors,
            values=values,
        )
    return _signed_in(f"/tables/{slug}", await services.open_session(user_id), "signed_up")


ROUTES = [login_form, login, logout, signup_form, signup]
