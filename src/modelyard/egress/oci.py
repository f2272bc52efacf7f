"""An OCI distribution client for the server's own outbound pulls (pull-through cache, and the
write side for replication), built on httpx.

Why here and not ``modelyard.client.oci``: services may not import the client package (it is
the CLI's and SDK's, and must stay free of server code and the server free of it); outbound HTTP
of the server lives in ``egress/``, handed to services by ``bootstrap.py``.

What it does, read side:

- **Auth**: the Docker token flow (``token.md``). A request is sent with the token cached for
  its scope, if any; a ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` fetches
  a token from the realm (HTTP Basic with the configured credentials, anonymous without), caches
  it per scope until shortly before it expires, and retries once. A ``Basic`` challenge is
  answered with the credentials directly. Credentials never leave for any host other than the
  registry's token realm, and httpx drops ``Authorization`` on a redirect to another origin.
- **Manifests**: ``GET``/``HEAD`` by tag or digest, ``Accept`` listing every OCI and Docker
  manifest type; the body is read with a size limit, and a request by digest is checked
  against that digest here (a tag's digest is the caller's business: it decides what to trust).
- **Blobs**: a streamed ``GET`` following redirects (S3 presigned URLs and the like) yielding
  bounded chunks; the caller hashes what it stores.
- **Errors**: one small tree. :class:`UpstreamNotFound` (404), :class:`UpstreamDenied` (401/403
  after auth), :class:`UpstreamUnavailable` (network failure, timeout, 429, 5xx: the cases where
  a cache serves what it has), :class:`UpstreamError` for the rest, each carrying the upstream's
  OCI error code and message when the body has one.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.upstream import (
    FetchedManifest,
    ManifestHead,
    UpstreamCredentials,
    UpstreamDenied,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)

# The records and errors are domain types (services see them without importing HTTP); they are
# re-exported here, where callers of the client have always found them.
__all__ = [
    "BlobDownload",
    "BodyNotReplayed",
    "FetchedManifest",
    "ManifestHead",
    "OciRegistryClient",
    "UpstreamCredentials",
    "UpstreamDenied",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamUnavailable",
    "parse_challenge",
]

USER_AGENT = "modelyard-egress/1"


async def refuse_link_local(request: httpx.Request) -> None:
    """An httpx request hook: no request of the egress client goes to a link-local address.

    Cloud metadata services answer there (169.254.169.254), and an upstream or target can steer
    the client with a redirect or a token realm: a pull-through blob would then stream the
    metadata service's answer to the puller before its digest check fails. No registry, token
    server or presigned URL lives there. Host names are not resolved here (a name resolving to
    such an address still passes)."""
    try:
        address = ipaddress.ip_address(request.url.host)
    except ValueError:
        return  # a host name
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if address.is_link_local or (mapped is not None and mapped.is_link_local):
        raise httpx.RequestError(f"refused to send a request to the link-local address {address}", request=request)


#: Every manifest type the registry stores; sent as one ``Accept`` header.
MANIFEST_ACCEPT = ", ".join(
    [mediatypes.OCI_INDEX, mediatypes.OCI_MANIFEST, mediatypes.DOCKER_MANIFEST_LIST, mediatypes.DOCKER_MANIFEST]
)
#: A token without ``expires_in`` lives 60 s (token.md); refresh this long before it ends.
TOKEN_MARGIN = 10.0
MAX_ERROR_BODY = 64 * 1024
CHUNK = 1 << 20
#: A request body: bytes, or a factory of a fresh byte stream (a retry after a challenge re-reads it).
Body = bytes | Callable[[], AsyncIterable[bytes]] | None


@dataclass(frozen=True, slots=True)
class BlobDownload:
    """An open blob response: ``size`` when the upstream said it, and its bytes in chunks."""

    size: int | None
    response: httpx.Response

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in chunks of at most 1 MiB; a connection lost midway is :class:`UpstreamUnavailable`."""
        try:
            async for chunk in self.response.aiter_bytes(CHUNK):
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the upstream's blob download broke off: {type(exc).__name__}") from None


@dataclass(slots=True)
class _Token:
    """A cached token: sent until ``expires``; fetched anew before a request once ``refresh``
    has passed (the challenge that earned it is remembered), so a long upload of many requests
    never meets the expiry mid-way."""

    value: str
    expires: float
    refresh: float


class BodyNotReplayed(UpstreamDenied):
    """A request whose streamed body cannot be sent twice (an upload chunk) was refused with a
    ``401``; a new token is cached, and the caller resumes from what the registry says it has."""


def token_times(issued: float, lifetime: float) -> tuple[float, float]:
    """When a token fetched at ``issued`` (monotonic, before the request) lasting ``lifetime``
    seconds should be refreshed (at 80 % of its life, or half of a very short one) and when it
    must no longer be sent (``TOKEN_MARGIN`` before its end, or at three quarters of a short one)."""
    refresh = min(lifetime * 0.8, max(lifetime - TOKEN_MARGIN, lifetime * 0.5))
    expires = max(lifetime - TOKEN_MARGIN, lifetime * 0.75)
    return issued + refresh, issued + expires


