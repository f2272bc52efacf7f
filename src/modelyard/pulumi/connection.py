"""Where the provider finds the registry and its credentials, and nothing else.

Order: stack config (``modelyard:url``, ``modelyard:apiKey`` set with ``--secret``), then the
environment (``MODELYARD_URL``, ``MODELYARD_API_KEY``), then the ``modelyard login`` store (the
registry logged in to last and its refresh token). The values are read when the provider is
configured in the process that runs it (the engine's dynamic-provider host), and kept only in
that process: the provider object that Pulumi serialises into the state carries none of them
(see :meth:`modelyard.pulumi.provider.RegistryProvider.__getstate__`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from modelyard.client.admin import AdminClient
from modelyard.client.auth import default_auth
from modelyard.sdk import resolve_url

URL_KEY = "modelyard:url"
API_KEY_KEY = "modelyard:apiKey"


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str | None

    @classmethod
    def resolve(cls, config: Mapping[str, object] | None = None) -> Connection:
        """The registry and key from ``config`` (stack config, keys ``modelyard:…``), else the
        environment, else the stored login."""
        config = config or {}
        url = config.get(URL_KEY)
        key = config.get(API_KEY_KEY)
        return cls(
            url=resolve_url(str(url) if url else None),
            api_key=str(key) if key else (os.environ.get("MODELYARD_API_KEY") or None),
        )

    def auth(self) -> httpx.Auth | None:
        if self.api_key:
            return _Bearer(self.api_key)
        return default_auth(self.url)

    def admin(self) -> AdminClient:
        return AdminClient(self.url, auth=self.auth())

    @property
    def host(self) -> str:
        """``host:port``, what ``docker push`` takes in front of a repository path."""
        return self.url.split("://", 1)[-1].rstrip("/")


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
