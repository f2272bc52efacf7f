"""The layers import one way, checked from the code itself rather than by goodwill.

    api, web -> services -> (storage, metadata, policy) -> domain
    client, cli, sdk, pulumi -> schemas -> domain          (clients load no server code)

``app.py``, ``server.py``, ``bootstrap.py`` and the CLI's offline commands are the composition
root: they may import anything. A rule broken here names the module and the import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "modelyard"

# layer -> layers (top-level packages under modelyard) it must not import
FORBIDDEN: dict[str, set[str]] = {
    "domain": {"api", "services", "metadata", "storage", "policy", "schemas", "client", "cli", "app", "server"},
    "schemas": {"api", "services", "metadata", "storage", "policy", "client", "cli", "app", "server"},
    "policy": {"api", "services", "metadata", "storage", "client", "cli", "app", "server"},
    "storage": {"api", "services", "metadata", "policy", "client", "cli", "app", "server"},
    "metadata": {"api", "services", "storage", "policy", "client", "cli", "app", "server"},
    "services": {"api", "client", "cli", "app", "server"},
    "api": {"metadata", "storage", "client", "cli", "app", "server"},
    # The web UI is a peer of api/: it calls the same services and the admin API's handlers and checks.
    "web": {"metadata", "storage", "client", "cli", "app", "server", "bootstrap"},
    "client": {"api", "services", "metadata", "storage", "policy", "cli", "app", "server", "bootstrap"},
    "sdk": {"api", "services", "metadata", "storage", "policy", "cli", "app", "server", "bootstrap"},
    # The Pulumi provider is a client of /api/v1 like the CLI.
    "pulumi": {"api", "services", "metadata", "storage", "policy", "cli", "app", "server", "bootstrap"},
}
# Nothing but the composition root (app.py) imports the web UI.
for _layer, _forbidden in FORBIDDEN.items():
    if _layer != "web":
        _forbidden.add("web")
# The CLI's admin commands are clients; its offline commands (serve, gc, reset-admin) build the server.
CLI_CLIENT_MODULES = {
    "common",
    "compartments",
    "identity",
    "modelinfo",
    "models",
    "proxies",
    "replication",
    "repos",
    "webhooks",
}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name.startswith("modelyard.")]


def layer_of(module: str) -> str:
    return module.split(".")[1]


def violations() -> list[str]:
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        layer = relative.parts[0].removesuffix(".py")
        forbidden = FORBIDDEN.get(layer, set())
        if layer == "cli" and relative.stem in CLI_CLIENT_MODULES:
            forbidden = FORBIDDEN["client"] - {"cli"}
        for module in imports_of(path):
            if layer_of(module) in forbidden:
                broken.append(f"{relative} imports {module}")
    return broken


def test_layers_import_one_way() -> None:
    assert violations() == []


def test_the_checker_sees_a_broken_rule(tmp_path: Path) -> None:
    """Guard against a checker that passes because it reads nothing."""
    assert imports_of(PACKAGE / "client" / "admin.py"), "the client imports something of modelyard"
    assert "modelyard.schemas" in imports_of(PACKAGE / "client" / "admin.py")
    sample = tmp_path / "sample.py"
    sample.write_text("from modelyard.metadata.sql import SqlMetadataStore\nimport modelyard.api.auth\n")
    assert [layer_of(m) for m in imports_of(sample)] == ["metadata", "api"]


CLIENT_MODULES = [
    "modelyard.client",
    "modelyard.schemas.admin",
    "modelyard.sdk",
    "modelyard.pulumi",
    "modelyard.pulumi.oci",
    "modelyard.pulumi.gcp",
]


@pytest.mark.parametrize("module", CLIENT_MODULES)
def test_importing_a_client_loads_no_server_code(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "server = ('modelyard.api', 'modelyard.services', 'modelyard.metadata', 'modelyard.storage',"
        " 'aiohttp.web', 'argon2', 'jwt', 'sqlalchemy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(server)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


@pytest.mark.parametrize("module", ["modelyard", "modelyard.client", "modelyard.sdk", "modelyard.cli.main"])
def test_pulumi_is_loaded_only_by_programs_that_import_it(module: str) -> None:
    """The Pulumi SDK (grpc, protobuf, dill) is a dependency, but only ``modelyard.pulumi`` loads it."""
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m == 'pulumi' or m.startswith(('pulumi.', 'grpc'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_pulumi_provider_is_held_to_the_client_rule() -> None:
    assert FORBIDDEN["pulumi"] >= FORBIDDEN["client"] - {"cli"}
    assert imports_of(PACKAGE / "pulumi" / "provider.py"), "the provider imports modelyard's client"
