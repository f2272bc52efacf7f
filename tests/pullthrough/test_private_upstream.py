"""A private upstream (modelyard with auth on: 401 + Bearer challenge, tokens from its
``/auth/token`` for Basic credentials) behind a cache that has auth on too: the cache answers the
upstream's challenge with the rule's credentials, which no API answer ever shows, and a client
of the cache needs the usual pull permission on the local repository."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.auth.conftest import auth_registry
from tests.auth.support import ADMIN_PASSWORD
from tests.helpers import sha256
from tests.pullthrough.support import ALL_MANIFESTS, CountingProxy, add_rule

SECRET = ADMIN_PASSWORD


def test_private_upstream_through_an_authenticated_cache(tmp_path: Path) -> None:
    with auth_registry(tmp_path / "upstream") as upstream, auth_registry(tmp_path / "cache") as cache:
        token = upstream.token("repository:private/model:push,pull", auth=("admin", ADMIN_PASSWORD))
        image = upstream.push_image("private/model", "v1", token, "private")
        proxy = CountingProxy(upstream.url).start()
        try:
            refresh = cache.refresh_token("admin", ADMIN_PASSWORD)
            add_rule(cache.url, "hub", proxy.url, refresh, username="admin", password=SECRET)
            add_rule(cache.url, "anon", proxy.url, refresh)
            listed = httpx.get(f"{cache.url}/api/v1/proxies", headers={"Authorization": f"Bearer {refresh}"})
            assert listed.status_code == 200 and SECRET not in listed.text
            assert listed.json()["items"][1]["has_password"] is True

            path = "/v2/hub/private/model/manifests/v1"
            assert cache.request("GET", path).status_code == 401  # the cache's own pull permission first
            pull = cache.token("repository:hub/private/model:pull", auth=("admin", ADMIN_PASSWORD))
            got = cache.request("GET", path, pull, headers={"Accept": ALL_MANIFESTS})
            assert got.status_code == 200, got.text
            assert got.content == image.manifest
            assert (
                proxy.count("GET", "/v2/private/model/manifests/v1")
                + proxy.count("GET", f"/v2/private/model/manifests/{image.digest}")
                == 1
            )
            blob = cache.request("GET", f"/v2/hub/private/model/blobs/{sha256(image.layer)}", pull)
            assert blob.status_code == 200 and blob.content == image.layer

            # Without credentials the upstream refuses the cache, and the client is told so.
            anon = cache.token("repository:anon/private/model:pull", auth=("admin", ADMIN_PASSWORD))
            refused = cache.request(
                "GET", "/v2/anon/private/model/manifests/v1", anon, headers={"Accept": ALL_MANIFESTS}
            )
            assert refused.status_code == 403, refused.text
            error = refused.json()["errors"][0]
            assert error["code"] == "DENIED" and "upstream" in error["message"]
            assert SECRET not in refused.text
        finally:
            proxy.stop()
