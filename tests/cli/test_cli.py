"""``modelyard compartment|repo|config`` against a real registry on a real socket.

Each test gets a fresh registry (``tests/cli/liveserver.py``); the commands run through typer's
``CliRunner`` on ``modelyard.cli.main.app`` (one test also runs the installed entry point as a
subprocess). Results are checked through the admin API, not only through the CLI's own output.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from tests.cli.liveserver import LiveServer, live_server
from tests.helpers import OCI_MANIFEST, image_manifest, sha256
from tests.interop.serverproc import free_port

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path / "registry") as running:
        yield running


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


class Cli:
    """``modelyard …`` with ``--registry`` pointing at the test's server."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.runner = CliRunner(env={"MODELYARD_URL": None, "COLUMNS": "200", "NO_COLOR": "1"})

    def __call__(self, *args: str, code: int = EXIT_OK, registry: str | None = None, stdin: str | None = None) -> Any:
        argv = [*args, "--registry", registry or self.server.url]
        result = self.runner.invoke(app, argv, input=stdin)
        assert result.exit_code == code, (
            f"modelyard {' '.join(argv)} exited {result.exit_code}, not {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\nexception: {result.exception!r}"
        )
        if code != EXIT_OK:
            # Refusals are one readable message on stderr, never a traceback.
            assert result.stderr.strip(), "a failing command must say why on stderr"
            assert "Traceback" not in result.output
            assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(server: LiveServer) -> Cli:
    return Cli(server)


