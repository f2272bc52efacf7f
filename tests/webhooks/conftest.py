from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.webhooks.support import Receiver


@pytest.fixture
async def receiver(aiohttp_server: Any) -> AsyncIterator[Receiver]:
    hook = Receiver()
    server = await aiohttp_server(hook.app())
    hook.url = str(server.make_url("/hook"))
    yield hook
    hook.release.set()
