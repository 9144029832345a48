"""Request and response schemas of the admin API (pydantic); the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictStr

T = TypeVar("T")


class Strict(BaseModel):
    """Unknown fields and wrong types are refused (422), never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorOut(BaseModel):
    error: str
    error_description: str


class MfaOut(BaseModel):
    enabled: bool
    since: datetime | None
    backup_codes_left: int


class PasskeyOut(BaseModel):
    """A passkey of the person: what it is called and when it was used, never key material."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    # The WebAuthn backup-eligible flag (amr "swk"), and whether it is backed up now (the backup-state flag).
    synced: bool
    backed_up: bool


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    mfa: MfaOut
    roles: list[str] = Field(
        default_factory=list, description="staff roles (support, admin) for the support console at /admin"
    )
    passkeys: list[PasskeyOut] = []


class SessionClientOut(BaseModel):
    client_id: str
    client_name: str


class SessionOut(BaseModel):
    """A signed-in session; `id` is its opaque `sid`, never the cookie or its hash."""

    id: str
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str
    amr: list[str]
    clients: list[SessionClientOut]


class UserCreate(Strict):
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"email": "ann@example.com", "name": "Ann"}]}
    )
    email: StrictStr = Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})
    name: StrictStr = Field(default="", max_length=200)
    password: StrictStr | None = Field(default=None, min_length=8, max_length=1024)


class UserPatch(Strict):
    name: StrictStr | None = Field(default=None, max_length=200)
    disabled: StrictBool | None = None
    roles: list[Literal["support", "admin"]] | None = Field(
        default=None, max_length=2, description="the staff roles the person holds from now on (each change audited)"
    )


class MfaReset(Strict):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"reason": "Lost phone; passport checked at the desk, ticket 4711"}]},
    )
    reason: StrictStr = Field(min_length=3, max_length=500, description="why, after what proof of identity")


BACKCHANNEL_TEXT = (
    "where idp POSTs logout tokens when a session the client was signed in through ends (OIDC Back-Channel "
    "Logout 1.0); https, http only on loopback; null or empty: none"
)


SIGNUP_TEXT = "people arriving from this client may create an account when IDP_SIGNUP is `clients`"


CLIENT_NAME_TEXT = "the job board's name as people see it on the sign-in pages (RFC 7591 client_name)"
LOGO_URI_TEXT = "an https URL of the job board's logo, shown on the sign-in pages (RFC 7591 logo_uri)"
CLIENT_URI_TEXT = "the job board's home page (RFC 7591 client_uri)"


class ClientOut(BaseModel):
    client_id: str
    name: str
    public: bool
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    require_mfa: bool
    require_consent: bool
    id_token_signed_response_alg: str
    scope: str = Field(description="space-separated scopes a client_credentials token may carry (RFC 7591 §2)")
    backchannel_logout_uri: str | None = Field(default=None, description=BACKCHANNEL_TEXT)
    allow_signup: bool = Field(default=False, description=SIGNUP_TEXT)
    client_name: str | None = Field(default=None, description=CLIENT_NAME_TEXT)
    logo_uri: str | None = Field(default=None, description=LOGO_URI_TEXT)
    client_uri: str | None = Field(default=None, description=CLIENT_URI_TEXT)


class ClientCreated(ClientOut):
    client_secret: str | None = Field(description="shown once; null for public clients")


SCOPE_TEXT = "space-separated scopes a client_credentials token may carry; no scope asked for means all of them"
GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
Alg = Literal["RS256", "ES256"]


class ClientCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"name": "Nordic Jobs", "redirect_uris": ["https://jobs.example/callback"], "require_mfa": True}
            ]
        },
    )
    name: StrictStr = Field(min_length=1, max_length=200)
    redirect_uris: list[StrictStr] = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: list[StrictStr] = Field(default_factory=list, max_length=20)
    public: StrictBool = False
    require_mfa: StrictBool = False
    require_consent: StrictBool = False
    grant_types: list[GrantType] | None = Field(default=None, min_length=1, max_length=3)
    id_token_signed_response_alg: Alg = "RS256"  # noqa: S105 - an algorithm name
    scope: StrictStr = Field(default="", max_length=500, description=SCOPE_TEXT)
    backchannel_logout_uri: StrictStr | None = Field(default=None, max_length=2000, description=BACKCHANNEL_TEXT)
    allow_signup: StrictBool = Field(default=False, description=SIGNUP_TEXT)
    client_name: StrictStr | None = Field(default=None, max_length=200, description=CLIENT_NAME_TEXT)
    logo_uri: StrictStr | None = Field(default=None, max_length=2000, description=LOGO_URI_TEXT)
    client_uri: StrictStr | None = Field(default=None, max_length=2000, description=CLIENT_URI_TEXT)


class ClientPatch(Strict):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    redirect_uris: list[StrictStr] | None = Field(default=None, max_length=20)
    post_logout_redirect_uris: list[StrictStr] | None = Field(default=None, max_length=20)
    require_mfa: StrictBool | None = None
    require_consent: StrictBool | None = None
    grant_types: list[GrantType] | None = Field(default=None, min_length=1, max_length=3)
    id_token_signed_response_alg: Alg | None = None
    scope: StrictStr | None = Field(default=None, max_length=500, description=SCOPE_TEXT)
    backchannel_logout_uri: StrictStr | None = Field(
        default=None, max_length=2000, description=BACKCHANNEL_TEXT + " (empty string: remove)"
    )
    allow_signup: StrictBool | None = Field(default=None, description=SIGNUP_TEXT)
    client_name: StrictStr | None = Field(
        default=None, max_length=200, description=CLIENT_NAME_TEXT + " (empty string: remove)"
    )
    logo_uri: StrictStr | None = Field(
        default=None, max_length=2000, description=LOGO_URI_TEXT + " (empty string: remove)"
    )
    client_uri: StrictStr | None = Field(
        default=None, max_length=2000, description=CLIENT_URI_TEXT + " (empty string: remove)"
    )


class SecretOut(BaseModel):
    client_id: str
    client_secret: str


class KeyOut(BaseModel):
    kid: str
    alg: str
    created_at: datetime
    signing: bool


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    type: str
    outcome: str
    actor: str
    user_id: str | None
    client_ip: str
    details: dict[str, Any]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class UserPage(Page[UserOut]):
    pass


class SessionPage(Page[SessionOut]):
    pass


class ClientPage(Page[ClientOut]):
    pass


class KeyList(Page[KeyOut]):
    """All live keys in one page (INTERFACE §5 list shape; next_cursor is always null)."""


class AuditPage(Page[AuditEventOut]):
    pass


class ListQuery(Strict):
    model_config = ConfigDict(extra="forbid", strict=False)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class UserQuery(ListQuery):
    email: str | None = Field(default=None, max_length=320)
    external_id: str | None = Field(default=None, max_length=255, description="a job board's id for the person")


class ImportQuery(Strict):
    model_config = ConfigDict(extra="forbid", strict=False)
    dry_run: bool = Field(default=False, description="check and report, write nothing")


class ImportResultOut(BaseModel):
    line: int
    status: Literal["created", "merged", "unchanged", "error"]
    id: str | None = None
    reason: str | None = None
    conflicts: list[str] = Field(default_factory=list)


class ImportSummaryOut(BaseModel):
    lines: int
    created: int
    merged: int
    unchanged: int
    error: int
    conflicts: int
    dry_run: bool


class ImportOut(BaseModel):
    """One result per input line, in order, then the counts (INTERFACE §7)."""

    results: list[ImportResultOut]
    summary: ImportSummaryOut


class AuditQuery(ListQuery):
    user_id: str | None = Field(default=None, max_length=36)
    type: str | None = Field(default=None, max_length=60)
    since: AwareDatetime | None = Field(default=None, description="ISO 8601 with a time zone")
