"""A typed client for the admin API (``/api/v1``), on httpx.

Results are the API's own pydantic models (``modelyard.schemas.admin``); every refusal
becomes an :class:`ApiError` carrying the status, the error code and the server's message.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from modelyard.client.lifecycle import LifecycleMethods
from modelyard.client.proxies import ProxyMethods
from modelyard.client.replication import ReplicationMethods
from modelyard.client.webhooks import WebhookMethods
from modelyard.schemas import admin as schemas
from modelyard.schemas import aliases as alias_schemas
from modelyard.schemas import lineage as lineage_schemas
from modelyard.schemas import models as model_schemas

M = TypeVar("M", bound=pydantic.BaseModel)


class ApiError(Exception):
    """The registry refused a request."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class RegistryUnreachableError(Exception):
    """The registry could not be reached at all."""


def _repo_path(name: str) -> str:
    return "/api/v1/repositories/" + quote(name, safe="/")


class AdminClient(LifecycleMethods, WebhookMethods, ProxyMethods, ReplicationMethods):
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=headers, transport=transport, auth=auth
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise RegistryUnreachableError(f"cannot reach the registry at {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            self._raise(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            first = response.json()["errors"][0]
            raise ApiError(response.status_code, first["code"], first["message"], first.get("detail"))
        except (ValueError, KeyError, IndexError, TypeError):
            raise ApiError(response.status_code, "UNKNOWN", response.text[:500] or response.reason_phrase) from None

    def _get(self, model: type[M], path: str, params: dict[str, Any] | None = None) -> M:
        return model.model_validate(self._request("GET", path, params=params))

    @staticmethod
    def _params(**values: Any) -> dict[str, Any]:
        return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in values.items() if v is not None}

    # -- registry configuration ------------------------------------------------------------

    def get_configuration(self) -> schemas.RegistryConfiguration:
        return self._get(schemas.RegistryConfiguration, "/api/v1/configuration")

    def set_configuration(self, config: schemas.RegistryConfiguration) -> schemas.RegistryConfiguration:
        data = self._request("PUT", "/api/v1/configuration", json=config.model_dump())
        return schemas.RegistryConfiguration.model_validate(data)

    # -- compartments ----------------------------------------------------------------------

    def list_compartments(self, *, limit: int | None = None, page: str | None = None) -> schemas.CompartmentPage:
        return self._get(schemas.CompartmentPage, "/api/v1/compartments", self._params(limit=limit, page=page))

    def iter_compartments(self) -> Iterator[schemas.Compartment]:
        page: str | None = None
        while True:
            result = self.list_compartments(page=page)
            yield from result.items
            if result.next_page is None:
                return
            page = result.next_page

    def create_compartment(self, spec: schemas.CompartmentCreate) -> schemas.Compartment:
        data = self._request("POST", "/api/v1/compartments", json=spec.model_dump(exclude_unset=True))
        return schemas.Compartment.model_validate(data)

    def get_compartment(self, name: str) -> schemas.Compartment:
        return self._get(schemas.Compartment, f"/api/v1/compartments/{quote(name)}")

    def update_compartment(self, name: str, changes: schemas.CompartmentUpdate) -> schemas.Compartment:
        data = self._request(
            "PATCH", f"/api/v1/compartments/{quote(name)}", json=changes.model_dump(exclude_unset=True)
        )
        return schemas.Compartment.model_validate(data)

    def delete_compartment(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/compartments/{quote(name)}")

    def get_compartment_configuration(self, name: str) -> schemas.CompartmentConfigurationView:
        return self._get(schemas.CompartmentConfigurationView, f"/api/v1/compartments/{quote(name)}/configuration")

    def set_compartment_configuration(
        self, name: str, config: schemas.CompartmentConfiguration
    ) -> schemas.CompartmentConfigurationView:
        data = self._request("PUT", f"/api/v1/compartments/{quote(name)}/configuration", json=config.model_dump())
        return schemas.CompartmentConfigurationView.model_validate(data)

    # -- repositories ----------------------------------------------------------------------

    def list_repositories(
        self,
        *,
        compartment: str | None = None,
        is_public: bool | None = None,
        name_prefix: str | None = None,
        limit: int | None = None,
        page: str | None = None,
    ) -> schemas.RepositoryPage:
        params = self._params(
            compartment_id=compartment, is_public=is_public, name_prefix=name_prefix, limit=limit, page=page
        )
        return self._get(schemas.RepositoryPage, "/api/v1/repositories", params)

    def iter_repositories(self, **filters: Any) -> Iterator[schemas.Repository]:
        page: str | None = None
        while True:
            result = self.list_repositories(page=page, **filters)
            yield from result.items
            if result.next_page is None:
                return
            page = result.next_page

    def create_repository(self, spec: schemas.RepositoryCreate) -> schemas.Repository:
        data = self._request("POST", "/api/v1/repositories", json=spec.model_dump(mode="json", exclude_unset=True))
        return schemas.Repository.model_validate(data)

    def get_repository(self, name: str) -> schemas.Repository:
        return self._get(schemas.Repository, _repo_path(name))

    def update_repository(self, name: str, changes: schemas.RepositoryUpdate) -> schemas.Repository:
        data = self._request("PATCH", _repo_path(name), json=changes.model_dump(mode="json", exclude_unset=True))
        return schemas.Repository.model_validate(data)

    def delete_repository(self, name: str) -> None:
        self._request("DELETE", _repo_path(name))

    def list_versions(self, name: str, *, limit: int | None = None, page: str | None = None) -> schemas.VersionPage:
        return self._get(schemas.VersionPage, _repo_path(name) + "/-/versions", self._params(limit=limit, page=page))

    def iter_versions(self, name: str) -> Iterator[schemas.Version]:
        page: str | None = None
        while True:
            result = self.list_versions(name, page=page)
            yield from result.items
            if result.next_page is None:
                return
            page = result.next_page

    # -- model versions --------------------------------------------------------------------

    @staticmethod
    def _version_path(name: str, reference: str) -> str:
        return _repo_path(name) + "/-/versions/" + quote(reference, safe=":")

    def get_model_version(self, name: str, reference: str) -> model_schemas.ModelVersion:
        """Everything the registry understood of a version (tag or digest): facts, card, files."""
        return self._get(model_schemas.ModelVersion, self._version_path(name, reference))

    def get_lineage(self, name: str, reference: str) -> lineage_schemas.Lineage:
        """The versions a version derives from (base annotations, subjects) and those that derive
        from or refer to it, across the repositories the caller may read."""
        return self._get(lineage_schemas.Lineage, self._version_path(name, reference) + "/lineage")

    def diff_versions(
        self, name: str, reference: str, other: str, *, other_repository: str | None = None
    ) -> lineage_schemas.VersionDiff:
        """From ``name:reference`` to ``other`` (a tag or digest of ``other_repository``, default
        the same repository): files added, removed and changed, metadata changed, bytes shared."""
        path = self._version_path(name, reference) + "/diff/" + quote(other, safe=":")
        return self._get(lineage_schemas.VersionDiff, path, self._params(repository=other_repository))

    # -- aliases and tag history -----------------------------------------------------------

    def _alias_path(self, name: str, alias: str) -> str:
        return _repo_path(name) + "/-/aliases/" + quote(alias, safe="")

    def aliases(self, name: str) -> list[alias_schemas.Alias]:
        """The repository's aliases (mutable tags): target, versions on it, protection, last move."""
        return self._get(alias_schemas.AliasList, _repo_path(name) + "/-/aliases").items

    def get_alias(self, name: str, alias: str) -> alias_schemas.Alias:
        return self._get(alias_schemas.Alias, self._alias_path(name, alias))

    def alias_history(
        self,
        name: str,
        tag: str,
        *,
        at: datetime | str | None = None,
        limit: int | None = None,
        page: str | None = None,
    ) -> alias_schemas.HistoryPage:
        """One page of a tag's history, newest first; with ``at``, the entry in force then."""
        when = at.isoformat() if isinstance(at, datetime) else at
        path = _repo_path(name) + "/-/tags/" + quote(tag, safe="") + "/history"
        return self._get(alias_schemas.HistoryPage, path, self._params(at=when, limit=limit, page=page))

    def iter_alias_history(self, name: str, tag: str) -> Iterator[alias_schemas.HistoryEntry]:
        page: str | None = None
        while True:
            result = self.alias_history(name, tag, page=page)
            yield from result.items
            if result.next is None:
                return
            page = result.next

    def set_alias(
        self, name: str, alias: str, target: str, expected_digest: str | None = None, reason: str | None = None
    ) -> alias_schemas.Alias:
        """Point ``alias`` at ``target`` (a version tag or digest); with ``expected_digest``,
        only if it still points there (:class:`ApiError` 409 otherwise)."""
        body = alias_schemas.AliasMove(target=target, expected_digest=expected_digest, reason=reason)
        data = self._request("PUT", self._alias_path(name, alias), json=body.model_dump())
        return alias_schemas.Alias.model_validate(data)

    def rollback(
        self,
        name: str,
        alias: str,
        to: str | None = None,
        reason: str | None = None,
        expected_digest: str | None = None,
    ) -> alias_schemas.Alias:
        """Point ``alias`` back at ``to``, or by default at its most recent earlier target still present."""
        body = alias_schemas.AliasRollback(to=to, reason=reason, expected_digest=expected_digest)
        data = self._request("POST", self._alias_path(name, alias) + "/rollback", json=body.model_dump())
        return alias_schemas.Alias.model_validate(data)

    def delete_alias(
        self, name: str, alias: str, expected_digest: str | None = None, reason: str | None = None
    ) -> None:
        params = self._params(expected_digest=expected_digest, reason=reason)
        self._request("DELETE", self._alias_path(name, alias), params=params)

    def list_model_files(self, name: str, reference: str) -> list[model_schemas.ModelFileInfo]:
        return self._get(model_schemas.ModelFileList, self._version_path(name, reference) + "/files").items

    def search_models(
        self,
        *,
        arch: str | None = None,
        quantization: str | None = None,
        license: str | None = None,
        min_params: int | str | None = None,
        max_params: int | str | None = None,
        format: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        page: str | None = None,
    ) -> model_schemas.ModelSearchPage:
        """One page of versions in repositories the caller may read, newest first.

        ``min_params``/``max_params`` take a count or ``"7B"``, ``"350M"``; ``quantization`` a name
        (``q4_k_m``, ``gptq``) or a width (``int4``, ``8bit``).
        """
        params = self._params(
            arch=arch, quantization=quantization, license=license, min_params=min_params, max_params=max_params,
            format=format, q=q, limit=limit, page=page,
        )  # fmt: skip
        return self._get(model_schemas.ModelSearchPage, "/api/v1/models", params)

    def iter_models(self, **filters: Any) -> Iterator[model_schemas.ModelSearchResult]:
        page: str | None = None
        while True:
            result = self.search_models(page=page, **filters)
            yield from result.items
            if result.next_page is None:
                return
            page = result.next_page

    def iter_file(
        self, name: str, reference: str, path: str, *, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        """The bytes of one file of a version, streamed; ``start``/``end`` (inclusive) ask a range."""
        url = self._version_path(name, reference) + "/files/" + quote(path)
        headers = {}
        if start is not None or end is not None:
            headers["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise RegistryUnreachableError(f"cannot reach the registry at {self.base_url}: {exc}") from None

    def read_file(
        self, name: str, reference: str, path: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        return b"".join(self.iter_file(name, reference, path, start=start, end=end))

    # -- identity, IAM and audit -----------------------------------------------------------

    def me(self) -> schemas.Me:
        return self._get(schemas.Me, "/api/v1/me")

    def list_users(self) -> list[schemas.User]:
        return self._get(schemas.UserList, "/api/v1/users").items

    def create_user(self, spec: schemas.UserCreate) -> schemas.User:
        return schemas.User.model_validate(self._request("POST", "/api/v1/users", json=spec.model_dump()))

    def delete_user(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/users/{quote(name)}")

    def set_password(self, name: str, password: str, current_password: str | None = None) -> None:
        """``current_password`` is required to change one's own password, not to reset another's."""
        body = {"password": password}
        if current_password is not None:
            body["current_password"] = current_password
        self._request("PUT", f"/api/v1/users/{quote(name)}/password", json=body)

    def list_service_accounts(self) -> list[schemas.ServiceAccount]:
        return self._get(schemas.ServiceAccountList, "/api/v1/service-accounts").items

    def create_service_account(self, spec: schemas.ServiceAccountCreate) -> schemas.ServiceAccount:
        data = self._request("POST", "/api/v1/service-accounts", json=spec.model_dump())
        return schemas.ServiceAccount.model_validate(data)

    def delete_service_account(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/service-accounts/{quote(name)}")

    @staticmethod
    def _keys_path(principal: str) -> str:
        kind, _, name = principal.partition(":")
        base = "/api/v1/users/" if kind == "user" else "/api/v1/service-accounts/"
        return base + quote(name) + "/keys"

    def list_api_keys(self, principal: str) -> list[schemas.ApiKey]:
        """``principal`` is ``user:NAME`` or ``serviceAccount:NAME``."""
        return self._get(schemas.ApiKeyList, self._keys_path(principal)).items

    def create_api_key(self, principal: str, spec: schemas.ApiKeyCreate) -> schemas.NewApiKey:
        return schemas.NewApiKey.model_validate(
            self._request("POST", self._keys_path(principal), json=spec.model_dump())
        )

    def revoke_api_key(self, principal: str, key_id: str) -> None:
        self._request("DELETE", f"{self._keys_path(principal)}/{quote(key_id)}")

    def list_groups(self) -> list[schemas.Group]:
        return self._get(schemas.GroupList, "/api/v1/groups").items

    def create_group(self, name: str) -> schemas.Group:
        return schemas.Group.model_validate(self._request("POST", "/api/v1/groups", json={"name": name}))

    def set_group_members(self, name: str, members: list[str]) -> schemas.Group:
        data = self._request("PUT", f"/api/v1/groups/{quote(name)}/members", json={"members": members})
        return schemas.Group.model_validate(data)

    def delete_group(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/groups/{quote(name)}")

    @staticmethod
    def policy_path(*, compartment: str | None = None, repository: str | None = None) -> str:
        if compartment is not None:
            return f"/api/v1/compartments/{quote(compartment)}/iam"
        if repository is not None:
            return _repo_path(repository) + "/-/iam"
        return "/api/v1/iam"

    def get_policy(self, *, compartment: str | None = None, repository: str | None = None) -> schemas.Policy:
        return self._get(schemas.Policy, self.policy_path(compartment=compartment, repository=repository))

    def set_policy(
        self, policy: schemas.Policy, *, compartment: str | None = None, repository: str | None = None
    ) -> schemas.Policy:
        path = self.policy_path(compartment=compartment, repository=repository)
        return schemas.Policy.model_validate(self._request("PUT", path, json=policy.model_dump()))

    def audit(
        self, *, actor: str | None = None, action: str | None = None, limit: int | None = None, page: str | None = None
    ) -> schemas.AuditPage:
        params = self._params(actor=actor, action=action, limit=limit, page=page)
        return self._get(schemas.AuditPage, "/api/v1/audit", params)
