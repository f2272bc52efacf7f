"""Parsing ``/v2/...`` paths into the endpoint they name.

Repository names contain ``/``, and a component may itself be called ``blobs`` or
``manifests``, so the endpoint is found from the *end* of the path (as Distribution's greedy
regexes do): ``/v2/a/manifests/b/manifests/latest`` is the manifest ``latest`` of repository
``a/manifests/b``. The name is then validated by the spec's grammar, so a malformed or
path-traversing name is ``NAME_INVALID`` rather than a 404.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from modelyard.api.errors import HttpError
from modelyard.domain.errors import ErrorCode
from modelyard.domain.reference import validate_name


class Endpoint(enum.Enum):
    BASE = "base"
    CATALOG = "catalog"
    TAGS = "tags"
    MANIFEST = "manifest"
    BLOB = "blob"
    UPLOAD_START = "upload-start"
    UPLOAD = "upload"
    REFERRERS = "referrers"


@dataclass(frozen=True, slots=True)
class V2Route:
    endpoint: Endpoint
    name: str = ""
    argument: str = ""


@functools.lru_cache(maxsize=4096)
def parse_v2_path(path: str) -> V2Route:
    """Map a request path (already percent-decoded) to its endpoint, name and argument.

    Cached: the metrics middleware and the dispatcher both ask for every request, and clients
    ask for the same few paths over and over (a manifest GET by tag). Refusals raise, so they
    are not cached.
    """
    rest = path[len("/v2") :]
    if rest in ("", "/"):
        return V2Route(Endpoint.BASE)
    if rest == "/_catalog":
        return V2Route(Endpoint.CATALOG)
    parts = rest[1:].split("/")
    count = len(parts)
    route: V2Route | None = None
    if count >= 3 and parts[-2] == "tags" and parts[-1] == "list":
        route = V2Route(Endpoint.TAGS, "/".join(parts[:-2]))
    elif count >= 4 and parts[-3] == "blobs" and parts[-2] == "uploads":
        endpoint = Endpoint.UPLOAD_START if parts[-1] == "" else Endpoint.UPLOAD
        route = V2Route(endpoint, "/".join(parts[:-3]), parts[-1])
    elif count >= 3 and parts[-2] == "blobs" and parts[-1] == "uploads":
        route = V2Route(Endpoint.UPLOAD_START, "/".join(parts[:-2]))
    elif count >= 3 and parts[-2] in ("manifests", "blobs", "referrers") and parts[-1]:
        endpoint = {"manifests": Endpoint.MANIFEST, "blobs": Endpoint.BLOB, "referrers": Endpoint.REFERRERS}[parts[-2]]
        route = V2Route(endpoint, "/".join(parts[:-2]), parts[-1])
    if route is None:
        raise HttpError(ErrorCode.UNSUPPORTED, f"no such endpoint: {path[:200]}", status=404)
    validate_name(route.name)
    return route
