"""The Hugging Face Hub's view of a model version, as plain records (no I/O): the revision a
``huggingface_hub`` client asks for, the commit hash it caches under, and each file's identity.

How a version becomes a Hub revision:

- ``repo_id`` is the repository name (``acme/llama``; a root repository ``llama`` is a
  namespace-less repo id, like the Hub's old canonical models).
- a *revision* is any tag (an alias such as ``prod`` included), a manifest digest, or the 40-hex
  commit hash below; ``main`` -- the client's default -- is the tag ``main`` if there is one,
  else the configured default tag (``latest``), else the newest version.
- the commit hash (``sha``) is the first 40 hex digits of the manifest digest: stable for a
  version, different for any other, and of the shape the client checks before it trusts its
  cache (``REGEX_COMMIT_HASH``, 40 lowercase hex). A second ``snapshot_download`` of an alias
  that did not move finds its snapshot by that hash and downloads nothing.
- a file whose layer is the file (ModelPack raw layers) is an LFS file: its ``oid`` is the git
  blob id of the LFS pointer the Hub would store, its ``ETag`` its sha256 -- so an unchanged file
  of a new version is found in the client's blob cache and not fetched again. A member of a tar
  layer has no digest of its own: it gets a stable 40-hex id derived from the layer digest and
  its path (the shape of a git blob id, as the Hub gives small files), and no LFS block.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.models import ModelFile, ModelVersionRecord

COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")

HubErrorKind = Literal["RepoNotFound", "RevisionNotFound", "EntryNotFound"]


class HubNotFound(RegistryError):
    """A Hub lookup that found nothing the caller may see: which kind (the client's
    ``X-Error-Code``) and whether the caller was anonymous (the Hub then answers 401, so the client
    suggests logging in). A repository the caller may not read is ``RepoNotFound``, like a missing one."""

    def __init__(self, kind: HubErrorKind, message: str, *, anonymous: bool = False, commit: str | None = None) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)
        self.kind: HubErrorKind = kind
        self.anonymous = anonymous
        self.commit = commit  # the revision's commit, when it was found (EntryNotFound)


def commit_of(digest: str) -> str:
    """The 40-hex commit hash of a manifest digest (``sha256:abc…`` -> its first 40 hex digits)."""
    return digest.partition(":")[2][:40].lower()


def _pointer(sha256_hex: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256_hex}\nsize {size}\n".encode()


def git_blob_id(content: bytes) -> str:
    """What ``git hash-object`` prints for ``content``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Lfs:
    sha256: str
    size: int
    pointer_size: int


@dataclass(frozen=True, slots=True)
class HubFile:
    """One file of a revision as the Hub describes it."""

    path: str
    size: int
    oid: str  # a git blob id: of the LFS pointer for LFS files
    etag: str  # unquoted: the sha256 for LFS files, else the oid
    lfs: Lfs | None
    source: ModelFile

    @staticmethod
    def of(file: ModelFile) -> HubFile:
        match = _SHA256.match(file.layer_digest)
        if file.archive == "raw" and match is not None:
            sha = match.group(1)
            pointer = _pointer(sha, file.size)
            return HubFile(file.path, file.size, git_blob_id(pointer), sha, Lfs(sha, file.size, len(pointer)), file)
        oid = hashlib.sha1(f"{file.layer_digest}\0{file.path}".encode(), usedforsecurity=False).hexdigest()
        return HubFile(file.path, file.size, oid, oid, None, file)


@dataclass(frozen=True, slots=True)
class HubRevision:
    """A version resolved for the Hub API: which repository, which manifest, its files."""

    repo_id: str
    repository: str
    revision: str  # as asked
    version: ModelVersionRecord
    is_public: bool
    files: tuple[HubFile, ...]

    @property
    def sha(self) -> str:
        return commit_of(self.version.digest)

    @property
    def digest(self) -> str:
        return self.version.digest

    @property
    def last_modified(self) -> datetime:
        return self.version.created_at


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """A file or a directory of a tree listing (a directory's ``oid`` names it in one revision)."""

    type: Literal["file", "directory"]
    path: str
    oid: str
    size: int = 0
    file: HubFile | None = None


def directory_oid(digest: str, path: str) -> str:
    return hashlib.sha1(f"tree\0{digest}\0{path}".encode(), usedforsecurity=False).hexdigest()
