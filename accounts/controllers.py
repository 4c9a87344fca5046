"""Signing up, in (with a second step for those who manage tables) and out; account security."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from accounts import cards, mail, mfa, mine, reset, rights, services, throttle
from accounts.throttle import Limit
from proposals.services import Page, page_number
from proposals.themes import THEMES
from tables import services as tables
from translations import services as content
from voix import i18n
from voix.forms import FormErrors, Message, UserError, clean_text, raw_limit
from voix.i18n import N_
from voix.permissions import Principal, signed_in
from voix.settings import get_settings
from voix.web import (
    SESSION_COOKIE,
    CardCode,
    ResetToken,
    absolute_url,
    form_data,
    page,
    redirect,
)

WRONG_CREDENTIALS = N_("This login and password do not match.")
UNKNOWN_LANGUAGE = N_("Choose one of the languages of the list.")
CARD_REFUSED = N_("This card code does not work. It may have been mistyped, or the card replaced.")


# What a browser removes from a URL before reading it (URL standard): every tab and newline,
# and C0 controls and spaces at either end. "/\t/evil.example" is "//evil.example" to it.
_URL_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))


def safe_next(target: str | None) -> str:
    """A path on this site, as the browser will read it; "/" for anything else (never an open
    redirect, whether in a Location header or a link's href)."""
    seen = (target or "").translate(_URL_TAB_OR_NEWLINE).strip(_C0_OR_SPACE)
    if (
        not seen.startswith("/")
        or seen.startswith("//")
        or "\\" in seen  # browsers read "\" as "/": "/\evil.example" is another host
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in seen)
    ):
        return "/"
    return seen


def with_session(response: Redirect | Template, token: str) -> Redirect | Template:
    response.cookies.append(
        Cookie(
            key=SESSION_COOKIE,
            value=token,
            path="/",
            httponly=True,
            samesite="lax",
            secure=get_settings().env == "production",
        )
    )
    return response


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@get("/login", name="login")
async def login_form(request: Request, principal: NamedDependency[Principal]) -> Template:
    return page(
        request,
        "accounts/login.html",
        next=safe_next(request.query_params.get("next")),
        mail_available=mail.available(),
    )


@post("/login")
async def login(request: Request) -> Template | Redirect:
    data = await form_data(request)
    target = safe_next(str(data.get("next") or ""))
    # Cleaned before any use: PostgreSQL refuses NUL bytes even in a throttle key.
    login_name = services.normalise_login(
        clean_text(str(data.get("login") or "")[: raw_limit(254)])
    )[:254]
    limits = (
        Limit(f"login:account:{login_name}", failures=5),
        Limit(f"login:client:{client_of(request)}", failures=30),
    )
    await throttle.attempt(*limits)  # counted before the password is checked
    user = await services.authenticate(login_name, str(data.get("password") or ""))
    if user is None:
        return page(
            request,
            "accounts/login.html",
            status_code=400,
            next=target,
            mail_available=mail.available(),
            errors={"login": Message(WRONG_CREDENTIALS)},
            values={"login": data.get("login") or ""},
        )
    await throttle.reset(limits[0])
    await throttle.forgive(limits[1])  # a meeting's residents sign in from one address
    token = await services.open_session(user.id)
    principal = await services.load_principal(token)
    if principal.privileged:
        # Managing a table needs the second step: enrol first if it is not set up yet.
        step = "/login/verify" if principal.totp_enabled else "/account"
        return with_session(redirect(f"{step}?next={target}", flash="signed_in"), token)
    return with_session(redirect(target, flash="signed_in"), token)


@get("/login/verify", name="login_verify")
async def verify_form(request: Request, principal: NamedDependency[Principal]) -> Template:
    signed_in(principal)
    return page(request, "accounts/verify.html", next=safe_next(request.query_params.get("next")))


