"""Attacks on the token flow and the admin API, and the guarantees that stop them.

Forged, expired, misused and stolen-but-revoked credentials; upload sessions hijacked by
another principal; private repositories probed by name; password guessing; secrets leaking
into the audit log or the server log; IAM policies losing their last admin or overwritten
from a stale read.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy

from modelyard.metadata import tables
from modelyard.storage.paths import sqlite_path
from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import (
    ADMIN_PASSWORD,
    ALL_MANIFESTS,
    AuthServerProcess,
    Image,
    Registry,
    access_of,
    basic,
    challenge_params,
    jwt_claims,
    refusal_of,
    sha256,
)
from tests.interop.serverproc import register_servers

TOKEN_SECRET = "attack-suite-hmac-key-" + "0123456789abcdef" * 3  # 70 bytes: long enough for HS512
SECRET_REPO = "acme/secret"
OPEN_REPO = "acme/open"
OTHER_REPO = "acme/other"
MISSING_REPO = "acme/missing"
USER_PASSWORD = "attack-user-password"


@dataclass
class Setup:
    registry: Registry
    admin_refresh: str
    keys: dict[str, str] = field(default_factory=dict)  # service account -> API key
    images: dict[str, Image] = field(default_factory=dict)

    def admin(self, *scopes: str) -> str:
        return self.registry.token_from_refresh(self.admin_refresh, *scopes)

    def admin_repo(self, *repos: str) -> str:
        return self.admin(*(f"repository:{r}:pull,push,delete" for r in repos))

    def api(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        """An admin request as ``modelyard login`` makes it: the refresh token as the Bearer token."""
        return self.registry.api(method, path, self.admin_refresh, status, **kwargs)

    def as_account(self, account: str, *scopes: str) -> str:
        return self.registry.token(*scopes, auth=(account, self.keys[account]))

    def service_account(self, name: str) -> str:
        self.api("POST", "/api/v1/service-accounts", 201, json={"name": name})
        key = self.api("POST", f"/api/v1/service-accounts/{name}/keys", 201, json={"description": "attack suite"})
        self.keys[name] = str(key["secret"])
        return str(key["id"])

    def bind(self, path: str, role: str, member: str) -> None:
        policy = self.api("GET", path, 200)
        policy["bindings"].append({"role": role, "members": [member]})
        self.api("PUT", path, 200, json=policy)


@pytest.fixture(scope="module")
def setup(registry_factory: AuthRegistryFactory) -> Setup:
    registry = registry_factory(token_secret=TOKEN_SECRET)
    world = Setup(registry, registry.refresh_token("admin", ADMIN_PASSWORD))
    world.api("POST", "/api/v1/compartments", 201, json={"name": "acme"})
    world.api("POST", "/api/v1/compartments", 201, json={"name": "hidden"})
    for name, public in ((SECRET_REPO, False), (OPEN_REPO, True), (OTHER_REPO, False)):
        world.api("POST", "/api/v1/repositories", 201,
                  json={"compartment_id": "acme", "display_name": name.split("/")[1], "is_public": public})  # fmt: skip
    for account in ("writer-x", "writer-y", "pusher", "outsider"):
        world.service_account(account)
    for repo in (SECRET_REPO, OTHER_REPO):
        for account, role in (("writer-x", "writer"), ("writer-y", "writer"), ("pusher", "pusher")):
            world.bind(f"/api/v1/repositories/{repo}/-/iam", role, f"serviceAccount:{account}")
    admin = world.admin_repo(SECRET_REPO, OPEN_REPO, OTHER_REPO)
    world.images["secret"] = registry.push_image(SECRET_REPO, "v1", admin, "secret")
    world.images["secret-card"] = registry.push_image(
        SECRET_REPO, "card", admin, "secret card", subject=world.images["secret"], artifact_type="application/x-card"
    )
    world.images["other"] = registry.push_image(OTHER_REPO, "v1", admin, "other")
    world.images["open"] = registry.push_image(OPEN_REPO, "v1", admin, "open")
    return world


def assert_refused(response: httpx.Response, status: int, code: str | None) -> None:
    got = refusal_of(response)
    assert (got.status, got.code) == (status, code), response.text


def assert_challenged(response: httpx.Response, scope: str) -> None:
    """Refused for want of scope, with the challenge naming what to ask for: 401 the first time
    (go-containerregistry clients fetch a new token only then), 403 when the same token comes back
    for it (oras-py fetches one only then); never 2xx."""
    got = refusal_of(response)
    assert (got.status, got.code) in ((401, "UNAUTHORIZED"), (403, "DENIED")), response.text
    challenge = response.headers.get("WWW-Authenticate", "")
    assert 'error="insufficient_scope"' in challenge, challenge
    resource, action = scope.rsplit(":", 1)
    asked = re.search(r'scope="([^"]*)"', challenge)
    assert asked is not None and asked.group(1).startswith(resource + ":"), challenge
    assert action in asked.group(1).rsplit(":", 1)[1].split(","), challenge


def craft(claims: dict[str, Any], key: str = TOKEN_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def claims_for(subject: str, repo: str, actions: list[str], **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "modelyard", "aud": "modelyard", "iat": now, "nbf": now - 5, "exp": now + 300,
            "jti": uuid.uuid4().hex, "sub": subject, "typ": "access",
            "access": [{"type": "repository", "name": repo, "actions": actions}], **overrides}  # fmt: skip


# -- tokens used where they do not belong ---------------------------------------------------


def test_token_for_one_repository_is_refused_on_another(setup: Setup) -> None:
    """The administrator may do anything, but a token scoped to A says nothing about B."""
    registry = setup.registry
    token = setup.admin_repo(SECRET_REPO)
    assert registry.request("GET", f"/v2/{SECRET_REPO}/tags/list", token).status_code == 200
    layer = sha256(setup.images["other"].layer)
    for method, path, action in (
        ("GET", f"/v2/{OTHER_REPO}/tags/list", "pull"),
        ("GET", f"/v2/{OTHER_REPO}/manifests/v1", "pull"),
        ("GET", f"/v2/{OTHER_REPO}/blobs/{layer}", "pull"),
        ("POST", f"/v2/{OTHER_REPO}/blobs/uploads/", "push"),
        ("DELETE", f"/v2/{OTHER_REPO}/manifests/v1", "delete"),
    ):
        # The administrator could get a token for B: refused with the challenge that says how.
        assert_challenged(registry.request(method, path, token), f"repository:{OTHER_REPO}:{action}")
    # The same holds for a mount: pushing into A does not open B for reading.
    pusher = setup.as_account("writer-x", f"repository:{SECRET_REPO}:pull,push", f"repository:{OPEN_REPO}:pull")
    response = registry.request(
        "POST", f"/v2/{SECRET_REPO}/blobs/uploads/", pusher, params={"mount": layer, "from": OTHER_REPO}
    )
    assert response.status_code == 202, "a blob of a repository the token cannot read was mounted"


def test_pull_only_token_cannot_push_or_delete(setup: Setup) -> None:
    registry = setup.registry
    token = setup.admin(f"repository:{SECRET_REPO}:pull")
    assert access_of(token) == {f"repository:{SECRET_REPO}": ["pull"]}
    assert registry.request("GET", f"/v2/{SECRET_REPO}/manifests/v1", token,
                            headers={"Accept": ALL_MANIFESTS}).status_code == 200  # fmt: skip
    image = setup.images["other"]
    push, delete = f"repository:{SECRET_REPO}:push", f"repository:{SECRET_REPO}:delete"
    assert_challenged(registry.request("POST", f"/v2/{SECRET_REPO}/blobs/uploads/", token), push)
    assert_challenged(registry.put_manifest(SECRET_REPO, "v1", image.manifest, token), push)
    assert_challenged(registry.request("DELETE", f"/v2/{SECRET_REPO}/manifests/v1", token), delete)
    digest = setup.images["secret"].digest
    assert_challenged(registry.request("DELETE", f"/v2/{SECRET_REPO}/manifests/{digest}", token), delete)
    # Nothing was pushed or deleted for all that.
    assert registry.request("GET", f"/v2/{SECRET_REPO}/manifests/v1", token,
                            headers={"Accept": ALL_MANIFESTS}).status_code == 200  # fmt: skip


def test_token_holds_only_what_was_granted(setup: Setup) -> None:
    """Asking for more is no error: the token simply carries less."""
    token = setup.as_account("pusher", f"repository:{SECRET_REPO}:pull,push,delete", f"repository:{OPEN_REPO}:*",
                             f"repository:{MISSING_REPO}:pull,push", "repository:../etc:pull")  # fmt: skip
    assert access_of(token) == {
        f"repository:{SECRET_REPO}": ["pull", "push"],
        f"repository:{OPEN_REPO}": ["pull"],
        f"repository:{MISSING_REPO}": [],
    }
    claims = jwt_claims(token)
    assert claims["sub"] == "serviceAccount:pusher"
    assert claims["exp"] - claims["iat"] == 300  # short-lived: the default token_ttl


def _v2_get(registry: Registry, token: str) -> httpx.Response:
    return registry.request("GET", f"/v2/{SECRET_REPO}/tags/list", token)


def test_crafted_tokens_need_the_servers_key(setup: Setup) -> None:
    """Control first: with the server's key and the right claims a crafted token works."""
    registry = setup.registry
    good = claims_for("user:admin", SECRET_REPO, ["pull"])
    assert _v2_get(registry, craft(good)).status_code == 200

    expired = claims_for("user:admin", SECRET_REPO, ["pull"], iat=int(time.time()) - 700,
                         nbf=int(time.time()) - 700, exp=int(time.time()) - 60)  # fmt: skip
    header, _, payload = craft(good).partition(".")
    forged = {
        "expired": craft(expired),
        "alg none": jwt.encode(good, key=None, algorithm="none"),
        "alg none, with a signature": jwt.encode(good, key=None, algorithm="none") + craft(good).split(".")[2],
        "another key": craft(good, key="not-the-servers-key-but-long-enough-0123"),
        "tampered claims": ".".join(
            [header, base64.urlsafe_b64encode(json.dumps({**good, "sub": "user:root"}).encode()).decode().rstrip("="),
             craft(good).split(".")[2]]
        ),
        "other audience": craft({**good, "aud": "docker.io"}),
        "other issuer": craft({**good, "iss": "evil"}),
        "no type": craft({k: v for k, v in good.items() if k != "typ"}),
        "no expiry": craft({k: v for k, v in good.items() if k != "exp"}),
        "not yet valid": craft({**good, "nbf": int(time.time()) + 600}),
        "HS512": craft(good, algorithm="HS512"),
        "garbage": "not.a.jwt",
    }  # fmt: skip
    assert payload
    for what, token in forged.items():
        response = _v2_get(registry, token)
        assert_refused(response, 401, "UNAUTHORIZED")
        params = challenge_params(response.headers["WWW-Authenticate"])
        assert params.get("error") == "invalid_token", (what, params)
        admin = registry.request("GET", "/api/v1/users", token)
        assert_refused(admin, 401, "UNAUTHORIZED")
    assert "expired" in _v2_get(registry, forged["expired"]).json()["errors"][0]["message"]


