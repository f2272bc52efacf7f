"""``hf_default_revision``: which tag the Hub API serves for ``main`` (the client's default
revision) when a repository has no tag ``main`` -- here ``stable`` instead of ``latest`` -- and
the newest version when that tag is missing too."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

from tests.cli.liveserver import live_server
from tests.hub.support import Hub, Served
from tests.models.support import make_model


def test_a_configured_default_revision(tmp_path: Path) -> None:
    with live_server(data_dir=tmp_path / "data", hf_default_revision="stable") as server:
        hub = Hub(server, Served(), pusher_key="", reader_key="", stranger_key="")
        old = hub.push(make_model(tmp_path / "a", seed=51), "acme/conf:v1")
        new = hub.push(make_model(tmp_path / "b", seed=52), "acme/conf:latest")
        api = HfApi(endpoint=server.url, token=False)
        assert api.model_info("acme/conf").sha == new.removeprefix("sha256:")[:40]  # no stable: the newest
        hub.move("acme/conf", "stable", old)
        assert api.model_info("acme/conf").sha == old.removeprefix("sha256:")[:40]  # stable, not latest
        assert api.model_info("acme/conf", revision="latest").sha == new.removeprefix("sha256:")[:40]
