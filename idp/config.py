"""Settings from `IDP_*` environment variables or a `.env` file (INTERFACE §2), validated once.

Every problem is reported together, naming the environment variable, so an operator fixes them in one go.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "IDP_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(Exception):
    """Raised when the configuration is invalid; the message names every bad variable."""


class Settings(BaseSettings):
    """The validated configuration of one idp process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    database_url: str = "sqlite+aiosqlite:///./idp.db"
    database_pool_size: int = Field(default=10, ge=1, le=500)
    issuer: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = None
    encryption_key: SecretStr | None = None
    trusted_proxies: str = ""

    argon2_memory_kib: int = Field(default=19456, ge=8, le=4 * 1024 * 1024)
    argon2_time_cost: int = Field(default=2, ge=1, le=100)
    argon2_parallelism: int = Field(default=1, ge=1, le=64)
    password_workers: int = Field(default=0, ge=0, le=256, description="0 means one per CPU")
    password_queue: int = Field(default=32, ge=0, le=100_000)

    session_idle_seconds: int = Field(default=1800, ge=60)
    session_absolute_seconds: int = Field(default=36000, ge=300)

    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=50, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=10)
    admin_max_failures_per_address: int = Field(default=20, ge=1)
    audit_retention_days: int = Field(default=400, ge=1, le=36500)

    authorization_code_lifetime_seconds: int = Field(default=60, ge=5, le=600)
    access_token_lifetime_seconds: int = Field(default=600, ge=30, le=86400)
    id_token_lifetime_seconds: int = Field(default=600, ge=30, le=86400)
    refresh_token_lifetime_seconds: int = Field(default=30 * 86400, ge=300)
    key_refresh_seconds: int = Field(default=30, ge=1, le=3600)

    # The name authenticator apps show; unset: IDP_SITE_NAME (INTERFACE §2).
    totp_issuer: str | None = Field(default=None, min_length=1, max_length=60, description="name in authenticator apps")

    # A second listener on the same host for /metrics, /healthz and /readyz (INTERFACE §2, §6); 0: none.
    management_port: int = Field(default=9000, ge=0, le=65535)
    # How long a client may take to send one whole request (headers and body), and to open one at all.
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    # The durable outbox (back-channel logout tokens): how often each replica looks for due messages, how long one
    # logout POST may take, and after how long an undeliverable message is given up (with an audit entry).
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=300)
    backchannel_logout_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    outbox_give_up_seconds: int = Field(default=86400, ge=60, le=30 * 86400)

    # Email and self-service accounts (INTERFACE §2). No SMTP URL: no email, and sign-up, verification and
    # password reset are off.
    smtp_url: SecretStr = SecretStr("")
    mail_from: str = Field(default="idp <no-reply@localhost>", min_length=3, max_length=300)
    site_name: str = Field(default="idp", min_length=1, max_length=60)
    support_url: str = Field(default="", max_length=2000)
    signup: Literal["open", "clients", "closed"] = "clients"
    # The operator's look: a logo file (served by idp itself, from its own origin) and an accent colour (#rrggbb).
    logo_file: str = Field(default="", max_length=1000)
    accent_color: str = Field(default="", max_length=7)
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=300)

    # "Sign in with a passkey" on /login without a password (discoverable credentials, user verification required).
    passkey_signin: bool = False

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not (value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://login.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment (OIDC Discovery §3)")
        return value.rstrip("/")

    @field_validator("secret_key", "encryption_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in _split(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("totp_issuer")
    @classmethod
    def _check_totp_issuer(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if ":" in value or any(ord(c) < 32 for c in value):
            raise ValueError("must not contain ':' or control characters (it becomes part of an otpauth URI)")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                # The URL may hold a password: the message never repeats it.
                raise ValueError("must be smtp://user:pass@host:port or smtps://… (or empty for no email)")
            try:
                parts.port  # noqa: B018 - raises on a port that is not a number
            except ValueError:
                raise ValueError("has a port that is not a number") from None
        return value

    @field_validator("mail_from", "site_name")
    @classmethod
    def _check_header_text(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value):
            raise ValueError("must not contain control characters (it goes into email headers)")
        return value

    @field_validator("support_url")
    @classmethod
    def _check_support_url(cls, value: str) -> str:
        if value and not (value.startswith(("https://", "http://", "mailto:")) and len(value) > 7):
            raise ValueError("must be an http(s) URL or a mailto: address")
        return value

    @field_validator("logo_file")
    @classmethod
    def _check_logo_file(cls, value: str) -> str:
        if not value:
            return value
        path = Path(value)
        if path.suffix.lower() not in LOGO_TYPES:
            raise ValueError(f"must be a {', '.join(sorted(LOGO_TYPES))} file")
        if not path.is_file():
            raise ValueError("names no readable file")
        if path.stat().st_size > MAX_LOGO_BYTES:
            raise ValueError(f"is larger than {MAX_LOGO_BYTES // 1024} KiB")
        return value

    @field_validator("accent_color")
    @classmethod
    def _check_accent_color(cls, value: str) -> str:
        if not value:
            return value
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("must be a colour written #rrggbb, such as #0b5cad")
        # Buttons show white text on it and it is the colour of links on white: both must stay readable (WCAG AA).
        if contrast_with_white(value) < MIN_CONTRAST:
            raise ValueError(f"is too light: white text on it must have a contrast of at least {MIN_CONTRAST}:1")
        return value.lower()

    @field_validator("signup", mode="before")
    @classmethod
    def _lower_signup(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def authenticator_issuer(self) -> str:
        """The issuer label of the otpauth:// URI: IDP_TOTP_ISSUER, else the site name (a ':' would end the label)."""
        return self.totp_issuer or self.site_name.replace(":", " ").strip() or "idp"

    @property
    def trusted_proxy_networks(self) -> list[str]:
        """The trusted proxies as a list, the form uvicorn's proxy middleware takes."""
        return _split(self.trusted_proxies)

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def email_enabled(self) -> bool:
        """Whether email is sent at all (and so whether sign-up, verification and password reset are on)."""
        return bool(self.smtp_url.get_secret_value())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def password_pool_size(self) -> int:
        """IDP_PASSWORD_WORKERS, or one argon2 thread per CPU this process may run on (a container's or taskset's
        share, not the host's count: more threads than cores only queue inside the kernel)."""
        return self.password_workers or usable_cpus()


LOGO_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
MAX_LOGO_BYTES = 256 * 1024
MIN_CONTRAST = 4.5


def contrast_with_white(color: str) -> float:
    """WCAG 2 contrast ratio of `#rrggbb` against white."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 1.05 / (luminance + 0.05)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), where the platform tells; else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and `.env`), raising SettingsError naming every bad variable."""
    try:
        # Overrides are field values of any type by name; validation below checks each of them.
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{ENV_PREFIX}{field.upper()}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
