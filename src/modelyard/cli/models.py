"""``modelyard push DIR REPO:TAG`` and ``modelyard pull REPO:REF DIR``: model directories in and out.

Progress bars (per file and total, with speed and ETA) go to stderr, and only when stdout is a
terminal and neither ``--quiet`` nor ``--json`` is given; the summary goes to stdout. Exit codes
are those of every command (see :mod:`modelyard.cli.common`): a directory that can't be packed
or a path that would escape DIR is 2, a refusal 1, a missing repository or tag 4, an unreachable
registry 3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelyard.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    JsonOption,
    RegistryOption,
    err,
    registry_url,
)
from modelyard.client.admin import ApiError, RegistryUnreachableError
from modelyard.client.modelpack import PackError
from modelyard.client.oci import DigestMismatchError
from modelyard.client.transfer import ProgressEvent, UnsafePathError, split_host
from modelyard.client.units import human_bytes
from modelyard.sdk import Registry

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
JobsOption = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, max=64, help="Parallel transfers [default: min(4, 2 x CPUs)].")
]


class BarProgress:
    """Rich bars fed by :class:`ProgressEvent`: a total bar per phase and one bar per file in flight."""

    PHASES = {"hash": "hashing", "upload": "pushing", "download": "pulling"}

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        # One total per phase: a push hashes and uploads at the same time (transfer.push_directory).
        self._totals: dict[str, TaskID] = {}
        self._files: dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        bars = self.progress
        if event.kind == "start":
            label = f"{self.PHASES[event.phase]} {event.files} file{'s' if event.files != 1 else ''}"
            self._totals[event.phase] = bars.add_task(label, total=event.total)
        elif event.kind == "file_start" and event.phase != "hash":
            self._files[event.path] = bars.add_task(f"  {event.path}", total=event.size)
        elif event.kind == "advance":
            if (total := self._totals.get(event.phase)) is not None:
                bars.advance(total, event.nbytes)
            if event.phase != "hash" and (task := self._files.get(event.path)) is not None:
                bars.advance(task, event.nbytes)
        elif event.kind == "file_done" and event.phase != "hash":
            if (task := self._files.pop(event.path, None)) is not None:
                bars.remove_task(task)
        elif event.kind == "done":
            total = self._totals.pop(event.phase, None)
            if total is not None and event.phase == "hash":
                bars.remove_task(total)


@contextmanager
def _progress(quiet: bool) -> Iterator[BarProgress | None]:
    if quiet or not sys.stdout.isatty() or not err.is_terminal:
        yield None
        return
    bars = BarProgress()
    with bars.progress:
        yield bars


@contextmanager
def _failures() -> Iterator[None]:
    """Every known failure as one line on stderr and the documented exit code."""
    try:
        yield
    except (PackError, UnsafePathError) as exc:
        err.print(f"[red]error[/red]: {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except ApiError as exc:
        err.print(f"[red]error[/red]: {exc.message} ({exc.code}, HTTP {exc.status})", highlight=False)
        raise typer.Exit(EXIT_NOT_FOUND if exc.status == 404 else EXIT_REFUSED) from None
    except RegistryUnreachableError as exc:
        err.print(f"[red]error[/red]: {exc}", highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except DigestMismatchError as exc:
        err.print(f"[red]error[/red]: digest mismatch: {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    except OSError as exc:
        err.print(f"[red]error[/red]: {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None


def _where(registry: str | None, reference: str) -> tuple[str, str]:
    """The registry and the repository reference: a host in the reference
    (``localhost:5000/acme/llm:v1``) is the registry unless ``--registry`` says otherwise."""
    host, rest = split_host(reference)
    if host is None:
        return registry_url(registry), reference
    return registry_url(registry or host), rest


def _annotations(values: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise PackError(f"--annotation {value!r}: expected KEY=VALUE")
        found[key.strip()] = text
    return found


def push(
    directory: Annotated[Path, typer.Argument(help="The model directory.", show_default=False)],
    reference: Annotated[str, typer.Argument(metavar="REPO:TAG", help="Where to push, e.g. acme/llama:v1.")],
    annotation: Annotated[
        list[str] | None, typer.Option("--annotation", "-a", help="Manifest annotation KEY=VALUE (repeatable).")
    ] = None,
    base: Annotated[
        str | None, typer.Option("--base", help="The model this one derives from, REPO@DIGEST (blobs mount from it).")
    ] = None,
    type_rule: Annotated[
        list[str] | None,
        typer.Option("--type", help="Classify files: KIND=GLOB, KIND in weight|config|doc|code|dataset (repeatable)."),
    ] = None,
    jobs: JobsOption = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", min=1024, hidden=True, help="Bytes per resumable upload chunk.")
    ] = None,
    quiet: QuietOption = False,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Push a model directory as a ModelPack artifact (one layer per file; unchanged files are skipped)."""
    url, reference = _where(registry, reference)
    with _failures():
        extra: dict[str, Any] = {"chunk_size": chunk_size} if chunk_size else {}
        with Registry(url, **extra) as client, _progress(quiet or as_json) as bars:
            result = client.push_model(
                directory, reference, annotations=_annotations(annotation or []), base=base,
                types=type_rule or [], jobs=jobs, progress=bars,
            )  # fmt: skip
    if as_json:
        payload = {
            "reference": result.reference, "digest": result.digest, "files": result.files,
            "total_bytes": result.total_bytes, "sent_bytes": result.sent_bytes, "skipped_bytes": result.skipped_bytes,
            "skipped_files": result.skipped_files, "mounted_files": result.mounted_files,
            "resumed_files": result.resumed_files, "seconds": round(result.seconds, 3), "config": result.config,
        }  # fmt: skip
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"pushed {result.reference} {result.digest} ({result.files} files, {human_bytes(result.total_bytes)})")
    typer.echo(result.summary())


def pull(
    reference: Annotated[str, typer.Argument(metavar="REPO:REF", help="What to pull: repo:tag or repo@digest.")],
    directory: Annotated[Path, typer.Argument(help="Where to write the files (created if missing).")],
    include: Annotated[
        list[str] | None, typer.Option("--include", "-i", help="Only files matching GLOB (repeatable).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", "-x", help="Skip files matching GLOB.")] = None,
    jobs: JobsOption = None,
    quiet: QuietOption = False,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pull a model artifact (ModelPack, KitOps ModelKit, Docker model, ORAS) into a directory."""
    url, reference = _where(registry, reference)
    with _failures(), Registry(url) as client, _progress(quiet or as_json) as bars:
        result = client.pull_model(
            reference, directory, include=include or [], exclude=exclude or [], jobs=jobs, progress=bars
        )
    if as_json:
        payload = {
            "reference": f"{result.repository}:{result.reference}" if not result.reference.startswith("sha256:")
            else f"{result.repository}@{result.reference}",
            "digest": result.digest, "destination": str(result.destination), "files": result.files,
            "downloaded_bytes": result.downloaded_bytes, "skipped_bytes": result.skipped_bytes,
            "skipped_files": result.skipped_files, "seconds": round(result.seconds, 3),
        }  # fmt: skip
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"pulled {reference} {result.digest} into {directory} ({len(result.files)} files)")
    typer.echo(result.summary())
