"""Immutability rules and the authorizer: pure decisions over records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelyard.domain.records import RepositoryRecord
from modelyard.policy.authorizer import (
    ANONYMOUS,
    ROLES,
    Binding,
    Permission,
    Principal,
    binding_problems,
    granted,
    token_actions,
)
from modelyard.policy.immutability import tag_is_immutable


def _repo(**policy: object) -> RepositoryRecord:
    return RepositoryRecord(1, "acme/llm", datetime.now(UTC), **policy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "tag", "immutable"),
    [
        ({}, "v1", False),
        ({"is_immutable": True}, "anything", True),
        ({"is_immutable": True, "mutable_tag_exclusions": ("latest",)}, "latest", False),
        ({"immutable_tag_patterns": ("v*",)}, "v1.2", True),
        ({"immutable_tag_patterns": ("v*",)}, "latest", False),
        ({"immutable_tag_patterns": ("v*",), "mutable_tag_exclusions": ("v*-rc*",)}, "v2-rc1", False),
        ({"immutable_tag_patterns": ("release-[0-9]*",)}, "release-7", True),
        ({"immutable_tag_patterns": ("V*",)}, "v1", False),  # case-sensitive, as tags are
    ],
)
def test_tag_immutability(policy: dict[str, object], tag: str, immutable: bool) -> None:
    assert tag_is_immutable(_repo(**policy), tag) is immutable


ALICE = Principal("user", "alice", "alice@acme.com", frozenset({"ml"}))
BOT = Principal("serviceAccount", "ci-bot@acme")


@pytest.mark.parametrize(
    ("principal", "member", "matches"),
    [
        (ALICE, "user:alice@acme.com", True),
        (ALICE, "user:alice", True),
        (ALICE, "user:bob@acme.com", False),
        (ALICE, "group:ml", True),
        (ALICE, "group:ops", False),
        (ALICE, "serviceAccount:alice", False),
        (BOT, "serviceAccount:ci-bot@acme", True),
        (BOT, "user:ci-bot@acme", False),
        (ANONYMOUS, "allUsers", True),
        (ANONYMOUS, "allAuthenticatedUsers", False),
        (BOT, "allAuthenticatedUsers", True),
    ],
)
def test_member_matching(principal: Principal, member: str, matches: bool) -> None:
    assert principal.matches(member) is matches


def test_roles_nest() -> None:
    assert ROLES["reader"] < ROLES["pusher"] < ROLES["writer"] < ROLES["repoAdmin"] < ROLES["admin"]
    assert Permission.MOVE_TAG not in ROLES["pusher"]
    assert Permission.IAM_WRITE not in ROLES["repoAdmin"]


def test_granted_is_the_union_of_matching_bindings() -> None:
    bindings = [Binding("reader", ("allUsers",)), Binding("writer", ("group:ml",)), Binding("admin", ("user:bob",))]
    assert granted(ALICE, bindings) == ROLES["writer"]
    assert granted(ANONYMOUS, bindings) == ROLES["reader"]
    assert granted(BOT, [Binding("nonsense", ("allUsers",))]) == frozenset()


def test_binding_problems_name_the_field() -> None:
    problems = binding_problems([Binding("owner", ("user:a",)), Binding("reader", ("everyone", "user:b"))])
    assert ("bindings.0.role", problems[0][1]) == problems[0] and "unknown role" in problems[0][1]
    assert problems[1][0] == "bindings.1.members" and "'everyone'" in problems[1][1]
    assert binding_problems([Binding("reader", ())])[0][0] == "bindings.0.members"


def test_token_actions_grant_only_what_is_allowed() -> None:
    writer = ROLES["writer"]
    assert token_actions(["pull", "push"], ROLES["reader"], exists=True) == ["pull"]
    assert token_actions(["pull", "push"], writer, exists=True) == ["pull", "push", "overwrite"]
    assert token_actions(["push"], ROLES["pusher"], exists=True) == ["push"]  # no overwrite
    assert token_actions(["*"], ROLES["repoAdmin"], exists=True) == ["pull", "push", "delete", "overwrite"]
    no_create = frozenset({Permission.PULL, Permission.PUSH})
    assert token_actions(["push"], no_create, exists=False) == []  # creating on push needs repository.create
    assert token_actions(["pull", "push"], frozenset(), exists=True) == []