def get(api: httpx.Client, path: str) -> Any:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def push(api: httpx.Client, repo: str, tag: str, layers: list[bytes], annotations: dict[str, str] | None = None) -> str:
    """A real /v2 push (blobs, then the manifest); returns the manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    for blob in [config, *layers]:
        started = api.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = api.put(started.headers["Location"], params={"digest": sha256(blob)}, content=blob)
        assert done.status_code == 201, done.text
    body = image_manifest(config, layers, annotations=annotations)
    response = api.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


# -- compartments ------------------------------------------------------------------------------------


def test_compartment_create_list_show_update_delete(cli: Cli, api: httpx.Client) -> None:
    result = cli("compartment", "create", "acme", "--description", "ACME models", "--no-create-on-first-push")
    assert "acme" in result.stdout
    assert get(api, "/api/v1/compartments/acme")["description"] == "ACME models"
    config = get(api, "/api/v1/compartments/acme/configuration")
    assert config["is_repository_created_on_first_push"] is False

    created = cli.json("compartment", "create", "beta")
    assert created == get(api, "/api/v1/compartments/beta")

    table = cli("compartment", "list").stdout
    lines = table.splitlines()
    assert "NAME" in lines[0] and "REPOSITORIES" in lines[0] and "DESCRIPTION" in lines[0]
    assert any("acme" in line and "ACME models" in line for line in lines)
    assert any("beta" in line for line in lines)
    listed = cli.json("compartment", "list")
    assert listed == get(api, "/api/v1/compartments")["items"]

    shown = cli("compartment", "show", "acme").stdout
    assert "ACME models" in shown and "False" in shown
    as_json = cli.json("compartment", "show", "acme")
    assert {k: v for k, v in as_json.items() if k != "configuration"} == get(api, "/api/v1/compartments/acme")
    assert as_json["configuration"] == get(api, "/api/v1/compartments/acme/configuration")

    updated = cli.json("compartment", "update", "acme", "--description", "new", "--create-on-first-push")
    assert updated["description"] == "new"
    assert updated["configuration"]["is_repository_created_on_first_push"] is True
    assert get(api, "/api/v1/compartments/acme")["description"] == "new"
    inherited = cli.json("compartment", "update", "acme", "--inherit-first-push")
    assert inherited["configuration"]["is_repository_created_on_first_push"] is None
    assert inherited["description"] == "new"
    assert "(inherited)" in cli("compartment", "show", "acme").stdout

    cli("compartment", "delete", "beta")
    assert api.get("/api/v1/compartments/beta").status_code == 404
    assert [c["name"] for c in cli.json("compartment", "list")] == ["acme"]


def test_compartment_refusals_and_exit_codes(cli: Cli, api: httpx.Client) -> None:
    cli("compartment", "create", "acme")
    duplicate = cli("compartment", "create", "acme", code=EXIT_REFUSED)
    assert "already exists" in duplicate.stderr and "409" in duplicate.stderr
    invalid = cli("compartment", "create", "Acme", code=EXIT_REFUSED)
    assert "name" in invalid.stderr

    cli("repo", "create", "acme/llm")
    not_empty = cli("compartment", "delete", "acme", code=EXIT_REFUSED)
    assert "acme" in not_empty.stderr
    assert api.get("/api/v1/compartments/acme").status_code == 200

    for args in (("show", "ghost"), ("update", "ghost", "--description", "x"), ("delete", "ghost")):
        missing = cli("compartment", *args, code=EXIT_NOT_FOUND)
        assert "ghost" in missing.stderr
    cli("compartment", "create", code=EXIT_USAGE)  # no name
    cli("compartment", "create", "x", "--colour", "blue", code=EXIT_USAGE)


# -- repositories ------------------------------------------------------------------------------------


def test_repo_create_immutable_private_with_readme(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = "# LLM\n\nThe *big* one. Ünïcödé ✓\n"
    readme.write_text(text, encoding="utf-8")
    cli("compartment", "create", "acme")
    result = cli("repo", "create", "acme/llm", "--immutable", "--private", "--readme", str(readme))
    assert "acme/llm" in result.stdout and f"{cli.server.host}/acme/llm" in result.stdout

    repo = get(api, "/api/v1/repositories/acme/llm")
    assert base64.b64decode(repo["readme"]["content"]).decode("utf-8") == text
    assert repo["readme"]["format"] == "TEXT_MARKDOWN"
    assert repo["is_immutable"] is True
    assert repo["is_public"] is False
    assert repo["compartment_id"] == "acme" and repo["display_name"] == "llm"
    assert cli("repo", "show", "acme/llm", "--readme").stdout.rstrip("\n") == text.rstrip("\n")


def test_repo_create_every_option_and_json(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    notes = tmp_path / "NOTES.txt"
    notes.write_text("plain words\n")
    cli("compartment", "create", "acme")
    created = cli.json(
        "repo",
        "create",
        "acme/team/vision",
        "--public",
        "--mutable",
        "--immutable-tag",
        "v*",
        "--immutable-tag",
        "release-*",
        "--mutable-tag",
        "latest",
        "--readme",
        str(notes),
        "--description",
        "object detection",
        "--label",
        "team=cv",
        "--label",
        "tier=gold",
    )
    assert created == get(api, "/api/v1/repositories/acme/team/vision")
    assert created["is_public"] is True
    assert created["is_immutable"] is False
    assert created["immutable_tag_patterns"] == ["v*", "release-*"]
    assert created["mutable_tag_exclusions"] == ["latest"]
    assert created["readme"]["format"] == "TEXT_PLAIN"
    assert base64.b64decode(created["readme"]["content"]) == b"plain words\n"
    assert created["description"] == "object detection"
    assert created["labels"] == {"team": "cv", "tier": "gold"}
    assert created["display_name"] == "team/vision"

    root = cli.json("repo", "create", "solo")
    assert root["compartment_id"] is None and root["name"] == "solo"


def test_repo_list_show_update_delete(cli: Cli, api: httpx.Client) -> None:
    cli("compartment", "create", "acme")
    cli("compartment", "create", "beta")
    cli("repo", "create", "acme/llm", "--public")
    cli("repo", "create", "acme/vision")
    cli("repo", "create", "beta/llm")

    table = cli("repo", "list").stdout.splitlines()
    for column in ("NAME", "VISIBILITY", "IMMUTABLE", "IMAGES", "SIZE", "LAST PUSHED"):
        assert column in table[0]
    assert any("acme/llm" in line and "public" in line for line in table)
    assert any("acme/vision" in line and "private" in line for line in table)
    assert cli.json("repo", "list") == get(api, "/api/v1/repositories")["items"]
    assert [r["name"] for r in cli.json("repo", "list", "--compartment", "acme")] == ["acme/llm", "acme/vision"]
    assert [r["name"] for r in cli.json("repo", "list", "--public")] == ["acme/llm"]
    assert [r["name"] for r in cli.json("repo", "list", "--private")] == ["acme/vision", "beta/llm"]
    assert [r["name"] for r in cli.json("repo", "list", "--prefix", "beta/")] == ["beta/llm"]

    shown = cli("repo", "show", "acme/llm").stdout
    assert "acme/llm" in shown and "public" in shown and "never" in shown
    assert cli.json("repo", "show", "acme/llm") == get(api, "/api/v1/repositories/acme/llm")

    updated = cli.json(
        "repo", "update", "acme/llm", "--private", "--immutable", "--mutable-tag", "latest", "--label", "a=b"
    )
    assert updated == get(api, "/api/v1/repositories/acme/llm")
    assert updated["is_public"] is False and updated["is_immutable"] is True
    assert updated["mutable_tag_exclusions"] == ["latest"]
    assert updated["labels"] == {"a": "b"}
    described = cli("repo", "update", "acme/llm", "--description", "words").stdout
    assert "words" in described and "all tags" in described
    assert get(api, "/api/v1/repositories/acme/llm")["is_immutable"] is True  # untouched

    cli("repo", "delete", "acme/vision", "--yes")
    assert api.get("/api/v1/repositories/acme/vision").status_code == 404
    cli("repo", "delete", "beta/llm", stdin="y\n")
    assert api.get("/api/v1/repositories/beta/llm").status_code == 404
    cli("compartment", "delete", "beta")


def test_repo_versions(cli: Cli, api: httpx.Client) -> None:
    cli("compartment", "create", "acme")
    cli("repo", "create", "acme/llm", "--immutable-tag", "v*", "--mutable-tag", "latest")
    v1 = push(api, "acme/llm", "v1", [b"weights one" * 100], annotations={"org.example.eval": "0.9"})
    push(api, "acme/llm", "latest", [b"weights one" * 100], annotations={"org.example.eval": "0.9"})
    dev = push(api, "acme/llm", "dev", [b"weights two" * 100])

    versions = cli.json("repo", "versions", "acme/llm")
    assert versions == get(api, "/api/v1/repositories/acme/llm/-/versions")["items"]
    by_tag = {v["tag"]: v for v in versions}
    assert sorted(by_tag) == ["dev", "latest", "v1"]
    assert by_tag["v1"]["digest"] == v1 and by_tag["latest"]["digest"] == v1 and by_tag["dev"]["digest"] == dev
    assert by_tag["v1"]["immutable"] is True and by_tag["latest"]["immutable"] is False
    assert by_tag["v1"]["annotations"] == {"org.example.eval": "0.9"}

    table = cli("repo", "versions", "acme/llm").stdout.splitlines()
    columns = ("TAG", "DIGEST", "FORMAT", "ARCH", "PARAMS", "LICENSE", "SIZE", "FILES", "IMMUTABLE", "TAGGED")
    assert all(column in table[0] for column in columns)
    v1_line = next(line for line in table if line.split()[0] == "v1")
    assert v1[:19] in v1_line and "yes" in v1_line
    dev_line = next(line for line in table if line.split()[0] == "dev")
    assert "yes" not in dev_line

    shown = cli("repo", "show", "acme/llm").stdout
    assert "images" in shown and "never" not in shown
    cli("repo", "versions", "acme/ghost", code=EXIT_NOT_FOUND)


def test_repo_refusals_and_exit_codes(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    cli("compartment", "create", "acme")
    cli("repo", "create", "acme/llm")
    duplicate = cli("repo", "create", "acme/llm", code=EXIT_REFUSED)
    assert "already exists" in duplicate.stderr
    upper = cli("repo", "create", "acme/LLM", code=EXIT_REFUSED)
    assert "display_name" in upper.stderr and "acme/llm" not in upper.stdout
    cli("repo", "create", "ghost/llm", code=EXIT_NOT_FOUND)
    for args in (("show", "acme/ghost"), ("update", "acme/ghost", "--public"), ("delete", "acme/ghost", "--yes")):
        missing = cli("repo", *args, code=EXIT_NOT_FOUND)
        assert "acme/ghost" in missing.stderr

    cli("repo", "update", "acme/llm", code=EXIT_USAGE)  # nothing to change
    cli("compartment", "update", "acme", code=EXIT_USAGE)  # nothing to change either
    bare = cli("repo", "show", "acme/llm", registry=cli.server.url.split("://", 1)[1])  # host:port, as docker takes it
    assert "acme/llm" in bare.stdout
    cli("repo", "create", "acme/x", "--label", "novalue", code=EXIT_USAGE)
    cli("repo", "create", "acme/x", "--readme", str(tmp_path / "missing.md"), code=EXIT_USAGE)
    readme = tmp_path / "r.md"
    readme.write_text("x")
    cli("repo", "create", "acme/x", "--readme", str(readme), "--readme-format", "HTML", code=EXIT_USAGE)
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    cli("repo", "create", "acme/x", "--readme", str(binary), code=EXIT_USAGE)
    huge = tmp_path / "HUGE.md"
    huge.write_text("x" * (1024 * 1024 + 1))
    too_big = cli("repo", "create", "acme/x", "--readme", str(huge), code=EXIT_USAGE)
    assert "1048576" in too_big.stderr
    cli("repo", "frobnicate", code=EXIT_USAGE)
    assert api.get("/api/v1/repositories/acme/x").status_code == 404

    # Declining the confirmation deletes nothing.
    cli("repo", "delete", "acme/llm", stdin="n\n", code=EXIT_REFUSED)
    assert api.get("/api/v1/repositories/acme/llm").status_code == 200


@pytest.mark.parametrize(
    "args",
    [
        ("repo", "create", "acme/x", "--label", "Bad Key=v"),
        ("repo", "create", "acme/x", "--immutable-tag", "v 1"),
        ("repo", "update", "acme/llm", "--mutable-tag", "a/b"),
        ("compartment", "create", "a" * 300),
    ],
)
def test_values_the_models_reject_are_an_error_message_not_a_traceback(
    cli: Cli, api: httpx.Client, args: tuple[str, ...]
) -> None:
    cli("compartment", "create", "acme")
    cli("repo", "create", "acme/llm")
    result = cli(*args, code=EXIT_USAGE)
    assert "error" in result.stderr
    assert api.get("/api/v1/repositories/acme/x").status_code == 404
    assert get(api, "/api/v1/repositories/acme/llm")["mutable_tag_exclusions"] == []


# -- registry configuration ----------------------------------------------------------------------------


def test_config_show_and_set(cli: Cli, api: httpx.Client) -> None:
    shown = cli("config", "show").stdout
    assert "create repository on first push" in shown and "True" in shown
    assert cli.json("config", "show") == get(api, "/api/v1/configuration")

    result = cli.json("config", "set", "--no-create-on-first-push")
    expected = {"is_repository_created_on_first_push": False, "is_compartment_created_on_first_push": True}
    assert result == expected
    assert get(api, "/api/v1/configuration") == expected

    cli("config", "set", "--no-create-compartment-on-first-push")
    assert get(api, "/api/v1/configuration") == {
        "is_repository_created_on_first_push": False,  # kept
        "is_compartment_created_on_first_push": False,
    }
    text = cli("config", "set", "--create-on-first-push", "--create-compartment-on-first-push").stdout
    assert "True" in text
    assert cli.json("config", "show") == {
        "is_repository_created_on_first_push": True,
        "is_compartment_created_on_first_push": True,
    }
    cli("config", "set", "--maybe", code=EXIT_USAGE)


def test_config_set_governs_pushes(cli: Cli, api: httpx.Client) -> None:
    cli("config", "set", "--no-create-on-first-push")
    refused = api.post("/v2/solo/blobs/uploads/")
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    cli("repo", "create", "solo")
    push(api, "solo", "v1", [b"layer"])
    assert [v["tag"] for v in cli.json("repo", "versions", "solo")] == ["v1"]


# -- reaching the registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("compartment", "list"),
        ("compartment", "create", "acme"),
        ("repo", "list"),
        ("repo", "show", "acme/llm"),
        ("repo", "versions", "acme/llm"),
        ("config", "show"),
        ("config", "set", "--create-on-first-push"),
    ],
)
def test_unreachable_registry_is_exit_3(cli: Cli, args: tuple[str, ...]) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    result = cli(*args, registry=nobody, code=EXIT_UNREACHABLE)
    assert nobody in result.stderr


def test_entry_point_and_modelyard_url(server: LiveServer, api: httpx.Client) -> None:
    """The installed command, configured by ``MODELYARD_URL`` instead of ``--registry``."""
    env = {**os.environ, "MODELYARD_URL": server.url, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "modelyard"]
    made = subprocess.run(
        [*command, "compartment", "create", "acme", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert made.returncode == EXIT_OK, made.stderr
    assert json.loads(made.stdout) == get(api, "/api/v1/compartments/acme")
    missing = subprocess.run(
        [*command, "repo", "show", "acme/ghost"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert missing.returncode == EXIT_NOT_FOUND
    assert "acme/ghost" in missing.stderr
