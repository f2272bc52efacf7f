"""Admin-client methods for webhooks (mixed into :class:`~modelyard.client.admin.AdminClient`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelyard.schemas import webhooks as schemas

BASE = "/api/v1/webhooks"


class WebhookMethods:
    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError  # AdminClient's

    def create_webhook(self, spec: schemas.WebhookCreate) -> schemas.WebhookCreated:
        """Subscribe; the result carries the signing secret, which the registry never shows again."""
        return schemas.WebhookCreated.model_validate(self._request("POST", BASE, json=spec.model_dump()))

    def list_webhooks(self, scope: str | None = None) -> list[schemas.Webhook]:
        params = {"scope": scope} if scope else None
        return schemas.WebhookList.model_validate(self._request("GET", BASE, params=params)).items

    def get_webhook(self, webhook_id: int) -> schemas.Webhook:
        return schemas.Webhook.model_validate(self._request("GET", f"{BASE}/{webhook_id}"))

    def delete_webhook(self, webhook_id: int) -> None:
        self._request("DELETE", f"{BASE}/{webhook_id}")

    def list_deliveries(
        self, webhook_id: int, *, limit: int | None = None, page: str | None = None
    ) -> schemas.DeliveryPage:
        params = {k: v for k, v in (("limit", limit), ("page", page)) if v is not None}
        return schemas.DeliveryPage.model_validate(
            self._request("GET", f"{BASE}/{webhook_id}/deliveries", params=params)
        )

    def iter_deliveries(self, webhook_id: int) -> Iterator[schemas.Delivery]:
        page: str | None = None
        while True:
            result = self.list_deliveries(webhook_id, page=page)
            yield from result.items
            if result.next_page is None:
                return
            page = result.next_page

    def get_delivery(self, webhook_id: int, delivery_id: int) -> schemas.DeliveryDetail:
        path = f"{BASE}/{webhook_id}/deliveries/{delivery_id}"
        return schemas.DeliveryDetail.model_validate(self._request("GET", path))

    def redeliver(self, webhook_id: int, delivery_id: int, tries: int | None = None) -> schemas.Delivery:
        path = f"{BASE}/{webhook_id}/deliveries/{delivery_id}/redeliver"
        body = schemas.RedeliverRequest(tries=tries).model_dump(exclude_none=True)
        return schemas.Delivery.model_validate(self._request("POST", path, json=body))

    def webhook_event_types(self) -> list[str]:
        return schemas.EventTypes.model_validate(self._request("GET", "/api/v1/webhook-event-types")).items
