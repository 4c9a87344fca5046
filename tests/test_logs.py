"""One structured line per request, never a secret in it (issue 14, "Production shape")."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx import AsyncClient

from accounts import controllers as account_controllers
from tests.servers import free_port, wait_ready
from voix import logs
from voix.settings import PROJECT_ROOT, ConfigurationError
from voix.settings import _log_format as log_format_for

CODE = "7F3KQ2MABCDEFGHJ"
TOKEN = "12.1790000000.0123456789abcdef0123456789abcdef"


class Written:
    """What the configured handler writes, as `voix serve` configures it, in this process."""

    def __init__(self, log_format: str) -> None:
        self.buffer = io.StringIO()
        self.handler = logs.handler(log_format, self.buffer)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == logs.REQUEST_LOGGER]


@pytest.fixture
def written() -> Iterator[Any]:
    def attach(log_format: str = "json") -> Written:
        capture = Written(log_format)
        attached.append(capture.handler)
        voix_logger.addHandler(capture.handler)
        return capture

    voix_logger = logging.getLogger("voix")
    level = voix_logger.level
    voix_logger.setLevel(logging.INFO)
    attached: list[logging.Handler] = []
    yield attach
    for handler in attached:
        voix_logger.removeHandler(handler)
    voix_logger.setLevel(level)


async def test_one_line_per_request_with_status_and_duration_and_no_secret(
    client: AsyncClient, written: Any
) -> None:
    log = written("json")
    card = await client.get(f"/card/{CODE}")
    reset = await client.get(f"/password/reset/{TOKEN}?x=1")
    assert card.status_code == 200
    assert reset.status_code == 400  # not a valid token: still logged, still redacted

    lines = log.requests()
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/card/…", 200),
        ("GET", "/password/reset/…", 400),
    ]
    for line, response in zip(lines, (card, reset), strict=True):
        assert line["duration_ms"] > 0
        assert line["bytes"] == response.num_bytes_downloaded  # sent, compressed
        assert line["client"] == "127.0.0.1"
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["level"] == "INFO"
        assert line["time"].endswith("+00:00")
    assert [line["route"] for line in lines] == ["/card/{code}", "/password/reset/{token}"]
    assert CODE not in log.text
    assert "0123456789abcdef" not in log.text
    assert "x=1" not in log.text  # query strings are dropped


async def test_no_cookie_csrf_token_form_body_or_authorization_is_logged(
    client: AsyncClient, written: Any
) -> None:
    log = written("json")
    secrets = ["SESSIONCOOKIESECRET", "CSRFHEADERSECRET", "FORMBODYSECRET", "BEARERSECRET"]
    response = await client.post(
        "/card?next=/QUERYSECRET",
        data={"code": "FORMBODYSECRET", "_csrf_token": "CSRFFORMSECRET"},
        headers={
            "cookie": "voix_session=SESSIONCOOKIESECRET; csrftoken=CSRFCOOKIESECRET",
            "x-csrftoken": "CSRFHEADERSECRET",
            "authorization": "Bearer BEARERSECRET",
        },
    )
    assert response.status_code == 403  # the CSRF token does not match: refused, and logged
    (line,) = log.requests()
    assert (line["method"], line["path"], line["status"]) == ("POST", "/card", 403)
    for secret in [*secrets, "CSRFFORMSECRET", "CSRFCOOKIESECRET", "QUERYSECRET"]:
        assert secret not in log.text


async def test_text_lines_read_like_an_access_log(client: AsyncClient, written: Any) -> None:
    log = written("text")
    response = await client.get(f"/card/{CODE}")
    (line,) = log.text.splitlines()
    assert 'INFO voix.access: 127.0.0.1 - "GET /card/… HTTP/1.1" 200 ' in line
    assert line.endswith(
        f" ms {response.num_bytes_downloaded} B [{response.headers['x-request-id']}]"
    )
    assert CODE not in log.text


async def test_a_forged_line_break_in_the_path_stays_on_its_line(
    client: AsyncClient, written: Any
) -> None:
    log = written("text")
    await client.get("/nothing%0A2026-01-01 INFO voix: forged")
    (line,) = log.text.splitlines()
    assert "/nothing\\x0a2026-01-01 INFO voix: forged" in line


async def test_an_exception_in_a_route_logs_once_with_the_path_redacted(
    client: AsyncClient, written: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(code: str) -> str:
        # The message carries the secret too: the traceback must not give it away.
        raise RuntimeError(f"cannot read /card/{code}")

    monkeypatch.setattr(account_controllers.cards, "normalise_code", broken)
    log = written("json")
    with caplog.at_level(logging.DEBUG):
        response = await client.get(f"/card/{CODE}")
    assert response.status_code == 500

    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, [record.getMessage() for record in errors]
    (error,) = [line for line in log.lines() if line["level"] == "ERROR"]
    assert error["message"] == "Unhandled error on /card/…"
    assert "RuntimeError: cannot read /card/…" in error["exception"]
    (request,) = log.requests()
    assert request["status"] == 500
    assert error["request_id"] == request["request_id"] == response.headers["x-request-id"]
    assert CODE not in log.text


async def _stream(scope: Any, receive: Any, send: Any) -> None:
    """An event stream of three messages, a tenth of a second apart."""
    headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for number in range(3):
        await asyncio.sleep(0.1)
        await send(
            {"type": "http.response.body", "body": b"data: %d\n\n" % number, "more_body": True}
        )
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_a_stream_is_logged_once_at_its_end_with_its_duration(written: Any) -> None:
    log = written("json")
    started: list[bool] = []
    finished: list[logs.Finished] = []
    app = logs.access_middleware(_stream, finished.append, lambda: started.append(True))
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message["more_body"]:
            assert log.requests() == []  # nothing logged while the stream runs

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/meetings/7/events", "client": ("10.0.0.9", 5000)}  # fmt: skip
    await app(scope, receive, send)

    (line,) = log.requests()
    assert line["status"] == 200
    assert line["duration_ms"] >= 300
    assert line["bytes"] == 3 * len(b"data: 0\n\n")
    assert line["client"] == "10.0.0.9"
    assert line["route"] == logs.UNMATCHED  # no router wrote a template into this scope
    assert started == [True]
    assert [f.stream for f in finished] == [True]


async def test_an_error_before_any_response_is_logged_as_a_500(written: Any) -> None:
    log = written("json")

    async def crash(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("before any byte")

    app = logs.access_middleware(crash, lambda finished: None, lambda: None)
    with pytest.raises(RuntimeError):
        await app({"type": "http", "method": "BREW", "path": "/"}, None, None)
    (line,) = log.requests()
    assert (line["status"], line["bytes"], line["client"]) == (500, 0, "-")


def test_json_in_production_text_elsewhere_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VOIX_LOG_FORMAT", raising=False)
    assert log_format_for("production") == "json"
    assert log_format_for("development") == "text"
    monkeypatch.setenv("VOIX_LOG_FORMAT", "JSON")
    assert log_format_for("development") == "json"
    monkeypatch.setenv("VOIX_LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError, match="VOIX_LOG_FORMAT"):
        log_format_for("development")


def test_a_real_server_writes_json_lines_and_no_secret() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "VOIX_LOG_FORMAT": "json"}
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "voix.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the banner `voix serve` prints; the logs go to stderr
            stderr=output,
        )
        try:
            wait_ready(url, process, output)
            assert httpx.get(f"{url}/card/{CODE}").status_code == 200
            assert httpx.get(f"{url}/password/reset/{TOKEN}?x=1").status_code == 400
        finally:
            process.terminate()
            process.wait(timeout=15)
        output.seek(0)
        text = output.read().decode(errors="replace")
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    paths = [line["path"] for line in lines if line["logger"] == logs.REQUEST_LOGGER]
    assert "/card/…" in paths
    assert "/password/reset/…" in paths
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # uvicorn's own, as JSON
    assert CODE not in text
    assert "0123456789abcdef" not in text
