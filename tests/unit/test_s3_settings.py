"""Settings of the S3 store and the proxy: refused at start with one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from modelyard.bootstrap import open_blob_store
from modelyard.config import Settings, format_validation_error
from modelyard.domain.digest import Digest
from modelyard.storage.s3 import S3BlobStore


def refusal(**values: object) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    return format_validation_error(caught.value)


def test_s3_needs_a_bucket_and_sane_part_sizes(tmp_path: Path) -> None:
    assert "storage_backend 's3' needs the setting s3_bucket" in refusal(storage_backend="s3")
    assert "'s3_part_size'" in refusal(storage_backend="s3", s3_bucket="b", s3_part_size=1024 * 1024)
    assert "'storage_backend'" in refusal(storage_backend="gcs")


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert "trusted_proxies: 'nginx' is not an IP address or network" in refusal(trusted_proxies=["nginx"])
    assert Settings(trusted_proxies=["10.0.0.5", "fd00::/8"]).trusted_proxies == ["10.0.0.5", "fd00::/8"]


def test_the_s3_backend_is_built_from_the_settings(tmp_path: Path) -> None:
    store = open_blob_store(
        Settings(
            data_dir=tmp_path,
            storage_backend="s3",
            s3_bucket="acme",
            s3_prefix="registry",
            s3_region="eu-west-1",
            blob_redirect=False,
        )
    )
    assert isinstance(store, S3BlobStore)
    assert store.blob_key(Digest.parse("sha256:" + "a" * 64)) == "registry/blobs/sha256/aa/" + "a" * 64
    assert store.options.redirect is False
