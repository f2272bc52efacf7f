"""A token without the action a request needs: 401 with a challenge when a fresh token would
carry it (so go-containerregistry clients such as crane ask again), 403 ``DENIED`` saying what
is missing when it would not.

``test_crane_delete_sequence`` replays, request by request, what ``crane delete`` (go-
containerregistry's ``remote.Delete``) sends: it pings ``/v2/``, asks a token for the
``push,pull`` scope of its writer, sends ``DELETE``, and only on a **401** whose challenge names
a scope it lacks does it put that scope first, fetch a new token and retry (its bearer
transport ignores the challenge of a 403).
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.support import ADMIN_PASSWORD, bearer_header, challenge_params, token
from tests.conftest import ClientFactory
from tests.helpers import error_code, push_image

Client = TestClient[Any, Any]

USER_PASSWORD = "user-Pa55word-for-tests"
REPO = "acme/llm"


async def admin_api_token(client: Client) -> str:
    form = {"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD, "service": "modelyard",
            "client_id": "tests", "access_type": "offline"}  # fmt: skip
    response = await client.post("/auth/token", data=form)
    assert response.status == 200, await response.text()
    return str((await response.json())["refresh_token"])


async def auth_client(make_client: ClientFactory) -> tuple[Client, str]:
    """An app with auth on, an image in ``acme/llm`` (pushed by the administrator), and the
    administrator's admin-API token."""
    client = await make_client(auth_enabled=True, admin_password=ADMIN_PASSWORD)
    push = await token(client, [f"repository:{REPO}:push,pull"], ("admin", ADMIN_PASSWORD))
    client.session.headers.update(bearer_header(push))
    try:
        await push_image(client, REPO, "v1")
    finally:
        client.session.headers.pop("Authorization")
    return client, await admin_api_token(client)


async def add_user(client: Client, admin: str, name: str, role: str | None) -> None:
    created = await client.post(
        "/api/v1/users",
        json={"name": name, "email": f"{name}@example.com", "password": USER_PASSWORD},
        headers=bearer_header(admin),
    )
    assert created.status == 201, await created.text()
    if role is None:
        return
    path = f"/api/v1/repositories/{REPO}/-/iam"
    policy = await (await client.get(path, headers=bearer_header(admin))).json()
    bindings = [*policy["bindings"], {"role": role, "members": [f"user:{name}"]}]
    updated = await client.put(path, json={"bindings": bindings, "etag": policy["etag"]}, headers=bearer_header(admin))
    assert updated.status == 200, await updated.text()


async def crane_delete(client: Client, reference: str, credentials: tuple[str, str]) -> list[Any]:
    """The request sequence of ``crane delete``; returns every ``/v2`` response it got."""
    responses = []
    ping = await client.get("/v2/")
    assert ping.status == 401
    scopes = [f"repository:{REPO}:push,pull"]
    current = await token(client, scopes, credentials)
    for _attempt in range(2):
        response = await client.delete(f"/v2/{REPO}/manifests/{reference}", headers=bearer_header(current))
        responses.append(response)
        if response.status != 401:
            break
        wanted = challenge_params(response.headers["WWW-Authenticate"]).get("scope")
        if wanted and wanted not in scopes:
            scopes = [wanted, *scopes]
        current = await token(client, scopes, credentials)
    return responses


