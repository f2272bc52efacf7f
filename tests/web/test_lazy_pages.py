"""The UI's modules load on a worker's first page, not at start: Jinja2, markdown-it and nh3
are ~5 MiB of every worker's memory, and most workers only ever serve ``/v2``."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

from modelyard.web import PAGES

_UI_STACK = ("jinja2", "markdown_it", "nh3", "modelyard.web.page", "modelyard.web.browse")

# Run in a fresh interpreter: this test process has imported the UI long ago.
_SCRIPT = """
import asyncio, json, socket, sys
import aiohttp
from aiohttp import web
from modelyard.app import create_app
from modelyard.config import Settings

STACK = {stack!r}

async def main():
    app = create_app(Settings(data_dir={data!r}, auth_enabled=False, background_jobs=False))
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    base = "http://127.0.0.1:%d" % sock.getsockname()[1]
    result = {{"at_start": [m for m in STACK if m in sys.modules]}}
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/v2/") as response:
            result["v2"] = response.status
        result["after_v2"] = [m for m in STACK if m in sys.modules]
        async with http.head(base + "/ui/") as response:
            result["head"] = response.status
        async with http.get(base + "/ui/") as response:
            result["page"] = response.status
            result["html"] = "<html" in (await response.text()).lower()
    result["after_page"] = [m for m in STACK if m in sys.modules]
    await runner.cleanup()
    print(json.dumps(result))

asyncio.run(main())
"""


def test_every_page_names_a_page_handler() -> None:
    routes = [(method, path) for method, path, _module, _name in PAGES]
    assert len(routes) == len(set(routes)), "a page route is listed twice"
    for _method, path, module, name in PAGES:
        handler = getattr(import_module(f"modelyard.web.{module}"), name, None)
        assert handler is not None, f"{path}: modelyard.web.{module} has no {name}"
        assert inspect.iscoroutinefunction(handler), f"{path}: {module}.{name} is not a page handler"


def test_a_worker_loads_the_ui_on_its_first_page_and_serves_it(tmp_path: Path) -> None:
    script = _SCRIPT.format(stack=_UI_STACK, data=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["at_start"] == [], "the UI stack was imported with the application"
    assert result["v2"] == 200 and result["after_v2"] == [], "a /v2 request loaded the UI"
    assert result["head"] == 200, "HEAD of a page (aiohttp adds it to every GET route)"
    assert result["page"] == 200 and result["html"]
    assert set(result["after_page"]) == set(_UI_STACK)
