"""Admin-client methods for retention, quotas, usage and maintenance runs (mixed into
:class:`~modelyard.client.admin.AdminClient`, kept here so the client module stays one concern
per file)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from modelyard.schemas import lifecycle as schemas


def owner_path(*, repository: str | None = None, compartment: str | None = None) -> str:
    """``/api/v1/repositories/{name}/-`` or ``/api/v1/compartments/{name}``: exactly one."""
    if (repository is None) == (compartment is None):
        raise ValueError("give exactly one of repository and compartment")
    if repository is not None:
        return "/api/v1/repositories/" + quote(repository, safe="/") + "/-"
    return "/api/v1/compartments/" + quote(str(compartment), safe="")


class LifecycleMethods:
    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError  # AdminClient's

    def get_retention_policy(
        self, *, repository: str | None = None, compartment: str | None = None
    ) -> schemas.RetentionPolicy:
        path = owner_path(repository=repository, compartment=compartment) + "/retention"
        return schemas.RetentionPolicy.model_validate(self._request("GET", path))

    def set_retention_policy(
        self, policy: schemas.RetentionPolicyBody, *, repository: str | None = None, compartment: str | None = None
    ) -> schemas.RetentionPolicy:
        path = owner_path(repository=repository, compartment=compartment) + "/retention"
        return schemas.RetentionPolicy.model_validate(self._request("PUT", path, json=policy.model_dump()))

    def delete_retention_policy(self, *, repository: str | None = None, compartment: str | None = None) -> None:
        self._request("DELETE", owner_path(repository=repository, compartment=compartment) + "/retention")

    def plan_retention(self, *, repository: str | None = None, compartment: str | None = None) -> schemas.RetentionPlan:
        body = schemas.RetentionTarget(repository=repository, compartment=compartment).model_dump(exclude_none=True)
        return schemas.RetentionPlan.model_validate(self._request("POST", "/api/v1/retention/plan", json=body))

    def run_retention(self, *, repository: str | None = None, compartment: str | None = None) -> schemas.RetentionRun:
        body = schemas.RetentionTarget(repository=repository, compartment=compartment).model_dump(exclude_none=True)
        return schemas.RetentionRun.model_validate(self._request("POST", "/api/v1/retention/run", json=body))

    def get_quota(self, *, repository: str | None = None, compartment: str | None = None) -> schemas.Quota:
        path = owner_path(repository=repository, compartment=compartment) + "/quota"
        return schemas.Quota.model_validate(self._request("GET", path))

    def set_quota(
        self, limit_bytes: int, *, repository: str | None = None, compartment: str | None = None
    ) -> schemas.Quota:
        path = owner_path(repository=repository, compartment=compartment) + "/quota"
        return schemas.Quota.model_validate(self._request("PUT", path, json={"limit_bytes": limit_bytes}))

    def delete_quota(self, *, repository: str | None = None, compartment: str | None = None) -> None:
        self._request("DELETE", owner_path(repository=repository, compartment=compartment) + "/quota")

    def usage(self, compartment: str | None = None) -> schemas.Usage:
        params = {"compartment": compartment} if compartment is not None else None
        return schemas.Usage.model_validate(self._request("GET", "/api/v1/usage", params=params))

    def list_runs(self, kind: str, *, limit: int | None = None, page: str | None = None) -> schemas.MaintenanceRunPage:
        params = {k: v for k, v in (("limit", limit), ("page", page)) if v is not None}
        return schemas.MaintenanceRunPage.model_validate(self._request("GET", f"/api/v1/{kind}/runs", params=params))
