from tests.webhooks.conftest import receiver  # noqa: F401  (the webhook receiver, for delivery counters)
