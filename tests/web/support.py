"""Helpers of the web UI tests: signing in through the form, reading a page's CSRF token."""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.auth.support import ADMIN_PASSWORD

Client = TestClient[Any, Any]
ADMIN = ("admin", ADMIN_PASSWORD)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "the page has no form with a CSRF token"
    return match.group(1)


def basic(user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


async def sign_in(client: Client, user: tuple[str, str], next_page: str = "/ui/") -> Any:
    """The sign-in form, filled in as a browser would; the answer (a 303 when it worked)."""
    form = await client.get("/ui/login")
    token = csrf_of(await form.text())
    return await client.post(
        "/ui/login",
        data={"csrf_token": token, "username": user[0], "password": user[1], "next": next_page},
        allow_redirects=False,
    )


async def api(client: Client, method: str, path: str, status: int, body: Any = None) -> Any:
    """An admin API call as the administrator that must answer ``status``."""
    response = await client.request(method, path, json=body, headers=basic(ADMIN))
    assert response.status == status, f"{method} {path}: {response.status} {await response.text()}"
    return None if status == 204 else await response.json()


def readme(text: str) -> dict[str, str]:
    return {"content": base64.b64encode(text.encode()).decode(), "format": "TEXT_MARKDOWN"}
