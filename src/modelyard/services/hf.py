"""The Hugging Face Hub's read API over model versions: which version a ``revision`` names, the
files of that revision, a tree listing, and one file to download -- for every tool that loads
models with ``huggingface_hub`` (``transformers``, vLLM, TGI, sentence-transformers, diffusers)
pointed at this registry with ``HF_ENDPOINT``.

The mapping (``domain/hub.py``): ``repo_id`` is the repository name, a revision is any tag,
digest or commit hash, and ``main`` is the default revision (the tag ``main``, else the
``hf_default_revision`` setting, else the newest version). Permissions are the ``/v2`` ones:
pulling needs ``PULL``, and a repository the caller may not read is ``RepoNotFound`` exactly
like a missing one (the Hub does the same with private repositories).
"""

from __future__ import annotations

from modelyard.config import Settings
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.hub import COMMIT, HubFile, HubNotFound, HubRevision, TreeEntry, commit_of, directory_oid
from modelyard.domain.reference import is_valid_tag
from modelyard.metadata.base import MetadataStore
from modelyard.policy.authorizer import Permission, Principal
from modelyard.services.iam import IamService
from modelyard.services.models import FileAccess, ModelService
from modelyard.services.runner import Reader
from modelyard.storage.base import BlobStore

MAIN = "main"
# How long a redirect to the blob store (an object store's signed URL) stays valid.
REDIRECT_SECONDS = 300


