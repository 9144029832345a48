"""Settings (INTERFACE §2): documented defaults, IDP_* variables and .env, every bad variable named at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from idp.config import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No IDP_* variable from the outside and no .env in the working directory."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("IDP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_match_the_interface() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./idp.db"
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.secret_key is None  # generated on first start and kept in the database
    assert settings.encryption_key is None
    assert settings.trusted_proxies == ""
    assert settings.trusted_proxy_networks == []
    assert settings.login_max_failures_per_account == 5
    assert settings.login_max_failures_per_address == 50
    assert settings.login_failure_window_seconds == 900
    # RFC 9106 / OWASP's argon2id baseline: 19 MiB, two passes, one lane.
    assert (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism) == (19456, 2, 1)
    assert settings.secure_cookies is False
    assert settings.is_sqlite


def test_variables_with_the_idp_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_DATABASE_URL", "postgresql+asyncpg://idp@db.internal/idp")
    monkeypatch.setenv("IDP_ISSUER", "https://login.example.com/")
    monkeypatch.setenv("IDP_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("IDP_ENCRYPTION_KEY", "x" * 40)
    monkeypatch.setenv("IDP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    monkeypatch.setenv("IDP_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")
    monkeypatch.setenv("IDP_LOG_LEVEL", "debug")
    monkeypatch.setenv("ISSUER", "http://unprefixed.example")  # not ours: ignored

    settings = load_settings()

    assert settings.database_url == "postgresql+asyncpg://idp@db.internal/idp"
    assert settings.issuer == "https://login.example.com"  # a trailing slash would break every URL built from it
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "k" * 32
    assert settings.encryption_key is not None
    assert settings.encryption_key.get_secret_value() == "x" * 40
    assert settings.trusted_proxy_networks == ["10.0.0.0/8", "192.0.2.1"]
    assert settings.login_max_failures_per_account == 3
    assert settings.log_level == "DEBUG"
    assert settings.secure_cookies is True
    assert not settings.is_sqlite


def test_keys_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_SECRET_KEY", "a-very-secret-value-of-enough-length")
    settings = load_settings()
    assert "a-very-secret-value" not in repr(settings)
    assert "a-very-secret-value" not in str(settings.model_dump())


def test_a_dotenv_file_is_read(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(
        "IDP_ISSUER=https://id.example.org\nIDP_SECRET_KEY=" + "d" * 36 + "\nIDP_ARGON2_TIME_COST=3\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.issuer == "https://id.example.org"
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "d" * 36
    assert settings.argon2_time_cost == 3


def test_the_environment_wins_over_dotenv(clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_environment / ".env").write_text("IDP_ISSUER=https://from-dotenv.example\n", encoding="utf-8")
    monkeypatch.setenv("IDP_ISSUER", "https://from-env.example")
    assert load_settings().issuer == "https://from-env.example"


def test_every_bad_variable_is_named_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_ISSUER", "ftp://x")
    monkeypatch.setenv("IDP_SECRET_KEY", "short")
    monkeypatch.setenv("IDP_ARGON2_TIME_COST", "0")
    monkeypatch.setenv("IDP_TRUSTED_PROXIES", "nonsense")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    message = str(raised.value)
    assert "\n" not in message
    for name in ["IDP_ISSUER", "IDP_SECRET_KEY", "IDP_ARGON2_TIME_COST", "IDP_TRUSTED_PROXIES"]:
        assert name in message
    assert "IDP_ENCRYPTION_KEY" not in message
    assert "short" not in message.replace("shorter", "")  # the rejected secret itself is not echoed
    assert "nonsense" in message  # but a proxy entry is, so the operator sees which one


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_DATABASE_URL", "mysql://localhost/idp"),
        ("IDP_DATABASE_URL", "sqlite:///idp.db"),
        ("IDP_ISSUER", "nope"),
        ("IDP_ISSUER", "https://login.example.com/?tenant=1"),
        ("IDP_ISSUER", "https://login.example.com/#x"),
        ("IDP_ENCRYPTION_KEY", "e" * 31),
        ("IDP_ARGON2_MEMORY_KIB", "lots"),
        ("IDP_LOGIN_MAX_FAILURES_PER_ACCOUNT", "0"),
        ("IDP_LOGIN_FAILURE_WINDOW_SECONDS", "-5"),
        ("IDP_LOG_LEVEL", "chatty"),
        ("IDP_TRUSTED_PROXIES", "10.0.0.0/8, 300.1.1.1"),
    ],
)
def test_each_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="frozen"):
        settings.issuer = "https://elsewhere.example"  # type: ignore[misc]


def test_the_password_pool_has_one_worker_per_cpu_this_process_may_use() -> None:
    settings = Settings(_env_file=None, issuer="https://idp.example")  # type: ignore[call-arg]
    assert settings.password_pool_size == len(os.sched_getaffinity(0))
    configured = Settings(_env_file=None, issuer="https://idp.example", password_workers=3)  # type: ignore[call-arg]
    assert configured.password_pool_size == 3
