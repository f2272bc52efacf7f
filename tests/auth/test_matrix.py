"""The authorization matrix: every ``/v2`` endpoint and every ``/api/v1`` endpoint family, for
every role bound at the registry, the compartment or the repository (plus no binding and
anonymous), on a public and a private repository -- each cell allowed or refused with the
exact status and error code.

What each role may do is written down here from the issue, independently of the server's
own role table: a reader pulls and lists; a pusher also pushes new tags and creates
repositories but never moves a tag; a writer also moves tags; a repoAdmin also deletes,
changes settings and reads IAM; an admin may do everything where it is bound. A binding
applies to what is below it. ``allUsers`` reader is what makes a repository public.

Refusals: anonymous callers get 401 ``UNAUTHORIZED`` (with a Bearer challenge on ``/v2``),
known callers 403 ``DENIED``; on the admin API a repository the caller cannot read is 404
``NOT_FOUND``, exactly like a missing one.

One registry (a live server) is built once for the module; each test is one endpoint on one
kind of repository and checks all 17 callers, reporting every cell that differs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import (
    ADMIN_PASSWORD,
    ALL_MANIFESTS,
    Image,
    Registry,
    access_of,
    challenge_params,
    refusal_of,
    sha256,
)

COMPARTMENT = "team"
PRIVATE = "team/private"
PUBLIC = "team/public"
SOURCE = "pub/source"  # public: where mounts come from
SECRET = "other/secret"  # private, in a compartment only registry-wide bindings reach
FIXED = (PRIVATE, PUBLIC, SOURCE, SECRET)

ROLES = ("reader", "pusher", "writer", "repoAdmin", "admin")
LEVELS = ("registry", "compartment", "repo")

# What each role may do, from the role table.
CAN: dict[str, frozenset[str]] = {
    "reader": frozenset({"pull"}),
    "pusher": frozenset({"pull", "push", "create"}),
    "writer": frozenset({"pull", "push", "create", "move"}),
    "repoAdmin": frozenset({"pull", "push", "create", "move", "delete", "configure", "iam.read"}),
}
CAN["admin"] = CAN["repoAdmin"] | {"iam.write", "compartment.manage", "registry.configure", "principals", "audit"}
USER_PASSWORD = "matrix-user-password"


@dataclass(frozen=True)
class Actor:
    role: str | None = None
    level: str | None = None
    anonymous: bool = False

    @property
    def label(self) -> str:
        if self.anonymous:
            return "anonymous"
        return "none" if self.role is None else f"{self.role}@{self.level}"


ANONYMOUS = Actor(anonymous=True)
NOBODY = Actor()
ACTORS = [ANONYMOUS, NOBODY, *(Actor(role, level) for level in LEVELS for role in ROLES)]


@dataclass(frozen=True)
class Expect:
    status: int
    code: str | None = None
    reason: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code or ''} {self.reason or ''}".strip()


@dataclass
class Identity:
    subject: str
    member: str
    basic: tuple[str, str] | None = None  # username and API key
    refresh: str | None = None  # a refresh token from a password login


@dataclass
class World:
    registry: Registry
    identities: dict[Actor, Identity] = field(default_factory=dict)
    repo_bound: set[str] = field(default_factory=set)
    images: dict[str, dict[str, Image]] = field(default_factory=dict)
    tokens: dict[tuple[Any, ...], str | None] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)
    admin_refresh: str = ""

    # -- the model ---------------------------------------------------------------------------

    def caps(self, actor: Actor, kind: str, name: str | None = None, public: bool = False) -> frozenset[str]:
        """What ``actor`` may do on a resource, from its binding and the issue's role table."""
        result: set[str] = set()
        if kind == "repository" and public:
            result.add("pull")  # allUsers reader
        if actor.role is None:
            return frozenset(result)
        in_compartment = name is not None and (name == COMPARTMENT or name.startswith(COMPARTMENT + "/"))
        if (
            actor.level == "registry"
            or (actor.level == "compartment" and kind != "registry" and in_compartment)
            or (actor.level == "repo" and kind == "repository" and name in self.repo_bound)
        ):
            result |= CAN[actor.role]
        return frozenset(result)

    def v2_expect(self, actor: Actor, need: str | None, repo: str, public: bool, ok: int) -> Expect:
        caps = self.caps(actor, "repository", repo, public)
        if need is None or need in caps:
            return Expect(ok)
        if actor.anonymous:
            return Expect(401, "UNAUTHORIZED")
        if need == "move" and "push" in caps:
            return Expect(403, "DENIED", "TAG_MOVE_DENIED")
        return Expect(403, "DENIED")

    def api_expect(self, actor: Actor, need: str, kind: str, name: str | None, ok: int, public: bool = False) -> Expect:
        caps = self.caps(actor, kind, name, public)
        if need in caps:
            return Expect(ok)
        if actor.anonymous:
            return Expect(401, "UNAUTHORIZED")
        if kind == "repository" and "pull" not in caps:
            return Expect(404, "NOT_FOUND")
        return Expect(403, "DENIED")

    # -- tokens, as clients get them ---------------------------------------------------------

    def next(self) -> int:
        return next(self.counter)

    def admin_token(self, *repos: str) -> str:
        key = ("admin", *repos)
        if key not in self.tokens:
            scopes = [f"repository:{r}:pull,push,delete" for r in repos]
            self.tokens[key] = self.registry.token_from_refresh(self.admin_refresh, *scopes, "registry:catalog:*")
        token = self.tokens[key]
        assert token is not None
        return token

    def token(self, actor: Actor, *scopes: str) -> str:
        """An access token for ``actor`` from ``/auth/token`` (anonymous ones too)."""
        key = (actor, *scopes)
        if key not in self.tokens:
            identity = self.identities.get(actor)
            if identity is None:
                self.tokens[key] = self.registry.token(*scopes)
            elif identity.refresh is not None:
                self.tokens[key] = self.registry.token_from_refresh(identity.refresh, *scopes)
            else:
                self.tokens[key] = self.registry.token(*scopes, auth=identity.basic)
        token = self.tokens[key]
        assert token is not None
        return token

    def repo_token(self, actor: Actor, repo: str) -> str:
        return self.token(actor, f"repository:{repo}:pull,push,delete", "registry:catalog:*")

    def api_token(self, actor: Actor) -> str | None:
        """What a client sends to the admin API as a Bearer token: the refresh token of its login
        (what ``modelyard login`` stores), else its API key, or nothing when anonymous. (A
        ``/v2`` access token is refused there.)"""
        identity = self.identities.get(actor)
        if actor.anonymous or identity is None:
            return None
        if identity.refresh is not None:
            return identity.refresh
        assert identity.basic is not None
        return identity.basic[1]

    # -- set-up helpers (as the administrator) ---------------------------------------------

    def api(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        return self.registry.api(method, path, self.admin_refresh, status, **kwargs)

    def bind(self, path: str, add: dict[str, list[str]]) -> None:
        policy = self.api("GET", path, 200)
        bindings = {b["role"]: b["members"] for b in policy["bindings"]}
        for role, members in add.items():
            bindings.setdefault(role, []).extend(members)
        body = {"bindings": [{"role": r, "members": m} for r, m in bindings.items()], "etag": policy["etag"]}
        self.api("PUT", path, 200, json=body)

    def repo_members(self) -> dict[str, list[str]]:
        return {role: [self.identities[Actor(role, "repo")].member] for role in ROLES}

    def fresh_repository(self, public: bool) -> str:
        """A new repository in the compartment, with the repository-level bindings."""
        name = f"fresh-{self.next()}"
        self.api("POST", "/api/v1/repositories", 201,
                 json={"compartment_id": COMPARTMENT, "display_name": name, "is_public": public})  # fmt: skip
        full = f"{COMPARTMENT}/{name}"
        self.bind(f"/api/v1/repositories/{full}/-/iam", self.repo_members())
        self.repo_bound.add(full)
        return full

    def variant(self, repo: str) -> Image:
        """A new manifest (own digest) on blobs the repository already has."""
        base = self.images[repo]["base"]
        body = json.loads(base.manifest)
        body["annotations"] = {"variant": str(self.next())}
        return Image(json.dumps(body).encode(), base.config, base.layer)

    def put_as_admin(self, repo: str, reference: str, image: Image) -> None:
        response = self.registry.put_manifest(repo, reference, image.manifest, self.admin_token(repo))
        assert response.status_code == 201, response.text


def _create_users(registry: Registry, token: str, users: list[tuple[str, str]]) -> None:
    """Create users in parallel (each costs an argon2 hash on the server)."""

    def create(user: tuple[str, str]) -> None:
        registry.api("POST", "/api/v1/users", token, 201,
                     json={"name": user[0], "email": user[1], "password": USER_PASSWORD})  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, users))


