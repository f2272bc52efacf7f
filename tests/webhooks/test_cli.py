"""``modelyard webhook …`` against a live registry and a receiver (a threaded stdlib HTTP server
that answers 500 once, then 200): create (the secret printed once), list, show, types, the
delivery log and one delivery's attempts, redeliver, delete; --json everywhere; refusals exit
with the documented codes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.cli.liveserver import LiveServer, live_server
from tests.cli.test_cli import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE, Cli, push
from tests.webhooks.support import FAST


class Hits:
    def __init__(self) -> None:
        self.statuses = [500]
        self.received: list[tuple[dict[str, str], bytes]] = []

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} deliveries arrived"
            time.sleep(0.05)


@pytest.fixture
def hits() -> Iterator[tuple[Hits, str]]:
    state = Hits()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers), body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path / "registry", **FAST) as running:
        yield running


def test_webhook_commands(server: LiveServer, hits: tuple[Hits, str]) -> None:
    state, url = hits
    cli = Cli(server)
    api = httpx.Client(base_url=server.url, timeout=30)
    push(api, "acme/llm", "v0", [b"zero"])

    created = cli.json("webhook", "create", url, "--repo", "acme/llm", "-e", "manifest.pushed", "--description", "CI")
    assert created["scope"] == "repository:acme/llm" and created["secret"].startswith("whsec_")
    hook = str(created["id"])
    shown = cli.json("webhook", "show", hook)
    assert shown["url"] == url and "secret" not in shown
    assert [h["id"] for h in cli.json("webhook", "list")] == [created["id"]]
    assert "acme/llm" in cli("webhook", "list", "--repo", "acme/llm").stdout
    assert "manifest.pushed" in cli("webhook", "types").stdout.split()

    digest = push(api, "acme/llm", "v1", [b"one"])
    state.wait_for(2)  # a 500, then the retry
    headers, body = state.received[-1]
    assert Webhook(created["secret"]).verify(body, headers)["data"]["digest"] == digest

    deadline = time.monotonic() + 20
    while (items := cli.json("webhook", "deliveries", hook))[0]["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (item,) = items
    assert (item["event_type"], item["attempts"], item["last_status_code"]) == ("manifest.pushed", 2, 200)
    detail = cli.json("webhook", "deliveries", hook, "--delivery", str(item["id"]))
    assert [a["status_code"] for a in detail["log"]] == [500, 200]
    table = cli("webhook", "deliveries", hook, "--delivery", str(item["id"])).stdout
    assert "ATTEMPT" in table and "500" in table and "endpoint answered 500" in table

    again = cli.json("webhook", "redeliver", hook, str(item["id"]))
    assert again["state"] == "pending"
    state.wait_for(3)
    assert json.loads(state.received[2][1])["id"] == json.loads(body)["id"]

    assert "secret" in cli("webhook", "create", url).stdout  # the table form prints it too
    refused = cli("webhook", "create", "ftp://example.com/hook", code=EXIT_USAGE)  # checked before sending
    assert "url" in refused.stderr and "[/?#]" in refused.stderr, "a message with brackets is printed as it is"
    cli("webhook", "create", "https://example.com:99999/hook", code=EXIT_REFUSED)  # the server's check
    cli("webhook", "create", url, "--repo", "acme/none", code=EXIT_NOT_FOUND)
    cli("webhook", "delete", hook)
    cli("webhook", "show", hook, code=EXIT_NOT_FOUND)
    api.close()
