"""TOTP (RFC 6238: SHA-1, 6 digits, 30 s) via pyotp, returning the matched time step for replay refusal."""

from __future__ import annotations

import hmac
import io
from datetime import datetime

import pyotp
import segno

DIGITS = 6
PERIOD = 30
# One step of clock skew either side (RFC 6238 §5.2).
WINDOW = 1


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226 §4 recommends 160)."""
    return pyotp.random_base32(32)


def normalize_code(code: str) -> str:
    """Drop the spaces and dashes people type or paste ("123 456", "123-456")."""
    return "".join(ch for ch in code if ch not in " -\t\u00a0")


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code equals `code` within ±WINDOW steps of `now`, or None."""
    code = normalize_code(code)
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = totp.timecode(now)
    for step in (current, current - WINDOW, current + WINDOW):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth://totp/<issuer>:<account>?secret=…&issuer=… URI that authenticator apps scan."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no inline style, so the CSP stays strict)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, svgns=True, nl=False, scale=5, border=4)
    return out.getvalue().decode()


def grouped(secret: str) -> str:
    """The setup key in groups of four, easier to read and type."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
