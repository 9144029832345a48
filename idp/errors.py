"""Domain errors raised by services and turned into responses at the edge."""

from __future__ import annotations

from enum import StrEnum


class DomainError(Exception):
    """Base class: a rule said no. The message is safe to show an operator, never a secret."""


class NotFound(DomainError):
    """The thing asked for does not exist."""


class Conflict(DomainError):
    """The change would break a uniqueness rule (a duplicate email, say)."""


class InvalidInput(DomainError):
    """The input is malformed; the message says how."""


class InvalidCredentials(DomainError):
    """Wrong email, wrong password or a disabled account: deliberately one error, so nothing is revealed."""


class RateLimited(DomainError):
    """Too many failures for an account or an address; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"rate limited ({scope})")
        self.retry_after = max(1, int(retry_after))
        self.scope = scope


class Overloaded(DomainError):
    """The password pool's queue is full; the caller should answer 503 with Retry-After."""

    retry_after = 1


class UnreadableInput(InvalidInput):
    """A request's parameters could not be read (idp.web.params); `kind` says how, `status` is the usual answer.

    Kinds: content_type (415), malformed, repeated, too_long, characters, too_deep, shape (400). Each edge maps
    it to its own wire form: an OIDC error, a page, or the admin API's JSON.
    """

    def __init__(self, reason: str, kind: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.field = field
        self.status = 415 if kind == "content_type" else 400


class Refusal(StrEnum):
    """Why a protocol rule refused a code, a token or a scope. Each case has one fixed public description,
    chosen at the edge (idp.oidc.errors.REFUSALS); the value names the case in logs."""

    CODE_UNKNOWN = "code_unknown"
    CODE_OTHER_CLIENT = "code_other_client"
    CODE_EXPIRED = "code_expired"
    CODE_REDIRECT_URI_MISMATCH = "code_redirect_uri_mismatch"
    CODE_VERIFIER_MISSING = "code_verifier_missing"
    CODE_VERIFIER_MISMATCH = "code_verifier_mismatch"
    CODE_VERIFIER_UNEXPECTED = "code_verifier_unexpected"
    CODE_PERSON_DISABLED = "code_person_disabled"
    REFRESH_UNUSABLE = "refresh_unusable"
    REFRESH_PERSON_DISABLED = "refresh_person_disabled"
    REFRESH_EXPIRED = "refresh_expired"
    SCOPE_BEYOND_GRANT = "scope_beyond_grant"
    SCOPE_PERSON_IN_SERVICE_GRANT = "scope_person_in_service_grant"
    SCOPE_NOT_REGISTERED = "scope_not_registered"
    ACCESS_MALFORMED = "access_malformed"
    ACCESS_UNKNOWN = "access_unknown"
    ACCESS_NOT_LIVE = "access_not_live"
    ACCESS_NOT_OPENID = "access_not_openid"


class Refused(DomainError):
    """A protocol rule said no (RFC 6749, 7636, 6750). `case` picks the wire error; `detail` is for the log only
    (it may name what the request sent, never a secret)."""

    def __init__(self, case: Refusal, detail: str = "") -> None:
        super().__init__(case.value)
        self.case = case
        self.detail = detail