def test_refresh_token_is_not_an_access_token(setup: Setup) -> None:
    registry = setup.registry
    refresh = setup.admin_refresh
    assert_refused(_v2_get(registry, refresh), 401, "UNAUTHORIZED")
    assert registry.api("GET", "/api/v1/me", refresh, 200)["subject"] == "user:admin"  # the admin API's login
    access = setup.admin(f"repository:{SECRET_REPO}:pull")
    assert_refused(registry.request("GET", "/api/v1/me", access), 401, "UNAUTHORIZED")
    refused = registry.refresh_grant(access, f"repository:{SECRET_REPO}:pull")
    assert_refused(refused, 401, "UNAUTHORIZED")
    assert registry.refresh_grant(refresh, f"repository:{SECRET_REPO}:pull").status_code == 200


def test_basic_credentials_are_not_accepted_on_v2(setup: Setup) -> None:
    """/v2 takes tokens only: Basic credentials get the challenge to go and get one."""
    response = setup.registry.http.get(
        f"/v2/{OPEN_REPO}/tags/list", headers={"Authorization": basic("admin", ADMIN_PASSWORD)}
    )
    assert_refused(response, 401, "UNAUTHORIZED")
    assert challenge_params(response.headers["WWW-Authenticate"])["scope"] == f"repository:{OPEN_REPO}:pull"


