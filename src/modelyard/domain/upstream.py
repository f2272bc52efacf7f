"""What the server's outbound OCI client (``egress/oci.py``) hands back and raises, as plain types:
the services that use a client (the pull-through cache, replication) handle them without
importing an HTTP library.

The errors, drawn::

    UpstreamError               anything else the upstream answered (``status``: its code, if any)
    ├── UpstreamNotFound        404: not there
    ├── UpstreamDenied          401/403 after authenticating: the credentials are refused
    └── UpstreamUnavailable     cannot answer now: refused connection, timeout, 429, 5xx
"""

from __future__ import annotations

from dataclasses import dataclass


class UpstreamError(Exception):
    """The upstream registry answered something other than what was asked for."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class UpstreamNotFound(UpstreamError):
    """404: the manifest, blob or repository does not exist upstream."""


class UpstreamDenied(UpstreamError):
    """401/403 after authenticating: the credentials (or their absence) are refused."""


class UpstreamUnavailable(UpstreamError):
    """The upstream cannot answer now (connection refused, timeout, 429, 5xx)."""


@dataclass(frozen=True, slots=True)
class UpstreamCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"UpstreamCredentials(username={self.username!r}, password=***)"


@dataclass(frozen=True, slots=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    digest: str
    media_type: str
    content: bytes
