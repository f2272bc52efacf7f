"""``egress/oci.py`` against a real registry with auth on (modelyard's own token server): the
token challenge answered with Basic credentials, manifests by tag and digest, a streamed blob,
and the error tree (denied, not found, unavailable)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.egress.oci import (
    OciRegistryClient,
    UpstreamCredentials,
    UpstreamDenied,
    UpstreamNotFound,
    UpstreamUnavailable,
    parse_challenge,
)
from tests.auth.conftest import auth_registry
from tests.auth.support import ADMIN_PASSWORD, Image, Registry
from tests.helpers import sha256


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Image]]:
    with auth_registry(tmp_path_factory.mktemp("upstream")) as registry:
        token = registry.token("repository:private/model:push,pull", auth=("admin", ADMIN_PASSWORD))
        image = registry.push_image("private/model", "v1", token, "egress")
        yield registry, image


def test_parse_challenge() -> None:
    scheme, params = parse_challenge('Bearer realm="https://a/token",service="reg",scope="repository:x:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://a/token", "service": "reg", "scope": "repository:x:pull"}
    assert parse_challenge('Basic realm="x"')[0] == "basic"


def test_token_auth_manifests_and_blobs(upstream: tuple[Registry, Image]) -> None:
    registry, image = upstream

    async def main() -> None:
        client = OciRegistryClient(registry.url, credentials=UpstreamCredentials("admin", ADMIN_PASSWORD))
        try:
            head = await client.head_manifest("private/model", "v1")
            assert head.digest == image.digest
            fetched = await client.get_manifest("private/model", "v1", max_bytes=1 << 20)
            assert fetched.content == image.manifest and fetched.digest == image.digest
            by_digest = await client.get_manifest("private/model", image.digest, max_bytes=1 << 20)
            assert by_digest.content == image.manifest
            async with client.blob("private/model", sha256(image.layer)) as download:
                assert download.size == len(image.layer)
                data = b"".join([chunk async for chunk in download.chunks()])
            assert data == image.layer
            with pytest.raises(UpstreamNotFound):
                await client.get_manifest("private/model", "nope", max_bytes=1 << 20)
        finally:
            await client.aclose()

        anonymous = OciRegistryClient(registry.url)
        wrong = OciRegistryClient(registry.url, credentials=UpstreamCredentials("admin", "wrong"))
        try:
            for denied in (anonymous, wrong):
                with pytest.raises(UpstreamDenied):
                    await denied.get_manifest("private/model", "v1", max_bytes=1 << 20)
        finally:
            await anonymous.aclose()
            await wrong.aclose()

    asyncio.run(main())


def test_unreachable_upstream_is_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        client = OciRegistryClient("http://127.0.0.1:9", timeout=5)
        try:
            with pytest.raises(UpstreamUnavailable):
                await client.head_manifest("a/b", "latest")
        finally:
            await client.aclose()

    asyncio.run(main())


async def test_a_redirect_to_a_link_local_address_is_refused() -> None:
    """An upstream can answer a blob GET with a redirect anywhere; one to the cloud metadata
    address must not be followed (its answer would stream to the puller before the digest
    check). A real aiohttp server on 127.0.0.1 plays the upstream."""
    from aiohttp import web

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("http://169.254.169.254/latest/meta-data/iam/")

    app = web.Application()
    app.router.add_get("/v2/{name:.+}/blobs/{digest}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = OciRegistryClient(f"http://127.0.0.1:{port}", timeout=5)
    try:
        with pytest.raises(UpstreamUnavailable, match=r"link-local address 169\.254\.169\.254"):
            async with client.blob("library/x", sha256(b"x")):
                pass
    finally:
        await client.aclose()
        await runner.cleanup()