def test_token_endpoint_refuses_bad_credentials(setup: Setup) -> None:
    registry = setup.registry
    for auth in (("admin", "wrong password"), ("nosuchuser", "whatever1"), ("pusher", setup.keys["outsider"])):
        response = registry.token_response(f"repository:{OPEN_REPO}:pull", auth=auth)
        assert_refused(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    garbled = registry.http.get("/auth/token", headers={"Authorization": "Basic !!!not-base64"})
    assert_refused(garbled, 401, "UNAUTHORIZED")
    form = registry.password_grant("admin", "wrong password")
    assert_refused(form, 401, "UNAUTHORIZED")


# -- upload sessions --------------------------------------------------------------------------


def test_upload_session_belongs_to_its_opener(setup: Setup) -> None:
    """Y may push to the repository too, but not into X's session: it is unknown to Y."""
    registry = setup.registry
    scope = f"repository:{SECRET_REPO}:pull,push"
    x, y = setup.as_account("writer-x", scope), setup.as_account("writer-y", scope)
    started = registry.request("POST", f"/v2/{SECRET_REPO}/blobs/uploads/", x)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    first = b"x's first chunk "
    assert registry.request("PATCH", location, x, content=first).status_code == 202

    data = first + b"and the rest"
    for method, kwargs in (
        ("GET", {}),
        ("PATCH", {"content": b"y's bytes", "headers": {"Content-Range": f"{len(first)}-{len(first) + 8}"}}),
        ("PUT", {"params": {"digest": sha256(data)}, "content": b"and the rest"}),
        ("DELETE", {}),
    ):
        response = registry.request(method, location, y, **kwargs)
        assert_refused(response, 404, "BLOB_UPLOAD_UNKNOWN")

    # The same session id under another repository X may push to is unknown as well.
    elsewhere = location.replace(f"/v2/{SECRET_REPO}/", f"/v2/{OTHER_REPO}/")
    x_other = setup.as_account("writer-x", f"repository:{OTHER_REPO}:pull,push")
    assert_refused(registry.request("GET", elsewhere, x_other), 404, "BLOB_UPLOAD_UNKNOWN")

    # X's session is untouched by all that, and completes.
    status = registry.request("GET", location, x)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{len(first) - 1}"
    done = registry.request("PUT", location, x, params={"digest": sha256(data)}, content=b"and the rest")
    assert done.status_code == 201, done.text
    blob = registry.request("GET", f"/v2/{SECRET_REPO}/blobs/{sha256(data)}", x)
    assert blob.content == data


# -- private repositories probed by name -----------------------------------------------------


def _normalized(response: httpx.Response, name: str) -> tuple[int, str, str]:
    challenge = response.headers.get("WWW-Authenticate", "")
    return response.status_code, response.text.replace(name, "<name>"), challenge.replace(name, "<name>")


def _probes(setup: Setup) -> list[tuple[str, str, dict[str, Any]]]:
    image = setup.images["secret"]
    layer = sha256(image.layer)
    return [
        ("GET", "/v2/{r}/tags/list", {}),
        ("GET", "/v2/{r}/manifests/v1", {"headers": {"Accept": ALL_MANIFESTS}}),
        ("HEAD", "/v2/{r}/manifests/v1", {}),
        ("GET", "/v2/{r}/manifests/" + image.digest, {}),
        ("GET", "/v2/{r}/blobs/" + layer, {}),
        ("HEAD", "/v2/{r}/blobs/" + layer, {}),
        ("GET", "/v2/{r}/referrers/" + image.digest, {}),
        ("POST", "/v2/{r}/blobs/uploads/", {}),
        ("DELETE", "/v2/{r}/manifests/v1", {}),
        ("GET", "/api/v1/repositories/{r}", {}),
        ("GET", "/api/v1/repositories/{r}/-/versions", {}),
        ("GET", "/api/v1/repositories/{r}/-/iam", {}),
        ("PATCH", "/api/v1/repositories/{r}", {"json": {"description": "mine now"}}),
        ("DELETE", "/api/v1/repositories/{r}", {}),
    ]


@pytest.mark.parametrize("caller", ["no token", "anonymous token", "known outsider"])
def test_private_repository_answers_like_a_missing_one(setup: Setup, caller: str) -> None:
    registry = setup.registry

    def token(repo: str) -> str | None:
        scope = f"repository:{repo}:pull,push,delete"
        if caller == "no token":
            return None
        token = registry.token(scope) if caller == "anonymous token" else setup.as_account("outsider", scope)
        assert access_of(token) == {f"repository:{repo}": []}
        return token

    for method, template, kwargs in _probes(setup):
        answers = []
        for repo in (SECRET_REPO, MISSING_REPO):
            path = template.format(r=repo)
            auth = token(repo) if path.startswith("/v2") or caller != "anonymous token" else None
            answers.append(_normalized(registry.request(method, path, auth, **kwargs), repo))
        assert answers[0] == answers[1], f"{method} {template}: private {answers[0]} != missing {answers[1]}"
        assert answers[0][0] in (401, 403, 404), answers[0]


COMPARTMENT_PROBES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/compartments/{c}", {}),
    ("GET", "/api/v1/compartments/{c}/configuration", {}),
    ("PUT", "/api/v1/compartments/{c}/configuration", {"json": {"is_repository_created_on_first_push": True}}),
    ("GET", "/api/v1/compartments/{c}/iam", {}),
    ("PUT", "/api/v1/compartments/{c}/iam", {"json": {"bindings": [], "etag": "v0"}}),
    ("PATCH", "/api/v1/compartments/{c}", {"json": {"description": "mine now"}}),
    ("DELETE", "/api/v1/compartments/{c}", {}),
    ("POST", "/api/v1/repositories", {"json": {"compartment_id": "{c}", "display_name": "planted"}}),
]


