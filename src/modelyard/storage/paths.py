"""The one place that knows where things live inside the data directory.

Layout (all below ``<data-dir>/``)::

    modelyard.db                       SQLite metadata (the embedded default)
    blobs/<algorithm>/<hex[:2]>/<hex>  a blob's bytes, named by their digest
    uploads/<upload-id>                the bytes of an upload in progress

The two-character fan-out keeps directories small with millions of blobs. Uploads live on
the same filesystem as blobs so that committing one is an atomic ``rename``. Upload ids are
validated UUIDs and digests are validated ``algorithm:hex`` before they reach these
functions, so no path built here can leave the data directory.
"""

from __future__ import annotations

from pathlib import Path

from modelyard.domain.digest import Digest


def blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex[:2] / digest.hex


def uploads_dir(root: Path) -> Path:
    return root / "uploads"


def upload_path(root: Path, upload_id: str) -> Path:
    return uploads_dir(root) / upload_id


def sqlite_path(root: Path) -> Path:
    return root / "modelyard.db"
