"""Trust at the edge of a request: the Host header, the client's address, the size of what is
sent, where `next` may lead, and the headers of every response (issue 9)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from PIL import Image

from accounts.controllers import safe_next
from accounts.models import Session, Throttle, User
from meetings import calendar
from meetings.models import Minutes
from proposals.models import Proposal
from tests.factories import build_world, csrf_token, post_form, sign_in, t
from tests.servers import free_port, wait_ready
from tests.test_meetings import pdf_text, schedule, start
from voix import jobs
from voix.middleware import CONTENT_SECURITY_POLICY, MAX_FORM_FIELDS, client_address
from voix.settings import PROJECT_ROOT, ConfigurationError, get_settings, parse_base_url
from voix.web import FORM_BODY_MAX

SITE = "https://voix.example.org"


@pytest.fixture
def setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Changes environment variables for this test; settings are read again, then restored."""

    def change(**variables: str | None) -> None:
        for name, value in variables.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()


# 1. The Host header, and the one base URL of every absolute link


FORGED_HOSTS = [
    "localhost:@evil.example",  # user info: "localhost" before the first ':'
    "evil.example@localhost",
    "localhost:x",  # was a 500
    "localhost:99999",
    "localhost:",
    "localhost:80:80",
    "localhost, evil.example",  # two hosts
    "localhost evil.example",  # a space
    "local host",
    "localhost/evil.example",
    "localhost\\evil.example",
    "localhost?x",
    "localhost#x",
    "[::1",
    "[not-ipv6]",
    ".",
    "localhost..",
    "",
    "evil.example",
]


@pytest.mark.parametrize("path", ["/health", "/tables", "/no-such-page", "/static/app.css"])
async def test_forged_host_headers_are_refused(client, path: str) -> None:
    for host in FORGED_HOSTS:
        response = await client.get(path, headers={"host": host})
        assert response.status_code == 400, (host, path, response.status_code)
        assert response.text == t("This site does not answer to that address.")
        assert response.headers["x-frame-options"] == "DENY"


async def test_two_host_headers_are_refused(client) -> None:
    both_allowed = [("host", "localhost"), ("host", "testserver.local")]
    response = await client.get("/health", headers=both_allowed)
    assert response.status_code == 400


async def test_the_host_refusal_is_in_the_visitor_s_language(client) -> None:
    response = await client.get("/", headers={"host": "localhost:x", "accept-language": "ar"})
    assert response.status_code == 400
    assert response.text == t("This site does not answer to that address.", "ar")


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8000", "127.0.0.1:65535", "[::1]:8000", "testserver.local."]
)
async def test_allowed_hosts_still_answer(client, host: str) -> None:
    assert (await client.get("/health", headers={"host": host})).status_code == 200


async def test_the_base_url_s_host_is_allowed_without_being_listed(client, setting) -> None:
    setting(VOIX_BASE_URL=f"{SITE}/", VOIX_ALLOWED_HOSTS="localhost")
    assert get_settings().base_url == SITE
    assert (await client.get("/health", headers={"host": "voix.example.org"})).status_code == 200
    assert (await client.get("/health", headers={"host": "localhost"})).status_code == 200
    assert (await client.get("/health", headers={"host": "testserver.local"})).status_code == 400


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://Voix.Example.org", "https://voix.example.org"),
        ("https://voix.example.org/", "https://voix.example.org"),
        ("HTTP://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_the_base_url_is_scheme_host_and_port(given: str, kept: str) -> None:
    assert parse_base_url(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        "voix.example.org",
        "ftp://voix.example.org",
        "https://",
        "https://user@voix.example.org",
        "https://voix.example.org:@evil.example",
        "https://voix.example.org/quartiers",
        "https://voix.example.org?x=1",
        "https://voix.example.org#top",
        "https://voix.example.org:99999",
        "https://voix.example.org:x",
        "https://voix example.org",
        "javascript:alert(1)",
    ],
)
def test_a_base_url_that_is_not_one_is_refused(given: str) -> None:
    with pytest.raises(ConfigurationError, match="VOIX_BASE_URL"):
        parse_base_url(given)


def test_production_requires_a_base_url(setting) -> None:
    setting(VOIX_ENV="production", VOIX_ALLOWED_HOSTS="voix.example.org", VOIX_BASE_URL=None)
    with pytest.raises(ConfigurationError, match="VOIX_BASE_URL is required in production"):
        get_settings()


def test_development_derives_the_base_url_from_the_port(setting) -> None:
    setting(VOIX_ENV="development", VOIX_BASE_URL=None, VOIX_PORT="8123")
    assert get_settings().base_url == "http://127.0.0.1:8123"


