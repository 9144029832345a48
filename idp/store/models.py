"""Table definitions shared by the store and by Alembic's autogenerate; the schema itself lives in migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite keeps no zone, so it is stored naive in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased copy carrying the unique index: emails are unique case-insensitively on both databases.
    email_norm: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # True once the person used a verification link sent to this address (the `email_verified` claim).
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # The language the person last used on a page that sends them email ("en", "nb"); emails go out in it.
    locale: Mapped[str] = mapped_column(String(10), default="en")


class AccountToken(Base):
    """A single-use link sent by email (verify the address, reset the password): only its SHA-256 is kept."""

    __tablename__ = "account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "verify_email", "reset_password" or "change_email"
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The address the link was sent to: a verification counts only while the account still has that address.
    email_norm: Mapped[str] = mapped_column(String(320))
    # Where to send the person afterwards (the job board they signed up from); checked again when used.
    next_url: Mapped[str] = mapped_column(String(2000), default="")
    # A "change_email" link: the new address as the person typed it (`email_norm` is its compared form).
    new_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginSession(Base):
    """A server-side session; only the SHA-256 of the cookie value is stored."""

    __tablename__ = "login_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    # Space-separated RFC 8176 method names used at sign-in ("pwd", later "pwd otp"), from which amr/acr derive.
    methods: Mapped[str] = mapped_column(String(100))
    # The `sid` claim: opaque, random, and not the lookup key, so a leaked ID token cannot name a cookie hash.
    sid: Mapped[str] = mapped_column(String(43), default="", index=True)
    client_ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # True between a correct password and the second step: such a session signs nobody in.
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # Backup codes just generated, sealed, so the "Download codes" link can deliver exactly those for a while.
    fresh_codes: Mapped[str | None] = mapped_column(Text, nullable=True)
    fresh_codes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RateLimitHit(Base):
    """One counted failure; the rows within the window are the count, so the window slides by itself."""

    __tablename__ = "ratelimit_hits"
    __table_args__ = (Index("ix_ratelimit_hits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # False while the attempt is still being checked (a reservation), True once it is known to have failed.
    settled: Mapped[bool] = mapped_column(Boolean, default=False)


class KnownDevice(Base):
    """A browser that has signed in to an account: a keyed hash of (device cookie, account), never the cookie.

    Attempts from a known device are counted apart from everyone else's, so a stranger cannot lock the person out.
    """

    __tablename__ = "known_devices"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstanceSecret(Base):
    """Secrets generated on first start (secret and encryption keys) shared by every replica."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CacheVersion(Base):
    """A counter per in-process cache (`clients`), bumped with every change, so each replica's cache can tell with
    one small read (at most once a second) that another replica changed what it holds. A missing row reads as 0."""

    __tablename__ = "cache_versions"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """An append-only record of something security-relevant; never holds a secret."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_id_id", "user_id", "id"),
        Index("ix_audit_events_type_id", "type", "id"),
        Index("ix_audit_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    actor: Mapped[str] = mapped_column(String(100), default="")
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    client_ip: Mapped[str] = mapped_column(String(45), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")


class Client(Base):
    """A relying party. Confidential clients keep only the SHA-256 of a 256-bit random secret."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # JSON arrays of exact-match URIs.
    redirect_uris: Mapped[str] = mapped_column(Text, default="[]")
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="[]")
    grant_types: Mapped[str] = mapped_column(String(200))  # space-separated
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    require_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    id_token_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Space-separated: the scopes a client_credentials token of this client may carry (RFC 6749 §4.4.2).
    scope: Mapped[str] = mapped_column(String(500), default="")
    # OIDC Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed; empty: none are sent.
    backchannel_logout_uri: Mapped[str] = mapped_column(String(2000), default="")
    # People arriving from this client may create an account when IDP_SIGNUP is "clients".
    allow_signup: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 7591 §2 display metadata; empty: not registered (pages then show `name` and no logo).
    client_name: Mapped[str] = mapped_column(String(200), default="")
    logo_uri: Mapped[str] = mapped_column(String(2000), default="")
    client_uri: Mapped[str] = mapped_column(String(2000), default="")


