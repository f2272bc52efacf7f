"""Property-based tests of the admin API with schemathesis, against the real app on a real socket.

The schema is the one the server publishes (``/api/v1/openapi.json``). For every operation,
schemathesis generates requests from it -- valid ones (``positive``) and ones that break it
(``negative``) -- sends them, and checks each response: never a 5xx, only documented status codes
and content types, bodies that match the documented schemas, invalid requests refused and valid
ones not. Examples are bounded so the module stays well under a minute.

(schemathesis' lazy ``from_fixture`` loader relies on a pytest internal that pytest 9 removed,
so the Python API drives hypothesis directly: one test per operation and mode.)
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from modelyard.api.admin import OPERATIONS
from modelyard.domain.reference import NAME_MAX_LENGTH
from tests.cli.liveserver import LiveServer, live_server

MAX_EXAMPLES = 12
# Valid requests of these must name things that exist, which no schema can say: a group's
# members are existing users, a webhook's event types existing types (and its scope an existing
# compartment or repository), refused with 422 otherwise. Every other check still applies.
NAMES_EXISTING = {"setGroupMembers", "createWebhook"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path_factory.mktemp("schemathesis") / "registry") as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(registry: LiveServer) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{registry.url}/api/v1/openapi.json")
    loaded.config.update(base_url=registry.url)
    return loaded


def test_every_operation_is_exercised(api_schema: schemathesis.BaseSchema) -> None:
    published = {result.ok().definition.raw["operationId"] for result in api_schema.get_all_operations()}
    assert published == {op.operation_id for op in OPERATIONS}


def _runs() -> list[tuple[str, GenerationMode]]:
    """Every operation with valid requests; with invalid ones too where its schema admits any.

    An operation whose only inputs are string path parameters (or none) has no invalid request.
    """
    runs = []
    for op in OPERATIONS:
        runs.append((op.operation_id, GenerationMode.POSITIVE))
        if op.body is not None or op.query:
            runs.append((op.operation_id, GenerationMode.NEGATIVE))
    return runs


def _readable_readme(case: schemathesis.Case, data: st.DataObject) -> None:
    """A valid README is base64 of UTF-8 text: the schema says so (``contentEncoding``,
    ``contentMediaType``) but JSON Schema cannot make a generator respect it, so a valid
    request gets base64 of generated text in place of base64 of arbitrary bytes."""
    readme = case.body.get("readme") if isinstance(case.body, dict) else None
    if isinstance(readme, dict) and "content" in readme:
        readme["content"] = base64.b64encode(data.draw(st.text(max_size=300)).encode()).decode()


def _within_name_limit(case: schemathesis.Case) -> bool:
    """A repository's full name (compartment/display_name) is at most 255 characters: a sum of
    two fields' lengths, which no schema can bound."""
    body = case.body if isinstance(case.body, dict) else {}
    compartment, display_name = body.get("compartment_id"), body.get("display_name")
    if isinstance(compartment, str) and isinstance(display_name, str):
        return len(compartment) + 1 + len(display_name) <= NAME_MAX_LENGTH
    return True


@pytest.mark.parametrize(
    ("operation_id", "mode"), _runs(), ids=lambda v: v.value if isinstance(v, GenerationMode) else v
)
def test_operation_conforms_to_the_schema(
    api_schema: schemathesis.BaseSchema, registry: LiveServer, operation_id: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_id(operation_id)  # type: ignore[attr-defined]
    excluded = [positive_data_acceptance] if operation_id in NAMES_EXISTING else []

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            assume(_within_name_limit(case))
            _readable_readme(case, data)
        case.call_and_validate(base_url=registry.url, checks=CHECKS, excluded_checks=excluded)

    run()
