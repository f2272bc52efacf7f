"""The modelyard Python SDK: push and pull model directories, and the admin API, from code.

Importing it loads no server code (no aiohttp server, SQLAlchemy or argon2): it is the same client
library the ``modelyard`` CLI uses, on httpx, synchronous.

>>> from modelyard.sdk import Registry
>>> with Registry("http://localhost:5000", api_key="myd_…") as registry:  # doctest: +SKIP
...     pushed = registry.push_model("./llama-3-8b", "acme/llama:v1")
...     print(pushed.digest, pushed.summary())
...     pulled = registry.pull_model("acme/llama:v1", "./copy", include=["*.json", "tokenizer*"])
...     registry.admin.get_repository("acme/llama").url

Credentials, when none are passed: ``MODELYARD_API_KEY``, else the login stored by
``modelyard login`` for that registry. The registry, when none is passed: ``MODELYARD_URL``, else
the one logged in to last, else ``http://127.0.0.1:5000``.

Progress: pass ``progress=callback``; it receives :class:`ProgressEvent` objects (from worker
threads, one at a time). With tqdm in a notebook::

    from tqdm.auto import tqdm
    bar = tqdm(unit="B", unit_scale=True)
    def show(event):
        if event.kind == "start" and event.phase != "hash":
            bar.reset(total=event.total)
        elif event.kind == "advance" and event.phase != "hash":
            bar.update(event.nbytes)
    registry.push_model("./model", "acme/llm:v2", progress=show)

Every refusal raises :class:`ApiError` (``status``, ``code`` as the registry names it, ``message``);
:class:`NotFoundError`, :class:`AuthenticationError` and :class:`PermissionDeniedError` narrow it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from modelyard.client.admin import AdminClient, ApiError, RegistryUnreachableError
from modelyard.client.auth import default_auth, last_login
from modelyard.client.modelpack import BASE_NAME, Kind, PackError, parse_type_rule
from modelyard.client.oci import (
    DEFAULT_CHUNK_SIZE,
    AuthenticationError,
    Credentials,
    DigestMismatchError,
    NotFoundError,
    OciClient,
    PermissionDeniedError,
)
from modelyard.client.transfer import (
    ProgressCallback,
    ProgressEvent,
    PullResult,
    PushResult,
    UnsafePathError,
    parse_reference,
    pull_artifact,
    push_directory,
)
from modelyard.schemas import admin as admin_schemas
from modelyard.schemas import aliases as alias_schemas
from modelyard.schemas import lineage as lineage_schemas
from modelyard.schemas import models as model_schemas

__all__ = [
    "ApiError",
    "AuthenticationError",
    "DigestMismatchError",
    "NotFoundError",
    "PackError",
    "PermissionDeniedError",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "Registry",
    "RegistryUnreachableError",
    "UnsafePathError",
    "parse_base",
]

DEFAULT_URL = "http://127.0.0.1:5000"


def resolve_url(given: str | None) -> str:
    """The registry to talk to: given, ``MODELYARD_URL``, last login, or the default."""
    url = given or os.environ.get("MODELYARD_URL") or last_login() or DEFAULT_URL
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def parse_base(value: str) -> tuple[str, str]:
    """``acme/base@sha256:…`` -> (``acme/base``, ``sha256:…``); a :class:`PackError` otherwise."""
    name, sep, digest = value.partition("@")
    if not sep or not name or ":" not in digest:
        raise PackError(f"--base {value!r}: expected REPO@DIGEST, e.g. acme/llama@sha256:…")
    return name, digest


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class Registry:
    """One registry: models over ``/v2`` (:meth:`push_model`, :meth:`pull_model`) and the admin
    API (:attr:`admin`, an :class:`~modelyard.client.admin.AdminClient`).

    ``api_key`` or ``username``/``password`` override the stored credentials. ``chunk_size`` is
    the unit of resumable uploads (blobs up to it go in one request).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify: bool = True,
        timeout: float = 300.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        jobs: int | None = None,
    ) -> None:
        self.url = resolve_url(url)
        if password is not None:
            credentials: Credentials | None = Credentials(username or "", password)
            self._admin_auth: httpx.Auth | None = httpx.BasicAuth(username or "", password)
        else:
            credentials = Credentials.for_registry(self.url, api_key=api_key)
            self._admin_auth = _Bearer(api_key) if api_key else default_auth(self.url)
        self.jobs = jobs
        self.oci = OciClient(self.url, credentials=credentials, timeout=timeout, verify=verify, chunk_size=chunk_size)
        self._verify = verify
        self._admin: AdminClient | None = None

    @property
    def admin(self) -> AdminClient:
        """The admin API (compartments, repositories, users, IAM, …) with the same credentials."""
        if self._admin is None:
            transport = httpx.HTTPTransport(verify=self._verify)
            self._admin = AdminClient(self.url, auth=self._admin_auth, transport=transport)
        return self._admin

    def close(self) -> None:
        self.oci.close()
        if self._admin is not None:
            self._admin.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def push_model(
        self,
        path: str | os.PathLike[str],
        ref: str,
        *,
        annotations: dict[str, str] | None = None,
        base: str | None = None,
        types: Sequence[str] = (),
        mount_from: Sequence[str] = (),
        jobs: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> PushResult:
        """Pack the directory ``path`` as a ModelPack artifact and push it as ``ref``
        (``repo:tag``).

        Blobs the repository has are skipped, blobs in ``base``'s repository (``repo@digest``, also
        recorded in the manifest's base annotations) or in ``mount_from`` are mounted, the rest
        uploaded in parallel; an upload interrupted earlier resumes where the registry stopped.
        ``types`` are ``KIND=GLOB`` classification rules (``"weight=*.dat"``).

        >>> result = registry.push_model("./model", "acme/llm:v2", base="acme/llm@sha256:…")  # doctest: +SKIP
        >>> result.sent_bytes, result.skipped_files  # doctest: +SKIP
        (104857600, 4)
        """
        repository, tag = parse_reference(ref)
        if tag.startswith("sha256:"):
            raise PackError(f"{ref}: push needs a tag (repo:tag), not a digest")
        overrides: list[tuple[Kind, str]] = [parse_type_rule(rule) for rule in types]
        parsed_base = parse_base(base) if base else None
        jobs = jobs or self.jobs
        self.oci.check_push(repository)
        sources = [parsed_base[0]] if parsed_base else []
        sources += self._previous_base(repository, tag)
        return push_directory(
            self.oci, Path(path), repository, tag, overrides=overrides, annotations=annotations, base=parsed_base,
            name=repository.rsplit("/", 1)[-1], mount_from=[*sources, *mount_from], jobs=jobs, progress=progress,
        )  # fmt: skip

    def _previous_base(self, repository: str, tag: str) -> list[str]:
        """The base repository recorded by the version this push replaces, as a mount source."""
        try:
            previous = self.oci.get_manifest(repository, tag).json()
        except (NotFoundError, ValueError):
            return []
        annotations = previous.get("annotations")
        base = annotations.get(BASE_NAME) if isinstance(annotations, dict) else None
        return [base] if isinstance(base, str) and base else []

    def pull_model(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        jobs: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> PullResult:
        """Write the files of ``ref`` (``repo:tag`` or ``repo@digest``) under ``dest``.

        Works for ModelPack artifacts, KitOps ModelKits, Docker model artifacts and ORAS
        artifacts. ``include``/``exclude`` are globs on the file paths (or names). Files already
        there with the right digest are kept; a path that would escape ``dest`` raises
        :class:`UnsafePathError` before anything is written.

        >>> registry.pull_model("acme/llm:v2", "./tokenizer-only", include=["tokenizer*"])  # doctest: +SKIP
        """
        repository, reference = parse_reference(ref)
        return pull_artifact(
            self.oci, repository, reference, Path(dest), include=list(include or ()), exclude=list(exclude or ()),
            jobs=jobs or self.jobs, progress=progress,
        )  # fmt: skip

    # -- what the registry understood of the versions (the admin API's model index) ---------

    def versions(self, repository: str) -> list[admin_schemas.Version]:
        """Every version (tagged or not) of a repository with its model facts, newest first."""
        return list(self.admin.iter_versions(repository))

    def model(self, ref: str) -> model_schemas.ModelVersion:
        """What the registry read from ``ref`` (``repo:tag`` or ``repo@digest``): format,
        architecture, parameters, precision, quantization, license, card, files.

        >>> registry.model("acme/llama:v1").parameters_human  # doctest: +SKIP
        '8B'
        """
        repository, reference = parse_reference(ref)
        return self.admin.get_model_version(repository, reference)

    def lineage(self, ref: str) -> lineage_schemas.Lineage:
        """What ``ref`` derives from (``ancestors``) and what derives from or refers to it
        (``descendants``), across the repositories you may read; ``edges`` link them.

        >>> [a.repository for a in registry.lineage("acme/llm-ft:v2").ancestors]  # doctest: +SKIP
        ['acme/llm']
        """
        repository, reference = parse_reference(ref)
        return self.admin.get_lineage(repository, reference)

    def diff(self, a: str, b: str) -> lineage_schemas.VersionDiff:
        """From version ``a`` to version ``b`` (``repo:tag`` or ``repo@digest``, repositories may
        differ): files added, removed and changed, metadata changed, and the bytes they share.

        >>> [c.path for c in registry.diff("acme/llm:v1", "acme/llm:v2").changed]  # doctest: +SKIP
        ['model-00002-of-00004.safetensors']
        """
        a_repository, a_reference = parse_reference(a)
        b_repository, b_reference = parse_reference(b)
        return self.admin.diff_versions(a_repository, a_reference, b_reference, other_repository=b_repository)

    # -- aliases: the mutable tags a team serves through (prod, staging, latest) ----------------

    def aliases(self, repository: str) -> list[alias_schemas.Alias]:
        """The repository's aliases with their targets and the versions on them."""
        return self.admin.aliases(repository)

    def alias_history(self, repository: str, alias: str) -> list[alias_schemas.HistoryEntry]:
        """Every move of ``alias`` (any tag), newest first: from, to, who, when, how, why."""
        return list(self.admin.iter_alias_history(repository, alias))

    def set_alias(
        self,
        repository: str,
        alias: str,
        target: str,
        expected_digest: str | None = None,
        reason: str | None = None,
    ) -> alias_schemas.Alias:
        """Point ``alias`` at ``target`` (a version tag or digest); 409 (``ApiError``) if
        ``expected_digest`` is given and someone moved it first."""
        return self.admin.set_alias(repository, alias, target, expected_digest=expected_digest, reason=reason)

    def rollback(
        self, repository: str, alias: str, to: str | None = None, reason: str | None = None
    ) -> alias_schemas.Alias:
        """Put ``alias`` back: at ``to``, or at its most recent earlier target still present."""
        return self.admin.rollback(repository, alias, to=to, reason=reason)

    def search(self, *, limit: int | None = None, **filters: Any) -> list[model_schemas.ModelSearchResult]:
        """Versions across the repositories the caller may read, filtered like ``modelyard search``:
        ``arch``, ``quantization``, ``license``, ``min_params``/``max_params`` (``"1B"``),
        ``format``, ``q``. ``limit`` caps how many are fetched (all pages otherwise).

        >>> registry.search(arch="llama", format="safetensors", min_params="1B")  # doctest: +SKIP
        """
        found: list[model_schemas.ModelSearchResult] = []
        for item in self.admin.iter_models(**filters):
            found.append(item)
            if limit is not None and len(found) >= limit:
                break
        return found

    def read_file(self, ref: str, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """One file of a version (or a byte range of it, ``end`` inclusive), without pulling the rest."""
        repository, reference = parse_reference(ref)
        return self.admin.read_file(repository, reference, path, start=start, end=end)

    def tags(self, repository: str) -> list[str]:
        """The tags of a repository."""
        return self.oci.tags(repository)

    def manifest(self, ref: str) -> dict[str, Any]:
        """The manifest of ``ref`` as JSON."""
        repository, reference = parse_reference(ref)
        return self.oci.get_manifest(repository, reference).json()
