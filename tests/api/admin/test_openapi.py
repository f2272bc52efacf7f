"""``/api/v1/openapi.json`` is valid OpenAPI 3.1 and describes exactly what the app routes;
``/api/v1/docs`` is a page a person can read."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from modelyard.domain.reference import COMPONENT_PATTERN, NAME_PATTERN
from modelyard.policy.authorizer import MEMBER_PATTERN, ROLES
from modelyard.services.identity import EMAIL, SERVICE_ACCOUNT_NAME, USER_NAME
from tests.api.admin.support import Client, call

METHODS = {"get", "put", "post", "patch", "delete"}
NOT_OPERATIONS = {"/api/v1/openapi.json", "/api/v1/docs"}


async def document(client: Client) -> dict[str, Any]:
    body: dict[str, Any] = await call(client, "GET", "/api/v1/openapi.json", 200)
    return body


def routed_operations(client: Client) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every admin route the app serves."""
    found = set()
    for route in client.server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if not path.startswith("/api/v1/") or path in NOT_OPERATIONS or route.method == "HEAD":
            continue
        # aiohttp's "{repository:.+}" is OpenAPI's "{repository}".
        found.add((route.method.lower(), re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)))
    return found


async def test_document_is_valid_openapi_3_1(client: Client) -> None:
    spec = await document(client)
    assert spec["openapi"].startswith("3.1")
    validate(spec, cls=OpenAPIV31SpecValidator)
    assert spec["info"]["title"] and spec["info"]["version"]


async def test_every_routed_operation_is_documented_and_nothing_else(client: Client) -> None:
    spec = await document(client)
    documented = {(method, path) for path, item in spec["paths"].items() for method in item if method in METHODS}
    routed = routed_operations(client)
    assert len(routed) >= 15
    assert routed == documented
    for expected in [
        ("get", "/api/v1/compartments"),
        ("post", "/api/v1/compartments"),
        ("get", "/api/v1/compartments/{compartment_id}"),
        ("patch", "/api/v1/compartments/{compartment_id}"),
        ("delete", "/api/v1/compartments/{compartment_id}"),
        ("get", "/api/v1/compartments/{compartment_id}/configuration"),
        ("put", "/api/v1/compartments/{compartment_id}/configuration"),
        ("get", "/api/v1/configuration"),
        ("put", "/api/v1/configuration"),
        ("get", "/api/v1/repositories"),
        ("post", "/api/v1/repositories"),
        ("get", "/api/v1/repositories/{repository}"),
        ("patch", "/api/v1/repositories/{repository}"),
        ("delete", "/api/v1/repositories/{repository}"),
        ("get", "/api/v1/repositories/{repository}/-/versions"),
    ]:
        assert expected in documented, expected


async def test_operations_are_complete(client: Client) -> None:
    spec = await document(client)
    ids = []
    for path, item in spec["paths"].items():
        params_in_path = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op["summary"], (method, path)
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == params_in_path, (method, path)
            success = [code for code in op["responses"] if code.startswith("2")]
            assert len(success) == 1, (method, path)
            if method in ("post", "put", "patch"):
                assert op["requestBody"]["required"] is True
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                assert schema["$ref"].startswith("#/components/schemas/")
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorBody"
    assert len(ids) == len(set(ids)), "operationIds must be unique"


async def test_schemas_describe_the_issue_fields(client: Client) -> None:
    schemas = (await document(client))["components"]["schemas"]
    repository = schemas["Repository"]["properties"]
    for field in [
        "id",
        "compartment_id",
        "display_name",
        "is_public",
        "is_immutable",
        "readme",
        "description",
        "labels",
        "image_count",
        "layer_count",
        "layers_size_in_bytes",
        "time_created",
        "time_last_pushed",
        "created_by",
        "lifecycle_state",
        "url",
        "immutable_tag_patterns",
        "mutable_tag_exclusions",
    ]:
        assert field in repository, field
    assert set(schemas["Readme"]["properties"]["format"]["enum"]) == {"TEXT_MARKDOWN", "TEXT_PLAIN"}
    config = schemas["CompartmentConfiguration"]["properties"]["is_repository_created_on_first_push"]
    assert {"type": "null"} in config["anyOf"]  # null = inherit
    version = schemas["Version"]["properties"]
    for field in ["tag", "digest", "media_type", "size", "annotations", "immutable"]:
        assert field in version, field


async def test_documented_grammars_are_the_enforced_ones(client: Client) -> None:
    """The patterns the document publishes are the very ones the server checks."""
    schemas = (await document(client))["components"]["schemas"]
    assert schemas["CompartmentCreate"]["properties"]["name"]["pattern"] == f"^{COMPONENT_PATTERN}$"
    assert schemas["RepositoryCreate"]["properties"]["compartment_id"]["pattern"] == f"^{COMPONENT_PATTERN}$"
    assert schemas["RepositoryCreate"]["properties"]["display_name"]["pattern"] == NAME_PATTERN
    assert schemas["UserCreate"]["properties"]["name"]["pattern"] == USER_NAME.pattern
    assert schemas["UserCreate"]["properties"]["email"]["pattern"] == EMAIL.pattern
    assert schemas["GroupCreate"]["properties"]["name"]["pattern"] == USER_NAME.pattern
    assert schemas["ServiceAccountCreate"]["properties"]["name"]["pattern"] == SERVICE_ACCOUNT_NAME.pattern
    binding = schemas["BindingModel"]["properties"]
    assert binding["role"]["enum"] == list(ROLES)
    assert binding["members"]["items"]["pattern"] == MEMBER_PATTERN.pattern
    labels = schemas["RepositoryCreate"]["properties"]["labels"]
    assert "patternProperties" not in labels  # it would let any other key through
    assert labels["propertyNames"]["pattern"] and labels["additionalProperties"]["type"] == "string"
    content = schemas["Readme"]["properties"]["content"]
    assert content["contentEncoding"] == "base64"


async def test_limit_and_page_are_documented_on_every_list(client: Client) -> None:
    spec = await document(client)
    for path in ["/api/v1/compartments", "/api/v1/repositories", "/api/v1/repositories/{repository}/-/versions"]:
        query = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
        assert query["page"]["schema"]["type"] == "string"
    filters = {p["name"] for p in spec["paths"]["/api/v1/repositories"]["get"]["parameters"]}
    assert {"compartment_id", "is_public", "name_prefix"} <= filters


async def test_docs_page_is_html_listing_every_operation(client: Client) -> None:
    response = await client.get("/api/v1/docs")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = await response.text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "/api/v1/openapi.json" in page
    spec = await document(client)
    for path, item in spec["paths"].items():
        assert f"<code>{path}</code>" in page, path
        for method in item:
            assert f"<code>{method.upper()}</code>" in page
