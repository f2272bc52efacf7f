"""Account security (issue 8, items 3-6, 8 and the lockout part of 9), through a real server.

- ``/v2`` access tokens do not authenticate the admin API; one's own password change needs the
  current one; API keys need a real login.
- The login throttle holds under real parallel requests, on SQLite in one process and on
  PostgreSQL across two workers, and nobody can lock the owner of an account out.
- Password hashing is bounded and fails fast; a right password is remembered briefly.
- A token request names at most 100 scopes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import ADMIN_PASSWORD, SERVICE, AuthServerProcess, Registry, basic, refusal_of
from tests.interop.serverproc import register_servers

PASSWORD = "account-security-password"


def _user(registry: Registry, admin: str, name: str, email: str | None = None) -> None:
    registry.api("POST", "/api/v1/users", admin, 201,
                 json={"name": name, "email": email or f"{name}@acme.com", "password": PASSWORD})  # fmt: skip


def _from(registry: Registry, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.0.0.0/8 address reaches 127.0.0.1)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=registry.url, transport=transport, timeout=60)


def _login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.get("/auth/token", params={"service": SERVICE}, headers={"Authorization": basic(username, password)})


def _code(response: httpx.Response) -> tuple[int, str | None]:
    refusal = refusal_of(response)
    return refusal.status, refusal.code


# -- item 3: which credentials the admin API takes --------------------------------------------


def test_access_tokens_do_not_authenticate_the_admin_api(registry_factory: AuthRegistryFactory) -> None:
    """The reproduction: a token with ``"access": []`` changed its owner's password (no current
    password asked) and minted a permanent API key."""
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "mallory-victim")
    access = registry.token(auth=("mallory-victim", PASSWORD))  # "access": []

    for method, path, body in (
        ("PUT", "/api/v1/users/mallory-victim/password", {"password": "taken-over-password"}),
        ("POST", "/api/v1/users/mallory-victim/keys", {"description": "backdoor"}),
        ("GET", "/api/v1/me", None),
    ):
        response = registry.request(method, path, access, json=body)
        assert _code(response) == (401, "UNAUTHORIZED"), response.text
        assert "access token does not authenticate the admin API" in response.json()["errors"][0]["message"]
    assert registry.token_response(auth=("mallory-victim", PASSWORD)).status_code == 200  # password unchanged
    assert registry.api("GET", "/api/v1/users/mallory-victim/keys", admin, 200)["items"] == []

    # A real login creates keys: the refresh token of `modelyard login`, Basic, or an API key.
    refresh = registry.refresh_token("mallory-victim", PASSWORD)
    key = registry.api("POST", "/api/v1/users/mallory-victim/keys", refresh, 201, json={})["secret"]
    basic_auth = {"Authorization": basic("mallory-victim", PASSWORD)}
    assert registry.http.post("/api/v1/users/mallory-victim/keys", json={}, headers=basic_auth).status_code == 201
    assert registry.api("POST", "/api/v1/users/mallory-victim/keys", key, 201, json={})["secret"]


def test_own_password_change_needs_the_current_password(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "carol")
    session = registry.refresh_token("carol", PASSWORD)
    path = "/api/v1/users/carol/password"

    missing = registry.request("PUT", path, session, json={"password": "carols-new-password"})
    assert _code(missing) == (422, "VALIDATION_FAILED") and "current_password" in missing.text
    wrong = registry.request("PUT", path, session, json={"password": "carols-new-password", "current_password": "x"})
    assert _code(wrong) == (403, "DENIED") and "current_password" in wrong.text
    assert registry.token_response(auth=("carol", PASSWORD)).status_code == 200  # unchanged

    registry.api("PUT", path, session, 204, json={"password": "carols-new-password", "current_password": PASSWORD})
    assert registry.token_response(auth=("carol", "carols-new-password")).status_code == 200
    # The administrator resets another user's password without knowing it.
    registry.api("PUT", path, admin, 204, json={"password": "reset-by-the-admin"})
    assert registry.token_response(auth=("carol", "reset-by-the-admin")).status_code == 200
    # The administrator's own password is their own: the current one is needed too.
    own = registry.request("PUT", "/api/v1/users/admin/password", admin, json={"password": "admins-new-password"})
    assert _code(own) == (422, "VALIDATION_FAILED")


# -- item 4: the throttle holds under parallel guesses ----------------------------------------


async def _logins(url: str, credentials: list[tuple[str, str]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(credentials), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(
                    client.get("/auth/token", params={"service": SERVICE}, headers={"Authorization": basic(u, p)})
                    for u, p in credentials
                )
            )
        )


async def _flood(url: str, username: str, count: int) -> list[httpx.Response]:
    """``count`` wrong passwords for ``username`` at once, each on its own connection."""
    return await _logins(url, [(username, f"wrong-guess-{i}") for i in range(count)])


def _assert_limit_held(responses: list[httpx.Response], limit: int) -> None:
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) == limit, f"{statuses.count(401)} guesses were checked, the limit is {limit}"
    refused = [r for r in responses if r.status_code == 429]
    assert all(_code(r) == (429, "TOOMANYREQUESTS") and int(r.headers["Retry-After"]) > 0 for r in refused)


def test_parallel_guesses_cannot_pass_the_limit_sqlite(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(login_failures_per_account=10, login_failures_per_address=1000, password_hash_queue=200)
    _assert_limit_held(asyncio.run(_flood(registry.url, "admin", 100)), 10)


@pytest.mark.postgres
def test_parallel_guesses_cannot_pass_the_limit_postgresql_two_workers(
    postgres_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = AuthServerProcess(
        tmp_path / "data", tmp_path / "server.log",
        extra=("--auth", "--no-access-log", "--workers", "2", "--database-url", postgres_url),
        env={"MODELYARD_ADMIN_PASSWORD": ADMIN_PASSWORD, "MODELYARD_LOGIN_FAILURES_PER_ACCOUNT": "10",
             "MODELYARD_LOGIN_FAILURES_PER_ADDRESS": "1000", "MODELYARD_PASSWORD_HASH_QUEUE": "200"},
    )  # fmt: skip
    register_servers(request.node, [server])
    server.start()
    try:
        _assert_limit_held(asyncio.run(_flood(server.url, "admin", 100)), 10)
        # The owner, from an address that has not failed, still gets in.
        with _from(Registry(server.url), "127.0.0.3") as owner:
            assert _login(owner, "admin", ADMIN_PASSWORD).status_code == 200
    finally:
        server.stop()


# -- item 5 and 9: nobody can lock the owner out; an account is one account --------------------


def test_guesses_from_one_address_do_not_lock_the_owner_out(registry_factory: AuthRegistryFactory) -> None:
    """The reproduction: 10 wrong passwords from address A, then the right one from B got 429."""
    registry = registry_factory(login_failures_per_account=10, login_failures_per_address=1000)
    with _from(registry, "127.0.0.2") as attacker, _from(registry, "127.0.0.1") as owner:
        for attempt in range(10):
            assert _login(attacker, "admin", f"guess-{attempt}").status_code == 401
        throttled = _login(attacker, "admin", f"guess-{attempt}")
        assert _code(throttled) == (429, "TOOMANYREQUESTS")
        assert _login(owner, "admin", ADMIN_PASSWORD).status_code == 200
        # The attacker's address stays throttled on that account, even with the right password.
        assert _code(_login(attacker, "admin", ADMIN_PASSWORD)) == (429, "TOOMANYREQUESTS")


def test_user_name_and_email_are_one_account(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(login_failures_per_account=4, login_failures_per_address=1000)
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "eve", "eve@acme.com")
    with _from(registry, "127.0.0.4") as guesser:
        for name in ("eve", "eve@acme.com", "eve", "eve@acme.com"):
            assert _login(guesser, name, "not-eves-password").status_code == 401
        assert _code(_login(guesser, "eve", "not-eves-password")) == (429, "TOOMANYREQUESTS")
        assert _code(_login(guesser, "eve@acme.com", "not-eves-password")) == (429, "TOOMANYREQUESTS")
        # Unknown names count under their case-folded form.
        for name in ("Ghost", "ghost", "GHOST", "ghost"):
            assert _login(guesser, name, "whatever-password").status_code == 401
        assert _code(_login(guesser, "gHoSt", "whatever-password")) == (429, "TOOMANYREQUESTS")


# -- item 6: bounded hashing, remembered successes ----------------------------------------------


def test_password_checks_are_bounded_and_remembered(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(
        password_hash_concurrency=1, password_hash_queue=1, login_failures_per_address=1000, credential_cache_ttl=60
    )
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)  # admin's password is now remembered
    guesses = [(f"nobody-{i}", "wrong-password") for i in range(30)]
    rights = [("admin", ADMIN_PASSWORD)] * 10
    responses = asyncio.run(_logins(registry.url, guesses + rights))

    busy = [r for r in responses[:30] if r.status_code == 429]
    assert busy, "30 parallel password checks on a pool of 1 with a queue of 1: some must be refused at once"
    for response in busy:
        assert _code(response) == (429, "TOOMANYREQUESTS") and response.headers["Retry-After"] == "1"
        assert "busy" in response.json()["errors"][0]["message"]
    assert {r.status_code for r in responses[:30]} <= {401, 429}
    # The remembered password needs no argon2 check: never refused for being busy.
    assert [r.status_code for r in responses[30:]] == [200] * 10

    # A password change ends the remembered login at once.
    _user(registry, admin, "frank")
    assert registry.token_response(auth=("frank", PASSWORD)).status_code == 200
    registry.api("PUT", "/api/v1/users/frank/password", admin, 204, json={"password": "franks-new-password"})
    assert _code(registry.token_response(auth=("frank", PASSWORD))) == (401, "UNAUTHORIZED")
    assert registry.token_response(auth=("frank", "franks-new-password")).status_code == 200


# -- item 8: scopes per token request -------------------------------------------------------------


def test_token_requests_are_capped_at_100_scopes(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    scopes = [f"repository:acme/repo-{i}:pull" for i in range(101)]
    for response in (
        registry.token_response(*scopes, auth=("admin", ADMIN_PASSWORD)),
        registry.refresh_grant(admin, *scopes),
    ):
        assert _code(response) == (400, "UNSUPPORTED"), response.text
        assert "at most 100 scopes" in response.json()["errors"][0]["message"]
    # 100 (and the same scope repeated) are fine.
    assert registry.token_response(*scopes[:100], auth=("admin", ADMIN_PASSWORD)).status_code == 200
    assert registry.refresh_grant(admin, *([scopes[0]] * 500)).status_code == 200
    issued = registry.api("GET", "/api/v1/audit", admin, 200, params={"action": "token.issue", "limit": 5})["items"]
    assert max(len(str(e["detail"])) for e in issued) < 100 * 80
