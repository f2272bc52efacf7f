"""``log_format = "json"``: one JSON object per record and per line, whatever the message holds
(a user name with a newline must not forge a second record, as with the text format)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from modelyard.server import JsonFormatter


def test_a_record_is_one_json_line_with_controls_escaped() -> None:
    record = logging.LogRecord(
        "modelyard.audit", logging.WARNING, __file__, 1, "login of %s", ("eve\nINFO forged\u2028",), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\u2028" not in line
    entry = json.loads(line)
    assert entry["message"] == "login of eve\nINFO forged\u2028"
    assert (entry["level"], entry["logger"]) == ("warning", "modelyard.audit")
    assert entry["time"].endswith("+00:00")


def test_the_server_logging_setup_writes_json_when_asked(tmp_path: Path) -> None:
    """What ``modelyard serve`` installs (``_configure_logging``) writes JSON lines to stderr."""
    code = (
        "import logging\n"
        "from modelyard.config import Settings\n"
        "from modelyard.server import _configure_logging\n"
        f"_configure_logging(Settings(data_dir={str(tmp_path)!r}, log_format='json'))\n"
        "logging.getLogger('modelyard').info('listening on %s', 'x')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    (line,) = result.stderr.splitlines()
    assert json.loads(line)["message"] == "listening on x"
