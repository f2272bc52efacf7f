"""``modelyard proxy add|list|rm`` against a live cache: a rule added by the CLI serves a pull
through it, the password is read from stdin and never printed, refusals exit with the
documented codes."""

from __future__ import annotations

import json

import httpx

from tests.cli.test_cli import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE, Cli
from tests.pullthrough.support import ALL_MANIFESTS, Rig, push


def test_proxy_commands(rig: Rig) -> None:
    cli = Cli(rig.cache)
    digest, body = push(rig.upstream.url, "library/tool", "1.0", [b"cli layer"])
    added = cli("proxy", "add", "hub", rig.proxy.url, "--upstream-prefix", "library", "--tag-ttl", "60").stdout
    assert "proxying hub" in added
    argv = ["proxy", "add", "private/models", rig.proxy.url, "--username", "bot", "--password-stdin", "--json"]
    with_password = json.loads(cli(*argv, stdin="s3cret-Pw\n").stdout)
    assert with_password["has_password"] is True and with_password["username"] == "bot"
    rules = cli.json("proxy", "list")
    assert [(r["prefix"], r["upstream_prefix"], r["tag_ttl_seconds"]) for r in rules] == [
        ("hub", "library", 60),
        ("private/models", "", 300),
    ]
    table = cli("proxy", "list").stdout
    assert "PREFIX" in table and "s3cret" not in table

    got = rig.get("/v2/hub/tool/manifests/1.0", headers={"Accept": ALL_MANIFESTS})
    assert got.status_code == 200 and got.content == body and got.headers["Docker-Content-Digest"] == digest

    cli("proxy", "add", "hub", rig.proxy.url, code=EXIT_REFUSED)  # exists (409)
    cli("proxy", "add", "Bad Name", rig.proxy.url, code=EXIT_USAGE)  # a repository name, checked before sending
    cli("proxy", "add", "x", "ftp://example.com", code=EXIT_USAGE)  # checked before sending
    cli("proxy", "rm", "private/models")
    cli("proxy", "rm", "private/models", code=EXIT_NOT_FOUND)
    assert [r["prefix"] for r in cli.json("proxy", "list")] == ["hub"]
    # Recorded in the audit log, without the password.
    audit = httpx.get(f"{rig.cache.url}/api/v1/audit", params={"limit": 100}).json()["items"]
    proxy_events = [(e["action"], e["resource"]) for e in audit if e["action"].startswith("proxy.")]
    assert sorted(proxy_events) == [
        ("proxy.rule.create", "proxy-rule:hub"),
        ("proxy.rule.create", "proxy-rule:private/models"),
        ("proxy.rule.delete", "proxy-rule:private/models"),
    ]
    assert "s3cret" not in json.dumps(audit)
