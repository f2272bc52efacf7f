"""Headless Chromium for the web UI tests: Debian's ``chromium`` driven by Playwright.

``playwright install`` can't download browsers here, so the tests launch the system browser
(installed by ``scripts/bootstrap --system``) with no sandbox (tests run as root) and none of its
background network traffic. Playwright gives every launch a fresh temporary user-data
directory of its own (it refuses ``--user-data-dir``), deleted when the browser closes, and each
signed-in user gets a separate context (its own cookies).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


@contextmanager
def chromium() -> Iterator[Browser]:
    """One browser; contexts are opened per user."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
