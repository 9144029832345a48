"""The authorization request's parameter limits (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), and the one limit derived
from them: the longest sign-in continuation (`next`) that /login, /login/verify and enrollment carry back."""

from __future__ import annotations

# Parameters /authorize reads, with the longest value (in characters) it accepts. Others are ignored.
AUTHORIZE_LIMITS = {
    "response_type": 50,
    "client_id": 64,
    "redirect_uri": 2000,
    "scope": 500,
    # A relying party may keep its own context in state; it comes back exactly as sent, however it is encoded.
    "state": 4096,
    "nonce": 500,
    "code_challenge": 128,
    "code_challenge_method": 20,
    "prompt": 50,
    "max_age": 12,
    "acr_values": 100,
    "login_hint": 320,
    "ui_locales": 100,
    "response_mode": 20,
    "request": 1,
    "request_uri": 1,
    "idp_auth_after": 100,
}

# Percent-encoding makes one character at most 12 (4 UTF-8 bytes, each `%XX`).
_ENCODED_CHARACTER = 12
# The continuation back to /authorize: every parameter at its limit, every character encoded at its longest.
MAX_AUTHORIZATION_CONTINUATION = len("/authorize?") + sum(
    len(name) + 2 + _ENCODED_CHARACTER * limit for name, limit in AUTHORIZE_LIMITS.items()
)
# Enrollment during a step-up wraps that once more (`/account/security/totp?next=<continuation, encoded again>`),
# and its characters are ASCII by then: at most 3 each. Any `next` idp makes itself fits; a longer one is not ours.
MAX_CONTINUATION = len("/account/security/totp?next=") + 3 * MAX_AUTHORIZATION_CONTINUATION
