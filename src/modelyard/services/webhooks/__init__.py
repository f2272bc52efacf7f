"""Webhooks: subscriptions (``service.py``), CloudEvents bodies (``cloudevent.py``) and delivery
from the outbox with retries (``delivery.py``); the rules of filters, scopes and signatures are
in ``domain/webhooks.py``."""

from modelyard.services.webhooks.delivery import DeliveryPolicy, Transport, WebhookDelivery
from modelyard.services.webhooks.service import CreatedWebhook, WebhookService

__all__ = ["CreatedWebhook", "DeliveryPolicy", "Transport", "WebhookDelivery", "WebhookService"]
