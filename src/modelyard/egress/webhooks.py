"""Posting a signed webhook message with httpx.

Headers: ``Content-Type: application/cloudevents+json`` (a structured CloudEvent), the
Standard Webhooks trio ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, and
``X-Modelyard-Event`` (the CloudEvent type) for routers that look at headers only. Redirects are not followed (a
subscription names where its events go), and the whole exchange has one deadline.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from modelyard.domain.webhooks import AttemptResult, SignedMessage

if TYPE_CHECKING:
    import httpx

USER_AGENT = "modelyard-webhooks/1"
MAX_ERROR = 500


class HttpxTransport:
    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._client: httpx.AsyncClient | None = None  # made on first use: most processes never send

    def _session(self) -> httpx.AsyncClient:
        import httpx  # on first send: most serving workers never send, and httpx costs ~5 MiB each

        from modelyard.egress.oci import refuse_link_local

        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                limits=httpx.Limits(max_connections=self._concurrency, max_keepalive_connections=self._concurrency),
                headers={"User-Agent": USER_AGENT},
                trust_env=False,
                event_hooks={"request": [refuse_link_local]},  # no posts to cloud metadata services
            )
        return self._client

    async def send(self, url: str, message: SignedMessage, timeout: float) -> AttemptResult:
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(message.timestamp),
            "webhook-signature": message.signature,
            "X-Modelyard-Event": message.event_type,
            "X-Modelyard-Delivery": str(message.delivery_id),
            "X-Modelyard-Attempt": str(message.attempt),
        }
        import httpx

        start = time.monotonic()
        try:
            response = await self._session().post(url, content=message.body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return AttemptResult(None, _ms(start), f"no answer within {timeout:g} s")
        except httpx.HTTPError as exc:
            return AttemptResult(None, _ms(start), f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
        error = None if response.is_success else f"endpoint answered {response.status_code}"
        return AttemptResult(response.status_code, _ms(start), error)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 3)
