"""The client's address and scheme behind reverse proxies (``trusted_proxies``).

Behind nginx every request comes from nginx's address, so login throttling would count every
client as one and the audit log would name the proxy. A proxy says who its client was in
``X-Forwarded-For`` (``client, proxy1, proxy2``, each hop appending the address it saw) and
``X-Forwarded-Proto``; anyone can send those headers too, so they are believed only from a peer
in ``trusted_proxies``, and the client is the right-most address of the chain that is not a
trusted proxy itself (what a client wrote further left is whatever it liked). The request is
cloned with that ``remote`` (and ``scheme``), so every handler, the throttle and the audit log
see the real client without knowing about proxies.

Why not ``aiohttp-remotes``: its ``XForwardedFiltered`` believes the header from any peer (a client
talking to a replica directly could claim any address), and ``XForwardedStrict`` answers 400 to
every request that did not come through the proxy chain (health checks, ``modelyard doctor``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer``, or, when ``peer`` is a trusted proxy, the right-most hop
    of ``X-Forwarded-For`` (all its header lines, in order) that is not a trusted proxy."""

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in trusted)

    if peer is None or not is_trusted(_parse(peer)):
        return peer
    hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # garbage in the chain: trust nothing left of it
        client = str(address)
        if not is_trusted(address):
            break
    return client


def forwarded_middlewares(trusted_proxies: Sequence[str]) -> list[Middleware]:
    """The middleware for ``trusted_proxies``, or none when the setting is empty."""
    trusted = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]
    if not trusted:
        return []

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = _parse(request.remote or "")
        if peer is None or not any(peer in network for network in trusted):
            return await handler(request)  # a direct client: its headers mean nothing
        overrides: dict[str, str] = {}
        client = client_address(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)
        if client is not None and client != request.remote:
            overrides["remote"] = client
        proto = request.headers.get("X-Forwarded-Proto", "").rsplit(",", 1)[-1].strip().lower()
        if proto in ("http", "https"):
            overrides["scheme"] = proto
        if not overrides:
            return await handler(request)
        return await handler(request.clone(**overrides))  # type: ignore[arg-type]

    return [forwarded]