class UsedMarker(Base):
    """A sign-in continuation marker already used: the marker is single use on every replica (issue #10.14)."""

    __tablename__ = "used_markers"

    marker_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SigningKey(Base):
    """A JWS signing key; the private half encrypted at rest (AES-GCM under a key derived from the encryption key)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    private_key: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class AuthorizationCode(Base):
    """A single-use code, stored as a hash, carrying everything the token endpoint needs to mint tokens."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(43))
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(500), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Indexed: a session's end finds the clients that got a code in it (Back-Channel Logout).
    sid: Mapped[str] = mapped_column(String(43), index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    amr: Mapped[str] = mapped_column(String(100))
    acr: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Token(Base):
    """An opaque access or refresh token, stored as a hash; `grant_id` ties a code's tokens and a refresh family."""

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_grant_id", "grant_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "access" or "refresh"
    grant_id: Mapped[str] = mapped_column(String(43))
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    scope: Mapped[str] = mapped_column(String(500))
    # Indexed: a session's end finds the clients issued tokens in it (Back-Channel Logout).
    sid: Mapped[str | None] = mapped_column(String(43), nullable=True, index=True)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    amr: Mapped[str] = mapped_column(String(100), default="")
    acr: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A refresh token granted offline_access outlives its IdP session (`sid`); any other dies with it (INTERFACE §3).
    offline: Mapped[bool] = mapped_column(Boolean, default=False)


class Consent(Base):
    """Scopes a person allowed a client; asked again only for scopes beyond these."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TotpCredential(Base):
    """A person's authenticator secret (sealed); `last_step` refuses replays. Secrets being set up live in
    `totp_enrollments`; an unconfirmed row here (written by releases before 0005) counts as off."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TotpEnrollment(Base):
    """A secret being set up, bound to the sign-in session that asked for it: only that session sees and confirms it,
    and it goes with the session."""

    __tablename__ = "totp_enrollments"

    session_id_hash: Mapped[str] = mapped_column(
        String(64), ForeignKey("login_sessions.id_hash", ondelete="CASCADE"), primary_key=True
    )
    # Sealed with the user and session as associated data, so a row moved to another session does not open.
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class BackupCode(Base):
    """One single-use backup code, stored as an HMAC."""

    __tablename__ = "backup_codes"
    __table_args__ = (Index("ix_backup_codes_user_id_code_hash", "user_id", "code_hash", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutboxMessage(Base):
    """A message to deliver at least once and at most once per (kind, dedupe key), by any replica, with retries.

    One mechanism for every kind: back-channel logout tokens now, email later. The payload never holds a secret;
    a logout token is signed at delivery from it."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("kind", "dedupe_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When any replica may next try it; a claim pushes it forward, so a crashed sender's claim lapses by itself.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(200), default="")


class AdminToken(Base):
    """A bearer token for the admin API; only its SHA-256 is kept."""

    __tablename__ = "admin_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExternalId(Base):
    """A job board's own id for a person (INTERFACE §7): one row per (client, id), so a merged account holds one
    per board and `idp users subjects` can hand each board its `external_id,sub` pairs."""

    __tablename__ = "external_ids"

    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LegacyPasswordHash(Base):
    """A password hash imported from a job board, kept until the first sign-in re-hashes with argon2id and drops
    every row of the person (idp.auth.legacy_hashes verifies them)."""

    __tablename__ = "legacy_password_hashes"
    __table_args__ = (UniqueConstraint("user_id", "password_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    password_hash: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserRole(Base):
    """A staff role held by an idp account (INTERFACE §5): `support` or `admin`, for the console at /admin."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Passkey(Base):
    """A WebAuthn credential a person registered as a second factor: the public key only, never a secret.

    `backup_eligible` (the BE flag) says whether it may be synced between devices: `amr` `swk` rather than `hwk`."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # base64url of the credential id the authenticator chose (at most 1023 bytes, WebAuthn §5.8.3): unique, so an
    # assertion names exactly one credential and one person.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")  # space-separated hints for the browser
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebauthnChallenge(Base):
    """A WebAuthn challenge handed to one sign-in session for one purpose ("register", "authenticate"): used once,
    and it goes with the session."""

    __tablename__ = "webauthn_challenges"

    session_id_hash: Mapped[str] = mapped_column(
        String(64), ForeignKey("login_sessions.id_hash", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(20), primary_key=True)
    challenge: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