@post("/login/verify")
async def verify(request: Request, principal: NamedDependency[Principal]) -> Template | Redirect:
    user_id = signed_in(principal)
    data = await form_data(request)
    target = safe_next(str(data.get("next") or ""))
    limits = (
        Limit(f"totp:account:{user_id}", failures=5),
        Limit(f"totp:client:{client_of(request)}", failures=20),
    )
    await throttle.attempt(*limits)  # counted before the code is checked
    if not await mfa.check_code(user_id, str(data.get("code") or "")):
        return page(
            request,
            "accounts/verify.html",
            status_code=400,
            next=target,
            errors={"code": Message(mfa.WRONG_CODE)},
        )
    await throttle.reset(limits[0])
    await throttle.forgive(limits[1])
    token = await services.rotate_session(request.cookies[SESSION_COOKIE], user_id, verified=True)
    return with_session(redirect(target, flash="verified"), token)


@get("/account", name="account")
async def account(request: Request, principal: NamedDependency[Principal]) -> Template:
    signed_in(principal)
    return await _account_page(request, principal)


async def _account_page(
    request: Request, principal: Principal, status_code: int = 200, **context: Any
) -> Template:
    user_id = signed_in(principal)
    me = await mine.profile(user_id)
    # Two-step sign-in protects the keys to a table: those who hold none are not asked to set
    # it up (nor is a key made for them). Someone who turned it on keeps the way to remove it.
    two_step = me["has_password"] and (principal.privileged or principal.totp_enabled)
    enrolment = None
    if two_step and not principal.totp_enabled:
        enrolment = await mfa.enrolment(user_id, me["login"])
    lists = [await mine.latest(mine.BY_KEY[key], user_id) for key in mine.ACTIVITY]
    # Questions and titles in the reader's language where a facilitator translated them.
    reader = i18n.current_language.get()
    for listing in lists:
        if listing.section.key == "votes_taken_part_in":
            await content.apply("vote", listing.items, reader, key="vote")
        elif listing.section.key == "meetings_attended":
            await content.apply("meeting", listing.items, reader, key="meeting")
    return page(
        request,
        "accounts/account.html",
        status_code=status_code,
        two_step=two_step,
        enrolment=enrolment,
        has_password=me["has_password"],
        language=me["language"],
        lists=lists,
        cards=await mine.latest(mine.BY_KEY["login_cards"], user_id, limit=CARDS_SHOWN),
        labels=_LABELS,
        next=safe_next(request.query_params.get("next")),
        **context,
    )


@post("/account/totp", name="totp_enable")
async def enable_totp(request: Request, principal: NamedDependency[Principal]) -> Template:
    user_id = signed_in(principal)
    data = await form_data(request)
    try:
        codes = await mfa.enable(principal, str(data.get("code") or ""))
    except UserError as refused:
        return await _account_page(
            request, principal, status_code=400, errors={"code": refused.message}
        )
    token = await services.rotate_session(request.cookies[SESSION_COOKIE], user_id, verified=True)
    response = page(
        request,
        "accounts/recovery_codes.html",
        codes=codes,
        next=safe_next(str(data.get("next") or "")),
    )
    return with_session(response, token)  # type: ignore[return-value]


@post("/account/totp/reset", name="totp_reset")
async def reset_totp(
    request: Request, principal: NamedDependency[Principal]
) -> Template | Redirect:
    user_id = signed_in(principal)
    data = await form_data(request)
    limit = Limit(f"totp:account:{user_id}", failures=5)
    await throttle.attempt(limit)
    try:
        await mfa.reset(principal, str(data.get("password") or ""), str(data.get("code") or ""))
    except UserError as refused:
        return await _account_page(
            request, principal, status_code=400, errors={"reset": refused.message}
        )
    await throttle.reset(limit)
    token = await services.rotate_session(request.cookies[SESSION_COOKIE], user_id, verified=False)
    return with_session(redirect("/account", flash="totp_reset"), token)