@pytest.fixture(scope="module")
def world(registry_factory: AuthRegistryFactory) -> World:
    registry = registry_factory(token_ttl=3600)
    world = World(registry)
    world.admin_refresh = registry.refresh_token("admin", ADMIN_PASSWORD)
    token = world.admin_refresh

    # Compartments and repositories.
    world.api(
        "POST", "/api/v1/compartments", 201, json={"name": COMPARTMENT, "is_repository_created_on_first_push": True}
    )
    for compartment in ("pub", "other"):
        world.api("POST", "/api/v1/compartments", 201, json={"name": compartment})
    for name, public in ((PRIVATE, False), (PUBLIC, True), (SOURCE, True), (SECRET, False)):
        compartment, display = name.split("/")
        world.api("POST", "/api/v1/repositories", 201,
                  json={"compartment_id": compartment, "display_name": display, "is_public": public})  # fmt: skip

    # Principals: registry-level users (bound by email, admin by name), compartment-level users
    # through groups, repository-level service accounts with API keys, and a user with nothing.
    users = [(f"reg-{r.lower()}", f"reg-{r.lower()}@example.com") for r in ROLES]
    users += [(f"team-{r.lower()}", f"team-{r.lower()}@example.com") for r in ROLES]
    users.append(("nobody", "nobody@example.com"))
    _create_users(registry, token, users)

    def user_key(name: str) -> tuple[str, str]:
        key = world.api("POST", f"/api/v1/users/{name}/keys", 201, json={"description": "matrix"})
        return name, str(key["secret"])

    for role in ROLES:
        name = f"reg-{role.lower()}"
        member = f"user:{name}" if role == "admin" else f"user:{name}@example.com"
        world.identities[Actor(role, "registry")] = Identity(f"user:{name}", member, basic=user_key(name))
        name = f"team-{role.lower()}"
        world.api("POST", "/api/v1/groups", 201, json={"name": name})
        world.api("PUT", f"/api/v1/groups/{name}/members", 200, json={"members": [name]})
        world.identities[Actor(role, "compartment")] = Identity(f"user:{name}", f"group:{name}", basic=user_key(name))
        name = f"repo-{role.lower()}@ci"
        world.api("POST", "/api/v1/service-accounts", 201, json={"name": name})
        key = world.api("POST", f"/api/v1/service-accounts/{name}/keys", 201, json={"expires_in_days": 30})
        subject = f"serviceAccount:{name}"
        world.identities[Actor(role, "repo")] = Identity(subject, subject, basic=(name, key["secret"]))
    # Two users log in with their password, as `modelyard login` does: a refresh token.
    world.identities[NOBODY] = Identity(
        "user:nobody", "user:nobody", refresh=registry.refresh_token("nobody", USER_PASSWORD)
    )
    reader = world.identities[Actor("reader", "registry")]
    reader.refresh = registry.refresh_token("reg-reader", USER_PASSWORD)

    # Bindings.
    world.bind("/api/v1/iam", {r: [world.identities[Actor(r, "registry")].member] for r in ROLES})
    world.bind(
        f"/api/v1/compartments/{COMPARTMENT}/iam",
        {r: [world.identities[Actor(r, "compartment")].member] for r in ROLES},
    )
    for repo in (PRIVATE, PUBLIC):
        world.bind(f"/api/v1/repositories/{repo}/-/iam", world.repo_members())
        world.repo_bound.add(repo)

    # Content: an image, a second image (to move tags to) and a referrer in each repository.
    for repo in (PRIVATE, PUBLIC, SECRET):
        admin = world.admin_token(repo)
        base = registry.push_image(repo, "v1", admin, f"{repo} base")
        alt = registry.push_image(repo, "v2", admin, f"{repo} alt")
        card = registry.push_image(
            repo, "card", admin, f"{repo} card", subject=base, artifact_type="application/x-card"
        )
        world.images[repo] = {"base": base, "alt": alt, "card": card}
    return world


