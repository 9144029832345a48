"""Proof Key for Code Exchange (RFC 7636): verifier and challenge syntax, and the S256 check.

Only S256: `plain` would put the verifier itself in the front channel (OAuth 2.0 Security BCP §2.1.1). Pure: no
database, no HTTP, so the authorization endpoint, the token endpoint and the code service share one home.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

#: The one code_challenge_method we accept (RFC 7636 §4.2).
S256 = "S256"
#: §4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: §4.2: an S256 challenge is BASE64URL of a 32-byte digest without padding, so exactly 43 characters.
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9\-_]{43}")


def is_valid_verifier(verifier: str) -> bool:
    """Whether `verifier` has the syntax of §4.1 (43 to 128 unreserved characters)."""
    return VERIFIER_PATTERN.fullmatch(verifier) is not None


def is_valid_challenge(challenge: str) -> bool:
    """Whether `challenge` can be an S256 challenge (43 base64url characters, §4.2)."""
    return CHALLENGE_PATTERN.fullmatch(challenge) is not None


def s256(verifier: str) -> str:
    """§4.2: BASE64URL(SHA256(ASCII(code_verifier))), without padding. The verifier must be ASCII."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_s256(verifier: str, challenge: str) -> bool:
    """§4.6: the verifier is well formed and hashes to the challenge; compared in constant time."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256(verifier).encode("ascii"), challenge.encode("utf-8"))
