"""``gcp.config``: the provider settings a program reads (``gcp.config.project``, ``zone``,
``region``), from stack config ``gcp:project`` etc., else the environment variables the Google
provider reads (``GOOGLE_PROJECT``, ``GOOGLE_ZONE``, ``GOOGLE_REGION`` and their aliases). Read
when accessed, as ``pulumi_gcp`` does, so a program sees the stack it runs in."""

from __future__ import annotations

import os

import pulumi

_ENV = {
    "project": ("GOOGLE_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"),
    "zone": ("GOOGLE_ZONE", "GCLOUD_ZONE", "CLOUDSDK_COMPUTE_ZONE"),
    "region": ("GOOGLE_REGION", "GCLOUD_REGION", "CLOUDSDK_COMPUTE_REGION"),
}


def _get(name: str) -> str | None:
    value = pulumi.Config("gcp").get(name)
    if value:
        return value
    return next((os.environ[var] for var in _ENV[name] if os.environ.get(var)), None)


def __getattr__(name: str) -> str | None:
    if name in _ENV:
        return _get(name)
    raise AttributeError(f"gcp.config has no setting {name!r} here (modelyard reads project, zone and region)")
