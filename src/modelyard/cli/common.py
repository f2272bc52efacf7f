"""What every admin command shares: the client from ``--registry``/``MODELYARD_URL``, output as
Rich tables or ``--json``, and exit codes scripts can trust.

Which registry: ``--registry``, else ``MODELYARD_URL``, else the registry you logged in to last
(as ``docker login`` and ``gcloud`` users expect), else ``http://127.0.0.1:5000``.

Exit codes: 0 done; 1 the registry refused (conflict, validation, permission); 2 bad usage;
3 the registry could not be reached; 4 not found.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from modelyard.client import AdminClient, ApiError, RegistryUnreachableError
from modelyard.client.auth import default_auth, last_login

M = TypeVar("M", bound=pydantic.BaseModel)

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4

DEFAULT_URL = "http://127.0.0.1:5000"

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="MODELYARD_URL",
        help=f"Registry base URL [default: the one you logged in to last, else {DEFAULT_URL}].",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

out = Console(soft_wrap=True)
err = Console(stderr=True)


def registry_url(given: str | None) -> str:
    """The registry a command talks to: the one given, the last one logged in to, or the default."""
    url = given or last_login() or DEFAULT_URL
    if "://" not in url:
        url = "http://" + url  # as docker does for a bare host:port
    return url.rstrip("/")


@contextmanager
def admin_client(given: str | None) -> Iterator[AdminClient]:
    """A client whose failures end the command with the documented exit code and one message."""
    url = registry_url(given)
    client = AdminClient(url, auth=default_auth(url))
    try:
        yield client
    except ApiError as exc:
        err.print(f"[red]error[/red]: {escape(exc.message)} ({exc.code}, HTTP {exc.status})", highlight=False)
        if exc.code == "VALIDATION_FAILED" and isinstance(exc.detail, list):
            for problem in exc.detail:
                err.print(escape(f"  {problem.get('field')}: {problem.get('message')}"), highlight=False)
        raise typer.Exit(EXIT_NOT_FOUND if exc.status == 404 else EXIT_REFUSED) from None
    except RegistryUnreachableError as exc:
        err.print(f"[red]error[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    finally:
        client.close()


def usage_error(message: str) -> typer.Exit:
    err.print(f"[red]error[/red]: {escape(message)}", highlight=False)
    return typer.Exit(EXIT_USAGE)


def validated(model: type[M], values: dict[str, Any]) -> M:
    """Build a request model from the command's options; a value it rejects is a usage error
    naming the field (the same rules the server applies, checked before sending)."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in problem['loc']) or 'value'}: {problem['msg']}"
            for problem in exc.errors(include_url=False)
        ]
        raise usage_error("invalid value: " + "; ".join(problems)) from None


def emit_json(value: pydantic.BaseModel | Sequence[pydantic.BaseModel]) -> None:
    if isinstance(value, pydantic.BaseModel):
        payload: Any = value.model_dump(mode="json")
    else:
        payload = [item.model_dump(mode="json") for item in value]
    typer.echo(json.dumps(payload, indent=2))


def emit_table(rows: Sequence[pydantic.BaseModel], columns: Sequence[tuple[str, Callable[[Any], object]]]) -> None:
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for title, _ in columns:
        table.add_column(title)
    for row in rows:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    out.print(table)


def emit_fields(model: pydantic.BaseModel, fields: Sequence[tuple[str, object]]) -> None:
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        shown = "" if value is None else value
        typer.echo(f"{name.ljust(width)}  {shown}")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
