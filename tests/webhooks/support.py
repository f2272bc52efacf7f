"""A webhook receiver for the tests: a real aiohttp server on 127.0.0.1 that records every POST
and answers from a script (a status code, or ``HANG`` to never answer)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]
HANG = -1

# Fast retries and polling, so a test sees three tries in well under a second.
FAST = {
    "webhook_poll_interval": 0.05,
    "webhook_retry_base": 0.05,
    "webhook_retry_max": 0.2,
    "leader_poll_interval": 0.1,
}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str = "/hook"


@dataclass
class Receiver:
    script: deque[int] = field(default_factory=deque)
    default: int = 200
    received: list[Received] = field(default_factory=list)
    hanging: int = 0
    url: str = ""
    # Set at the end of a test: hanging requests then answer, so the server can stop at once.
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(dict(request.headers), await request.read(), time.monotonic(), request.path))
        action = self.script.popleft() if self.script else self.default
        if action == HANG:
            self.hanging += 1
            try:
                await self.release.wait()
            finally:
                self.hanging -= 1
            action = 200
        return web.Response(status=action, text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        app.router.add_post("/hook/{name}", self.handle)
        return app


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``check`` holds (deliveries are asynchronous by design)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def create_webhook(client: Client, url: str, scope: str = "registry", types: list[str] | None = None,
                         **headers: str) -> dict[str, Any]:  # fmt: skip
    body = {"scope": scope, "url": url, "event_types": types or ["*"]}
    response = await client.post("/api/v1/webhooks", json=body, headers=headers)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def deliveries(client: Client, webhook_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def delivery(client: Client, webhook_id: int, delivery_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}")
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found
