"""Credentials for the CLI and SDK: stored refresh tokens and an httpx auth flow.

``modelyard login`` exchanges a password for a refresh (offline) token and stores only that
token, never the password, in ``$MODELYARD_CONFIG_DIR/credentials.json`` (default
``~/.config/modelyard``, mode 0600). Each command trades it for a short-lived access token.
``MODELYARD_API_KEY`` (an API key) takes precedence when set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
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


def store_refresh_token(url: str, username: str, refresh_token: str) -> Path:
    path = _credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _load()
    data[_key(url)] = {"username": username, "refresh_token": refresh_token}
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


class RefreshTokenAuth(httpx.Auth):
    """Sends a Bearer access token obtained from a refresh token, renewing it when it expires."""

    def __init__(self, base_url: str, refresh_token: str) -> None:
        self._token_url = _key(base_url) + "/auth/token"
        self._refresh_token = refresh_token
        self._access: str | None = None
        self._expires = 0.0

    def _renew(self) -> httpx.Request:
        return httpx.Request(
            "POST", self._token_url,
            data={"grant_type": "refresh_token", "refresh_token": self._refresh_token, "client_id": "modelyard-cli"},
        )  # fmt: skip

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._access is None or time.monotonic() >= self._expires:
            response = yield self._renew()
            response.read()
            if response.status_code != 200:
                yield request  # let the registry's own 401 reach the caller
                return
            body = response.json()
            self._access = str(body["access_token"])
            self._expires = time.monotonic() + float(body.get("expires_in", 60)) - 10
        request.headers["Authorization"] = f"Bearer {self._access}"
        yield request


def default_auth(url: str) -> httpx.Auth | None:
    """API key from the environment, else the stored login for ``url``, else none."""
    api_key = os.environ.get("MODELYARD_API_KEY")
    if api_key:
        return _BearerAuth(api_key)
    refresh = stored_refresh_token(url)
    return RefreshTokenAuth(url, refresh) if refresh else None


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