_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> ``("bearer", {"realm": …, "service": …})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


async def _error_body(response: httpx.Response) -> bytes:
    """At most ``MAX_ERROR_BODY`` bytes of an error answer, then the response is closed: a
    misbehaving upstream's endless 500 body never fills memory."""
    pieces: list[bytes] = []
    total = 0
    try:
        async for piece in response.aiter_bytes():
            pieces.append(piece)
            total += len(piece)
            if total >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return b"".join(pieces)[:MAX_ERROR_BODY]


def _error_of(response: httpx.Response, what: str, content: bytes | None = None) -> UpstreamError:
    """Map an upstream answer to the error tree, keeping its first OCI error code and message
    (from ``content``, the bounded body of a streamed answer, or the read answer's own)."""
    code = message = None
    try:
        if content is None:
            content = response.content
        body = json.loads(content[:MAX_ERROR_BODY]) if content else None
        first = body["errors"][0] if isinstance(body, dict) and body.get("errors") else None
        if isinstance(first, dict):
            code, message = str(first.get("code", "")) or None, str(first.get("message", "")) or None
    except (ValueError, KeyError, TypeError, httpx.ResponseNotRead):
        pass
    status = response.status_code
    text = f"upstream answered {status} for {what}" + (f": {code} {message}" if code or message else "")
    kind: type[UpstreamError]
    if status == 404:
        kind = UpstreamNotFound
    elif status in (401, 403):
        kind = UpstreamDenied
    elif status == 429 or status >= 500:
        kind = UpstreamUnavailable
    else:
        kind = UpstreamError
    return kind(text, status=status, code=code)


