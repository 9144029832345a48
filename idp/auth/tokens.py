"""Random identifiers and the one-way hashes under which they are stored."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

# A compact JWS we could have issued: three base64url segments, and nothing near this long (ours are ~1 KB).
MAX_JWS_LENGTH = 8192
# Our JOSE headers and claims are flat objects with a list or two; deeper input is refused before any parser
# recurses into it (a header of a few thousand `[` was a RecursionError).
MAX_JOSE_DEPTH = 4
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def new_opaque(nbytes: int = 32) -> str:
    """A URL-safe random string with `nbytes` of entropy."""
    return secrets.token_urlsafe(nbytes)


def new_identifier(nbytes: int) -> str:
    """Like `new_opaque`, never beginning with "-": an id an operator passes to a command (`idp clients show ID`)
    must not read as an option."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if not value.startswith("-"):
            return value


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


def json_depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, counted without parsing (brackets in strings skipped)."""
    data = text.encode() if isinstance(text, str) else text
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def loads_bounded(text: str | bytes, max_depth: int) -> Any:
    """json.loads, refusing (ValueError) input nested deeper than `max_depth` before the parser recurses."""
    if json_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth}")
    return json.loads(text)


def jws_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS after bounding its size and shape; ValueError if it is not one.

    Call before handing untrusted JOSE input to joserfc, whose JSON parsing is unbounded.
    """
    if len(token) > MAX_JWS_LENGTH or not _COMPACT_JWS.match(token):
        raise ValueError("not a compact JWS")
    segments = []
    for segment in token.split(".")[:2]:
        try:
            segments.append(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (binascii.Error, ValueError):
            raise ValueError("not a compact JWS") from None
    header_bytes, payload_bytes = segments
    if json_depth(payload_bytes) > MAX_JOSE_DEPTH:
        raise ValueError("JWS payload nested too deeply")
    try:
        header = loads_bounded(header_bytes, MAX_JOSE_DEPTH)
    except UnicodeDecodeError:
        raise ValueError("JWS header is not UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise ValueError("JWS header is not a JSON object")
    return header
