"""The web UI's templates and static files ship in the wheel: every one of them matches a
``package-data`` glob of ``pyproject.toml`` (a wheel built from the tree was checked to hold
them all; this keeps a new file from being left out)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "modelyard"


def test_every_template_and_static_file_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["modelyard"]
    shipped = [p for p in (PACKAGE / "web").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert {p.parent.name for p in shipped} == {"templates", "static"}
    missing = [
        str(p.relative_to(PACKAGE)) for p in shipped
        if not any(fnmatch.fnmatch(str(p.relative_to(PACKAGE)), glob) for glob in globs)
    ]  # fmt: skip
    assert missing == []
