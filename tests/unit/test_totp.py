"""auth/totp.py against RFC 6238 Appendix B (SHA-1), cut to our 6 digits, and its window and input rules."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from idp.auth import totp

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
SECRET = base64.b32encode(b"12345678901234567890").decode()
# (Unix time, the 8-digit code in Appendix B); a 6-digit code is its last 6 digits (RFC 4226 §5.3: mod 10^Digit).
VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize(("seconds", "code8"), VECTORS)
def test_rfc_6238_vectors_match_at_their_own_step(seconds: int, code8: str) -> None:
    assert totp.matching_step(SECRET, code8[-6:], at(seconds)) == seconds // 30


def test_one_step_of_skew_either_side_and_no_more() -> None:
    code, step = "081804", 1111111109 // 30
    start = step * 30
    assert totp.matching_step(SECRET, code, at(start)) == step
    assert totp.matching_step(SECRET, code, at(start + 59)) == step  # a step late
    assert totp.matching_step(SECRET, code, at(start - 1)) == step  # a step early
    assert totp.matching_step(SECRET, code, at(start + 60)) is None  # two steps late
    assert totp.matching_step(SECRET, code, at(start - 31)) is None  # two steps early


@pytest.mark.parametrize("typed", ["287 082", "287-082", " 287082\t", "287\u00a0082"])
def test_spaces_and_dashes_people_type_are_ignored(typed: str) -> None:
    assert totp.matching_step(SECRET, typed, at(59)) == 1


@pytest.mark.parametrize(
    "typed",
    ["", "28708", "2870820", "28708a", "\uff12\uff18\uff17\uff10\uff18\uff12", "\u0662\u0668\u0667\u0660\u0668\u0662"],
)
def test_wrong_length_letters_and_other_scripts_digits_never_match(typed: str) -> None:
    assert totp.matching_step(SECRET, typed, at(59)) is None


def test_a_wrong_code_does_not_match() -> None:
    assert totp.matching_step(SECRET, "287083", at(59)) is None


def test_new_secrets_are_160_bits_of_base32_and_distinct() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_names_issuer_and_account() -> None:
    uri = totp.provisioning_uri(SECRET, "ada@example.com", "Job Board")
    assert uri.startswith("otpauth://totp/Job%20Board:ada%40example.com?")
    assert f"secret={SECRET}" in uri
    assert "issuer=Job%20Board" in uri


def test_grouped_key_reads_in_fours() -> None:
    assert totp.grouped("ABCDEFGHIJ") == "ABCD EFGH IJ"
