"""policy/retention.py: what a policy keeps, with indexes, referrers and untagged manifests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard.domain.lifecycle import RetentionPolicy, StoredVersion, TagSpan
from modelyard.policy.retention import decide

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def version(n: int, *, days_old: float, tags: tuple[str, ...] = (), children: tuple[str, ...] = (),
            subject: str | None = None) -> StoredVersion:  # fmt: skip
    return StoredVersion(n, f"sha256:{n:064x}", 100, NOW - timedelta(days=days_old), None, subject, children, (), tags)


def fates(decisions: list) -> dict[int, bool]:  # type: ignore[type-arg]
    return {d.version.id: d.delete for d in decisions}


def immutable(tag: str) -> bool:
    return tag.startswith("v")


def test_an_index_takes_its_children_and_a_version_its_referrers() -> None:
    child_a, child_b = version(1, days_old=50), version(2, days_old=50)
    old_index = version(3, days_old=40, tags=("v1",), children=(child_a.digest, child_b.digest))
    new_image = version(4, days_old=1, tags=("v2",))
    card_old = version(5, days_old=39, subject=old_index.digest)
    card_new = version(6, days_old=0.5, subject=new_image.digest)
    loose = version(7, days_old=0.1)  # untagged and newest: not a version keep_last counts
    decisions = decide(
        RetentionPolicy(keep_last=1, alias_window_days=0),
        [child_a, child_b, old_index, new_image, card_old, card_new, loose],
        [],
        now=NOW,
        is_alias=lambda tag: not immutable(tag),
    )
    assert fates(decisions) == {1: True, 2: True, 3: True, 4: False, 5: True, 6: False, 7: True}
    order = [d.version.id for d in decisions if d.delete]
    assert order.index(3) < order.index(1) and order.index(3) < order.index(2)  # the index goes first
    kept = {d.version.id: d.reasons for d in decisions if not d.delete}
    assert kept[6] == (f"belongs to kept {new_image.digest}",)


def test_a_kept_index_keeps_its_children_and_an_alias_window_keeps_the_past_target() -> None:
    child = version(1, days_old=90)
    index = version(2, days_old=90, tags=("prod",), children=(child.digest,))
    old = version(3, days_old=80, tags=("v3",))
    spans = [TagSpan("prod", index.digest, NOW - timedelta(days=90), None),
             TagSpan("staging", old.digest, NOW - timedelta(days=80), NOW - timedelta(days=3)),
             TagSpan("v9", old.digest, NOW - timedelta(days=80), NOW - timedelta(days=1))]  # fmt: skip
    decisions = decide(
        RetentionPolicy(keep_days=30, alias_window_days=7), [child, index, old], spans, now=NOW,
        is_alias=lambda tag: not immutable(tag),
    )  # fmt: skip
    assert fates(decisions) == {1: False, 2: False, 3: False}
    reasons = {d.version.id: d.reasons for d in decisions}
    assert reasons[2] == ("alias prod points to it",)
    assert reasons[3][0].startswith("alias staging pointed to it until")  # v9 is no alias: not a reason
    decisions = decide(
        RetentionPolicy(keep_days=30, alias_window_days=2), [child, index, old], spans, now=NOW,
        is_alias=lambda tag: not immutable(tag),
    )  # fmt: skip
    assert fates(decisions)[3] is True
