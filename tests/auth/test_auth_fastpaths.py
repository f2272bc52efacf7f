"""The fast paths of authentication (issue 17) keep their guarantees, through a real server.

- A burst of token requests with one right password pays argon2 once: the requests that come
  while it runs wait for it instead of being refused as busy (crane fetches a token per request).
- Identical wrong passwords in parallel are still each checked and counted by the throttle.
- A remembered password stops working the moment it is changed or its account deleted.
- Every token issued is in the audit log (written with group commit), before its answer.
- A verified access token is remembered, but only until it expires; a tampered one is refused.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest

from modelyard.domain.errors import RegistryError
from modelyard.services.tokens import TokenService
from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import ADMIN_PASSWORD, SERVICE, Registry, basic, refusal_of

PASSWORD = "fast-path-password"


async def _tokens(url: str, credentials: list[tuple[str, str]], address: str = "127.0.0.1") -> list[httpx.Response]:
    """One token request per pair, all at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(credentials), max_keepalive_connections=0)
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=limits)
    async with httpx.AsyncClient(base_url=url, timeout=120, transport=transport) as client:
        return list(
            await asyncio.gather(
                *(
                    client.get("/auth/token", params={"service": SERVICE}, headers={"Authorization": basic(u, p)})
                    for u, p in credentials
                )
            )
        )


def _user(registry: Registry, admin: str, name: str) -> None:
    registry.api(
        "POST", "/api/v1/users", admin, 201, json={"name": name, "email": f"{name}@acme.com", "password": PASSWORD}
    )


def test_a_burst_of_one_right_password_pays_argon2_once(registry_factory: AuthRegistryFactory) -> None:
    # One check at a time and one waiting: without sharing the check, 18 of 20 would get 429.
    registry = registry_factory(password_hash_concurrency=1, password_hash_queue=1, login_failures_per_address=1000)
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "crane")
    responses = asyncio.run(_tokens(registry.url, [("crane", PASSWORD)] * 20))
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]


def test_identical_wrong_passwords_in_parallel_are_each_counted(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(
        password_hash_concurrency=1, password_hash_queue=16, login_failures_per_account=4,
        login_failures_per_address=1000,
    )  # fmt: skip
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "victim")
    wrong = asyncio.run(_tokens(registry.url, [("victim", "the-same-wrong-guess")] * 6, "127.0.0.7"))
    assert {r.status_code for r in wrong} <= {401, 429} and 401 in {r.status_code for r in wrong}
    # Over the account's limit, and this address failed on it: refused even with the right password.
    right = asyncio.run(_tokens(registry.url, [("victim", PASSWORD)], "127.0.0.7"))[0]
    assert (right.status_code, refusal_of(right).code) == (429, "TOOMANYREQUESTS")
    # The owner, from an address that never failed, is not locked out.
    assert asyncio.run(_tokens(registry.url, [("victim", PASSWORD)], "127.0.0.8"))[0].status_code == 200


def test_a_remembered_password_ends_with_a_password_change_or_the_account(
    registry_factory: AuthRegistryFactory,
) -> None:
    registry = registry_factory(credential_cache_ttl=600)
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "rotating")
    for _ in range(3):  # remembered after the first
        assert registry.token_response(auth=("rotating", PASSWORD)).status_code == 200
    registry.api("PUT", "/api/v1/users/rotating/password", admin, 204, json={"password": "rotated-password-2"})
    assert refusal_of(registry.token_response(auth=("rotating", PASSWORD))).status == 401
    assert registry.token_response(auth=("rotating", "rotated-password-2")).status_code == 200

    registry.api("DELETE", "/api/v1/users/rotating", admin, 204)
    assert refusal_of(registry.token_response(auth=("rotating", "rotated-password-2"))).status == 401
    _user(registry, admin, "rotating")  # the same name, another account: its own password only
    assert refusal_of(registry.token_response(auth=("rotating", "rotated-password-2"))).status == 401
    assert registry.token_response(auth=("rotating", PASSWORD)).status_code == 200


def test_a_token_request_records_its_login_with_its_token_and_a_login_without_one(
    registry_factory: AuthRegistryFactory,
) -> None:
    """The login and the token of one request are written together (one group-commit round, not
    two); a login whose request then fails (too many scopes) is still recorded, on its own."""
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "recorded")
    assert registry.token_response("repository:acme/x:pull", auth=("recorded", PASSWORD)).status_code == 200
    too_many = [f"repository:acme/r{i}:pull" for i in range(101)]  # refused: at most 100 scopes
    refused = registry.token_response(*too_many, auth=("recorded", PASSWORD))
    assert refused.status_code == 400, refused.text
    events = registry.api("GET", "/api/v1/audit", admin, 200, params={"actor": "user:recorded", "limit": 10})["items"]
    # Newest first: the failed request's login alone, then the first request's token and login.
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("login", "success"),
        ("token.issue", "success"),
        ("login", "success"),
    ], events
    token_event, login_event = events[1], events[2]
    assert token_event["id"] == login_event["id"] + 1  # the login right before its token
    assert token_event["client_ip"] == login_event["client_ip"] == "127.0.0.1"


def test_every_token_issued_is_in_the_audit_log_when_answered(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(login_failures_per_address=1000)
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "auditee")
    responses = asyncio.run(_tokens(registry.url, [("auditee", PASSWORD)] * 25))
    assert [r.status_code for r in responses] == [200] * 25
    events = registry.api(
        "GET", "/api/v1/audit", admin, 200, params={"actor": "user:auditee", "action": "token.issue", "limit": 100}
    )["items"]
    assert len(events) == 25


def test_a_verified_access_token_is_remembered_only_until_it_expires() -> None:
    tokens = TokenService(b"k" * 32, "modelyard", ttl=1, refresh_ttl=300)
    issued = tokens.issue_access("user:alice", [{"type": "repository", "name": "acme/llm", "actions": ["pull"]}])
    first = tokens.verify_access(issued.token)
    assert tokens.verify_access(issued.token) is first  # the remembered claims
    assert first.allows("repository", "acme/llm", "pull") and not first.allows("repository", "acme/llm", "push")

    # Same claims signed with another key, and a tampered payload: refused, remembered or not.
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "jti": "other"}, b"x" * 32, algorithm="HS256")
    head, _, rest = issued.token.partition(".")
    tampered = head + "." + jwt.utils.base64url_encode(b'{"sub":"user:mallory"}').decode() + "." + rest.split(".")[1]
    for bad in (forged, tampered):
        with pytest.raises(RegistryError):
            tokens.verify_access(bad)

    time.sleep(2.1)  # exp = iat + 1, and iat is whole seconds
    with pytest.raises(RegistryError, match="expired"):
        tokens.verify_access(issued.token)


def test_a_revoked_api_key_is_refused_at_once_however_often_it_was_just_used(
    registry_factory: AuthRegistryFactory,
) -> None:
    # last_used_at is written at most once a minute per process; the key itself is read every time.
    registry = registry_factory()
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    _user(registry, admin, "robot")
    created = registry.api("POST", "/api/v1/users/robot/keys", admin, 201, json={})
    key_id, secret = created["id"], created["secret"]
    for _ in range(5):
        assert registry.token_response(auth=("robot", secret)).status_code == 200
    listed = registry.api("GET", "/api/v1/users/robot/keys", admin, 200)["items"]
    assert [k["time_last_used"] is not None for k in listed] == [True]
    registry.api("DELETE", f"/api/v1/users/robot/keys/{key_id}", admin, 204)
    refused = registry.token_response(auth=("robot", secret))
    assert (refused.status_code, refusal_of(refused).code) == (401, "UNAUTHORIZED")
