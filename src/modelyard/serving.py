"""``python -m modelyard.serving FD``: the process ``modelyard serve`` becomes with one worker.

It imports the serving stack only (``modelyard.server``), never the CLI; see
:func:`modelyard.server._exec_serving_process` for why and how the settings arrive.
"""

from __future__ import annotations

import sys

from modelyard.server import serve_from_pipe

if __name__ == "__main__":
    serve_from_pipe(int(sys.argv[1]))