def check_all(run: Callable[[Actor], tuple[Expect, httpx.Response]]) -> None:
    """Run one cell per actor; fail once, listing every cell that differs."""
    wrong = []
    for actor in ACTORS:
        expected, response = run(actor)
        if response.request.method == "HEAD":
            expected = Expect(expected.status)  # no body, no error code
        got = refusal_of(response) if response.status_code >= 400 else None
        reason = got.detail.get("reason") if got is not None and isinstance(got.detail, dict) else None
        actual = Expect(response.status_code, got.code if got else None, reason)
        if actual != expected:
            wrong.append(f"  {actor.label:24} expected {expected}, got {actual}: {response.text[:160]}")
            continue
        refused_by_token = response.status_code == 401 or (response.status_code == 403 and expected.reason is None)
        if refused_by_token and response.request.url.path.startswith("/v2"):
            # A token without the action: the challenge says which scope to ask for.
            params = challenge_params(response.headers.get("WWW-Authenticate", "Bearer "))
            if (
                params.get("service") != "modelyard"
                or not params.get("realm", "").endswith("/auth/token")
                or params.get("error") != "insufficient_scope"
                or not params.get("scope", "").startswith("repository:")
            ):
                wrong.append(f"  {actor.label:24} bad challenge {response.headers.get('WWW-Authenticate')}")
    assert not wrong, "cells that differ from the matrix:\n" + "\n".join(wrong)


VISIBILITY = [pytest.param(False, id="private"), pytest.param(True, id="public")]


def target(public: bool) -> str:
    return PUBLIC if public else PRIVATE


# -- /v2 ----------------------------------------------------------------------------------------

V2Run = Callable[[World, Actor, str], httpx.Response]


def _session(world: World, actor: Actor, repo: str) -> tuple[str, str]:
    """An upload session: the actor's own if it may open one, else the administrator's."""
    token = world.repo_token(actor, repo)
    started = world.registry.request("POST", f"/v2/{repo}/blobs/uploads/", token)
    if started.status_code != 202:
        token = world.admin_token(repo)
        started = world.registry.request("POST", f"/v2/{repo}/blobs/uploads/", token)
        assert started.status_code == 202, started.text
    return started.headers["Location"], token


def v2_base(world: World, actor: Actor, repo: str) -> httpx.Response:
    return world.registry.request("GET", "/v2/", world.repo_token(actor, repo))


def v2_tags(world: World, actor: Actor, repo: str) -> httpx.Response:
    response = world.registry.request("GET", f"/v2/{repo}/tags/list", world.repo_token(actor, repo))
    if response.status_code == 200:
        assert set(response.json()["tags"]) >= {"v1", "v2", "card"}
    return response


def v2_manifest_get(world: World, actor: Actor, repo: str) -> httpx.Response:
    response = world.registry.request(
        "GET", f"/v2/{repo}/manifests/v1", world.repo_token(actor, repo), headers={"Accept": ALL_MANIFESTS}
    )
    if response.status_code == 200:
        assert response.content == world.images[repo]["base"].manifest
    return response


