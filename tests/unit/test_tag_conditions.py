"""Binding conditions (``policy/authorizer.py``): which tags a principal may push and move, the
``tags`` claim a token carries for them, and reading it back (``services/tokens.py``)."""

from __future__ import annotations

from modelyard.policy.authorizer import (
    Binding,
    Permission,
    Principal,
    binding_problems,
    bindings_from,
    includes_role,
    limits_from_conditions,
    tag_allowed,
    tag_conditions,
    tag_limits,
)
from modelyard.services.tokens import TokenService

CI = Principal("serviceAccount", "ci")


def test_conditions_are_read_stored_and_validated() -> None:
    raw: list[dict[str, object]] = [
        {"role": "pusher", "members": ["serviceAccount:ci"], "condition": {"tags": ["build-*"]}},
        {"role": "reader", "members": ["allUsers"]},
    ]
    bindings = bindings_from(raw)
    assert bindings == [Binding("pusher", ("serviceAccount:ci",), ("build-*",)), Binding("reader", ("allUsers",))]
    assert [b.as_json() for b in bindings] == raw
    problems = binding_problems(
        [Binding("pusher", ("serviceAccount:ci",), ()), Binding("pusher", ("user:a",), ("a b",))]
    )
    assert [field for field, _ in problems] == ["bindings.0.condition.tags", "bindings.1.condition.tags"]


def test_tag_limits_union_conditional_globs_and_an_unconditional_binding_lifts_them() -> None:
    limited = [
        Binding("pusher", ("serviceAccount:ci",), ("build-*",)),
        Binding("writer", ("serviceAccount:ci",), ("staging",)),
        Binding("writer", ("user:someone-else",)),
    ]
    limits = tag_limits(CI, limited)
    assert limits == {Permission.PUSH: ("build-*", "staging"), Permission.MOVE_TAG: ("staging",)}
    assert tag_allowed(limits[Permission.PUSH], "build-7") and not tag_allowed(limits[Permission.PUSH], "prod")
    assert tag_limits(CI, [*limited, Binding("pusher", ("serviceAccount:ci",))])[Permission.PUSH] is None
    assert tag_limits(CI, [Binding("reader", ("allUsers",))]) == {}


def test_the_token_claim_round_trips() -> None:
    limits = {Permission.PUSH: ("build-*",), Permission.MOVE_TAG: None}
    claim = tag_conditions(["pull", "push", "overwrite"], limits)
    assert claim == {"push": ["build-*"]}  # overwrite is not limited: not named
    assert limits_from_conditions(["pull", "push", "overwrite"], claim) == limits
    tokens = TokenService(b"k" * 32, "modelyard", 60, 60)
    entry = {"type": "repository", "name": "acme/llm", "actions": ["pull", "push"], "tags": claim}
    claims = tokens.verify_access(tokens.issue_access("serviceAccount:ci", [entry]).token)
    assert claims.tag_limits("acme/llm") == {Permission.PUSH: ("build-*",)}
    assert claims.tag_limits("acme/other") is None


def test_stronger_roles_include_weaker_ones() -> None:
    assert includes_role("repoAdmin", "writer") and includes_role("admin", "repoAdmin")
    assert not includes_role("writer", "repoAdmin") and not includes_role("nobody", "reader")
