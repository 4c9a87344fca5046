"""A request leaves nothing for the cyclic garbage collector.

Whatever a request builds and still holds in a reference cycle when it is answered waits for
a collection, which stops the event loop: with Litestar's HTMXRequest (~115 objects a
request), a full collection ran about every 2 seconds per worker under load, 5–11 ms each.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from httpx import AsyncClient

from tests.factories import add_proposal, build_world, sign_in
from voix.web import VoixRequest

# The app's own code and the framework's; the test's client (httpx) has cycles of its own.
APP_MODULES = (
    "litestar",
    "litestar_htmx",
    "jinja2_fragments",
    "voix",
    "accounts",
    "tables",
    "proposals",
    "votes",
    "maps",
    "meetings",
)


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """Yields a list filled, on exit, with what the block left in cycles."""
    found: list[object] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _from_the_app(objects: list[object]) -> list[str]:
    names = []
    for item in objects:
        module = getattr(type(item), "__module__", "") or ""
        if module.split(".")[0] in APP_MODULES:
            names.append(f"{module}.{type(item).__qualname__}")
    return sorted(set(names))


async def test_pages_leave_no_cycles_behind(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    slug = world.table_a["slug"]
    pages = ["/", f"/tables/{slug}", f"/tables/{slug}?theme=housing", f"/proposals/{proposal}"]
    fragment = {"HX-Request": "true", "HX-Target": "proposals"}
    for who in ("anonymous", "resident_a"):
        if who != "anonymous":
            await sign_in(client, world.users[who])
        for page, headers in [*((p, {}) for p in pages), (f"/tables/{slug}", fragment)]:
            first = await client.get(page, headers=headers)  # caches and imports fill
            assert first.status_code == 200
            with cyclic_garbage() as found:
                for _ in range(5):
                    again = await client.get(page, headers=headers)
                    # Taking a page's contexts apart leaves the next pages whole.
                    assert (again.status_code, again.text) == (200, first.text)
            assert _from_the_app(found) == [], (who, page, headers)


def _request(headers: list[tuple[bytes, bytes]]) -> VoixRequest:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""}
    return VoixRequest(scope)  # type: ignore[arg-type]


def test_the_request_still_reads_htmx_headers() -> None:
    request = _request([(b"hx-request", b"true"), (b"hx-target", b"proposals")])
    assert request.htmx
    assert request.htmx.target == "proposals"
    assert not _request([]).htmx
