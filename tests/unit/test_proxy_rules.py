"""Pull-through rule matching and name mapping (``domain/proxy.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard.domain.proxy import ProxyRule, match_rule


def rule(prefix: str, url: str = "https://registry.example", upstream_prefix: str = "") -> ProxyRule:
    return ProxyRule(
        id=1, prefix=prefix, upstream_url=url, upstream_prefix=upstream_prefix, username=None, has_password=False,
        tls_verify=True, tag_ttl_seconds=300, created_by=None, created_at=datetime.now(UTC),
    )  # fmt: skip


def test_the_longest_covering_prefix_wins() -> None:
    rules = [rule("hub"), rule("hub/library"), rule("hubx")]
    assert match_rule(rules, "hub/library/alpine") is rules[1]
    assert match_rule(rules, "hub/team/model") is rules[0]
    assert match_rule(rules, "hub") is rules[0]
    assert match_rule(rules, "hubx/a") is rules[2]
    assert match_rule(rules, "hu/b") is None


def test_names_map_to_the_upstream() -> None:
    assert rule("hub").upstream_name("hub/team/model") == "team/model"
    assert rule("mirror/lib", upstream_prefix="library").upstream_name("mirror/lib/tool") == "library/tool"
    assert rule("acme/llm").upstream_name("acme/llm") is None
    assert rule("acme/llm", upstream_prefix="models/llm").upstream_name("acme/llm") == "models/llm"


def test_docker_hub_official_images_live_under_library() -> None:
    hub = rule("hub", "https://registry-1.docker.io")
    assert hub.upstream_name("hub/alpine") == "library/alpine"
    assert hub.upstream_name("hub/bitnami/redis") == "bitnami/redis"
    assert rule("hub", "https://registry-1.docker.io", "myorg").upstream_name("hub/tool") == "myorg/tool"
