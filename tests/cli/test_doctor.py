"""``modelyard doctor`` against real backends: SQLite + files, the suite's PostgreSQL and moto S3,
and the failures an operator meets (no database, no bucket, a database never migrated)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app as cli
from modelyard.metadata.migrations import upgrade
from modelyard.metadata.sql import create_metadata_engine
from modelyard.storage.s3 import S3Options
from tests.conftest import seed_data_dir


def s3_config(tmp_path: Path, options: S3Options) -> Path:
    config = tmp_path / "modelyard.toml"
    config.write_text(
        f'storage_backend = "s3"\ns3_bucket = "{options.bucket}"\ns3_prefix = "{options.prefix}"\n'
        f's3_endpoint_url = "{options.endpoint_url}"\ns3_region = "{options.region}"\n'
        f's3_addressing_style = "{options.addressing_style}"\n'
    )
    return config


def test_everything_fine_on_sqlite_and_files(tmp_path: Path, migrated_sqlite: Path) -> None:
    data = seed_data_dir(tmp_path / "data", migrated_sqlite)
    result = CliRunner().invoke(cli, ["doctor", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(line.startswith("ok ") for line in lines), lines
    assert any("schema at" in line for line in lines)
    assert any("writable (a test blob" in line for line in lines)
    left = [path for path in (data / "blobs").rglob("*") if path.is_file()] + list((data / "uploads").iterdir())
    assert left == []  # the test blob and its upload are gone again


@pytest.mark.postgres
def test_everything_fine_on_postgresql_and_s3(tmp_path: Path, postgres_url: str, s3_options: S3Options) -> None:
    upgrade(create_metadata_engine(postgres_url))
    result = CliRunner().invoke(
        cli, ["doctor", "--config", str(s3_config(tmp_path, s3_options)), "--database-url", postgres_url]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum("clock within" in line for line in lines) == 2  # the database's and the bucket's
    assert "ok    storage (s3): one writer per upload enforced" in lines


@pytest.mark.postgres
def test_each_problem_is_one_failing_line(tmp_path: Path, postgres_url: str, s3_options: S3Options) -> None:
    missing_bucket = replace(s3_options, bucket="no-such-bucket-here")
    result = CliRunner().invoke(
        cli,
        ["doctor", "--config", str(s3_config(tmp_path, missing_bucket)), "--database-url", postgres_url],
    )
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 2, result.output
    assert "database: empty (no modelyard schema)" in failures[0]
    assert failures[1].startswith("FAIL  storage (s3): cannot reach it at s3://no-such-bucket-here/")

    unreachable = "postgresql://modelyard@127.0.0.1:1/nothing"
    result = CliRunner().invoke(cli, ["doctor", "--data-dir", str(tmp_path / "d"), "--database-url", unreachable])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith(
        "FAIL  database: postgresql+psycopg://modelyard@127.0.0.1:1/nothing unreachable: "
    )
