"""Credentials for the CLI and SDK: stored refresh tokens and an httpx auth flow.

``modelyard login`` exchanges a password for a refresh (offline) token and stores only that
token, never the password, in ``$MODELYARD_CONFIG_DIR/credentials.json`` (default
``~/.config/modelyard``, mode 0600). The admin API takes it as a Bearer token (``/v2`` access
tokens are refused there: they are scoped to repositories and handed to every OCI client).
``MODELYARD_API_KEY`` (an API key) takes precedence when set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path

import httpx


def config_dir() -> Path:
    configured = os.environ.get("MODELYARD_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".config" / "modelyard"


def _credentials_file() -> Path:
    return config_dir() / "credentials.json"


def _load() -> dict[str, dict[str, str]]:
    try:
        data = json.loads(_credentials_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(url: str) -> str:
    return url.rstrip("/")


def stored_refresh_token(url: str) -> str | None:
    entry = _load().get(_key(url))
    return entry.get("refresh_token") if isinstance(entry, dict) else None


def last_login() -> str | None:
    """The registry logged in to most recently (still logged in), the CLI's default registry."""
    entries = [(entry.get("logged_in_at", ""), url) for url, entry in _load().items() if isinstance(entry, dict)]
    return max(entries)[1] if entries else None


def store_refresh_token(url: str, username: str, refresh_token: str) -> Path:
    path = _credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _load()
    data[_key(url)] = {
        "username": username,
        "refresh_token": refresh_token,
        "logged_in_at": datetime.now(UTC).isoformat(),
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
    return path


def forget(url: str) -> bool:
    data = _load()
    if data.pop(_key(url), None) is None:
        return False
    path = _credentials_file()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    return True


def password_login(url: str, username: str, password: str, *, timeout: float = 30.0) -> str:
    """Exchange a password (or API key) for a refresh token; raises ``httpx.HTTPStatusError``."""
    response = httpx.post(
        _key(url) + "/auth/token",
        data={"grant_type": "password", "username": username, "password": password, "access_type": "offline",
              "client_id": "modelyard-cli"},
        timeout=timeout,
    )  # fmt: skip
    response.raise_for_status()
    return str(response.json()["refresh_token"])


def default_auth(url: str) -> httpx.Auth | None:
    """For the admin API: the API key from the environment, else the stored login's refresh token
    for ``url``, else none."""
    api_key = os.environ.get("MODELYARD_API_KEY")
    if api_key:
        return _BearerAuth(api_key)
    refresh = stored_refresh_token(url)
    return _BearerAuth(refresh) if refresh else None


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
