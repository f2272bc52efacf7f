"""``scripts/serve`` installs only what serving needs; ``scripts/test`` adds the dev tools.

The real ``scripts/bootstrap`` runs here against a checkout laid out in a temporary directory
whose ``.venv/bin/pip`` records its arguments instead of installing (a real install would fetch
packages from PyPI for every test run; what is under test is which packages bootstrap asks for).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap", root / "scripts" / "bootstrap")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    pip = bin_dir / "pip"
    pip.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../../pip.log"\n')
    pip.chmod(0o755)
    return root


def bootstrap(root: Path, *args: str) -> list[str]:
    subprocess.run(["bash", "scripts/bootstrap", *args], cwd=root, check=True, env=os.environ.copy(), timeout=60)
    log = root / "pip.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [line for line in lines if "install" in line and "--upgrade pip" not in line]


def test_serving_installs_the_runtime_dependencies_only_and_tests_add_the_dev_tools(tmp_path: Path) -> None:
    root = checkout(tmp_path)

    assert bootstrap(root) == ["install -q -e ."]
    assert bootstrap(root) == []  # installed already
    assert bootstrap(root, "--dev") == [
        "install -q -e .[dev]",
        # the earlier majors of huggingface_hub that tests/hub runs beside the current one
        "install -q --no-deps --upgrade --target .venv/compat/huggingface_hub-1 huggingface_hub>=1.0,<2",
        "install -q --no-deps --upgrade --target .venv/compat/huggingface_hub-0 huggingface_hub>=0.30,<1",
    ]
    assert bootstrap(root) == []  # a venv set up for the tests serves as it is
