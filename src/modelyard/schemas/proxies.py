"""Wire models of the pull-through cache endpoints (``/api/v1/proxies``), shared by the server and
the clients. The server checks the rest (``services/proxy/rules.py``): names are repository
names, the URL is a registry root."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from modelyard.domain.reference import COMPONENT_PATTERN, NAME_PATTERN
from modelyard.schemas.numbers import Integer

# A registry root: a host name in punycode or an IPv4 address, an optional port, no path.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = rf"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:{_PORT})?/?$"
UPSTREAM_PREFIX_PATTERN = rf"^({COMPONENT_PATTERN}(/{COMPONENT_PATTERN})*)?$"
DEFAULT_TAG_TTL = 300


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProxyCreate(_Model):
    prefix: str = Field(
        min_length=1,
        max_length=255,
        pattern=NAME_PATTERN,
        description="A compartment (hub) or repository prefix (hub/library) to proxy.",
    )
    upstream_url: str = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        description="The upstream registry's root, e.g. https://registry-1.docker.io.",
    )
    upstream_prefix: str = Field(
        "",
        max_length=255,
        pattern=UPSTREAM_PREFIX_PATTERN,
        description="Put before the rest of the name upstream: hub/x -> <upstream_prefix>/x.",
    )
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(
        None, max_length=4096, description="Password or token for the upstream; stored encrypted, never shown again."
    )
    tls_verify: bool = Field(True, description="Verify the upstream's certificate.")
    tag_ttl_seconds: Integer = Field(
        DEFAULT_TAG_TTL,
        ge=0,
        le=30 * 86400,
        description="How long a cached tag is served before it is revalidated.",
    )


class Proxy(_Model):
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


class ProxyList(_Model):
    items: list[Proxy]