class OciRegistryClient:
    """One upstream registry (``base_url`` like ``https://registry.example``), with its own
    connection pool and token cache. Safe to share between concurrent tasks of one loop."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: UpstreamCredentials | None = None,
        verify_tls: bool | ssl.SSLContext = True,
        timeout: float = 30.0,
        max_connections: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._tokens: dict[str, _Token] = {}
        self._challenges: dict[str, str] = {}  # scope -> the Bearer challenge that earned its token
        self._basic = False  # the registry asked for Basic: send the credentials up front
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            verify=verify_tls,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
            event_hooks={"request": [refuse_link_local]},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- auth ------------------------------------------------------------------------------

    def _basic_header(self) -> str | None:
        if self._credentials is None:
            return None
        pair = f"{self._credentials.username}:{self._credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _auth_header(self, scope: str) -> str | None:
        token = self._tokens.get(scope)
        if token is not None and token.expires > time.monotonic():
            return f"Bearer {token.value}"
        return self._basic_header() if self._basic else None

    async def _authenticate(self, challenge: str, scope: str) -> None:
        """Answer a 401's challenge: fetch and cache a token, or switch to Basic."""
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self._credentials is None:
                raise UpstreamDenied(
                    "the upstream asks for a user name and password and none are configured", status=401
                )
            self._basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise UpstreamDenied(f"the upstream's auth challenge is not understood: {challenge[:200]!r}", status=401)
        realm = params["realm"]
        if urlsplit(realm).scheme not in ("http", "https"):
            raise UpstreamDenied(f"the upstream's token realm is not an http(s) URL: {realm[:200]!r}", status=401)
        self._challenges[scope] = challenge
        # The challenge's scope, plus any other the request needs (a cross-repository mount
        # needs pull on the source repository too: ``scope`` then holds both, space-separated,
        # and each goes as its own ``scope`` parameter, as docker sends them).
        scopes = [params["scope"]] if params.get("scope") else []
        scopes += [item for item in scope.split(" ") if item and item not in scopes]
        query: list[tuple[str, str | int | float | bool | None]] = [("scope", item) for item in scopes]
        if "service" in params:
            query.append(("service", params["service"]))
        headers = {}
        basic = self._basic_header()
        if basic is not None:
            headers["Authorization"] = basic
        issued = time.monotonic()
        try:
            response = await self._client.get(realm, params=tuple(query), headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the upstream's token endpoint is unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            error = _error_of(response, "a token")
            raise (error if isinstance(error, UpstreamUnavailable) else UpstreamDenied(str(error), status=error.status))
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0.0
        if not isinstance(value, str) or not value:
            raise UpstreamDenied("the upstream's token endpoint answered without a token", status=401)
        refresh, expires = token_times(issued, max(lifetime, 1.0))
        self._tokens[scope] = _Token(value, expires, refresh)

    async def _refresh_ahead(self, scope: str) -> None:
        """Fetch a new token for ``scope`` before it runs out, if one was earned by a challenge."""
        token = self._tokens.get(scope)
        challenge = self._challenges.get(scope)
        if token is not None and challenge is not None and time.monotonic() >= token.refresh:
            await self._authenticate(challenge, scope)

    async def _send(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        what: str,
        content: Body = None,
        *,
        replayable: bool = True,
    ) -> httpx.Response:
        """Send with auth (one retry after a challenge) and return the streamed response, open;
        any non-2xx answer is raised as an :class:`UpstreamError` (and closed). A streamed body
        (the write side, ``oci_push.py``) is a factory, called again for the retry -- unless it
        is not ``replayable`` (a chunk read once from a stream): then a ``401`` earns a new
        token and raises :class:`BodyNotReplayed`, never a resend of a consumed body."""
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            await self._refresh_ahead(scope)
            sent = dict(headers)
            auth = self._auth_header(scope)
            if auth is not None:
                sent["Authorization"] = auth
            body = content() if callable(content) else content
            try:
                request = self._client.build_request(method, url, headers=sent, content=body)
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException:
                raise UpstreamUnavailable(f"the upstream did not answer {what} in time") from None
            except httpx.HTTPError as exc:
                raise UpstreamUnavailable(
                    f"the upstream is unreachable for {what}: {type(exc).__name__}: {exc}"
                ) from None
            if response.status_code == 401 and attempt == 1:
                challenge = response.headers.get("WWW-Authenticate", "")
                await response.aclose()
                self._tokens.pop(scope, None)
                await self._authenticate(challenge, scope)
                if not replayable and content is not None:
                    raise BodyNotReplayed(f"upstream answered 401 for {what} (its token expired)", status=401)
                continue
            if response.is_success:
                return response
            raise _error_of(response, what, await _error_body(response))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads -----------------------------------------------------------------------------

    @staticmethod
    def _pull_scope(repository: str) -> str:
        return f"repository:{repository}:pull"

    async def _manifest_request(self, method: str, repository: str, reference: str, what: str) -> httpx.Response:
        path = f"/v2/{repository}/manifests/{reference}"
        return await self._send(method, path, self._pull_scope(repository), {"Accept": MANIFEST_ACCEPT}, what)

    async def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        """What a tag or digest names upstream, without its body (the cheap TTL revalidation)."""
        what = f"manifest {repository}:{reference}"
        response = await self._manifest_request("HEAD", repository, reference, what)
        await response.aclose()
        digest = response.headers.get("Docker-Content-Digest")
        if not digest and is_digest(reference):
            digest = reference
        if not digest:
            raise UpstreamError(f"the upstream's answer to HEAD {what} has no Docker-Content-Digest")
        media_type = mediatypes.strip_parameters(response.headers.get("Content-Type", ""))
        return ManifestHead(digest, media_type, int(response.headers.get("Content-Length") or 0))

    async def get_manifest(self, repository: str, reference: str, *, max_bytes: int) -> FetchedManifest:
        """A manifest's bytes, media type and digest (computed from the bytes, which a request
        by digest must match)."""
        what = f"manifest {repository}:{reference}"
        response = await self._manifest_request("GET", repository, reference, what)
        pieces: list[bytes] = []
        total = 0
        try:
            async for piece in response.aiter_bytes():
                total += len(piece)
                if total > max_bytes:
                    raise UpstreamError(f"the upstream's {what} is larger than {max_bytes} bytes")
                pieces.append(piece)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the upstream's answer for {what} broke off: {type(exc).__name__}") from None
        finally:
            await response.aclose()
        content = b"".join(pieces)
        if is_digest(reference):
            wanted = Digest.parse(reference)
            digest = str(Digest.of(content, wanted.algorithm))
            if digest != str(wanted):
                raise UpstreamError(f"the upstream's {what} has digest {digest}: refused")
        else:
            digest = str(Digest.of(content))
        media_type = mediatypes.strip_parameters(response.headers.get("Content-Type", ""))
        return FetchedManifest(digest, media_type, content)

    async def head_blob(self, repository: str, digest: str) -> int | None:
        """Whether the upstream has the blob in ``repository`` (raises :class:`UpstreamNotFound`
        if not), and its size when it says."""
        what = f"blob {digest} of {repository}"
        response = await self._send("HEAD", f"/v2/{repository}/blobs/{digest}", self._pull_scope(repository), {}, what)
        await response.aclose()
        length = response.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None

    @asynccontextmanager
    async def blob(self, repository: str, digest: str) -> AsyncIterator[BlobDownload]:
        """An open streamed ``GET`` of a blob (redirects followed); closed on leaving the block.
        The bytes are not verified here: whoever stores them hashes them as they pass."""
        what = f"blob {digest} of {repository}"
        response = await self._send("GET", f"/v2/{repository}/blobs/{digest}", self._pull_scope(repository), {}, what)
        try:
            length = response.headers.get("Content-Length")
            yield BlobDownload(int(length) if length and length.isdigit() else None, response)
        finally:
            await response.aclose()