def v2_manifest_head(world: World, actor: Actor, repo: str) -> httpx.Response:
    digest = world.images[repo]["base"].digest
    return world.registry.request(
        "HEAD", f"/v2/{repo}/manifests/{digest}", world.repo_token(actor, repo), headers={"Accept": ALL_MANIFESTS}
    )


def v2_manifest_put_new_tag(world: World, actor: Actor, repo: str) -> httpx.Response:
    image = world.images[repo]["alt"]
    return world.registry.put_manifest(repo, f"new-{world.next()}", image.manifest, world.repo_token(actor, repo))


def v2_manifest_put_same(world: World, actor: Actor, repo: str) -> httpx.Response:
    """Pushing a tag again with the content it already has is no move."""
    tag = f"same-{world.next()}"
    image = world.images[repo]["base"]
    world.put_as_admin(repo, tag, image)
    return world.registry.put_manifest(repo, tag, image.manifest, world.repo_token(actor, repo))


def v2_manifest_move_tag(world: World, actor: Actor, repo: str) -> httpx.Response:
    tag = f"moving-{world.next()}"
    world.put_as_admin(repo, tag, world.images[repo]["base"])
    response = world.registry.put_manifest(repo, tag, world.images[repo]["alt"].manifest, world.repo_token(actor, repo))
    current = world.registry.request("GET", f"/v2/{repo}/manifests/{tag}", world.admin_token(repo),
                                     headers={"Accept": ALL_MANIFESTS})  # fmt: skip
    moved = current.headers["Docker-Content-Digest"] == world.images[repo]["alt"].digest
    assert moved == (response.status_code == 201), "the tag moved although the push was refused (or not at all)"
    return response


def v2_manifest_delete(world: World, actor: Actor, repo: str) -> httpx.Response:
    image = world.variant(repo)
    world.put_as_admin(repo, f"doomed-{world.next()}", image)
    return world.registry.request("DELETE", f"/v2/{repo}/manifests/{image.digest}", world.repo_token(actor, repo))


def v2_blob_get(world: World, actor: Actor, repo: str) -> httpx.Response:
    layer = world.images[repo]["base"].layer
    response = world.registry.request("GET", f"/v2/{repo}/blobs/{sha256(layer)}", world.repo_token(actor, repo))
    if response.status_code == 200:
        assert response.content == layer
    return response


def v2_blob_head(world: World, actor: Actor, repo: str) -> httpx.Response:
    layer = world.images[repo]["base"].layer
    return world.registry.request("HEAD", f"/v2/{repo}/blobs/{sha256(layer)}", world.repo_token(actor, repo))


def v2_blob_delete(world: World, actor: Actor, repo: str) -> httpx.Response:
    digest = world.registry.push_blob(repo, f"doomed blob {world.next()}".encode(), world.admin_token(repo))
    return world.registry.request("DELETE", f"/v2/{repo}/blobs/{digest}", world.repo_token(actor, repo))


def v2_upload_start(world: World, actor: Actor, repo: str) -> httpx.Response:
    return world.registry.request("POST", f"/v2/{repo}/blobs/uploads/", world.repo_token(actor, repo))


def v2_upload_patch(world: World, actor: Actor, repo: str) -> httpx.Response:
    location, _ = _session(world, actor, repo)
    return world.registry.request("PATCH", location, world.repo_token(actor, repo), content=b"some bytes",
                                  headers={"Content-Type": "application/octet-stream"})  # fmt: skip


def v2_upload_put(world: World, actor: Actor, repo: str) -> httpx.Response:
    location, _ = _session(world, actor, repo)
    data = f"upload {world.next()}".encode()
    return world.registry.request(
        "PUT", location, world.repo_token(actor, repo), params={"digest": sha256(data)}, content=data
    )


def v2_upload_get(world: World, actor: Actor, repo: str) -> httpx.Response:
    location, _ = _session(world, actor, repo)
    return world.registry.request("GET", location, world.repo_token(actor, repo))


def v2_upload_delete(world: World, actor: Actor, repo: str) -> httpx.Response:
    location, _ = _session(world, actor, repo)
    return world.registry.request("DELETE", location, world.repo_token(actor, repo))


def v2_mount(world: World, actor: Actor, repo: str) -> httpx.Response:
    digest = world.registry.push_blob(SOURCE, f"mountable {world.next()}".encode(), world.admin_token(SOURCE))
    token = world.token(actor, f"repository:{repo}:pull,push", f"repository:{SOURCE}:pull")
    return world.registry.request("POST", f"/v2/{repo}/blobs/uploads/", token, params={"mount": digest, "from": SOURCE})


def v2_referrers(world: World, actor: Actor, repo: str) -> httpx.Response:
    images = world.images[repo]
    response = world.registry.request(
        "GET", f"/v2/{repo}/referrers/{images['base'].digest}", world.repo_token(actor, repo)
    )
    if response.status_code == 200:
        assert [m["digest"] for m in response.json()["manifests"]] == [images["card"].digest]
    return response


