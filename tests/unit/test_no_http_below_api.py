"""Nothing below ``api/`` knows HTTP, checked from the code itself.

Services (and the domain and policy they use) raise typed errors carrying facts -- an upload's
offset, how long to wait -- and ``api/errors.py`` alone turns them into statuses and headers.
So no module under ``services/``, ``domain/`` or ``policy/`` may import an HTTP library, pass
``headers=`` to anything, pass ``status=`` to an error or an HTTP status code to anything, or
spell a header's name. (A ``status`` that is no HTTP status -- a model's extraction status --
is fine.)
A rule broken here names the file, the line and what it did.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from modelyard.api.errors import error_response
from modelyard.domain import errors
from modelyard.domain.errors import (
    ManifestReferenced,
    ManifestTooLarge,
    PasswordChecksBusy,
    RegistryError,
    TagImmutable,
    TooManyLogins,
    UploadOutOfOrder,
)

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "modelyard"
BELOW_API = ("services", "domain", "policy")
HTTP_MODULES = ("aiohttp", "http", "httpx", "multidict", "yarl", "starlette", "werkzeug", "requests")
ERRORS = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}


def _http_argument(call: ast.Call, keyword: ast.keyword) -> bool:
    """``headers=`` anywhere; ``status=``/``status_code=`` to an error, or with an HTTP status code."""
    if keyword.arg == "headers":
        return True
    if keyword.arg not in ("status", "status_code"):
        return False
    callee = ast.unparse(call.func).rpartition(".")[2]
    value = keyword.value
    http_code = isinstance(value, ast.Constant) and isinstance(value.value, int) and 100 <= value.value <= 599
    return callee.endswith("Error") or callee in ERRORS or http_code


HEADER_NAMES = {
    "Allow", "Content-Range", "Docker-Upload-UUID", "Location", "Range", "Retry-After", "WWW-Authenticate",
}  # fmt: skip


def http_knowledge(source: str, where: str) -> list[str]:
    """What in ``source`` knows HTTP: imports, ``status=``/``headers=`` arguments, header names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        found += [f"{where}:{node.lineno} imports {m}" for m in modules if m.split(".")[0] in HTTP_MODULES]
        if isinstance(node, ast.Call):
            found += [
                f"{where}:{node.lineno} passes {kw.arg}= to {ast.unparse(node.func)}"
                for kw in node.keywords
                if _http_argument(node, kw)
            ]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in HEADER_NAMES:
            found.append(f"{where}:{node.lineno} names the header {node.value!r}")
    return found


def test_no_http_below_the_api() -> None:
    broken = []
    for layer in BELOW_API:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            broken += http_knowledge(path.read_text(), str(path.relative_to(PACKAGE)))
    assert broken == []


def test_the_checker_sees_http() -> None:
    """Guard against a checker that passes because it recognises nothing."""
    sample = """
from aiohttp import web
import http.client
raise RegistryError(ErrorCode.TOOMANYREQUESTS, "wait", headers={"Retry-After": "1"})
raise RegistryError(ErrorCode.DENIED, "no", status=409)
raise TagImmutable(repository, tag, digest, "moved", status=code)
ModelFacts(status="indexed")
Job(status=409)
"""
    assert sorted(http_knowledge(sample, "sample.py")) == [
        "sample.py:2 imports aiohttp",
        "sample.py:3 imports http.client",
        "sample.py:4 names the header 'Retry-After'",
        "sample.py:4 passes headers= to RegistryError",
        "sample.py:5 passes status= to RegistryError",
        "sample.py:6 passes status= to TagImmutable",
        "sample.py:8 passes status= to Job",
    ]
    assert (PACKAGE / "services" / "uploads.py").is_file(), "the checker reads the real tree"


def test_a_domain_error_cannot_carry_a_status_or_headers() -> None:
    parameters = inspect.signature(RegistryError.__init__).parameters
    assert not {"status", "headers"} & set(parameters)


def test_api_errors_maps_each_typed_error_to_its_status_and_headers() -> None:
    """The one mapping, for each typed error (the API tests pin the same answers end to end)."""
    upload = "0b9a4d2e-0000-4000-8000-000000000000"
    cases: list[tuple[RegistryError, int, dict[str, str]]] = [
        (
            UploadOutOfOrder("acme/llm", upload, 10, "chunk starts at 5, upload is at 10"),
            416,
            {"Range": "0-9", "Location": f"/v2/acme/llm/blobs/uploads/{upload}", "Docker-Upload-UUID": upload},
        ),
        (UploadOutOfOrder("acme/llm", upload, 0, "x"), 416, {"Range": "0-0"}),
        (ManifestTooLarge(5_000_000, 4_194_304), 413, {}),
        (TagImmutable("acme/llm", "v1", "sha256:" + "a" * 64, "moved"), 409, {}),
        (ManifestReferenced("acme/llm", "sha256:" + "b" * 64, ["sha256:" + "c" * 64]), 409, {}),
        (TooManyLogins(37), 429, {"Retry-After": "37"}),
        (PasswordChecksBusy(), 429, {"Retry-After": "1"}),
    ]
    for error, status, headers in cases:
        response = error_response(error)
        assert response.status == status, error
        for name, value in headers.items():
            assert response.headers[name] == value, (error, name)
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        if not isinstance(error, UploadOutOfOrder):
            assert "Range" not in response.headers and "Location" not in response.headers, error
        if "Retry-After" not in headers:
            assert "Retry-After" not in response.headers, error
