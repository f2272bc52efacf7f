"""Settings: precedence (defaults < TOML file < env < flags) and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from modelyard.config import Settings, format_validation_error, load_settings


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "modelyard.toml"
    config.write_text('port = 6000\nhost = "0.0.0.0"\nworkers = 3\n')
    monkeypatch.setenv("MODELYARD_PORT", "7000")
    settings = load_settings(config, workers=None, host="127.0.0.2")
    assert (settings.port, settings.host, settings.workers) == (7000, "127.0.0.2", 3)


def test_defaults_are_embedded_and_secure(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/modelyard.db"
    assert settings.auth_enabled is True
    assert settings.admin_password is None
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)


def test_bad_values_are_one_line_naming_the_setting() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(port=99999)
    message = format_validation_error(caught.value)
    assert "\n" not in message and "'port'" in message


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"tls_cert": "/nonexistent.pem"}, "together"),
        ({"database_url": "mysql://x"}, "sqlite:// or postgresql://"),
        ({"storage_backend": "tape"}, "storage_backend"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ],
)
def test_invalid_settings_are_refused(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_unreadable_or_invalid_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_settings(broken)