V2_CASES: list[tuple[str, V2Run, str | None, int]] = [
    ("base", v2_base, None, 200),
    ("tags-list", v2_tags, "pull", 200),
    ("manifest-get", v2_manifest_get, "pull", 200),
    ("manifest-head", v2_manifest_head, "pull", 200),
    ("manifest-put-new-tag", v2_manifest_put_new_tag, "push", 201),
    ("manifest-put-same-content", v2_manifest_put_same, "push", 201),
    ("manifest-put-move-tag", v2_manifest_move_tag, "move", 201),
    ("manifest-delete", v2_manifest_delete, "delete", 202),
    ("blob-get", v2_blob_get, "pull", 200),
    ("blob-head", v2_blob_head, "pull", 200),
    ("blob-delete", v2_blob_delete, "delete", 202),
    ("upload-post", v2_upload_start, "push", 202),
    ("upload-patch", v2_upload_patch, "push", 202),
    ("upload-put", v2_upload_put, "push", 201),
    ("upload-get", v2_upload_get, "push", 204),
    ("upload-delete", v2_upload_delete, "push", 204),
    ("mount", v2_mount, "push", 201),
    ("referrers", v2_referrers, "pull", 200),
]


@pytest.mark.parametrize("public", VISIBILITY)
@pytest.mark.parametrize(("run", "need", "ok"), [pytest.param(*c[1:], id=c[0]) for c in V2_CASES])
def test_v2(world: World, public: bool, run: V2Run, need: str | None, ok: int) -> None:
    repo = target(public)
    check_all(lambda actor: (world.v2_expect(actor, need, repo, public, ok), run(world, actor, repo)))


def test_v2_catalog_lists_what_each_caller_may_read(world: World) -> None:
    wrong = []
    for actor in ACTORS:
        response = world.registry.request("GET", "/v2/_catalog", world.repo_token(actor, PRIVATE))
        assert response.status_code == 200, (actor.label, response.text)
        listed = set(response.json()["repositories"]) & set(FIXED)
        expected = {r for r in FIXED if "pull" in world.caps(actor, "repository", r, r in (PUBLIC, SOURCE))}
        if listed != expected:
            wrong.append(f"  {actor.label}: expected {sorted(expected)}, got {sorted(listed)}")
    assert not wrong, "\n".join(wrong)


def test_v2_push_creates_repository_only_with_create_on_the_compartment(world: World) -> None:
    def run(actor: Actor) -> tuple[Expect, httpx.Response]:
        repo = f"{COMPARTMENT}/created-{world.next()}"
        expected = world.v2_expect(actor, "create", repo, False, 201)
        layer = f"first layer {repo}".encode()
        token = world.token(actor, f"repository:{repo}:pull,push")
        response = world.registry.request(
            "POST", f"/v2/{repo}/blobs/uploads/", token, params={"digest": sha256(layer)}, content=layer
        )
        exists = world.registry.request("GET", f"/api/v1/repositories/{repo}", world.admin_refresh)
        assert exists.status_code == (200 if response.status_code == 201 else 404), exists.text
        return expected, response

    check_all(run)


PATHS = {
    "base": ("GET", "/v2/", None),
    "catalog": ("GET", "/v2/_catalog", "registry:catalog:*"),
    "tags-list": ("GET", "/v2/{r}/tags/list", "repository:{r}:pull"),
    "manifest-get": ("GET", "/v2/{r}/manifests/v1", "repository:{r}:pull"),
    "manifest-head": ("HEAD", "/v2/{r}/manifests/v1", "repository:{r}:pull"),
    "manifest-put": ("PUT", "/v2/{r}/manifests/v9", "repository:{r}:pull,push"),
    "manifest-delete": ("DELETE", "/v2/{r}/manifests/v1", "repository:{r}:delete"),
    "blob-get": ("GET", "/v2/{r}/blobs/{d}", "repository:{r}:pull"),
    "blob-head": ("HEAD", "/v2/{r}/blobs/{d}", "repository:{r}:pull"),
    "blob-delete": ("DELETE", "/v2/{r}/blobs/{d}", "repository:{r}:delete"),
    "upload-post": ("POST", "/v2/{r}/blobs/uploads/", "repository:{r}:pull,push"),
    "upload-patch": ("PATCH", "/v2/{r}/blobs/uploads/{u}", "repository:{r}:pull,push"),
    "upload-put": ("PUT", "/v2/{r}/blobs/uploads/{u}?digest={d}", "repository:{r}:pull,push"),
    "upload-get": ("GET", "/v2/{r}/blobs/uploads/{u}", "repository:{r}:pull,push"),
    "upload-delete": ("DELETE", "/v2/{r}/blobs/uploads/{u}", "repository:{r}:pull,push"),
    "mount": ("POST", "/v2/{r}/blobs/uploads/?mount={d}&from=" + SOURCE, "repository:{r}:pull,push"),
    "referrers": ("GET", "/v2/{r}/referrers/{m}", "repository:{r}:pull"),
}


@pytest.mark.parametrize("endpoint", list(PATHS))
def test_v2_without_a_token_is_challenged(world: World, endpoint: str) -> None:
    """Every endpoint, public repository or not, answers 401 with the challenge naming its scope."""
    method, template, scope = PATHS[endpoint]
    for repo in (PUBLIC, PRIVATE, f"{COMPARTMENT}/missing"):
        images = world.images.get(repo, world.images[PRIVATE])
        values = {"r": repo, "d": sha256(images["base"].layer), "m": images["base"].digest,
                  "u": "0f0e6a3c-6a7e-4a8e-9c1e-3f1c5d6e7f80"}  # fmt: skip
        response = world.registry.request(method, template.format(**values))
        assert refusal_of(response).status == 401, (repo, response.text)
        if method != "HEAD":
            assert refusal_of(response).code == "UNAUTHORIZED"
        params = challenge_params(response.headers["WWW-Authenticate"])
        assert params["realm"] == f"{world.registry.url}/auth/token"
        assert params["service"] == "modelyard"
        assert params.get("scope") == (scope.format(r=repo) if scope else None), params