async def test_crane_delete_sequence(make_client: ClientFactory) -> None:
    client, _admin = await auth_client(make_client)
    pull = await token(client, [f"repository:{REPO}:pull"], ("admin", ADMIN_PASSWORD))
    head = await client.head(f"/v2/{REPO}/manifests/v1", headers=bearer_header(pull))
    digest = head.headers["Docker-Content-Digest"]
    first, second = await crane_delete(client, digest, ("admin", ADMIN_PASSWORD))
    # The token was for push,pull: 401, and the challenge names the scope that is missing.
    assert first.status == 401, await first.text()
    assert await error_code(first) == "UNAUTHORIZED"
    params = challenge_params(first.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == f"repository:{REPO}:delete"
    assert params["service"] == "modelyard" and params["realm"].endswith("/auth/token")
    message = (await first.json())["errors"][0]["message"]
    assert "delete" in message and "does not exist" not in message
    # With the wider token, the delete goes through.
    assert second.status == 202, await second.text()
    gone = await client.get(f"/v2/{REPO}/manifests/{digest}", headers=bearer_header(pull))
    assert gone.status == 404


async def test_a_caller_who_may_not_delete_gets_403_saying_what_is_missing(make_client: ClientFactory) -> None:
    client, admin = await auth_client(make_client)
    await add_user(client, admin, "bob", "writer")
    responses = await crane_delete(client, "v1", ("bob", USER_PASSWORD))
    # A fresh token could never carry delete: no 401 to chase, one 403 that says why.
    assert [r.status for r in responses] == [403]
    refused = responses[0]
    assert await error_code(refused) == "DENIED"
    error = (await refused.json())["errors"][0]
    assert "user:bob may pull and push but not delete in repository acme/llm" in error["message"]
    assert "does not exist" not in error["message"]
    assert error["detail"] == {"repository": REPO, "missing": "delete", "granted": ["pull", "push"]}
    assert challenge_params(refused.headers["WWW-Authenticate"])["error"] == "insufficient_scope"
    # Asking for delete outright gets a token without it, and the same refusal.
    wide = await token(client, [f"repository:{REPO}:delete,push,pull"], ("bob", USER_PASSWORD))
    again = await client.delete(f"/v2/{REPO}/manifests/v1", headers=bearer_header(wide))
    assert again.status == 403
    pull = await token(client, [f"repository:{REPO}:pull"], ("bob", USER_PASSWORD))
    assert (await client.get(f"/v2/{REPO}/manifests/v1", headers=bearer_header(pull))).status == 200


async def test_a_repository_the_caller_cannot_read_looks_missing(make_client: ClientFactory) -> None:
    client, admin = await auth_client(make_client)
    await add_user(client, admin, "carol", None)
    answers = []
    for repo in (REPO, "acme/missing"):
        carol = await token(client, [f"repository:{repo}:push,pull"], ("carol", USER_PASSWORD))
        response = await client.delete(f"/v2/{repo}/manifests/v1", headers=bearer_header(carol))
        assert response.status == 403, repo
        assert await error_code(response) == "DENIED"
        answers.append((await response.json())["errors"][0]["message"].replace(repo, "<repo>"))
    assert answers[0] == answers[1]
    assert "does not exist or you do not have access" in answers[0]


async def test_a_pull_token_used_to_push_is_challenged_for_push(make_client: ClientFactory) -> None:
    """A client that reuses the token of its first request (oras-py does) learns the scope to ask."""
    client, _admin = await auth_client(make_client)
    pull = await token(client, [f"repository:{REPO}:pull"], ("admin", ADMIN_PASSWORD))
    response = await client.post(f"/v2/{REPO}/blobs/uploads/", headers=bearer_header(pull))
    assert response.status == 401
    assert challenge_params(response.headers["WWW-Authenticate"])["scope"] == f"repository:{REPO}:pull,push"


async def test_oras_py_retry_with_the_same_token_gets_403_then_asks_again(make_client: ClientFactory) -> None:
    """oras-py (0.2) answers a 401 by resending the token it holds, and fetches a new one (with the
    challenge's scope) only after a 403: the repeat gets that 403, with the same challenge."""
    client, _admin = await auth_client(make_client)
    pull = await token(client, [f"repository:{REPO}:pull"], ("admin", ADMIN_PASSWORD))
    first = await client.post(f"/v2/{REPO}/blobs/uploads/", headers=bearer_header(pull))
    assert first.status == 401
    again = await client.post(f"/v2/{REPO}/blobs/uploads/", headers=bearer_header(pull))
    assert again.status == 403
    assert await error_code(again) == "DENIED"
    params = challenge_params(again.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == f"repository:{REPO}:pull,push"
    fresh = await token(client, [params["scope"]], ("admin", ADMIN_PASSWORD))
    assert (await client.post(f"/v2/{REPO}/blobs/uploads/", headers=bearer_header(fresh))).status == 202
    # Another scope is another first time: 401 again.
    delete = await client.delete(f"/v2/{REPO}/manifests/v1", headers=bearer_header(pull))
    assert delete.status == 401
