"""Admin-client methods for pull-through cache rules (mixed into
:class:`~modelyard.client.admin.AdminClient`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from modelyard.schemas import proxies as schemas

BASE = "/api/v1/proxies"


class ProxyMethods:
    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError  # AdminClient's

    def create_proxy(self, spec: schemas.ProxyCreate) -> schemas.Proxy:
        """Add a rule; the password goes in once and is never shown again."""
        return schemas.Proxy.model_validate(self._request("POST", BASE, json=spec.model_dump()))

    def list_proxies(self) -> list[schemas.Proxy]:
        return schemas.ProxyList.model_validate(self._request("GET", BASE)).items

    def get_proxy(self, prefix: str) -> schemas.Proxy:
        return schemas.Proxy.model_validate(self._request("GET", f"{BASE}/{quote(prefix)}"))

    def delete_proxy(self, prefix: str) -> None:
        self._request("DELETE", f"{BASE}/{quote(prefix)}")
