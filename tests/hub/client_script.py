"""Run by ``test_client_versions.py`` in a child process, with whichever ``huggingface_hub`` is first
on ``PYTHONPATH`` (the current major, or the previous one that ``scripts/bootstrap --dev`` puts in
``.venv/compat``): one step of the client's use, its result printed as one JSON line.

    python client_script.py ENDPOINT CACHE snapshot REPO REVISION [TOKEN]
    python client_script.py ENDPOINT CACHE inspect PUBLIC_REPO PRIVATE_REPO TOKEN
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import HfApi, hf_hub_download, snapshot_download


def _error(call: Any) -> str:
    try:
        call()
    except Exception as exc:  # the class the client raised is the result
        return type(exc).__name__
    return "no error"


def _files(directory: str) -> list[str]:
    root = Path(directory)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def main(endpoint: str, cache: str, step: str, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = {"version": huggingface_hub.__version__}
    if step == "snapshot":
        repo, revision, *token = args
        result["path"] = snapshot_download(repo, revision=revision, endpoint=endpoint, cache_dir=cache,
                                           token=token[0] if token else False)  # fmt: skip
        return result
    public, private, token = args
    api = HfApi(endpoint=endpoint, token=False)
    info = api.model_info(public, revision="prod", files_metadata=True)
    result["sha"] = info.sha
    result["siblings"] = sorted((s.rfilename, s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings or [])
    result["files"] = api.list_repo_files(public, revision="prod")
    result["tree"] = sorted(
        (type(e).__name__, e.path, getattr(e, "size", None))
        for e in api.list_repo_tree(public, revision="prod", recursive=True)
    )
    config = hf_hub_download(public, "config.json", revision="prod", endpoint=endpoint, cache_dir=cache, token=False)
    result["config"] = Path(config).read_text()
    only = snapshot_download(public, revision="prod", endpoint=endpoint, cache_dir=cache + "-json", token=False,
                             allow_patterns=["*.json"])  # fmt: skip
    result["json_only"] = _files(only)
    result["private_anonymous"] = _error(lambda: api.model_info(private, revision="prod"))
    private_api = HfApi(endpoint=endpoint, token=token)
    result["private_sha"] = private_api.model_info(private, revision="prod").sha
    result["private_files"] = _files(
        snapshot_download(private, revision="prod", endpoint=endpoint, cache_dir=cache, token=token)
    )
    result["missing_revision"] = _error(lambda: private_api.model_info(private, revision="nope"))
    result["missing_file"] = _error(
        lambda: hf_hub_download(private, "nope.bin", revision="prod", endpoint=endpoint, cache_dir=cache, token=token)
    )
    return result


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