async def test_the_reset_link_uses_the_base_url_not_the_host_asked(client, setting, caplog):
    setting(VOIX_BASE_URL=SITE)
    world = await build_world()
    await User.update({User.email: "samira@example.org"}).where(
        User.id == world.users["resident_a"]
    )
    with caplog.at_level(logging.INFO, logger="voix.mail"):
        response = await post_form(
            client,
            "/password/forgot",
            {"email": "samira@example.org"},
            headers={"host": "localhost"},
        )
        assert response.status_code == 200
        await jobs.Runner().run_due()  # the e-mail leaves from the job queue
    (mail,) = [r.getMessage() for r in caplog.records if r.name == "voix.mail"]
    assert re.search(rf"{re.escape(SITE)}/password/reset/[0-9]+\.[0-9]+\.[0-9a-f]+", mail)
    assert "localhost" not in mail
    assert "testserver.local" not in mail


async def test_calendar_poster_and_room_screen_use_the_base_url(client, setting) -> None:
    setting(VOIX_BASE_URL=SITE)
    world = await build_world()
    meeting_id = await schedule(client, world)
    asked = {"host": "localhost"}  # another name the site answers to

    feed = await client.get("/tables/flamants-iris/meetings.ics", headers=asked)
    (event,) = Calendar.from_ical(feed.content).walk("VEVENT")
    assert str(event["url"]) == f"{SITE}/meetings/{meeting_id}"
    assert str(event["uid"]) == f"meeting-{meeting_id}@voix.example.org"
    page = await client.get("/tables/flamants-iris/meetings", headers=asked)
    assert f"{SITE}/tables/flamants-iris/meetings.ics" in page.text

    poster = await client.get(f"/meetings/{meeting_id}/poster.pdf", headers=asked)
    printed = "".join(pdf_text(poster.content).split())  # the URL may wrap
    assert f"{SITE}/meetings/{meeting_id}" in printed

    await start(client, meeting_id)
    screen = await client.get(f"/meetings/{meeting_id}/screen", headers=asked)
    target = f"{SITE}/meetings/{meeting_id}/check-in"
    assert calendar.qr_data_uri(target) in screen.text
    assert "localhost" not in screen.text


def card_url_instead_of_pdf(**card: Any) -> bytes:
    """Stands in for the card's renderer (in a worker process, so a top-level function)."""
    return str(card["url"]).encode()


async def test_the_login_card_s_qr_code_uses_the_base_url(client, setting, monkeypatch) -> None:
    import tables.controllers

    setting(VOIX_BASE_URL=SITE)
    world = await build_world()
    monkeypatch.setattr(tables.controllers, "render_login_card", card_url_instead_of_pdf)
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        "/tables/flamants-iris/residents",
        {"display_name": "Fatou", "language": "fr", "consent": "yes"},
        headers={"host": "localhost"},
    )
    assert response.status_code == 200
    assert re.fullmatch(rf"{re.escape(SITE)}/card[/#][0-9A-Za-z]+", response.text), response.text


def test_no_module_builds_a_url_from_the_request_s_host() -> None:
    sources = [
        path
        for folder in ("voix", "accounts", "tables", "maps", "proposals", "votes", "meetings")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sources
        if re.search(
            r"request\.(base_url|url\.(netloc|hostname|port)|headers\.get\(.host|headers\[.host)",
            path.read_text(),
        )
    ]
    assert offenders == [], "absolute links come from voix.web.absolute_url"


# 2. The client's address


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.5", ["198.51.100.7"], "", "203.0.113.5"),  # nobody trusted
        ("203.0.113.5", ["198.51.100.7"], "127.0.0.1", "203.0.113.5"),  # peer not a proxy
        ("127.0.0.1", ["198.51.100.7"], "127.0.0.1", "198.51.100.7"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], "127.0.0.1", "198.51.100.7"),  # forged left
        ("127.0.0.1", ["6.6.6.6", "198.51.100.7"], "127.0.0.1", "198.51.100.7"),  # two headers
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7, 10.0.0.9"], "10.0.0.0/8", "198.51.100.7"),
        ("10.0.0.2", ["10.0.0.7, 10.0.0.9"], "10.0.0.0/8", "10.0.0.7"),  # all trusted
        ("10.0.0.2", ["198.51.100.7, garbage, 10.0.0.9"], "10.0.0.0/8", "10.0.0.9"),
        ("10.0.0.2", [""], "10.0.0.0/8", "10.0.0.2"),
        ("10.0.0.2", [], "10.0.0.0/8", "10.0.0.2"),
        ("::ffff:10.0.0.2", ["2001:db8::1"], "10.0.0.0/8", "2001:db8::1"),
        ("unix-socket", ["198.51.100.7"], "10.0.0.0/8", "unix-socket"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded: list[str], trusted: str, client: str
) -> None:
    networks = tuple(ip_network(n) for n in trusted.split(",") if n)
    assert client_address(peer, forwarded, networks) == client


