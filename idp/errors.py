"""Domain errors raised by services and turned into responses at the edge."""

from __future__ import annotations


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
