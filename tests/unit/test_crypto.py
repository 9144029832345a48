"""auth/crypto.py: AES-256-GCM sealing of secrets at rest, bound to a purpose, a key and a row."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.auth.crypto import Sealer
from idp.auth.tokens import derive_key

KEY = "an operator's encryption key of enough length"


def test_seal_then_open_round_trips_and_each_seal_is_fresh() -> None:
    sealer = Sealer(KEY, "totp")
    first = sealer.seal(b"JBSWY3DPEHPK3PXP", "user-1")
    second = sealer.seal(b"JBSWY3DPEHPK3PXP", "user-1")
    assert first != second  # a random nonce each time
    assert first.startswith("v1.")
    assert b"JBSWY3DPEHPK3PXP" not in base64.urlsafe_b64decode(first[3:])
    assert sealer.open(first, "user-1") == sealer.open(second, "user-1") == b"JBSWY3DPEHPK3PXP"


def test_the_stored_format_is_v1_then_base64url_of_nonce_and_gcm_output() -> None:
    """Pinned, so secrets stored by an earlier release keep opening."""
    key = derive_key(KEY, "at-rest:totp")
    nonce = bytes(range(12))
    stored = "v1." + base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, b"secret", b"user-1")).decode()
    assert Sealer(KEY, "totp").open(stored, "user-1") == b"secret"


@pytest.mark.parametrize(
    ("key", "purpose", "aad"),
    [
        ("another operator's key entirely", "totp", "user-1"),
        (KEY, "signing-keys", "user-1"),
        (KEY, "totp", "user-2"),
    ],
    ids=["other-key", "other-purpose", "moved-to-another-row"],
)
def test_another_key_purpose_or_row_does_not_open_it(key: str, purpose: str, aad: str) -> None:
    sealed = Sealer(KEY, "totp").seal(b"secret", "user-1")
    with pytest.raises(ValueError, match="does not open"):
        Sealer(key, purpose).open(sealed, aad)


def test_a_flipped_bit_does_not_open() -> None:
    sealed = Sealer(KEY, "totp").seal(b"secret", "user-1")
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[-1] ^= 1
    with pytest.raises(ValueError, match="does not open"):
        Sealer(KEY, "totp").open("v1." + base64.urlsafe_b64encode(bytes(raw)).decode(), "user-1")


@pytest.mark.parametrize("stored", ["v2.AAAA", "secret", ""])
def test_an_unknown_version_is_refused(stored: str) -> None:
    with pytest.raises(ValueError, match="unknown sealed-secret version"):
        Sealer(KEY, "totp").open(stored, "user-1")


@pytest.mark.parametrize("stored", ["v1.!!!!", "v1.", "v1.AAAA", "v1." + "A" * 40])
def test_a_truncated_or_garbled_body_is_a_value_error_not_a_crash(stored: str) -> None:
    # Callers handle ValueError; which layer of the AEAD noticed is not the contract.
    with pytest.raises(ValueError):  # noqa: PT011
        Sealer(KEY, "totp").open(stored, "user-1")
