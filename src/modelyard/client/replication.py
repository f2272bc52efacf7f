"""Admin-client methods for replication (mixed into :class:`~modelyard.client.admin.AdminClient`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from modelyard.schemas import replication as schemas

BASE = "/api/v1/replication"


class ReplicationMethods:
    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError  # AdminClient's

    def create_replication_target(self, spec: schemas.TargetCreate) -> schemas.Target:
        """Register a target; its password is stored encrypted and never shown again."""
        body = spec.model_dump(exclude_none=True)
        return schemas.Target.model_validate(self._request("POST", f"{BASE}/targets", json=body))

    def list_replication_targets(self) -> list[schemas.Target]:
        return schemas.TargetList.model_validate(self._request("GET", f"{BASE}/targets")).items

    def delete_replication_target(self, name: str) -> None:
        self._request("DELETE", f"{BASE}/targets/{quote(name, safe='')}")

    def create_replication_rule(self, spec: schemas.RuleCreate) -> schemas.Rule:
        return schemas.Rule.model_validate(self._request("POST", f"{BASE}/rules", json=spec.model_dump()))

    def list_replication_rules(self) -> list[schemas.Rule]:
        return schemas.RuleList.model_validate(self._request("GET", f"{BASE}/rules")).items

    def enable_replication_rule(self, name: str, enabled: bool) -> schemas.Rule:
        body = schemas.RuleUpdate(enabled=enabled).model_dump()
        return schemas.Rule.model_validate(self._request("PATCH", f"{BASE}/rules/{quote(name, safe='')}", json=body))

    def delete_replication_rule(self, name: str) -> None:
        self._request("DELETE", f"{BASE}/rules/{quote(name, safe='')}")

    def run_replication_rule(self, name: str, *, wait: bool = False) -> schemas.Execution:
        """A full pass now; with ``wait`` the answer comes when it has ended."""
        path = f"{BASE}/rules/{quote(name, safe='')}/run"
        body = schemas.RunRequest(wait=wait).model_dump()
        return schemas.Execution.model_validate(self._request("POST", path, json=body))

    def list_replication_executions(
        self, rule: str | None = None, *, limit: int | None = None, page: str | None = None
    ) -> schemas.ExecutionPage:
        params = {k: v for k, v in (("rule", rule), ("limit", limit), ("page", page)) if v is not None}
        return schemas.ExecutionPage.model_validate(self._request("GET", f"{BASE}/executions", params=params))
