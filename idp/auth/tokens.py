"""Random identifiers and the one-way hashes under which they are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_opaque(nbytes: int = 32) -> str:
    """A URL-safe random string with `nbytes` of entropy."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """The stored form of a high-entropy secret (session ids, tokens): SHA-256, no salt needed."""
    return hashlib.sha256(value.encode()).hexdigest()


def hmac_hex(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 over the parts, joined unambiguously."""
    message = "\x00".join(parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from an operator's secret string (HKDF-SHA256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"idp", info=purpose.encode()).derive(secret.encode())
