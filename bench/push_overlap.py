#!/usr/bin/env python3
"""A B A B of the two ways the client library pushes a model directory, in process (no CLI
start-up in the time): A = ``pack`` (hash every file) then ``push_packed`` (upload), the path
``modelyard push`` took before fa0b0b2; B = ``push_directory`` (each file uploaded as soon as it
is hashed). Each push goes to a fresh repository of one fresh modelyard server, so nothing is
skipped. See bench/README.md ("Model clients").

.venv/bin/python bench/push_overlap.py DIR [--repeats 4] [--jobs 4] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MB, log
from registries import Server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="the model directory to push (e.g. one bench/run.py made)")
    parser.add_argument("--repeats", type=int, default=4, help="A B pairs [4]")
    parser.add_argument("--jobs", type=int, default=4, help="parallel transfers [4]")
    parser.add_argument("--src", type=Path, help="the modelyard package directory to run (server and client)")
    args = parser.parse_args()
    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))
    from modelyard.client.oci import OciClient
    from modelyard.client.transfer import pack, push_directory, push_packed

    root = Path(tempfile.mkdtemp(prefix="push-overlap-"))
    server = Server("modelyard", "modelyard[w1]", root / "server", workers=1, src=args.src)
    server.start()
    size = sum(p.stat().st_size for p in args.directory.rglob("*") if p.is_file())
    times: dict[str, list[float]] = {"A pack+push_packed": [], "B push_directory": []}
    try:
        client = OciClient(server.base_url)
        for repeat in range(args.repeats):
            for name, samples in times.items():
                repository = f"overlap/{name[0].lower()}{repeat}"
                os.sync()
                start = time.perf_counter()
                if name.startswith("B"):
                    result = push_directory(client, args.directory, repository, "v1", jobs=args.jobs)
                else:
                    result = push_packed(client, pack(args.directory, jobs=args.jobs), repository, "v1", jobs=args.jobs)
                samples.append(time.perf_counter() - start)
                log(f"{name} #{repeat + 1}: {samples[-1]:.2f} s, sent {result.sent_bytes} bytes")
    finally:
        server.stop()
    summary = {name: {"median_s": statistics.median(ts), "MBps": size / statistics.median(ts) / MB, "samples_s": ts}
               for name, ts in times.items()}  # fmt: skip
    a, b = (summary[name]["median_s"] for name in times)
    print(json.dumps({"directory": str(args.directory), "bytes": size, "jobs": args.jobs, **summary,
                      "speedup_B_over_A": a / b}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
