"""A real client through the cache: skopeo (Debian's) copies a multi-platform index and a single
image from ``docker://<cache>/hub/...`` while the upstream modelyard only ever sees the cache."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import sha256
from tests.interop.layouts import Layout, build_image
from tests.interop.test_skopeo import Skopeo
from tests.pullthrough.support import Rig, add_rule


@pytest.fixture
def skopeo_cli(tmp_path: Path) -> Iterator[Skopeo]:
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.fail("skopeo is not installed: run scripts/bootstrap --system (it installs Debian's skopeo)")
    yield Skopeo(binary, tmp_path)


def test_skopeo_copies_an_index_and_an_image_through_the_cache(rig: Rig, skopeo_cli: Skopeo, tmp_path: Path) -> None:
    images = [build_image([300_000], architecture="amd64"), build_image([200_000], architecture="arm64")]
    layout = Layout(tmp_path / "src")
    index = layout.add_index("multi", images)
    layout.add_image("single", images[0])
    upstream = rig.upstream.url.removeprefix("http://")
    skopeo_cli.copy(f"oci:{layout.path}:multi", f"docker://{upstream}/models/llm:multi", "--all")
    skopeo_cli.copy(f"oci:{layout.path}:single", f"docker://{upstream}/models/llm:single")
    add_rule(rig.cache.url, "hub", rig.proxy.url)
    cache = rig.cache.url.removeprefix("http://")

    pulled = tmp_path / "pulled"
    skopeo_cli.copy(f"docker://{cache}/hub/models/llm:multi", f"oci:{pulled}:multi", "--all")
    skopeo_cli.copy(f"docker://{cache}/hub/models/llm:single", f"oci:{pulled}:single")
    stored = {p.name for p in (pulled / "blobs" / "sha256").iterdir()}
    wanted = {sha256(index), *(i.digest for i in images)} | {d for i in images for d in i.blobs}
    assert {d.split(":", 1)[1] for d in wanted} <= stored
    refs = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in json.loads((pulled / "index.json").read_text())["manifests"]
    }
    assert refs == {"multi": sha256(index), "single": images[0].digest}
    # Each blob came from upstream once, though skopeo pulled the amd64 image twice.
    for digest in images[0].blobs:
        assert rig.proxy.count("GET", f"/v2/models/llm/blobs/{digest}") == 1
    # skopeo inspects the cached copy like any repository here.
    assert json.loads(skopeo_cli.inspect(f"docker://{cache}/hub/models/llm:single"))["Digest"] == images[0].digest
