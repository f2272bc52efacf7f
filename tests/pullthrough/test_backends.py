"""The cache on PostgreSQL + S3 (the scaled-out deployment): cold pulls made once and streamed
while stored (an S3 upload's parts cannot be read while written; the spool file is what the
clients tail), a tag revalidated after its TTL, the cache served in an outage."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.storage.s3 import S3Options
from tests.backends import s3_settings
from tests.pullthrough.test_cache import (
    test_an_upstream_outage_serves_what_is_cached as test_outage_on_postgresql_and_s3,
)
from tests.pullthrough.test_cache import (
    test_first_client_streams_before_the_upstream_finished as test_streaming_on_postgresql_and_s3,
)
from tests.pullthrough.test_cache import (
    test_ten_concurrent_cold_pulls_make_one_upstream_fetch as test_cold_pulls_on_postgresql_and_s3,
)

pytestmark = pytest.mark.postgres

__all__ = [
    "test_cold_pulls_on_postgresql_and_s3",
    "test_outage_on_postgresql_and_s3",
    "test_streaming_on_postgresql_and_s3",
]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: S3Options = request.getfixturevalue("s3_options")
    return {"database_url": request.getfixturevalue("postgres_url"), **s3_settings(options, blob_redirect=False)}
