"""Pull-through cache rules: which local repositories fall through to which upstream registry,
and how a local repository name maps to the upstream's (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

DEFAULT_TAG_TTL = 300
#: Docker Hub keeps its official images under ``library/``: ``alpine`` there is ``library/alpine``.
DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "docker.io", "index.docker.io"})


@dataclass(frozen=True, slots=True)
class ProxyRule:
    """A compartment (``hub``) or repository prefix (``hub/library``) proxied to ``upstream_url``.

    ``hub/x/y`` pulls ``<upstream_prefix>/x/y`` upstream (just ``x/y`` with no upstream prefix).
    The password is not here: it stays encrypted in the store until the egress client needs it.
    """

    id: int
    prefix: str
    upstream_url: str
    upstream_prefix: str
    username: str | None
    has_password: bool
    tls_verify: bool
    tag_ttl_seconds: int
    created_by: str | None
    created_at: datetime

    def covers(self, repository: str) -> bool:
        return repository == self.prefix or repository.startswith(self.prefix + "/")

    def upstream_name(self, repository: str) -> str | None:
        """The repository's name upstream, or ``None`` if this rule maps it to nothing (the rule
        names a whole repository with no upstream prefix). On Docker Hub without an upstream
        prefix, a one-component name is an official image: ``hub/alpine`` -> ``library/alpine``,
        while ``hub/bitnami/redis`` stays ``bitnami/redis`` (as docker itself resolves them)."""
        rest = repository[len(self.prefix) :].lstrip("/")
        prefix = self.upstream_prefix
        if not prefix and rest and "/" not in rest and urlsplit(self.upstream_url).hostname in DOCKER_HUB_HOSTS:
            prefix = "library"
        name = "/".join(part for part in (prefix, rest) if part)
        return name or None


def match_rule(rules: Iterable[ProxyRule], repository: str) -> ProxyRule | None:
    """The rule with the longest prefix that covers ``repository`` (``hub/library`` wins over ``hub``)."""
    best: ProxyRule | None = None
    for rule in rules:
        if rule.covers(repository) and (best is None or len(rule.prefix) > len(best.prefix)):
            best = rule
    return best
