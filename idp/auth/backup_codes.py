"""Single-use backup codes: 8 per person, 50 bits each, stored only as keyed hashes."""

from __future__ import annotations

import secrets

from idp.auth.tokens import hmac_hex

COUNT = 8
# Crockford-style alphabet without look-alikes (no 0/O, 1/I/L, U), so a code reads aloud and types cleanly.
ALPHABET = "23456789abcdefghjkmnpqrstvwxyz"
LENGTH = 10  # 10 characters of a 30-letter alphabet: about 49 bits


def generate() -> list[str]:
    """COUNT fresh codes, shown as two groups of five: "k7m2q-9xz4d"."""
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize(code: str) -> str | None:
    """The canonical form of what a person typed, or None when it cannot be a backup code."""
    cleaned = "".join(ch for ch in code.lower() if ch not in " -\t\u00a0")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def digest(key: bytes, code: str) -> str:
    """The stored form: HMAC-SHA256 under a server key, so a database copy alone cannot test guesses."""
    canonical = normalize(code)
    if canonical is None:
        raise ValueError("not a backup code")
    return hmac_hex(key, "backup-code", canonical)
