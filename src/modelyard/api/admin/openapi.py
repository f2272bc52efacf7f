"""The OpenAPI 3.1 document and a plain HTML reference page, both built from the operation table."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from modelyard import __version__
from modelyard.api.admin.framework import Operation
from modelyard.schemas.admin import ErrorBody

_ERROR_TEXT = {
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "The body is not sent as application/json",
    422: "Validation failed",
    429: "Too many failed logins, or too many password checks at once (Basic callers); see Retry-After",
}


def _drop_null_defaults(node: Any) -> None:
    """Remove ``"default": null`` from schemas that do not admit null.

    A field that may be left out but is never null when sent (its schema replaced by a non-null
    one) keeps pydantic's ``default: None``, which is not a value of its own schema: the document
    would be invalid OpenAPI. Absence already says "not given"."""
    if isinstance(node, dict):
        kind = node.get("type")
        admits_null = kind is None or kind == "null" or (isinstance(kind, list) and "null" in kind)
        if "default" in node and node["default"] is None and not admits_null:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


def build_openapi(operations: Sequence[Operation]) -> dict[str, Any]:
    models: dict[tuple[type[pydantic.BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for op in operations:
        if op.body is not None:
            models[(op.body, "validation")] = None
        if op.response is not None:
            models[(op.response, "serialization")] = None
    refs, schemas = models_json_schema(list(models), ref_template="#/components/schemas/{model}")
    _drop_null_defaults(schemas)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
             "description": "May contain '/'." if name == "repository" else ""}
            for name in op.path_params
        ]  # fmt: skip
        parameters += [
            {"name": q.name, "in": "query", "required": q.required, "schema": q.schema, "description": q.description}
            for q in op.query
        ]
        responses: dict[str, Any] = {}
        if op.response is not None:
            responses[str(op.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
            }
        elif op.raw_response is not None:
            responses[str(op.status)] = {
                "description": "The file (206 with the range a Range header asks for, 416 for one past its end)",
                "content": {op.raw_response: {"schema": {"type": "string", "format": "binary"}}},
            }
        else:
            responses[str(op.status)] = {"description": "Done"}
        for status in (*op.errors, *((415,) if op.body is not None else ()), 401, 403, 429):
            responses[str(status)] = {
                "description": _ERROR_TEXT[status],
                "content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}},
            }
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelyard admin API",
            "version": __version__,
            "description": "Compartments, repositories and configuration of a modelyard registry. "
            'Errors use the OCI error body: {"errors": [{"code", "message", "detail"}]}.',
        },
        "paths": paths,
        "security": [{"bearer": []}, {"basic": []}, {}],
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An access token or an API key."},
                "basic": {"type": "http", "scheme": "basic", "description": "User name and password or API key."},
            },
        },
    }


def docs_page(operations: Sequence[Operation]) -> str:
    """A dependency-free reference page (no CDN: registries often run air-gapped)."""
    rows = []
    for op in operations:
        body = op.body.__name__ if op.body else ""
        response = op.response.__name__ if op.response else f"{op.status}"
        query = ", ".join(q.name for q in op.query)
        rows.append(
            f"<tr><td><code>{op.method}</code></td><td><code>{html.escape(op.openapi_path)}</code></td>"
            f"<td>{html.escape(op.summary)}</td><td>{html.escape(query)}</td>"
            f"<td>{html.escape(body)}</td><td>{html.escape(response)}</td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>modelyard admin API</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}</style></head><body>"
        "<h1>modelyard admin API</h1><p>Machine-readable description: "
        "<a href='/api/v1/openapi.json'>/api/v1/openapi.json</a> (OpenAPI 3.1).</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>query</th><th>body</th><th>response</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