def test_trusted_proxies_are_addresses_or_networks(setting) -> None:
    setting(VOIX_TRUSTED_PROXIES=" 127.0.0.1, 10.0.0.0/8 ,::1")
    assert [str(n) for n in get_settings().trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    setting(VOIX_TRUSTED_PROXIES="10.0.0.0/8, proxy.local")
    with pytest.raises(ConfigurationError, match=r"proxy\.local"):
        get_settings()


async def throttle_keys(kind: str) -> list[str]:
    rows = await Throttle.select(Throttle.key).where(Throttle.key.like(f"{kind}:%"))
    return sorted(row["key"] for row in rows)


async def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(client, setting) -> None:
    setting(VOIX_TRUSTED_PROXIES="127.0.0.1")  # the test client connects as 127.0.0.1
    for forged in ("6.6.6.6", "7.7.7.7"):
        response = await post_form(
            client,
            "/login",
            {"login": "nobody", "password": "wrong password"},
            headers={"x-forwarded-for": f"{forged}, 198.51.100.7"},
        )
        assert response.status_code == 400
    assert await throttle_keys("login:client") == ["login:client:198.51.100.7"]


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(client) -> None:
    await post_form(
        client,
        "/login",
        {"login": "nobody", "password": "wrong password"},
        headers={"x-forwarded-for": "198.51.100.7"},
    )
    assert await throttle_keys("login:client") == ["login:client:127.0.0.1"]


@contextmanager
def server(**variables: str) -> Iterator[tuple[str, list[str]]]:
    """`voix serve` as deployed (uvicorn, its access log); the log lines once it has stopped."""
    port = free_port()
    url, lines = f"http://127.0.0.1:{port}", []
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voix.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, **variables},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(url, process, log)
            yield url, lines
        finally:
            process.terminate()
            process.wait(timeout=15)
            log.seek(0)
            lines.extend(log.read().decode(errors="replace").splitlines())


def failed_sign_ins(url: str, count: int, forwarded_for: Any) -> list[int]:
    with httpx.Client(base_url=url) as browser:
        browser.get("/login")
        token = browser.cookies["csrftoken"]
        return [
            browser.post(
                "/login",
                data={"login": f"nobody-{n}", "password": "wrong password", "_csrf_token": token},
                headers={"x-forwarded-for": forwarded_for(n)},
            ).status_code
            for n in range(count)
        ]


async def test_a_rotated_x_forwarded_for_does_not_escape_the_throttle() -> None:
    """Through uvicorn, as deployed: it once believed X-Forwarded-For from any local client."""
    with server() as (url, _):
        statuses = failed_sign_ins(url, 31, lambda n: f"203.0.113.{n}")
    assert statuses == [400] * 30 + [429]
    assert await throttle_keys("login:client") == ["login:client:127.0.0.1"]


async def test_the_access_log_and_the_throttle_see_the_same_client() -> None:
    with server(VOIX_TRUSTED_PROXIES="127.0.0.1") as (url, log):
        failed_sign_ins(url, 1, lambda n: "6.6.6.6, 198.51.100.7")
    assert await throttle_keys("login:client") == ["login:client:198.51.100.7"]
    (line,) = [line for line in log if '"POST /login' in line]
    assert "198.51.100.7" in line
    assert "6.6.6.6" not in line


# 3. The size of what is sent


async def test_an_oversized_body_is_refused_at_once_and_changes_nothing(client) -> None:
    await build_world()
    token = await csrf_token(client)
    body = f"_csrf_token={token}&login=resident-a&".encode() + b"a=&" * 3_200_000  # 9.6 MB
    began = time.perf_counter()
    response = await client.post(
        "/login", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    elapsed = time.perf_counter() - began
    assert response.status_code == 413
    assert t("What you sent is too large.") in response.text
    assert elapsed < 2, f"{elapsed:.1f} s"
    assert await Throttle.count() == 0
    assert await Session.count() == 0


async def test_too_many_fields_in_a_small_body_are_refused(client) -> None:
    await build_world()
    fields = {f"f{n}": "x" for n in range(MAX_FORM_FIELDS + 1)}
    response = await post_form(client, "/login", {"login": "resident-a", **fields})
    assert response.status_code == 413
    assert t("What you sent is too large.") in response.text
    assert await Throttle.count() == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded\xa0",
        "\xa0application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded ; charset=utf-8",
    ],
)
async def test_the_field_cap_reads_the_content_type_as_the_form_parser_does(
    client, content_type: str
) -> None:
    await build_world()
    token = await csrf_token(client)
    body = f"_csrf_token={token}&login=resident-a&password=x&".encode() + b"f=x&" * 300
    response = await client.post(
        "/login", content=body, headers={"content-type": content_type.encode("latin-1")}
    )
    assert response.status_code == 413
    assert await Throttle.count() == 0  # refused before the password was looked at


