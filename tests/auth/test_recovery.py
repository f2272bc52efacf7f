"""Keeping the registry administrable: the last administrator, registry-wide public reading,
and offline recovery with ``modelyard reset-admin``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelyard.cli.main import app as cli
from tests.auth.conftest import AuthRegistryFactory, auth_registry
from tests.auth.support import ADMIN_PASSWORD


def _admin_token(registry: object, password: str = ADMIN_PASSWORD) -> str:
    """What the admin API takes from ``modelyard login``: the refresh token."""
    return registry.refresh_token("admin", password)  # type: ignore[attr-defined, no-any-return]


def test_the_last_administrator_cannot_be_deleted(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = _admin_token(registry)
    registry.api("POST", "/api/v1/users", admin, 201,
                 json={"name": "alice", "email": "alice@acme.com", "password": "alice-secret"})  # fmt: skip

    refused = registry.api("DELETE", "/api/v1/users/admin", admin, 409)
    assert "last administrator" in refused["errors"][0]["message"]

    policy = registry.api("GET", "/api/v1/iam", admin, 200)
    policy["bindings"].append({"role": "admin", "members": ["user:alice@acme.com"]})
    registry.api("PUT", "/api/v1/iam", admin, 200, json=policy)
    registry.api("DELETE", "/api/v1/users/admin", admin, 204)  # alice is an administrator now
    alice = registry.refresh_token("alice", "alice-secret")
    assert registry.api("DELETE", "/api/v1/users/alice", alice, 409)["errors"][0]["code"] == "CONFLICT"


def test_registry_wide_public_reading_is_kept(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = _admin_token(registry)
    policy = registry.api("GET", "/api/v1/iam", admin, 200)
    policy["bindings"].append({"role": "reader", "members": ["allUsers"]})
    stored = registry.api("PUT", "/api/v1/iam", admin, 200, json=policy)
    assert {"role": "reader", "members": ["allUsers"]} in stored["bindings"]
    registry.push_image(
        "acme/llm", "v1", registry.token("repository:acme/llm:pull,push", auth=("admin", ADMIN_PASSWORD)), "x"
    )
    anonymous = registry.token("repository:acme/llm:pull")
    assert registry.request("GET", "/v2/acme/llm/tags/list", anonymous).json()["tags"] == ["v1"]


def test_reset_admin_recovers_a_locked_out_registry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with auth_registry(data) as registry:
        admin = _admin_token(registry)
        registry.api("PUT", "/api/v1/users/admin/password", admin, 204,
                     json={"password": "forgotten-password", "current_password": ADMIN_PASSWORD})  # fmt: skip
    result = CliRunner().invoke(cli, ["reset-admin", "--data-dir", str(data), "--password-stdin"],
                                input="recovered-password\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    with auth_registry(data) as registry:
        assert registry.password_grant("admin", "forgotten-password").status_code == 401
        admin = _admin_token(registry, "recovered-password")
        assert registry.api("GET", "/api/v1/me", admin, 200)["subject"] == "user:admin"
        registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": "acme"})  # still an administrator
    short = CliRunner().invoke(cli, ["reset-admin", "--data-dir", str(data), "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least" in short.output
