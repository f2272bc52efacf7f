"""Behind a reverse proxy: ``X-Forwarded-For`` names the client for throttling, only from
``trusted_proxies`` (the test client connects from 127.0.0.1, playing the proxy)."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from aiohttp.test_utils import TestClient

from modelyard.api.forwarded import client_address
from tests.conftest import ClientFactory

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery staple"


async def failed_login(client: Client, forwarded_for: str) -> int:
    basic = base64.b64encode(b"admin:wrong password").decode()
    response = await client.get(
        "/auth/token",
        params={"service": "modelyard"},
        headers={"Authorization": f"Basic {basic}", "X-Forwarded-For": forwarded_for},
    )
    return response.status


async def proxied_registry(make_client: ClientFactory, trusted: list[str]) -> Client:
    return await make_client(
        auth_enabled=True,
        admin_password=PASSWORD,
        trusted_proxies=trusted,
        login_failures_per_address=2,
        login_failures_per_account=1000,
    )


async def test_throttling_counts_the_forwarded_client_behind_a_trusted_proxy(make_client: ClientFactory) -> None:
    client = await proxied_registry(make_client, ["127.0.0.1"])
    assert [await failed_login(client, "203.0.113.7") for _ in range(3)] == [401, 401, 429]
    # Another client behind the same proxy is not punished for the first one's guesses, and a
    # client cannot escape by prepending addresses: the proxy appended the one it saw.
    assert await failed_login(client, "198.51.100.9") == 401
    assert await failed_login(client, "10.9.9.9, 203.0.113.7") == 429


async def test_the_header_means_nothing_from_an_untrusted_peer(make_client: ClientFactory) -> None:
    client = await proxied_registry(make_client, ["10.0.0.0/8"])  # the peer, 127.0.0.1, is not a proxy
    statuses = [await failed_login(client, f"203.0.113.{n}") for n in range(3)]
    assert statuses == [401, 401, 429]  # every attempt counted against 127.0.0.1


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    trusted = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]
    assert client_address("127.0.0.1", ["1.2.3.4, 10.0.0.2"], trusted) == "1.2.3.4"
    assert client_address("127.0.0.1", ["6.6.6.6", "1.2.3.4"], trusted) == "1.2.3.4"  # two header lines
    assert client_address("127.0.0.1", ["not-an-address, 10.0.0.2"], trusted) == "10.0.0.2"
    assert client_address("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_address("8.8.8.8", ["1.2.3.4"], trusted) == "8.8.8.8"
