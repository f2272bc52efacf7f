"""IAM bindings die with what they grant on, and with whom they name (issue 8, item 7).

Deleting a compartment, repository, user, service account or group removes its policy and the
bindings naming it in the same transaction, so creating something again under the same name
starts with no grants. Through a real server, as an administrator would.
"""

from __future__ import annotations

from typing import Any

from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import ADMIN_PASSWORD, Registry

PASSWORD = "iam-lifecycle-password"


def _members(registry: Registry, admin: str, path: str) -> dict[str, list[str]]:
    policy = registry.api("GET", path, admin, 200)
    return {b["role"]: b["members"] for b in policy["bindings"]}


def _bind(registry: Registry, admin: str, path: str, role: str, *members: str) -> None:
    policy = registry.api("GET", path, admin, 200)
    policy["bindings"].append({"role": role, "members": list(members)})
    registry.api("PUT", path, admin, 200, json=policy)


def _user(registry: Registry, admin: str, name: str, email: str) -> None:
    registry.api("POST", "/api/v1/users", admin, 201, json={"name": name, "email": email, "password": PASSWORD})


def _can_pull(registry: Registry, who: tuple[str, str], repo: str) -> bool:
    token = registry.token(f"repository:{repo}:pull", auth=who)
    return registry.request("GET", f"/v2/{repo}/tags/list", token).status_code == 200


def test_a_recreated_compartment_does_not_revive_its_bindings(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": "gamma"})
    _bind(registry, admin, "/api/v1/compartments/gamma/iam", "writer", "user:dave@acme.com")
    registry.api("DELETE", "/api/v1/compartments/gamma", admin, 204)
    registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": "gamma"})
    fresh = registry.api("GET", "/api/v1/compartments/gamma/iam", admin, 200)
    assert fresh["bindings"] == [], fresh


def test_a_recreated_repository_does_not_revive_its_bindings(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": "acme"})
    spec = {"compartment_id": "acme", "display_name": "llm"}
    registry.api("POST", "/api/v1/repositories", admin, 201, json=spec)
    _bind(registry, admin, "/api/v1/repositories/acme/llm/-/iam", "writer", "serviceAccount:ci")
    registry.api("DELETE", "/api/v1/repositories/acme/llm", admin, 204)
    registry.api("POST", "/api/v1/repositories", admin, 201, json=spec)
    assert registry.api("GET", "/api/v1/repositories/acme/llm/-/iam", admin, 200)["bindings"] == []


def test_a_new_user_with_an_old_name_gets_none_of_its_grants(registry_factory: AuthRegistryFactory) -> None:
    """The reproduction: delete user frank, create a new frank: the old frank's grants applied."""
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": "acme"})
    registry.api("POST", "/api/v1/repositories", admin, 201, json={"compartment_id": "acme", "display_name": "llm"})
    _user(registry, admin, "frank", "frank@acme.com")
    registry.api("POST", "/api/v1/groups", admin, 201, json={"name": "readers"})
    registry.api("PUT", "/api/v1/groups/readers/members", admin, 200, json={"members": ["frank"]})
    path = "/api/v1/repositories/acme/llm/-/iam"
    _bind(registry, admin, path, "writer", "user:frank", "user:frank@acme.com", "serviceAccount:kept")
    _bind(registry, admin, "/api/v1/compartments/acme/iam", "reader", "user:frank@acme.com")
    assert _can_pull(registry, ("frank", PASSWORD), "acme/llm")

    registry.api("DELETE", "/api/v1/users/frank", admin, 204)
    assert _members(registry, admin, path) == {"writer": ["serviceAccount:kept"]}
    assert _members(registry, admin, "/api/v1/compartments/acme/iam") == {}
    assert registry.api("GET", "/api/v1/groups/readers", admin, 200)["members"] == []

    _user(registry, admin, "frank", "frank@acme.com")
    assert not _can_pull(registry, ("frank", PASSWORD), "acme/llm")
    assert registry.api("GET", "/api/v1/groups/readers", admin, 200)["members"] == []


def test_deleted_service_accounts_and_groups_leave_no_bindings(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    registry.api("POST", "/api/v1/service-accounts", admin, 201, json={"name": "ci"})
    registry.api("POST", "/api/v1/groups", admin, 201, json={"name": "ops"})
    _bind(registry, admin, "/api/v1/iam", "reader", "serviceAccount:ci", "group:ops")
    before: dict[str, Any] = registry.api("GET", "/api/v1/iam", admin, 200)

    registry.api("DELETE", "/api/v1/service-accounts/ci", admin, 204)
    assert _members(registry, admin, "/api/v1/iam")["reader"] == ["group:ops"]
    registry.api("DELETE", "/api/v1/groups/ops", admin, 204)
    after = registry.api("GET", "/api/v1/iam", admin, 200)
    assert "reader" not in {b["role"] for b in after["bindings"]}
    assert {"role": "admin", "members": ["user:admin"]} in after["bindings"]
    # The policy changed under whoever read it before: their write is refused as stale.
    stale = registry.request("PUT", "/api/v1/iam", admin, json=before)
    assert stale.status_code == 409, stale.text

    registry.api("POST", "/api/v1/service-accounts", admin, 201, json={"name": "ci"})
    registry.api("POST", "/api/v1/groups", admin, 201, json={"name": "ops"})
    assert "reader" not in _members(registry, admin, "/api/v1/iam")
