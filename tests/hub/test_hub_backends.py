"""The Hub API on PostgreSQL and an S3 blob store (the suite's PostgreSQL and moto server): a
revision named by its commit hash is found on PostgreSQL, and with blob redirects on the registry
answers ``/resolve/`` with a 302 to a presigned URL carrying ``X-Repo-Commit``, ``X-Linked-Etag``
and ``X-Linked-Size``, so ``huggingface_hub`` takes the bytes from the object store (without the
registry's credentials) and the registry sends none itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from huggingface_hub import HfApi, snapshot_download

from modelyard.app import create_app
from modelyard.config import Settings
from modelyard.storage.s3 import S3Options
from tests.backends import s3_settings
from tests.cli import liveserver
from tests.hub.support import Hub, Served
from tests.models.support import make_model, tree


@pytest.fixture
def s3_hub(tmp_path: Path, s3_options: S3Options, postgres_url: str) -> Iterator[Hub]:
    served = Served()

    def counting_app(settings: Settings) -> web.Application:
        application = create_app(settings)

        async def record(request: web.Request, response: web.StreamResponse) -> None:
            if "/resolve/" in request.path:
                served.responses.append((request.method, request.path, response.status, response.content_length or 0))

        application.on_response_prepare.append(record)
        return application

    settings = s3_settings(s3_options, blob_redirect=True, database_url=postgres_url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(liveserver, "create_app", counting_app)
        with liveserver.live_server(data_dir=tmp_path / "data", **settings) as server:
            yield Hub(server, served, pusher_key="", reader_key="", stranger_key="")


def test_snapshot_download_through_object_store_redirects(s3_hub: Hub, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", seed=41, extra=True)
    digest = s3_hub.push(model, "acme/s3:v1")
    commit = digest.removeprefix("sha256:")[:40]

    head = httpx.head(f"{s3_hub.url}/acme/s3/resolve/v1/model.safetensors")
    assert head.status_code == 302
    assert head.headers["X-Repo-Commit"] == commit
    assert head.headers["X-Linked-Size"] == str((model / "model.safetensors").stat().st_size)
    assert head.headers["X-Linked-Etag"] == '"' + tree(model)["model.safetensors"].removeprefix("sha256:") + '"'
    assert not head.headers["Location"].startswith(s3_hub.url)

    s3_hub.served.clear()
    path = Path(snapshot_download("acme/s3", revision="v1", endpoint=s3_hub.url, cache_dir=tmp_path / "c", token=False))
    assert tree(path) == tree(model) and path.name == commit
    assert s3_hub.served.downloads() == {}  # every byte came from the object store
    assert {status for _, _, status, _ in s3_hub.served.responses} == {302}

    api = HfApi(endpoint=s3_hub.url, token=False)
    assert api.model_info("acme/s3", revision=commit).sha == commit  # the commit hash, looked up on PostgreSQL
    assert sorted(api.list_repo_files("acme/s3", revision=commit)) == sorted(tree(model))
    with pytest.raises(Exception, match="Revision Not Found"):
        api.model_info("acme/s3", revision="0" * 40)


def test_with_auth_off_a_missing_repository_is_404_not_401(s3_hub: Hub) -> None:
    missing = httpx.get(f"{s3_hub.url}/api/models/acme/none")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RepoNotFound"