@post("/account/sign-out-everywhere", name="sign_out_everywhere")
async def sign_out_everywhere(request: Request, principal: NamedDependency[Principal]) -> Redirect:
    await form_data(request)
    await services.close_all_sessions(signed_in(principal))
    response = redirect("/", flash="signed_out_everywhere")
    response.cookies.append(Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/"))
    return response


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
    limit = Limit(f"signup:client:{client_of(request)}", failures=20)
    # Counts accounts made from this client: counted first, given back if none is made.
    await throttle.attempt(limit)
    try:
        user_id, slug = await services.sign_up(data, {t["slug"]: t["id"] for t in all_tables})
    except FormErrors as invalid:
        await throttle.forgive(limit)
        values = {k: v for k, v in data.items() if k != "password"}
        return page(
            request,
            "accounts/signup.html",
            status_code=400,
            tables=all_tables,
            errors=invalid.errors,
            values=values,
        )
    return with_session(
        redirect(f"/tables/{slug}", flash="signed_up"), await services.open_session(user_id)
    )


ROUTES = [
    login_form,
    login,
    verify_form,
    verify,
    account,
    enable_totp,
    reset_totp,
    sign_out_everywhere,
    logout,
    signup_form,
    signup,
]


@get("/card", name="card")
async def card_form(request: Request, principal: NamedDependency[Principal]) -> Template:
    return page(
        request, "accounts/card.html", code="", next=safe_next(request.query_params.get("next"))
    )


@get("/card/{code:str}", name="card_link")
async def card_link(
    request: Request, principal: NamedDependency[Principal], code: CardCode
) -> Template:
    # Only a confirmation page: a GET never signs in (link previews and prefetchers follow links).
    return page(request, "accounts/card.html", code=cards.normalise_code(code)[:32], next="/")


@post("/card")
async def card_sign_in(request: Request) -> Template | Redirect:
    data = await form_data(request)
    limit = Limit(f"card:client:{client_of(request)}", failures=10)
    await throttle.attempt(limit)  # counted before the code is looked up
    user_id = await cards.user_for_code(str(data.get("code") or ""))
    if user_id is None:
        return page(
            request,
            "accounts/card.html",
            status_code=400,
            code="",
            next=safe_next(str(data.get("next") or "")),
            errors={"code": Message(CARD_REFUSED)},
        )
    await throttle.forgive(limit)  # a meeting's residents sign in from one address
    target = safe_next(str(data.get("next") or ""))
    return with_session(
        redirect(target, flash="card_signed_in"),
        await services.open_session(user_id, by_card=True),
    )


ROUTES += [card_form, card_link, card_sign_in]


@get("/account/data.json", name="account_data")
async def my_data(principal: NamedDependency[Principal]) -> Response[dict]:
    data = await rights.export(principal)
    return Response(
        data,
        headers={
            "content-disposition": 'attachment; filename="mes-donnees-voix-des-quartiers.json"',
            "cache-control": "no-store",
        },
    )


@post("/account/erase", name="account_erase")
async def erase_account(
    request: Request, principal: NamedDependency[Principal]
) -> Template | Redirect:
    user_id = signed_in(principal)
    data = await form_data(request)
    password = str(data.get("password") or "") if await rights.has_password(user_id) else None
    if password is not None:
        # The same budget as signing in: a borrowed session must not guess the password here.
        await throttle.attempt(
            Limit(f"login:account:{await services.login_of(user_id)}", failures=5),
            Limit(f"login:client:{client_of(request)}", failures=30),
        )
    try:
        await rights.erase(principal, password, confirmed=data.get("confirm") == "yes")
    except UserError as refused:
        return await _account_page(
            request, principal, status_code=400, errors={"erase": refused.message}
        )
    response = redirect("/", flash="account_erased")
    response.cookies.append(Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/"))
    return response


# The words the pages of one's account and data show for stored values.
_LABELS = {
    "channel": mine.CHANNEL_LABELS,
    "attendance": mine.ATTENDANCE_LABELS,
    "role": mine.ROLE_LABELS,
    "vote_status": mine.VOTE_STATUS_LABELS,
    "field": mine.FIELD_LABELS,
}
CARDS_SHOWN = 5
DataPart = Annotated[str, PathParameter(pattern=r"^[a-z]{1,20}$")]


def _private(response: Template) -> Template:
    """Personal data: never kept by a browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


@get("/account/data", name="account_data_page")
async def my_data_page(request: Request, principal: NamedDependency[Principal]) -> Template:
    """The download of one's data, to read: every list, the newest first, a page of each."""
    user_id = signed_in(principal)
    lists = [await mine.latest(section, user_id) for section in mine.SECTIONS]
    return _private(
        page(
            request,
            "accounts/data.html",
            account=await mine.account(user_id),
            lists=lists,
            labels=_LABELS,
            themes=THEMES,
        )
    )


@get("/account/data/{part:str}", name="account_data_part")
async def my_data_part(
    request: Request, principal: NamedDependency[Principal], part: DataPart
) -> Template:
    """One list of one's data, whole, a page at a time."""
    user_id = signed_in(principal)
    section = mine.BY_SLUG.get(part)
    if section is None:
        raise NotFoundException()
    number = page_number(request.query_params.get("page"))
    items, total = await mine.page_of(section, user_id, number)
    listing = Page(items=items, number=number, total=total, size=mine.PAGE_SIZE)
    if number > listing.count:
        raise NotFoundException()
    return _private(
        page(
            request,
            "accounts/data_part.html",
            section=section,
            listing=listing,
            labels=_LABELS,
            themes=THEMES,
        )
    )


@post("/account/language", name="account_language")
async def my_language(
    request: Request, principal: NamedDependency[Principal]
) -> Template | Redirect:
    """The language one is written to in: the site (its cookie), one's card, the tablet."""
    user_id = signed_in(principal)
    data = await form_data(request)
    code = str(data.get("language") or "").strip()
    if code not in i18n.LANGUAGES:
        return await _account_page(
            request,
            principal,
            status_code=400,
            errors={"language": Message(UNKNOWN_LANGUAGE)},
        )
    await mine.set_language(user_id, code)
    # ?lang= has the site remember it too (voix.middleware), from this very page on.
    return redirect(f"/account?{urlencode({'lang': code})}#language-title")


ROUTES += [my_data, my_data_page, my_data_part, my_language, erase_account]


def _mail_or_404() -> None:
    if not mail.available():
        raise NotFoundException()  # no SMTP in production: the feature does not exist


@get("/password/forgot", name="password_forgot")
async def forgot_form(request: Request, principal: NamedDependency[Principal]) -> Template:
    _mail_or_404()
    return page(request, "accounts/forgot.html", sent=False)


@post("/password/forgot")
async def forgot(request: Request) -> Template:
    _mail_or_404()
    data = await form_data(request)
    email = clean_text(str(data.get("email") or "")[: raw_limit(254)]).lower()[:254]
    limits = (
        Limit(f"reset:client:{client_of(request)}", failures=10),
        Limit(f"reset:email:{email}", failures=3),
    )
    await throttle.attempt(*limits)  # every request counts: each may send an e-mail
    await reset.request_reset(email, absolute_url(""))
    # The same answer whether or not an account has this address.
    return page(request, "accounts/forgot.html", sent=True)


@get("/password/reset/{token:str}", name="password_reset")
async def reset_form(
    request: Request, principal: NamedDependency[Principal], token: ResetToken
) -> Template:
    _mail_or_404()
    valid = await reset.user_for_token(token) is not None
    return page(
        request, "accounts/reset.html", token=token, valid=valid, status_code=200 if valid else 400
    )


@post("/password/reset/{token:str}")
async def reset_password(request: Request, token: ResetToken) -> Template | Redirect:
    _mail_or_404()
    data = await form_data(request)
    try:
        user_id = await reset.reset_password(token, dict(data))
    except FormErrors as invalid:
        return page(
            request,
            "accounts/reset.html",
            token=token,
            valid=True,
            status_code=400,
            errors=invalid.errors,
        )
    if user_id is None:
        return page(request, "accounts/reset.html", token=token, valid=False, status_code=400)
    return redirect("/login", flash="password_changed")


ROUTES += [forgot_form, forgot, reset_form, reset_password]
