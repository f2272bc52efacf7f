"""GCP roles and members as modelyard's (see :mod:`modelyard.pulumi.gcp` for the table)."""

from __future__ import annotations

import re

from modelyard.pulumi.iam import member_names

ROLES = {
    "roles/storage.objectViewer": "reader",
    "roles/storage.legacyBucketReader": "reader",
    "roles/artifactregistry.reader": "reader",
    "roles/storage.objectCreator": "pusher",
    "roles/artifactregistry.createOnPushWriter": "pusher",
    "roles/storage.legacyBucketWriter": "writer",
    "roles/artifactregistry.writer": "writer",
    "roles/storage.objectAdmin": "repoAdmin",
    "roles/artifactregistry.repoAdmin": "repoAdmin",
    "roles/storage.admin": "admin",
    "roles/artifactregistry.admin": "admin",
}
NO_CONDITIONS = "IAM conditions have no modelyard equivalent; bind without one"
_BUCKET = re.compile(r"^(?:(?:[a-z]+)\.)?artifacts\.(?P<project>[^.]+)\.appspot\.com$")


def role(value: str) -> str | None:
    if value in ROLES:
        return None
    return f"role {value!r} has no modelyard equivalent; modelyard maps {', '.join(sorted(ROLES))}"


def members(value: list[str]) -> str | None:
    return member_names(value)


def member(value: str) -> str | None:
    return member_names([value])


def project_of_bucket(bucket: str) -> str:
    """``artifacts.P.appspot.com`` (or ``eu.artifacts.P.appspot.com``, a registry's id) or ``P``."""
    found = _BUCKET.match(bucket)
    return found.group("project") if found else bucket


def bucket_name(project: str, location: str | None) -> str:
    prefix = f"{location.lower()}." if location else ""
    return f"{prefix}artifacts.{project}.appspot.com"
