"""Hub records -> the JSON and headers the Hub sends (camelCase, as ``huggingface_hub``'s
``ModelInfo``, ``RepoSibling``, ``RepoFile`` and ``RepoFolder`` read them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelyard.domain.hub import HubFile, HubRevision, Lfs, TreeEntry


def _time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lfs(lfs: Lfs | None) -> dict[str, Any] | None:
    return None if lfs is None else {"size": lfs.size, "sha256": lfs.sha256, "pointerSize": lfs.pointer_size}


def model_info(found: HubRevision) -> dict[str, Any]:
    facts = found.version.facts
    namespace, _, _ = found.repo_id.rpartition("/")
    tags = [*found.version.tags]
    tags += [t for t in (facts.format, facts.architecture) if t]
    if facts.license:
        tags.append(f"license:{facts.license}")
    declared = facts.details.get("config.json")
    config: dict[str, Any] = {}
    if isinstance(declared, dict) and declared.get("architectures"):
        config["architectures"] = declared["architectures"]
    if facts.architecture:
        config["model_type"] = facts.architecture
    info: dict[str, Any] = {
        "_id": found.digest,
        "id": found.repo_id,
        "modelId": found.repo_id,
        "author": namespace or None,
        "sha": found.sha,
        "lastModified": _time(found.last_modified),
        "createdAt": _time(found.last_modified),
        "private": not found.is_public,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": tags,
        "siblings": [
            {"rfilename": f.path, "size": f.size, "blobId": f.oid, **({"lfs": _lfs(f.lfs)} if f.lfs else {})}
            for f in found.files
        ],
        "usedStorage": facts.total_size,
    }
    if config:
        info["config"] = config
    if facts.license:
        info["cardData"] = {"license": facts.license}
    return info


def tree_entry(entry: TreeEntry) -> dict[str, Any]:
    body: dict[str, Any] = {"type": entry.type, "oid": entry.oid, "size": entry.size, "path": entry.path}
    if entry.file is not None and entry.file.lfs is not None:
        lfs = entry.file.lfs
        body["lfs"] = {"oid": lfs.sha256, "size": lfs.size, "pointerSize": lfs.pointer_size}
    return body


def file_headers(found: HubRevision, file: HubFile) -> dict[str, str]:
    """What every answer for a file carries (a redirect included): the commit it was resolved to,
    and for an LFS file its sha256 and size as the Hub sends them for the object behind a pointer."""
    headers = {"X-Repo-Commit": found.sha}
    if file.lfs is not None:
        headers["X-Linked-Etag"] = f'"{file.lfs.sha256}"'
        headers["X-Linked-Size"] = str(file.lfs.size)
    return headers