@pytest.mark.parametrize("caller", ["anonymous", "known outsider"])
def test_hidden_compartment_answers_like_a_missing_one(setup: Setup, caller: str) -> None:
    """Compartments the caller cannot see are not listed; probing one by name reveals no more."""
    token = None if caller == "anonymous" else setup.keys["outsider"]
    for method, template, kwargs in COMPARTMENT_PROBES:
        answers = []
        for compartment in ("hidden", "nowhere"):
            body = json.loads(json.dumps(kwargs.get("json")).replace("{c}", compartment))
            response = setup.registry.request(
                method, template.format(c=compartment), token, **({"json": body} if body is not None else {})
            )
            answers.append(_normalized(response, compartment))
        assert answers[0] == answers[1], f"{method} {template}: hidden {answers[0]} != missing {answers[1]}"
        assert answers[0][0] in (401, 403, 404), answers[0]


def test_blobs_manifests_and_referrers_stay_in_their_repository(setup: Setup) -> None:
    """Reading a public repository reaches nothing that only a private one holds."""
    registry = setup.registry
    token = setup.as_account("outsider", f"repository:{OPEN_REPO}:pull,push")
    secret = setup.images["secret"]
    for method in ("GET", "HEAD"):
        blob = registry.request(method, f"/v2/{OPEN_REPO}/blobs/{sha256(secret.layer)}", token)
        assert blob.status_code == 404, blob.text
        manifest = registry.request(method, f"/v2/{OPEN_REPO}/manifests/{secret.digest}", token,
                                    headers={"Accept": ALL_MANIFESTS})  # fmt: skip
        assert manifest.status_code == 404, manifest.text
    assert refusal_of(registry.request("GET", f"/v2/{OPEN_REPO}/blobs/{sha256(secret.layer)}", token)).code == (
        "BLOB_UNKNOWN"
    )
    referrers = registry.request("GET", f"/v2/{OPEN_REPO}/referrers/{secret.digest}", token)
    assert referrers.status_code == 200 and referrers.json()["manifests"] == []
    # Nor can a manifest in the public repository claim the private blobs as its own.
    pushed = registry.put_manifest(OPEN_REPO, "stolen", secret.manifest, setup.admin_repo(OPEN_REPO))
    assert refusal_of(pushed).code == "MANIFEST_BLOB_UNKNOWN", pushed.text
    mounted = registry.request(
        "POST", f"/v2/{OPEN_REPO}/blobs/uploads/", setup.admin_repo(OPEN_REPO),
        params={"mount": sha256(secret.layer), "from": OPEN_REPO},
    )  # fmt: skip
    assert mounted.status_code == 202, "mounted from a repository that does not hold the blob"


@pytest.mark.parametrize("caller", ["anonymous", "known outsider"])
def test_listings_never_name_a_private_repository(setup: Setup, caller: str) -> None:
    """Neither the catalog nor the admin lists, nor their next-page links, name what the caller cannot read."""
    registry = setup.registry
    if caller == "anonymous":
        token, api_token = registry.token("registry:catalog:*"), None
    else:
        token = setup.as_account("outsider", "registry:catalog:*")
        api_token = setup.keys["outsider"]
    seen: list[str] = []
    url: str | None = "/v2/_catalog?n=1"
    while url is not None:
        response = registry.request("GET", url, token)
        assert response.status_code == 200, response.text
        seen.append(response.text + response.headers.get("Link", ""))
        link = response.headers.get("Link")
        url = re.match(r"<([^>]+)>", link).group(1) if link else None  # type: ignore[union-attr]
    assert any(OPEN_REPO in page for page in seen), seen
    for path in ("/api/v1/repositories", "/api/v1/compartments"):
        page: str | None = ""
        while page is not None:
            response = registry.request("GET", path, api_token, params={"limit": 1, **({"page": page} if page else {})})
            assert response.status_code == 200, response.text
            seen.append(response.text)
            page = response.json()["next_page"]
    for text in seen:
        for private in (SECRET_REPO, OTHER_REPO, "secret", "other", "hidden"):
            assert private not in text.replace(OPEN_REPO, ""), f"{private!r} revealed: {text}"


