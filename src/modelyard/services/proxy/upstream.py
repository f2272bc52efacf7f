"""What the pull-through cache needs of an upstream registry client, as a protocol: the services
know no HTTP, and ``egress/oci.py``'s ``OciRegistryClient`` is the implementation that
``wiring.py`` hands in (tests could hand in another, though ours use real registries)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from modelyard.domain.upstream import FetchedManifest, ManifestHead, UpstreamCredentials


class UpstreamDownload(Protocol):
    @property
    def size(self) -> int | None:
        """The blob's size if the upstream said it (``Content-Length``)."""

    def chunks(self) -> AsyncIterator[bytes]: ...


class UpstreamClient(Protocol):
    async def head_manifest(self, repository: str, reference: str) -> ManifestHead: ...

    async def get_manifest(self, repository: str, reference: str, *, max_bytes: int) -> FetchedManifest: ...

    async def head_blob(self, repository: str, digest: str) -> int | None: ...

    def blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[UpstreamDownload]: ...

    async def aclose(self) -> None: ...


#: Builds the client of one upstream: (url, credentials, verify TLS) -> client.
ClientFactory = Callable[[str, UpstreamCredentials | None, bool], UpstreamClient]
