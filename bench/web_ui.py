"""Server time of the web UI's pages for a repository with many versions (issue 13: < 100 ms
for 1,000 versions).

One modelyard app runs in this process on a free loopback port (SQLite, auth off, no
background jobs). A real model directory (safetensors weights, ``config.json``, README) is
pushed with the SDK (``modelyard push``), then its manifest is re-tagged N times under
distinct annotations (``v0001`` … ``vN``: N indexed versions sharing the blobs) plus an alias
``prod``. Each page is then fetched ``--repeats`` times; the time reported is the server's, from
the request entering the handler chain to the response leaving it (a middleware), so loopback
and client costs are left out. Not a timed test: numbers move with the machine's load.

    .venv/bin/python bench/web_ui.py                       # 1,000 versions, 30 repeats
    .venv/bin/python bench/web_ui.py --versions 200 --repeats 10 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from aiohttp import web

from modelyard.app import create_app
from modelyard.config import Settings

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPO = "acme/llm"


def write_model(directory: Path) -> Path:
    """A small Hugging Face-style directory: safetensors written by hand (header + bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = 64
    tensors = {"model.embed_tokens.weight": [rows, 64], "lm_head.weight": [rows, 64]}
    header: dict[str, object] = {}
    offset = 0
    for name, shape in tensors.items():
        size = shape[0] * shape[1] * 2
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    (directory / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + os.urandom(offset))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
              "hidden_size": 64, "num_hidden_layers": 1, "vocab_size": rows}  # fmt: skip
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "README.md").write_text("---\nlicense: apache-2.0\n---\n# bench-llama\n\nA model for the benchmark.\n")
    return directory


async def seed(url: str, work: Path, versions: int) -> None:
    from modelyard.sdk import Registry

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        created = await client.post("/api/v1/compartments", json={"name": "acme"})
        created.raise_for_status()
        # Versions (v*) immutable, as a team would set it: "seed" and "prod" are the aliases.
        readme = base64.b64encode(b"# ACME LLM\n\nA repository for the benchmark.\n").decode()
        created = await client.post("/api/v1/repositories", json={
            "compartment_id": "acme", "display_name": "llm", "immutable_tag_patterns": ["v*"],
            "readme": {"content": readme, "format": "TEXT_MARKDOWN"},
        })  # fmt: skip
        created.raise_for_status()

    def push() -> None:
        with Registry(url) as sdk:
            sdk.push_model(write_model(work / "model"), f"{REPO}:seed")

    await asyncio.to_thread(push)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        got = await client.get(f"/v2/{REPO}/manifests/seed", headers={"Accept": OCI_MANIFEST})
        manifest = got.json()
        semaphore = asyncio.Semaphore(8)

        async def put(number: int) -> None:
            body = dict(manifest, annotations={**manifest.get("annotations", {}), "bench.version": str(number)})
            async with semaphore:
                response = await client.put(
                    f"/v2/{REPO}/manifests/v{number:04d}", content=json.dumps(body).encode(),
                    headers={"Content-Type": OCI_MANIFEST},
                )  # fmt: skip
            response.raise_for_status()

        await asyncio.gather(*(put(n) for n in range(1, versions + 1)))
        await client.put(f"/v2/{REPO}/manifests/prod", content=got.content, headers={"Content-Type": OCI_MANIFEST})


def timing_middleware(times: dict[str, list[float]]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def timed(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        times.setdefault(request.path_qs, []).append((time.perf_counter() - started) * 1000)
        return response

    return timed


async def run(versions: int, repeats: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="modelyard-web-bench-") as tmp:
        work = Path(tmp)
        os.environ["MODELYARD_CONFIG_DIR"] = str(work / "config")
        settings = Settings(data_dir=work / "data", fsync=False, access_log=False, auth_enabled=False,
                            background_jobs=False)  # fmt: skip
        times: dict[str, list[float]] = {}
        app = create_app(settings)
        app.middlewares.insert(0, timing_middleware(times))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            started = time.perf_counter()
            await seed(url, work, versions)
            print(f"seeded {versions} versions in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            pages = [
                f"/ui/r/{REPO}",
                f"/ui/r/{REPO}/-/versions",
                f"/ui/r/{REPO}/-/versions?limit=1000",
                f"/ui/r/{REPO}/-/versions/v0500",
                f"/ui/r/{REPO}/-/aliases",
                "/ui/",
                "/ui/models?arch=llama",
            ]
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                for path in pages:
                    (await client.get(path)).raise_for_status()  # warm up (template compile, caches)
                    times.pop(path, None)
                    for _ in range(repeats):
                        response = await client.get(path)
                        response.raise_for_status()
            results = {}
            for path in pages:
                samples = sorted(times[path])
                results[path] = {
                    "median_ms": round(statistics.median(samples), 2),
                    "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2),
                    "max_ms": round(samples[-1], 2),
                }
            return results
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(run(args.versions, args.repeats))
    width = max(len(p) for p in results)
    print(f"{'page':<{width}}  median ms  p95 ms  max ms   ({args.versions} versions, {args.repeats} requests each)")
    for path, row in results.items():
        print(f"{path:<{width}}  {row['median_ms']:>9.1f}  {row['p95_ms']:>6.1f}  {row['max_ms']:>6.1f}")
    target = results[f"/ui/r/{REPO}"]["median_ms"]
    print(f"repository page: {target:.1f} ms median (target < 100 ms): {'met' if target < 100 else 'missed'}")
    if args.json:
        summary = {"versions": args.versions, "repeats": args.repeats, "pages": results}
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
