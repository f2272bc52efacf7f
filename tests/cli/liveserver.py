"""The real app on a real socket, in-process: ``create_app`` served by aiohttp's ``AppRunner`` on a
free port of 127.0.0.1, its event loop in a background thread.

Tests that need a registry reachable over TCP by synchronous code (the CLI, httpx, schemathesis)
use this instead of a subprocess: settings are passed as a :class:`Settings` object, start-up
takes a fraction of a second, and the thread is stopped by the test that started it.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from modelyard.app import create_app
from modelyard.config import Settings

START_TIMEOUT = 20.0


class LiveServer:
    def __init__(self, settings: Settings, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context  # HTTPS with this server context (e.g. a replication target)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="modelyard-live-server", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner: web.AppRunner | None = None
        try:
            runner = web.AppRunner(create_app(self.settings), access_log=None)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
            self._loop.run_until_complete(site.start())
            self.port = int(runner.addresses[0][1])
        except BaseException as exc:  # reported to the starting thread
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"the live server did not start in {START_TIMEOUT} s")
        if self._failure is not None:
            raise RuntimeError(f"the live server failed to start: {self._failure!r}") from self._failure
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT)


@contextmanager
def live_server(ssl_context: ssl.SSLContext | None = None, **settings: Any) -> Iterator[LiveServer]:
    base = {"fsync": False, "access_log": False, "auth_enabled": False}
    server = LiveServer(Settings(**{**base, **settings}), ssl_context).start()
    try:
        yield server
    finally:
        server.stop()
