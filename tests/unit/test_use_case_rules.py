"""Rules that live below the API: repository naming (services), role checks (policy) and the
validation error they raise -- decided without HTTP, so they are tested without it."""

from __future__ import annotations

import pytest

from modelyard.domain.errors import ErrorCode, ValidationFailed
from modelyard.policy.authorizer import ANONYMOUS, Binding, Principal, bindings_from, holds_role, role_members
from modelyard.services.repositories import full_name


@pytest.mark.parametrize(
    ("compartment", "display_name", "name"),
    [(None, "llm", "llm"), ("acme", "llm", "acme/llm"), ("acme", "team/llm", "acme/team/llm")],
)
def test_full_name(compartment: str | None, display_name: str, name: str) -> None:
    assert full_name(compartment, display_name) == name


@pytest.mark.parametrize(
    ("compartment", "display_name", "field", "message"),
    [
        ("acme", "LLM", "display_name", "must be lowercase, as OCI clients require: use 'llm'"),
        (None, "team/llm", "display_name", "a root-compartment repository is one path component; set compartment_id"),
        ("acme/team", "llm", "compartment_id", "compartment name 'acme/team' must be a single path component (no '/')"),
        ("acme", "llm..x", "display_name", None),
    ],
)
def test_full_name_refusals_name_the_field(
    compartment: str | None, display_name: str, field: str, message: str | None
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        full_name(compartment, display_name)
    error = caught.value
    assert error.code is ErrorCode.VALIDATION_FAILED
    assert [f for f, _ in error.problems] == [field]
    assert error.detail == [{"field": field, "message": error.problems[0][1]}]
    assert error.message == f"invalid request: {field}: {error.problems[0][1]}"
    if message is not None:
        assert error.problems[0][1] == message


def test_validation_failed_summarises_at_most_five_fields() -> None:
    problems = [(f"f{i}", "bad") for i in range(7)]
    error = ValidationFailed(problems)
    assert error.message == "invalid request: " + "; ".join(f"f{i}: bad" for i in range(5))
    assert len(error.detail) == 7


def test_bindings_from_stored_policy() -> None:
    raw: list[dict[str, object]] = [
        {"role": "admin", "members": ["user:alice", "group:ops"]},
        {"role": "reader"},
        {"role": "writer", "members": "user:bob"},
    ]
    assert bindings_from(raw) == [
        Binding("admin", ("user:alice", "group:ops")),
        Binding("reader", ()),
        Binding("writer", ()),
    ]


ADMINS = [Binding("admin", ("user:alice@acme.com", "group:ops")), Binding("reader", ("allUsers",))]


@pytest.mark.parametrize(
    ("principal", "admin"),
    [
        (Principal("user", "alice", "alice@acme.com"), True),  # by email
        (Principal("user", "carol", None, frozenset({"ops"})), True),  # by group
        (Principal("user", "bob", "bob@acme.com"), False),
        (Principal("serviceAccount", "ops"), False),  # a service account is no member of group ops
        (ANONYMOUS, False),
    ],
)
def test_holds_role_matches_like_the_authorizer(principal: Principal, admin: bool) -> None:
    assert holds_role(principal, ADMINS, "admin") is admin
    assert holds_role(principal, ADMINS, "reader")  # allUsers


def test_everyone_holds_a_role_bound_to_all_authenticated_users() -> None:
    bindings = [Binding("admin", ("allAuthenticatedUsers",))]
    assert holds_role(Principal("user", "bob"), bindings, "admin")
    assert not holds_role(ANONYMOUS, bindings, "admin")


def test_role_members_in_binding_order() -> None:
    bindings = [*ADMINS, Binding("admin", ("serviceAccount:ci",))]
    assert role_members(bindings, "admin") == ["user:alice@acme.com", "group:ops", "serviceAccount:ci"]
    assert role_members(bindings, "writer") == []
