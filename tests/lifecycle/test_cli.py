"""``modelyard retention``, ``quota`` and ``usage`` against a live registry (the CLI over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.liveserver import LiveServer, live_server
from tests.cli.test_cli import EXIT_NOT_FOUND, EXIT_USAGE, Cli, push


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path / "registry") as running:
        yield running


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def cli(server: LiveServer) -> Cli:
    return Cli(server)


def test_retention_plan_run_and_usage_from_the_cli(cli: Cli, api: httpx.Client) -> None:
    old = push(api, "acme/llm", "v1", [b"old weights" * 100])
    push(api, "acme/llm", "v2", [b"new weights" * 100])
    assert api.patch("/api/v1/repositories/acme/llm", json={"is_immutable": True}).status_code == 200

    cli("retention", "show", "acme/llm", code=EXIT_NOT_FOUND)
    cli("retention", "set", "acme/llm", code=EXIT_USAGE)  # neither keep-last nor keep-days
    policy = cli.json("retention", "set", "acme/llm", "--keep-last", "1", "--keep-tag", "release-*")
    assert policy["keep_last"] == 1 and policy["keep_tags"] == ["release-*"]
    assert "keep last          1" in cli("retention", "show", "acme/llm").stdout

    table = cli("retention", "plan", "acme/llm").stdout
    assert old[:19] in table and "would delete 1 manifest(s)" in table and "1.1 KiB" in table
    plan: dict[str, Any] = cli.json("retention", "plan", "acme/llm")
    ran = cli.json("retention", "run", "acme/llm")
    assert ran["deleted"] == [f"acme/llm@{old}"] and ran["freed_bytes"] == plan["freed_bytes"] == 1100
    runs = cli.json("retention", "runs")
    assert runs[0]["removed"] == 1 and runs[0]["trigger"] == "api"
    cli("retention", "plan", code=EXIT_USAGE)  # no target

    quota = cli.json("quota", "set", "10KiB", "--compartment", "acme")
    assert quota["limit_bytes"] == 10240 and 0 < quota["usage_bytes"] < 10240
    cli("quota", "set", "lots", "acme/llm", code=EXIT_USAGE)
    usage = cli.json("usage")
    assert [c["name"] for c in usage["compartments"]] == ["acme"]
    assert usage["compartments"][0]["quota_bytes"] == 10240
    text = cli("usage").stdout
    assert "CHARGED" in text and "acme/llm" in text and "10.0 KiB" in text
    cli("quota", "set", "1", "--compartment", "acme")
    refused = api.post("/v2/acme/llm/blobs/uploads/")
    assert refused.status_code == 403 and "compartment:acme may store" in refused.text
    cli("quota", "delete", "--compartment", "acme")
    cli("quota", "delete", "--compartment", "acme", code=EXIT_NOT_FOUND)
    cli("quota", "show", "acme/nope", code=EXIT_NOT_FOUND)