async def test_a_hundred_thousand_fields_are_refused_even_where_files_are_taken(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    token = await csrf_token(client)
    body = f"_csrf_token={token}&".encode() + b"a&" * 100_000  # 200 kB, far below the upload cap
    began = time.perf_counter()
    response = await client.post(
        "/tables/flamants-iris/proposals",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert time.perf_counter() - began < 2
    assert await Proposal.count() == 0


async def test_too_many_multipart_parts_are_refused_as_too_large(client) -> None:
    await build_world()
    token = await csrf_token(client)
    fields = {f"f{n}": "x" for n in range(MAX_FORM_FIELDS + 1)}
    response = await client.post(
        "/login",
        data={"_csrf_token": token, **fields},
        files={"photo": ("a.txt", b"x", "text/plain")},
    )
    assert response.status_code == 413
    assert t("What you sent is too large.") in response.text


async def test_a_large_upload_to_an_ordinary_form_is_refused(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    token = await csrf_token(client)
    response = await client.post(
        "/tables/flamants-iris/join",
        data={"_csrf_token": token},
        files={"photo": ("big.jpg", b"\xff" * 300_000, "image/jpeg")},
    )
    assert response.status_code == 413


def noisy_jpeg() -> bytes:
    """A phone photo's weight (a few hundred kB at least): noise does not compress."""
    image = Image.frombytes("RGB", (1200, 900), os.urandom(1200 * 900 * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


async def test_a_real_photo_is_still_taken(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    photo = noisy_jpeg()
    assert len(photo) > 4 * FORM_BODY_MAX
    response = await post_form(
        client,
        "/tables/flamants-iris/proposals",
        {"title": "Des bancs devant l'école", "body": "Les parents attendent.", "theme": "school"},
        files={"photo": ("IMG_0042.jpg", photo, "image/jpeg")},
    )
    assert response.status_code == 303, response.text[-300:]
    assert await Proposal.count() == 1


async def test_long_minutes_in_arabic_are_still_taken(client) -> None:
    world = await build_world()
    meeting_id = await schedule(client, world)
    body = "محضر اجتماع طاولة الحي " * 1800  # 41,400 characters, 212 kB url-encoded
    response = await post_form(
        client, f"/meetings/{meeting_id}/minutes", {"body": body, "action": "save"}
    )
    assert response.status_code == 303, response.text[-300:]
    assert await Minutes.count() == 1


# 4. Where `next` may lead


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "\t//evil.example",
        " //evil.example",
        "\x00//evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "/tables\\..\\\\evil.example",
        "https://evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/x\x00y",
        "/x\x1by",
        "/x\x7fy",
        "/x\x85y",
        "",
        None,
    ],
)
def test_next_never_leaves_the_site(target: str | None) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/tables/flamants-iris", "/tables/flamants-iris"),
        ("/meetings/3/check-in", "/meetings/3/check-in"),
        ("/proposals?theme=housing&page=2", "/proposals?theme=housing&page=2"),
        ("/tables/flamants-iris\t", "/tables/flamants-iris"),  # as the browser will read it
        ("/%2F/evil.example", "/%2F/evil.example"),  # a path on this site
    ],
)
def test_next_keeps_paths_of_this_site(target: str, kept: str) -> None:
    assert safe_next(target) == kept


async def test_the_login_form_does_not_carry_a_tab_shaped_redirect(client) -> None:
    page = await client.get("/login?next=/%09/evil.example")
    assert 'name="next" value="/"' in page.text
    signed_in_to = await client.get("/account")  # not signed in: sent to sign in, path encoded
    assert signed_in_to.status_code in (302, 303)
    assert signed_in_to.headers["location"] == "/login?next=/account"


# 5. Every response: 404, 405, static files, errors


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no-such-page", 404),
        ("POST", "/", 405),
        ("PUT", "/login", 405),
        ("HEAD", "/", 200),  # answered as a GET without its body (voix.middleware)
        ("GET", "/static/app.css", 200),
        ("GET", "/votes/2147483648", 400),
    ],
)
async def test_every_response_carries_the_security_headers(
    client, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/no-such-page", "This page does not exist, or no longer exists."),
        ("POST", "/", "This action is not possible here."),
    ],
)
@pytest.mark.parametrize("lang", ["ar", "en"])
async def test_404_and_405_pages_are_in_the_visitor_s_language(
    client, method: str, path: str, message: str, lang: str
) -> None:
    response = await client.request(method, path, headers={"accept-language": lang})
    assert response.headers["content-language"] == lang
    assert t(message, lang) in response.text


async def test_a_head_request_gets_headers_in_the_visitor_s_language(client) -> None:
    response = await client.head("/", headers={"accept-language": "ar"})
    assert response.headers["content-language"] == "ar"
    assert response.content == b""
