"""``modelyard alias list|history|set|delete|rules|protect|gate`` and ``modelyard rollback``, and the
SDK's alias methods, against a live registry; results checked through the admin API too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.sdk import Registry
from tests.cli.liveserver import LiveServer, live_server
from tests.cli.test_cli import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE, Cli, get, push

REPO = "acme/llm"
EVAL = "application/vnd.modelyard.eval.v1+json"


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


@pytest.fixture
def versions(cli: Cli, api: httpx.Client) -> dict[str, str]:
    cli("compartment", "create", "acme")
    cli("repo", "create", "acme/llm", "--immutable-tag", "v*")
    return {tag: push(api, REPO, tag, [tag.encode() * 100]) for tag in ("v1", "v2", "v3")}


def history(api: httpx.Client, tag: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(api, f"/api/v1/repositories/{REPO}/-/tags/{tag}/history")["items"]
    return items


def test_set_list_history_and_rollback(cli: Cli, api: httpx.Client, versions: dict[str, str]) -> None:
    moved = cli.json("alias", "set", REPO, "prod", "v1", "--reason", "first release")
    assert (moved["name"], moved["digest"], moved["versions"]) == ("prod", versions["v1"], ["v1"])
    text = cli("alias", "set", REPO, "prod", "v2", "--expect", versions["v1"]).stdout
    assert f"prod -> {versions['v2']} (v2)" in text

    listed = cli.json("alias", "list", REPO)
    assert [(a["name"], a["digest"]) for a in listed] == [("prod", versions["v2"])]
    table = cli("alias", "list", REPO).stdout
    assert "ALIAS" in table and "VERSIONS" in table and "prod" in table and "v2" in table

    rolled = cli.json("rollback", REPO, "prod", "--reason", "bad latency")
    assert rolled["digest"] == versions["v1"]
    assert "rolled back to" in cli("rollback", REPO, "prod", "--to", "v3").stdout

    entries = cli.json("alias", "history", REPO, "prod")
    assert entries == history(api, "prod")
    assert [(e["how"], e["to_digest"], e["reason"]) for e in entries] == [
        ("rollback", versions["v3"], None),
        ("rollback", versions["v1"], "bad latency"),
        ("api", versions["v2"], None),
        ("api", versions["v1"], "first release"),
    ]
    timeline = cli("alias", "history", REPO, "prod").stdout.splitlines()
    assert len(timeline) == 4 and "rollback" in timeline[0] and '"bad latency"' in timeline[1]
    assert len(cli.json("alias", "history", REPO, "prod", "--limit", "2")) == 2
    first_at = datetime.fromisoformat(entries[-1]["at"]).astimezone(UTC)
    at_first = cli.json("alias", "history", REPO, "prod", "--at", first_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert [e["to_digest"] for e in at_first] == [versions["v1"]]
    naive = (first_at - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")  # no zone: UTC
    assert cli.json("alias", "history", REPO, "prod", "--at", naive) == []
    cli("alias", "history", REPO, "prod", "--at", "last tuesday", code=EXIT_USAGE)

    cli("alias", "delete", REPO, "prod", "--reason", "retired")
    assert get(api, f"/api/v1/repositories/{REPO}/-/aliases")["items"] == []
    assert "deleted" in cli("alias", "history", REPO, "prod").stdout.splitlines()[0]


def test_refusals_exit_with_the_documented_codes(cli: Cli, versions: dict[str, str]) -> None:
    cli("alias", "set", REPO, "prod", "v1")
    stale = cli("alias", "set", REPO, "prod", "v2", "--expect", versions["v3"], code=EXIT_REFUSED)
    assert "someone moved it first" in stale.stderr and versions["v1"] in stale.stderr
    assert "does not exist" in cli("alias", "set", REPO, "prod", "v9", code=EXIT_NOT_FOUND).stderr
    cli("alias", "set", REPO, "prod", "v2", "--expect", "nope", code=EXIT_USAGE)
    cli("rollback", REPO, "canary", code=EXIT_NOT_FOUND)
    cli("alias", "list", "acme/ghost", code=EXIT_NOT_FOUND)


def test_rules_protect_and_gate(cli: Cli, api: httpx.Client, versions: dict[str, str]) -> None:
    assert "no alias rules" in cli("alias", "rules", REPO).stdout
    cli("alias", "protect", REPO, "prod", "--role", "repoAdmin", "--member", "user:alice")
    shown = cli("alias", "gate", REPO, "prod", "--require-referrer", EVAL, "--after", "staging").stdout
    assert "protected prod: only role repoAdmin or user:alice may move it" in shown
    assert f"gate prod: needs a referrer of type {EVAL} and staging pointing at it first" in shown
    repo = get(api, f"/api/v1/repositories/{REPO}")
    assert repo["promotion_gates"] == [
        {"alias": "prod", "required_referrer_types": [EVAL], "require_alias_first": "staging"}
    ]
    assert cli.json("alias", "rules", REPO)["protected_aliases"] == repo["protected_aliases"]

    shown_repo = cli("repo", "show", REPO).stdout
    assert any(line.startswith("protected aliases") and "prod" in line for line in shown_repo.splitlines())
    assert any(line.startswith("promotion gates") and "prod" in line for line in shown_repo.splitlines())
    refused = cli("alias", "set", REPO, "prod", "v1", code=EXIT_REFUSED)
    assert f"no referrer of type {EVAL}" in refused.stderr
    cli("alias", "protect", REPO, "prod", "--role", "owner", code=EXIT_USAGE)
    cli("alias", "gate", REPO, "prod", "--remove")
    cli("alias", "protect", REPO, "prod", "--remove")
    assert get(api, f"/api/v1/repositories/{REPO}")["promotion_gates"] == []
    cli("alias", "set", REPO, "prod", "v1")


def test_sdk_aliases(server: LiveServer, cli: Cli, versions: dict[str, str]) -> None:
    with Registry(server.url) as registry:
        moved = registry.set_alias(REPO, "prod", "v2", reason="promote")
        assert moved.digest == versions["v2"]
        registry.set_alias(REPO, "prod", versions["v3"], expected_digest=versions["v2"])
        assert [a.name for a in registry.aliases(REPO)] == ["prod"]
        back = registry.rollback(REPO, "prod", reason="regression")
        assert back.digest == versions["v2"]
        assert [e.how for e in registry.alias_history(REPO, "prod")] == ["rollback", "api", "api"]


def test_iam_binding_limited_to_tags(cli: Cli, api: httpx.Client, versions: dict[str, str]) -> None:
    cli("sa", "create", "ci")
    cli("iam", "add-binding", "--repo", REPO, "--role", "pusher", "--member", "serviceAccount:ci", "--tag", "build-*")
    shown = cli("iam", "show", "--repo", REPO).stdout
    assert "TAGS" in shown and "build-*" in shown
    stored = get(api, f"/api/v1/repositories/{REPO}/-/iam")["bindings"]
    assert stored == [{"role": "pusher", "members": ["serviceAccount:ci"], "condition": {"tags": ["build-*"]}}]
    # The audit log says what the binding is limited to.
    [change] = get(api, "/api/v1/audit?action=iam.set")["items"]
    assert change["detail"]["bindings"] == stored
    # An unconditional binding of the same role is another binding.
    cli("iam", "add-binding", "--repo", REPO, "--role", "pusher", "--member", "serviceAccount:ci")
    assert len(get(api, f"/api/v1/repositories/{REPO}/-/iam")["bindings"]) == 2
    cli(
        "iam", "remove-binding", "--repo", REPO, "--role", "pusher", "--member", "serviceAccount:ci", "--tag", "build-*"
    )
    assert get(api, f"/api/v1/repositories/{REPO}/-/iam")["bindings"] == [
        {"role": "pusher", "members": ["serviceAccount:ci"]}
    ]
