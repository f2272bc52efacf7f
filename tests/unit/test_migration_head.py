"""Starting on an up-to-date database imports no alembic (~12 MiB a serving process would keep),
and the head read from the migration files is alembic's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from modelyard.metadata.migrations import alembic_config, current_revision, head_revision, upgrade
from modelyard.metadata.sql import create_metadata_engine
from modelyard.storage.paths import sqlite_path


def test_the_head_read_from_the_files_is_alembics() -> None:
    engine = create_metadata_engine("sqlite://")
    assert head_revision() == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def test_an_up_to_date_database_is_opened_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = create_metadata_engine(url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    script = (
        "import sys\n"
        "from modelyard.metadata.migrations import upgrade\n"
        "from modelyard.metadata.sql import create_metadata_engine\n"
        f"upgrade(create_metadata_engine({url!r}))\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_serve_migrates_a_new_database_in_a_child_process(tmp_path: Path) -> None:
    """``modelyard serve`` on a new data directory: the schema is created, and the process that
    goes on to serve never loaded alembic."""
    data_dir = tmp_path / "data"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from modelyard.config import Settings\n"
        "from modelyard.server import _migrate\n"
        f"_migrate(Settings(data_dir=Path({str(data_dir)!r}), auth_enabled=False))\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    engine = create_metadata_engine(f"sqlite:///{sqlite_path(data_dir)}")
    assert current_revision(engine) == head_revision()