def test_v2_token_carries_only_granted_actions(world: World) -> None:
    """Asking for everything gets what the role allows, as ``access`` claims: nothing more."""
    expected_actions = {
        "reader": ["pull"],
        "pusher": ["pull", "push"],
        "writer": ["pull", "push", "overwrite"],
        "repoAdmin": ["pull", "push", "delete", "overwrite"],
        "admin": ["pull", "push", "delete", "overwrite"],
    }
    wrong = []
    for actor in ACTORS:
        for repo, public in ((PRIVATE, False), (PUBLIC, True)):
            token = world.token(actor, f"repository:{repo}:*")
            caps = world.caps(actor, "repository", repo, public)
            if actor.role is not None and CAN[actor.role] <= caps:  # the binding reaches the repository
                wanted = expected_actions[actor.role]
            else:
                wanted = ["pull"] if "pull" in caps else []
            got = access_of(token).get(f"repository:{repo}")
            if sorted(got or []) != sorted(wanted):
                wrong.append(f"  {actor.label} on {repo}: expected {wanted}, got {got}")
    assert not wrong, "\n".join(wrong)


# -- /api/v1 ------------------------------------------------------------------------------------

ApiRun = Callable[[World, Actor], tuple[Expect, httpx.Response]]


def _call(world: World, actor: Actor, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return world.registry.request(method, path, world.api_token(actor), **kwargs)


def registry_op(method: str, path: str, need: str, ok: int, body: Any = None) -> ApiRun:
    def run(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
        values = {"n": world.next()}
        payload = body(world, values) if callable(body) else body
        response = _call(world, actor, method, path.format(**values), json=payload)
        return world.api_expect(actor, need, "registry", None, ok), response

    return run


def compartment_op(method: str, path: str, need: str, ok: int, body: Any = None, ok_code: str | None = None) -> ApiRun:
    def run(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
        response = _call(world, actor, method, path, json=body(world) if callable(body) else body)
        expected = world.api_expect(actor, need, "compartment", COMPARTMENT, ok)
        return (Expect(ok, ok_code) if expected.status == ok else expected), response

    return run


def _current_policy(path: str) -> Callable[[World], Any]:
    return lambda world: world.api("GET", path, 200)


def api_me(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    response = _call(world, actor, "GET", "/api/v1/me")
    identity = world.identities.get(actor)
    assert response.json()["subject"] == (identity.subject if identity else "anonymous")
    return Expect(200), response


def api_registry_configuration_get(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    response = _call(world, actor, "GET", "/api/v1/configuration")
    return (Expect(401, "UNAUTHORIZED") if actor.anonymous else Expect(200)), response


def api_list_compartments(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    response = _call(world, actor, "GET", "/api/v1/compartments")
    listed = {c["name"] for c in response.json()["items"]} & {COMPARTMENT, "pub", "other"}
    expected = {c for c in (COMPARTMENT, "pub", "other") if "pull" in world.caps(actor, "compartment", c)}
    assert listed == expected, (actor.label, listed, expected)
    return Expect(200), response


def api_list_repositories(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    response = _call(world, actor, "GET", "/api/v1/repositories")
    listed = {r["name"] for r in response.json()["items"]} & set(FIXED)
    expected = {r for r in FIXED if "pull" in world.caps(actor, "repository", r, r in (PUBLIC, SOURCE))}
    assert listed == expected, (actor.label, listed, expected)
    return Expect(200), response


def api_delete_empty_compartment(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    name = f"empty-{world.next()}"
    world.api("POST", "/api/v1/compartments", 201, json={"name": name})
    response = _call(world, actor, "DELETE", f"/api/v1/compartments/{name}")
    return world.api_expect(actor, "compartment.manage", "compartment", name, 204), response


def api_create_repository(public: bool) -> ApiRun:
    def run(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
        body = {"compartment_id": COMPARTMENT, "display_name": f"made-{world.next()}", "is_public": public}
        response = _call(world, actor, "POST", "/api/v1/repositories", json=body)
        expected = world.api_expect(actor, "create", "compartment", COMPARTMENT, 201)
        if public and expected.status == 201:
            expected = world.api_expect(actor, "iam.write", "compartment", COMPARTMENT, 201)
        return expected, response

    return run


def api_delete_user(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    # One user to delete: refusals come before any lookup, so everyone but the one allowed
    # caller is refused whether it still exists or not.
    return world.api_expect(actor, "principals", "registry", None, 204), _call(
        world, actor, "DELETE", "/api/v1/users/doomed"
    )


def api_revoke_user_key(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    key = world.api("POST", "/api/v1/users/victim/keys", 201, json={})
    response = _call(world, actor, "DELETE", f"/api/v1/users/victim/keys/{key['id']}")
    return world.api_expect(actor, "principals", "registry", None, 204), response


def _fresh_account(world: World) -> str:
    name = f"sa-{world.next()}"
    world.api("POST", "/api/v1/service-accounts", 201, json={"name": name})
    return name


def api_delete_service_account(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    response = _call(world, actor, "DELETE", f"/api/v1/service-accounts/{_fresh_account(world)}")
    return world.api_expect(actor, "principals", "registry", None, 204), response


def api_revoke_service_account_key(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    name = _fresh_account(world)
    key = world.api("POST", f"/api/v1/service-accounts/{name}/keys", 201, json={})
    response = _call(world, actor, "DELETE", f"/api/v1/service-accounts/{name}/keys/{key['id']}")
    return world.api_expect(actor, "principals", "registry", None, 204), response


def api_delete_group(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    name = f"group-{world.next()}"
    world.api("POST", "/api/v1/groups", 201, json={"name": name})
    response = _call(world, actor, "DELETE", f"/api/v1/groups/{name}")
    return world.api_expect(actor, "principals", "registry", None, 204), response


def api_registry_policy_put(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    policy = world.api("GET", "/api/v1/iam", 200)
    response = _call(world, actor, "PUT", "/api/v1/iam", json=policy)
    return world.api_expect(actor, "iam.write", "registry", None, 200), response


def api_compartment_policy_put(world: World, actor: Actor) -> tuple[Expect, httpx.Response]:
    path = f"/api/v1/compartments/{COMPARTMENT}/iam"
    response = _call(world, actor, "PUT", path, json=world.api("GET", path, 200))
    return world.api_expect(actor, "iam.write", "compartment", COMPARTMENT, 200), response


CONFIG = {"is_repository_created_on_first_push": False, "is_compartment_created_on_first_push": False}
API_CASES: list[tuple[str, ApiRun]] = [
    ("me", api_me),
    ("configuration-get", api_registry_configuration_get),
    ("configuration-put", registry_op("PUT", "/api/v1/configuration", "registry.configure", 200, CONFIG)),
    ("compartments-list", api_list_compartments),
    ("compartment-create", registry_op("POST", "/api/v1/compartments", "compartment.manage", 201,
                                       lambda w, v: {"name": f"made-{v['n']}"})),
    ("compartment-get", compartment_op("GET", f"/api/v1/compartments/{COMPARTMENT}", "pull", 200)),
    ("compartment-update", compartment_op("PATCH", f"/api/v1/compartments/{COMPARTMENT}", "compartment.manage",
                                          200, {"description": "updated"})),
    # Allowed, but the compartment holds repositories.
    ("compartment-delete-nonempty", compartment_op("DELETE", f"/api/v1/compartments/{COMPARTMENT}",
                                                   "compartment.manage", 409, ok_code="CONFLICT")),
    ("compartment-delete", api_delete_empty_compartment),
    ("compartment-configuration-get", compartment_op("GET", f"/api/v1/compartments/{COMPARTMENT}/configuration",
                                                     "pull", 200)),
    ("compartment-configuration-put", compartment_op("PUT", f"/api/v1/compartments/{COMPARTMENT}/configuration",
                                                     "compartment.manage", 200,
                                                     {"is_repository_created_on_first_push": True})),
    ("registry-iam-get", registry_op("GET", "/api/v1/iam", "iam.read", 200)),
    ("registry-iam-put", api_registry_policy_put),
    ("compartment-iam-get", compartment_op("GET", f"/api/v1/compartments/{COMPARTMENT}/iam", "iam.read", 200)),
    ("compartment-iam-put", api_compartment_policy_put),
    ("repositories-list", api_list_repositories),
    ("repository-create", api_create_repository(False)),
    ("repository-create-public", api_create_repository(True)),
    ("users-list", registry_op("GET", "/api/v1/users", "principals", 200)),
    ("user-create", registry_op("POST", "/api/v1/users", "principals", 201,
                                lambda w, v: {"name": f"made-{v['n']}", "email": f"made-{v['n']}@example.com",
                                              "password": USER_PASSWORD})),
    ("user-get", registry_op("GET", "/api/v1/users/victim", "principals", 200)),
    ("user-delete", api_delete_user),
    ("user-password", registry_op("PUT", "/api/v1/users/victim/password", "principals", 204,
                                  {"password": USER_PASSWORD})),
    ("user-keys-list", registry_op("GET", "/api/v1/users/victim/keys", "principals", 200)),
    ("user-key-create", registry_op("POST", "/api/v1/users/victim/keys", "principals", 201, {})),
    ("user-key-revoke", api_revoke_user_key),
    ("service-accounts-list", registry_op("GET", "/api/v1/service-accounts", "principals", 200)),
    ("service-account-create", registry_op("POST", "/api/v1/service-accounts", "principals", 201,
                                           lambda w, v: {"name": f"made-{v['n']}@ci"})),
    ("service-account-get", registry_op("GET", "/api/v1/service-accounts/repo-reader@ci", "principals", 200)),
    ("service-account-delete", api_delete_service_account),
    ("service-account-keys-list", registry_op("GET", "/api/v1/service-accounts/repo-reader@ci/keys", "principals",
                                              200)),
    ("service-account-key-create", registry_op("POST", "/api/v1/service-accounts/repo-reader@ci/keys",
                                               "principals", 201, {"expires_in_days": 1})),
    ("service-account-key-revoke", api_revoke_service_account_key),
    ("groups-list", registry_op("GET", "/api/v1/groups", "principals", 200)),
    ("group-create", registry_op("POST", "/api/v1/groups", "principals", 201, lambda w, v: {"name": f"g-{v['n']}"})),
    ("group-get", registry_op("GET", "/api/v1/groups/team-reader", "principals", 200)),
    ("group-members", registry_op("PUT", "/api/v1/groups/team-reader/members", "principals", 200,
                                  {"members": ["team-reader"]})),
    ("group-delete", api_delete_group),
    ("audit", registry_op("GET", "/api/v1/audit", "audit", 200)),
]  # fmt: skip


@pytest.fixture(scope="module")
def principals_world(world: World) -> World:
    """The victims of the principal-management cases (two argon2 hashes, made once)."""
    _create_users(world.registry, world.admin_refresh, [("victim", "victim@example.com"), ("doomed", "d@example.com")])
    return world


@pytest.mark.parametrize("run", [pytest.param(c[1], id=c[0]) for c in API_CASES])
def test_api(principals_world: World, run: ApiRun) -> None:
    check_all(lambda actor: run(principals_world, actor))


RepoRun = Callable[[World, Actor, str, bool], tuple[Expect, httpx.Response]]


def repo_op(method: str, suffix: str, need: str | tuple[str, ...], ok: int, body: Any = None) -> RepoRun:
    needs = (need,) if isinstance(need, str) else need

    def run(world: World, actor: Actor, repo: str, public: bool) -> tuple[Expect, httpx.Response]:
        payload = body(world, repo, public) if callable(body) else body
        response = _call(world, actor, method, f"/api/v1/repositories/{repo}{suffix}", json=payload)
        expected = Expect(ok)
        for permission in needs:
            expected = world.api_expect(actor, permission, "repository", repo, ok, public)
            if expected.status != ok:
                break
        return expected, response

    return run


def api_repository_delete(world: World, actor: Actor, repo: str, public: bool) -> tuple[Expect, httpx.Response]:
    doomed = world.fresh_repository(public)
    response = _call(world, actor, "DELETE", f"/api/v1/repositories/{doomed}")
    return world.api_expect(actor, "configure", "repository", doomed, 204, public), response


def api_repository_get(world: World, actor: Actor, repo: str, public: bool) -> tuple[Expect, httpx.Response]:
    response = _call(world, actor, "GET", f"/api/v1/repositories/{repo}")
    if response.status_code == 200:
        assert response.json()["is_public"] is public
    return world.api_expect(actor, "pull", "repository", repo, 200, public), response


REPO_CASES: list[tuple[str, RepoRun]] = [
    ("get", api_repository_get),
    ("versions", repo_op("GET", "/-/versions", "pull", 200)),
    ("update", repo_op("PATCH", "", "configure", 200, {"description": "changed"})),
    ("update-visibility", repo_op("PATCH", "", ("configure", "iam.write"), 200, lambda w, r, p: {"is_public": p})),
    ("delete", api_repository_delete),
    ("iam-get", repo_op("GET", "/-/iam", "iam.read", 200)),
    ("iam-put", repo_op("PUT", "/-/iam", "iam.write", 200,
                        lambda w, r, p: w.api("GET", f"/api/v1/repositories/{r}/-/iam", 200))),
]  # fmt: skip


@pytest.mark.parametrize("public", VISIBILITY)
@pytest.mark.parametrize("run", [pytest.param(c[1], id=c[0]) for c in REPO_CASES])
def test_api_repository(world: World, public: bool, run: RepoRun) -> None:
    repo = target(public)
    check_all(lambda actor: run(world, actor, repo, public))


def test_api_users_manage_themselves_only(principals_world: World) -> None:
    """A user reads itself and manages its own API keys, and nobody else's."""
    world = principals_world
    for actor in ACTORS:
        identity = world.identities.get(actor)
        if identity is None or not identity.subject.startswith("user:"):
            continue
        name = identity.subject.split(":", 1)[1]
        token = world.api_token(actor)
        me = world.registry.api("GET", f"/api/v1/users/{name}", token, 200)
        assert me["name"] == name
        key = world.registry.api("POST", f"/api/v1/users/{name}/keys", token, 201, json={"description": "own"})
        listed = world.registry.api("GET", f"/api/v1/users/{name}/keys", token, 200)["items"]
        assert key["id"] in {k["id"] for k in listed}
        assert all("secret" not in k for k in listed)
        world.registry.api("DELETE", f"/api/v1/users/{name}/keys/{key['id']}", token, 204)
        if actor.level != "registry" or actor.role != "admin":
            other = world.registry.request("GET", "/api/v1/users/victim/keys", token)
            assert (refusal_of(other).status, refusal_of(other).code) == (403, "DENIED"), (actor.label, other.text)


def test_all_authenticated_users_binding(world: World) -> None:
    """``allAuthenticatedUsers`` reader: every known caller pulls, anonymous ones are asked to log in."""
    repo = world.fresh_repository(public=False)
    world.registry.push_blob(repo, b"for everyone who logged in", world.admin_token(repo))
    world.bind(f"/api/v1/repositories/{repo}/-/iam", {"reader": ["allAuthenticatedUsers"]})
    path = f"/v2/{repo}/blobs/{sha256(b'for everyone who logged in')}"
    for actor in ACTORS:
        response = world.registry.request("GET", path, world.token(actor, f"repository:{repo}:pull"))
        assert response.status_code == (401 if actor.anonymous else 200), (actor.label, response.text)
