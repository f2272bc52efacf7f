"""Which versions of a repository a retention policy keeps, and why: a pure function over records.

The *versions* of a repository are its manifests that stand on their own: not listed by an index
of the repository and not referring (``subject``) to a manifest of the repository. Those go
with what they belong to: an index's children and a version's referrers (model cards, eval
reports, signatures) are kept when it is kept, and deleted when everything they belong to is.

A version is kept when any rule keeps it (every reason is reported, so a plan explains itself):

- ``keep_last``: the N newest *tagged* versions by push time (ties broken by digest); an
  untagged manifest (pushed by digest, or left behind when its tags moved) is no version to
  count and is kept only by the other rules;
- ``keep_days``: pushed, or last pulled, within that many days;
- ``keep_tags``: a current tag matches one of the globs;
- aliases, always: a mutable tag (an *alias*, in the sense of ``domain/aliases.py``) points to
  it, or pointed to it within ``alias_window_days`` -- read from the tag's lifetimes, so a
  rollback target stays available for the window after the alias moved on.

Deletions come back parents first (an index before its children), the order a store must
delete them in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from modelyard.domain.lifecycle import RetentionPolicy, StoredVersion, TagSpan


@dataclass(frozen=True, slots=True)
class Decision:
    version: StoredVersion
    delete: bool
    reasons: tuple[str, ...]


def decide(
    policy: RetentionPolicy,
    versions: Sequence[StoredVersion],
    spans: Sequence[TagSpan],
    *,
    now: datetime,
    is_alias: Callable[[str], bool],
) -> list[Decision]:
    """Every manifest of the repository with its fate: deletions first (parents before
    children), then the kept ones, newest first."""
    by_digest = {v.digest: v for v in versions}
    parents: dict[str, list[str]] = {}
    for v in versions:
        for child in v.children:
            if child in by_digest and child != v.digest:
                parents.setdefault(child, []).append(v.digest)
        if v.subject is not None and v.subject in by_digest and v.subject != v.digest:
            parents.setdefault(v.digest, []).append(v.subject)
    reasons: dict[str, list[str]] = {v.digest: [] for v in versions}

    newest_first = sorted(versions, key=lambda v: (-v.created_at.timestamp(), v.digest))
    roots = [v for v in newest_first if v.digest not in parents and v.tags]
    if policy.keep_last:
        for v in roots[: policy.keep_last]:
            reasons[v.digest].append(f"among the last {policy.keep_last} versions")
    if policy.keep_days is not None:
        cutoff = now - timedelta(days=policy.keep_days)
        for v in versions:
            if v.created_at >= cutoff:
                reasons[v.digest].append(f"pushed within {policy.keep_days:g} days")
            elif v.last_pulled_at is not None and v.last_pulled_at >= cutoff:
                reasons[v.digest].append(f"pulled within {policy.keep_days:g} days")
    for v in versions:
        for tag in v.tags:
            pattern = next((p for p in policy.keep_tags if fnmatchcase(tag, p)), None)
            if pattern is not None:
                reasons[v.digest].append(f"tag {tag} matches {pattern}")
    window = now - timedelta(days=policy.alias_window_days)
    for span in spans:
        if span.digest not in reasons or not is_alias(span.tag):
            continue
        if span.end is None:
            reasons[span.digest].append(f"alias {span.tag} points to it")
        elif span.end >= window:
            reasons[span.digest].append(
                f"alias {span.tag} pointed to it until {span.end.isoformat(timespec='seconds')}"
            )

    kept = {d for d, why in reasons.items() if why}
    # What belongs to a kept version is kept with it.
    belongs: dict[str, list[str]] = {}
    for child, owners in parents.items():
        for owner in owners:
            belongs.setdefault(owner, []).append(child)
    queue = list(kept)
    while queue:
        owner = queue.pop()
        for child in belongs.get(owner, ()):
            if child not in kept:
                kept.add(child)
                reasons[child].append(f"belongs to kept {owner}")
                queue.append(child)

    depth: dict[str, int] = {}

    def depth_of(digest: str, seen: frozenset[str] = frozenset()) -> int:
        if digest not in depth:
            above = [p for p in parents.get(digest, ()) if p not in seen]
            depth[digest] = 1 + max((depth_of(p, seen | {digest}) for p in above), default=-1)
        return depth[digest]

    doomed = sorted((v for v in newest_first if v.digest not in kept), key=lambda v: depth_of(v.digest))
    return [Decision(v, True, ()) for v in doomed] + [
        Decision(v, False, tuple(dict.fromkeys(reasons[v.digest]))) for v in newest_first if v.digest in kept
    ]