# -- revoked, expired and orphaned credentials ----------------------------------------------


def _expire_key(registry: Registry, key_id: str) -> None:
    """Let an API key's expiry pass (the clock is the database's: move the date, not time)."""
    assert registry.data_dir is not None
    engine = sqlalchemy.create_engine(f"sqlite:///{sqlite_path(registry.data_dir)}")
    with engine.begin() as conn:
        changed = conn.execute(
            sqlalchemy.update(tables.api_keys)
            .where(tables.api_keys.c.id == key_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        ).rowcount
    engine.dispose()
    assert changed == 1


def test_revoked_and_expired_api_keys_stop_working(setup: Setup) -> None:
    registry = setup.registry
    keys = {}
    for what in ("revoked", "expired", "kept"):
        created = setup.api("POST", "/api/v1/service-accounts/pusher/keys", 201,
                            json={"description": what, "expires_in_days": 7})  # fmt: skip
        keys[what] = (created["id"], created["secret"])
        assert created["secret"].startswith(f"myd_{created['id']}_")

    def works(secret: str) -> bool:
        token = registry.token_response(f"repository:{SECRET_REPO}:pull", auth=("pusher", secret))
        bearer = registry.request("GET", "/api/v1/me", secret)
        assert (token.status_code == 200) == (bearer.status_code == 200), (token.text, bearer.text)
        if token.status_code != 200:
            assert_refused(token, 401, "UNAUTHORIZED")
            assert_refused(bearer, 401, "UNAUTHORIZED")
        return token.status_code == 200

    assert all(works(secret) for _, secret in keys.values())
    setup.api("DELETE", f"/api/v1/service-accounts/pusher/keys/{keys['revoked'][0]}", 204)
    _expire_key(registry, keys["expired"][0])
    assert not works(keys["revoked"][1])
    assert not works(keys["expired"][1])
    assert works(keys["kept"][1])
    listed = {k["id"]: k for k in setup.api("GET", "/api/v1/service-accounts/pusher/keys", 200)["items"]}
    assert listed[keys["revoked"][0]]["time_revoked"] is not None
    assert listed[keys["kept"][0]]["time_last_used"] is not None
    assert not any("secret" in k for k in listed.values())
    # Revoking twice is "not found": the key is no longer active.
    assert_refused(
        registry.request("DELETE", f"/api/v1/service-accounts/pusher/keys/{keys['revoked'][0]}", setup.admin_refresh),
        404,
        "NOT_FOUND",
    )


def test_refresh_tokens_minted_with_an_api_key_die_with_the_key(setup: Setup) -> None:
    """A stolen key traded for a 30-day refresh token must not outlive its revocation or expiry."""
    registry = setup.registry
    scope = f"repository:{SECRET_REPO}:pull"
    minted = {}
    for what in ("revoked", "expired", "kept"):
        key = setup.api("POST", "/api/v1/service-accounts/writer-y/keys", 201, json={"expires_in_days": 7})
        response = registry.password_grant("writer-y", key["secret"], scope)  # `modelyard login` with a key
        assert response.status_code == 200, response.text
        minted[what] = (key["id"], response.json()["refresh_token"])
        offline = registry.token_response(scope, auth=("writer-y", key["secret"]), offline=True)
        assert offline.status_code == 200
        minted[what + " (docker)"] = (key["id"], offline.json()["refresh_token"])
    for _, refresh in minted.values():
        assert registry.refresh_grant(refresh, scope).status_code == 200
    setup.api("DELETE", f"/api/v1/service-accounts/writer-y/keys/{minted['revoked'][0]}", 204)
    _expire_key(registry, minted["expired"][0])
    for what, (_, refresh) in minted.items():
        response = registry.refresh_grant(refresh, scope)
        if what.startswith("kept"):
            assert response.status_code == 200, response.text
            assert access_of(response.json()["access_token"]) == {f"repository:{SECRET_REPO}": ["pull"]}
        else:
            assert_refused(response, 401, "UNAUTHORIZED")


def test_deleted_users_credentials_stop_working(setup: Setup) -> None:
    registry = setup.registry
    setup.api("POST", "/api/v1/users", 201, json={"name": "leaver", "email": "leaver@example.com",
                                                   "password": USER_PASSWORD})  # fmt: skip
    refresh = registry.refresh_token("leaver", USER_PASSWORD)
    key = setup.api("POST", "/api/v1/users/leaver/keys", 201, json={})["secret"]
    assert registry.api("GET", "/api/v1/me", refresh, 200)["subject"] == "user:leaver"

    setup.api("DELETE", "/api/v1/users/leaver", 204)
    assert_refused(registry.refresh_grant(refresh, f"repository:{OPEN_REPO}:pull"), 401, "UNAUTHORIZED")
    assert_refused(registry.request("GET", "/api/v1/me", refresh), 401, "UNAUTHORIZED")
    assert_refused(registry.token_response(auth=("leaver", key)), 401, "UNAUTHORIZED")
    assert_refused(registry.request("GET", "/api/v1/me", key), 401, "UNAUTHORIZED")

    # Someone new gets the name: the old login is still not theirs.
    setup.api("POST", "/api/v1/users", 201, json={"name": "leaver", "email": "newcomer@example.com",
                                                   "password": "a-newcomers-password"})  # fmt: skip
    assert_refused(registry.refresh_grant(refresh, f"repository:{OPEN_REPO}:pull"), 401, "UNAUTHORIZED")


def test_password_change_ends_earlier_logins(setup: Setup) -> None:
    registry = setup.registry
    setup.api("POST", "/api/v1/users", 201, json={"name": "changer", "email": "changer@example.com",
                                                   "password": USER_PASSWORD})  # fmt: skip
    stolen = registry.refresh_token("changer", USER_PASSWORD)
    registry.api("PUT", "/api/v1/users/changer/password", registry.refresh_token("changer", USER_PASSWORD), 204,
                 json={"password": "changed-after-a-leak", "current_password": USER_PASSWORD})  # fmt: skip
    assert_refused(registry.refresh_grant(stolen), 401, "UNAUTHORIZED")
    assert registry.refresh_grant(registry.refresh_token("changer", "changed-after-a-leak")).status_code == 200


# -- tags ---------------------------------------------------------------------------------------


def test_pusher_pushes_new_tags_but_never_moves_one(setup: Setup) -> None:
    registry = setup.registry
    scope = f"repository:{OTHER_REPO}:pull,push,delete"
    pusher, writer = setup.as_account("pusher", scope), setup.as_account("writer-x", scope)
    assert access_of(pusher)[f"repository:{OTHER_REPO}"] == ["pull", "push"]
    first = registry.push_image(OTHER_REPO, "build-1", pusher, "build 1")
    second = registry.push_image(OTHER_REPO, "build-2", pusher, "build 2")

    moved = registry.put_manifest(OTHER_REPO, "build-1", second.manifest, pusher)
    refusal = refusal_of(moved)
    assert (refusal.status, refusal.code) == (403, "DENIED"), moved.text
    assert refusal.detail["reason"] == "TAG_MOVE_DENIED"
    assert refusal.detail["digest"] == first.digest
    current = registry.request("HEAD", f"/v2/{OTHER_REPO}/manifests/build-1", pusher, headers={"Accept": ALL_MANIFESTS})
    assert current.headers["Docker-Content-Digest"] == first.digest
    # Pushing a tag again with what it already holds moves nothing (clients retry pushes).
    assert registry.put_manifest(OTHER_REPO, "build-1", first.manifest, pusher).status_code == 201
    # Nor may the pusher delete the tag to re-create it.
    assert_refused(registry.request("DELETE", f"/v2/{OTHER_REPO}/manifests/build-1", pusher), 403, "DENIED")
    # A writer may move it.
    assert registry.put_manifest(OTHER_REPO, "build-1", second.manifest, writer).status_code == 201


# -- password guessing ------------------------------------------------------------------------


def test_failed_logins_are_limited_per_account(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(login_failures_per_account=3, login_failures_per_address=1000, login_failure_window=60)
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    token = admin
    registry.api("POST", "/api/v1/service-accounts", token, 201, json={"name": "ci"})
    ci_key = registry.api("POST", "/api/v1/service-accounts/ci/keys", token, 201, json={})["secret"]

    for attempt in range(3):
        assert_refused(registry.token_response(auth=("admin", f"guess-{attempt}")), 401, "UNAUTHORIZED")
    # The right password is refused too while the account is throttled, on every way in.
    for response in (
        registry.token_response(auth=("admin", ADMIN_PASSWORD)),
        registry.password_grant("admin", ADMIN_PASSWORD),
        registry.http.get("/api/v1/me", headers={"Authorization": basic("admin", ADMIN_PASSWORD)}),
    ):
        assert_refused(response, 429, "TOOMANYREQUESTS")
        assert 0 < int(response.headers["Retry-After"]) <= 60
    # Other accounts are not affected; nor are sessions already open.
    assert registry.token_response(auth=("ci", ci_key)).status_code == 200
    assert registry.refresh_grant(admin).status_code == 200

    # Wrong API keys are throttled per key: guessing keys locks no one else out.
    for attempt in range(4):
        guess = f"myd_{attempt:016x}_{'x' * 43}"
        assert registry.request("GET", "/api/v1/me", guess).status_code in (401, 429)
    assert registry.api("GET", "/api/v1/me", ci_key, 200)["subject"] == "serviceAccount:ci"

    # Every failed login is audited, whichever way in: /auth/token and the admin API alike.
    events = registry.api("GET", "/api/v1/audit", token, 200, params={"action": "login", "limit": 50})["items"]
    outcomes = [(e["actor"], e["outcome"], (e["detail"] or {}).get("reason")) for e in events]
    assert outcomes.count(("admin", "failure", "UNAUTHORIZED")) == 3, outcomes
    assert outcomes.count(("admin", "failure", "TOOMANYREQUESTS")) == 3, outcomes
    guesses = [o for o in outcomes if o[0].startswith("(api key ") and o[1:] == ("failure", "UNAUTHORIZED")]
    assert len(guesses) == 4, outcomes


def test_failed_logins_are_limited_per_address(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory(login_failures_per_account=100, login_failures_per_address=4, login_failure_window=30)
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    for name in ("alice", "bob", "carol", "dave"):
        assert_refused(registry.token_response(auth=(name, "password1")), 401, "UNAUTHORIZED")
    # Every account from this address is now throttled, even with the right password.
    response = registry.token_response(auth=("admin", ADMIN_PASSWORD))
    assert_refused(response, 429, "TOOMANYREQUESTS")
    assert 0 < int(response.headers["Retry-After"]) <= 30
    assert_refused(registry.password_grant("erin", "password1"), 429, "TOOMANYREQUESTS")
    # A refresh token is no login: it still works.
    assert registry.refresh_grant(admin).status_code == 200


# -- IAM policies -------------------------------------------------------------------------------


def test_registry_policy_keeps_an_admin(setup: Setup) -> None:
    before = setup.api("GET", "/api/v1/iam", 200)
    for bindings in (
        [],
        [b for b in before["bindings"] if b["role"] != "admin"],
        [{"role": "reader", "members": ["user:admin"]}],
    ):
        refused = setup.registry.request("PUT", "/api/v1/iam", setup.admin_refresh, json={"bindings": bindings,
                                                                                   "etag": before["etag"]})  # fmt: skip
        assert_refused(refused, 409, "CONFLICT")
    assert setup.api("GET", "/api/v1/iam", 200) == before
    assert setup.api("GET", "/api/v1/users", 200)["items"]  # still an administrator


def test_stale_etag_is_a_conflict(setup: Setup) -> None:
    registry = setup.registry
    for path in ("/api/v1/iam", "/api/v1/compartments/acme/iam", f"/api/v1/repositories/{OTHER_REPO}/-/iam"):
        read = setup.api("GET", path, 200)
        first = setup.api("PUT", path, 200, json=read)  # someone else writes in between
        assert first["etag"] != read["etag"]
        stale = registry.request("PUT", path, setup.admin_refresh, json={**read, "bindings": []})
        assert_refused(stale, 409, "CONFLICT")
        without = registry.request("PUT", path, setup.admin_refresh, json={"bindings": read["bindings"]})
        assert_refused(without, 409, "CONFLICT")
        assert setup.api("GET", path, 200) == first
    # Making a repository public changes its policy, so an etag read before is stale.
    path = f"/api/v1/repositories/{OTHER_REPO}/-/iam"
    read = setup.api("GET", path, 200)
    setup.api("PATCH", f"/api/v1/repositories/{OTHER_REPO}", 200, json={"is_public": True})
    assert_refused(registry.request("PUT", path, setup.admin_refresh, json=read), 409, "CONFLICT")
    setup.api("PATCH", f"/api/v1/repositories/{OTHER_REPO}", 200, json={"is_public": False})


def test_is_public_is_the_all_users_reader_binding(setup: Setup) -> None:
    registry = setup.registry
    repo = "acme/flip"
    setup.api("POST", "/api/v1/repositories", 201, json={"compartment_id": "acme", "display_name": "flip"})
    registry.push_blob(repo, b"flip", setup.admin_repo(repo))
    path, blob = f"/api/v1/repositories/{repo}/-/iam", f"/v2/{repo}/blobs/{sha256(b'flip')}"

    def state() -> tuple[bool, bool, int]:
        public = setup.api("GET", f"/api/v1/repositories/{repo}", 200)["is_public"]
        policy = setup.api("GET", path, 200)
        shown = any("allUsers" in b["members"] and b["role"] == "reader" for b in policy["bindings"])
        pulled = registry.request("GET", blob, registry.token(f"repository:{repo}:pull")).status_code
        return public, shown, pulled

    assert state() == (False, False, 401)
    setup.api("PATCH", f"/api/v1/repositories/{repo}", 200, json={"is_public": True})
    assert state() == (True, True, 200)
    policy = setup.api("GET", path, 200)
    policy["bindings"] = [b for b in policy["bindings"] if "allUsers" not in b["members"]]
    setup.api("PUT", path, 200, json=policy)
    assert state() == (False, False, 401)
    # allUsers among other readers (what `iam add-binding --role reader` writes) is the same fact.
    policy = setup.api("GET", path, 200)
    policy["bindings"].append({"role": "reader", "members": ["allUsers", "serviceAccount:outsider"]})
    setup.api("PUT", path, 200, json=policy)
    assert state() == (True, True, 200)
    outsider = setup.as_account("outsider", f"repository:{repo}:pull")
    assert registry.request("GET", blob, outsider).status_code == 200
    setup.api("PATCH", f"/api/v1/repositories/{repo}", 200, json={"is_public": False})
    assert state() == (False, False, 401)
    assert registry.request("GET", blob, setup.as_account("outsider", f"repository:{repo}:pull")).status_code == 200


# -- secrets in the audit log and the server log -------------------------------------------


@pytest.fixture
def logged_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthServerProcess]:
    """``modelyard serve --auth`` logging everything (debug level, access log) to a file."""
    server = AuthServerProcess(
        tmp_path / "data", tmp_path / "server.log", extra=("--auth", "--access-log"),
        env={"MODELYARD_ADMIN_PASSWORD": ADMIN_PASSWORD, "MODELYARD_LOG_LEVEL": "debug"},
    )  # fmt: skip
    register_servers(request.node, [server])
    server.start()
    yield server
    server.stop()


def _exercise(registry: Registry, secrets: list[str]) -> tuple[list[dict[str, Any]], Image]:
    """Log in (right and wrong), manage principals and policies, push, pull and delete; every
    secret used goes into ``secrets``. Returns the audit events and the pushed image."""
    admin_refresh = registry.refresh_token("admin", ADMIN_PASSWORD)
    admin = registry.token_from_refresh(admin_refresh, "repository:acme/model:pull,push,delete")
    secrets += [admin_refresh, admin]
    assert registry.token_response(auth=("admin", secrets[2])).status_code == 401
    assert registry.password_grant("mallory", secrets[2]).status_code == 401
    registry.api("POST", "/api/v1/users", admin_refresh, 201,
                 json={"name": "alice", "email": "alice@example.com", "password": USER_PASSWORD})  # fmt: skip
    registry.api("PUT", "/api/v1/users/alice/password", admin_refresh, 204, json={"password": secrets[3]})
    registry.api("POST", "/api/v1/service-accounts", admin_refresh, 201, json={"name": "ci"})
    key = registry.api("POST", "/api/v1/service-accounts/ci/keys", admin_refresh, 201, json={})
    secrets += [key["secret"], key["secret"].split("_", 2)[2]]
    registry.api("POST", "/api/v1/compartments", admin_refresh, 201, json={"name": "acme"})
    registry.api("POST", "/api/v1/repositories", admin_refresh, 201,
                 json={"compartment_id": "acme", "display_name": "model"})  # fmt: skip
    policy = registry.api("GET", "/api/v1/repositories/acme/model/-/iam", admin_refresh, 200)
    policy["bindings"].append({"role": "writer", "members": ["serviceAccount:ci"]})
    registry.api("PUT", "/api/v1/repositories/acme/model/-/iam", admin_refresh, 200, json=policy)
    ci = registry.token("repository:acme/model:pull,push", auth=("ci", key["secret"]))
    secrets.append(ci)
    image = registry.push_image("acme/model", "v1", ci, "audited")
    registry.api("GET", "/api/v1/me", key["secret"], 200)
    # A client that sends the key as the user name (and anything as the password) fails to log in.
    assert registry.token_response(auth=(key["secret"], "x")).status_code == 401
    assert registry.http.get("/api/v1/me", headers={"Authorization": basic(key["secret"], "")}).status_code == 401
    alice_refresh = registry.refresh_token("alice", secrets[3])
    secrets += [alice_refresh, registry.token_from_refresh(alice_refresh)]
    assert registry.request("DELETE", f"/v2/acme/model/manifests/{image.digest}", admin).status_code == 202
    config = {"is_repository_created_on_first_push": True, "is_compartment_created_on_first_push": False}
    registry.api("PUT", "/api/v1/configuration", admin_refresh, 200, json=config)
    registry.api("DELETE", f"/api/v1/service-accounts/ci/keys/{key['id']}", admin_refresh, 204)
    return registry.api("GET", "/api/v1/audit", admin_refresh, 200, params={"limit": 1000})["items"], image


def test_audit_log_records_who_what_when_where_and_never_a_secret(logged_server: AuthServerProcess) -> None:
    registry = Registry(logged_server.url)
    secrets = [ADMIN_PASSWORD, USER_PASSWORD, "Wrong-Guess-9f8e7d", "New-Password-1a2b3c"]
    try:
        events, image = _exercise(registry, secrets)
    finally:
        registry.close()

    # Who, what, when, from where.
    seen = {(e["actor"], e["action"], e["outcome"]) for e in events}
    for expected in (
        ("user:admin", "login", "success"),
        ("admin", "login", "failure"),
        ("mallory", "login", "failure"),
        ("user:admin", "token.issue", "success"),
        ("serviceAccount:ci", "login", "success"),
        ("serviceAccount:ci", "push", "success"),
        ("user:admin", "delete", "success"),
        ("user:admin", "user.create", "success"),
        ("user:admin", "user.password", "success"),
        ("user:admin", "key.create", "success"),
        ("user:admin", "key.revoke", "success"),
        ("user:admin", "repository.create", "success"),
        ("user:admin", "iam.set", "success"),
        ("user:admin", "registry.configure", "success"),
    ):
        assert expected in seen, f"no audit event {expected}: {sorted(seen)}"
    # Every client's event from its address; the server's own (the first admin) say "local".
    assert all(e["client_ip"] == "127.0.0.1" and e["time"] for e in events if e["actor"] != "system"), events[:3]
    assert {e["client_ip"] for e in events if e["actor"] == "system"} == {"local"}
    push = next(e for e in events if e["action"] == "push")
    assert push["resource"] == "acme/model:v1" and push["detail"]["digest"] == image.digest

    # Never a secret: not in the audit table (every column of every row), nor in the log.
    connection = sqlite3.connect(sqlite_path(logged_server.data_dir))
    try:
        rows = connection.execute("SELECT * FROM audit_events").fetchall()
        hmac_key = connection.execute("SELECT value FROM server_secrets").fetchall()
    finally:
        connection.close()
    assert len(rows) >= len(events)
    secrets += [str(value) for (value,) in hmac_key]
    table = "\n".join(repr(row) for row in rows)
    log = logged_server.log()
    assert "POST /auth/token" in log, "the access log is on: requests are logged"
    for secret in secrets:
        assert secret not in table, f"a secret is in the audit table: {secret[:12]}..."
        assert secret not in log, f"a secret is in the server log: {secret[:12]}..."
        assert secret not in json.dumps(events)