class HubService:
    def __init__(
        self,
        metadata: MetadataStore,
        models: ModelService,
        iam: IamService,
        store: BlobStore,
        read: Reader,
        settings: Settings,
    ) -> None:
        self._meta = metadata
        self._models = models
        self._iam = iam
        self._store = store
        self._read = read
        self._settings = settings

    # -- access ----------------------------------------------------------------------------

    async def _readable(self, principal: Principal, repo_id: str) -> bool:
        """Check the caller may pull ``repo_id``; returns whether the repository is public."""
        anonymous = self._settings.auth_enabled and not principal.authenticated
        missing = HubNotFound("RepoNotFound", f"repository {repo_id[:200]} not found", anonymous=anonymous)
        record = await self._read(self._meta.repositories.get, repo_id)
        if record is None:
            raise missing
        if self._settings.auth_enabled:
            permissions, _ = await self._read(self._iam.on_repository, principal, repo_id)
            if Permission.PULL not in permissions:
                raise missing
        return record.is_public

    # -- revisions -------------------------------------------------------------------------

    async def _digest(self, repository: str, revision: str) -> str | None:
        """The manifest digest ``revision`` names in ``repository``, or ``None``."""
        if COMMIT.match(revision):
            found = await self._read(self._models.digests_starting, repository, f"sha256:{revision}")
            if len(found) == 1:
                return found[0]  # else perhaps a tag of 40 hex digits
        if is_digest(revision):
            try:
                digest = str(Digest.parse(revision))
            except RegistryError:
                return None
            record = await self._read(self._meta.manifests.get, repository, digest)
            return None if record is None else record.digest
        if not is_valid_tag(revision):
            return None
        record = await self._read(self._meta.manifests.resolve_tag, repository, revision)
        if record is not None:
            return record.digest
        if revision != MAIN:
            return None
        default = self._settings.hf_default_revision
        record = await self._read(self._meta.manifests.resolve_tag, repository, default) if default else None
        if record is not None:
            return record.digest
        # No default tag: the newest version (the manifest most recently pushed under a tag).
        versions = await self._read(self._meta.repo_admin.versions, repository, None, None)
        if not versions:
            return None
        return max(versions, key=lambda v: (v.created_at, v.tagged_at)).digest

    async def revision(
        self, principal: Principal, repo_id: str, revision: str | None = None, *, with_files: bool = True
    ) -> HubRevision:
        """The version ``revision`` (default ``main``) names, with its files (or none: a caller
        that needs one file looks it up by path, which stays cheap for a model of 10,000 files)."""
        revision = revision or MAIN
        is_public = await self._readable(principal, repo_id)
        digest = await self._digest(repo_id, revision)
        if digest is None:
            raise HubNotFound("RevisionNotFound", f"revision {revision[:150]!r} of {repo_id[:200]} not found")
        version = await self._models.version(repo_id, digest, with_files=with_files)
        files = tuple(sorted((HubFile.of(f) for f in version.facts.files), key=lambda f: f.path))
        return HubRevision(repo_id, repo_id, revision, version, is_public, files)

    # -- trees and files -------------------------------------------------------------------

    async def tree(
        self, principal: Principal, repo_id: str, revision: str, path: str = "", *, recursive: bool = False
    ) -> tuple[HubRevision, list[TreeEntry]]:
        """The files and directories under ``path`` ("" for the root): its children, or with
        ``recursive`` everything below it; by path."""
        found = await self.revision(principal, repo_id, revision)
        prefix = path.strip("/")
        if prefix and any(f.path == prefix for f in found.files):
            raise HubNotFound("EntryNotFound", f"{prefix[:300]} is a file, not a directory", commit=found.sha)
        below = prefix + "/" if prefix else ""
        entries: dict[str, TreeEntry] = {}
        for file in found.files:
            if not file.path.startswith(below):
                continue
            rest = file.path[len(below) :].split("/")
            depth = len(rest) if recursive else 1
            for level in range(1, min(depth, len(rest) - 1) + 1):  # the directories on the way
                directory = below + "/".join(rest[:level])
                entries.setdefault(directory, TreeEntry("directory", directory, directory_oid(found.digest, directory)))
            if recursive or len(rest) == 1:
                entries[file.path] = TreeEntry("file", file.path, file.oid, file.size, file)
        if prefix and not entries:
            raise HubNotFound(
                "EntryNotFound", f"{prefix[:300]} not found in revision {revision[:150]!r}", commit=found.sha
            )
        return found, sorted(entries.values(), key=lambda e: e.path)

    async def file(
        self, principal: Principal, repo_id: str, revision: str, path: str
    ) -> tuple[HubRevision, HubFile, FileAccess]:
        """One file of a revision and where its bytes are (for :meth:`ModelService.read`, or
        ``sendfile`` when it is a local raw layer)."""
        found = await self.revision(principal, repo_id, revision, with_files=False)
        try:
            access = await self._models.file(repo_id, found.digest, path)
        except RegistryError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise  # a file the registry cannot unpack (zstd) says so
            raise HubNotFound(
                "EntryNotFound",
                f"{path[:300]} not found in revision {revision[:150]!r} of {repo_id[:200]}",
                commit=found.sha,
            ) from None
        return found, HubFile.of(access.file), access

    async def paths_info(
        self, principal: Principal, repo_id: str, revision: str, paths: list[str]
    ) -> tuple[HubRevision, list[TreeEntry]]:
        """The entries (files or directories) among ``paths`` that exist in the revision, in the
        order asked; the others are left out, as the Hub does."""
        found, entries = await self.tree(principal, repo_id, revision, recursive=True)
        by_path = {entry.path: entry for entry in entries}
        wanted = dict.fromkeys(p.strip("/") for p in paths)
        return found, [by_path[p] for p in wanted if p in by_path]

    async def refs(self, principal: Principal, repo_id: str) -> tuple[str | None, list[tuple[str, str]]]:
        """The commit ``main`` resolves to (if any), and every tag with its commit: the aliases and
        versions of the repository, as the Hub lists a repository's branches and tags."""
        await self._readable(principal, repo_id)
        main = await self._digest(repo_id, MAIN)
        versions = await self._read(self._meta.repo_admin.versions, repo_id, None, None)
        return (
            None if main is None else commit_of(main),
            [(v.tag, commit_of(v.digest)) for v in sorted(versions, key=lambda v: v.tag)],
        )

    def redirect_url(self, file: HubFile) -> str | None:
        """A URL of the blob store serving the file's bytes directly (an object store), if any:
        only for a file that is a whole layer."""
        if file.lfs is None:
            return None
        return self._store.redirect_url(Digest.parse(file.source.layer_digest), expires_in=REDIRECT_SECONDS)
