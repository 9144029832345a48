"""auth/backup_codes.py: the code format, what a person may type, and the keyed stored form."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from idp.auth import backup_codes

KEY = b"k" * 32


def test_eight_distinct_codes_in_two_groups_of_five_from_the_alphabet() -> None:
    codes = backup_codes.generate()
    assert len(codes) == backup_codes.COUNT == 8
    assert len(set(codes)) == 8
    for code in codes:
        assert re.fullmatch(r"[23456789abcdefghjkmnpqrstvwxyz]{5}-[23456789abcdefghjkmnpqrstvwxyz]{5}", code), code


def test_the_alphabet_has_no_look_alikes() -> None:
    assert not set("01ilou") & set(backup_codes.ALPHABET)
    assert len(backup_codes.ALPHABET) == 30


@pytest.mark.parametrize("typed", ["k7m2q-9xz4d", "K7M2Q-9XZ4D", "k7m2q 9xz4d", " k7m2q9xz4d ", "k7-m2q-9x-z4d"])
def test_case_spaces_and_dashes_normalise_away(typed: str) -> None:
    assert backup_codes.normalize(typed) == "k7m2q9xz4d"


@pytest.mark.parametrize("typed", ["", "k7m2q-9xz4", "k7m2q-9xz4dd", "k7m2q-9xz40", "k7m2q-9xz4l", "k7m2q-9xz4\u00e9"])
def test_wrong_length_or_letters_outside_the_alphabet_are_not_codes(typed: str) -> None:
    assert backup_codes.normalize(typed) is None


def test_digest_is_hmac_sha256_of_the_canonical_code_under_the_key() -> None:
    expected = hmac.new(KEY, b"backup-code\x00k7m2q9xz4d", hashlib.sha256).hexdigest()
    assert backup_codes.digest(KEY, "K7M2Q-9XZ4D") == expected
    assert backup_codes.digest(KEY, "k7m2q9xz4d") == expected
    assert backup_codes.digest(b"o" * 32, "k7m2q9xz4d") != expected


def test_digest_refuses_what_is_not_a_code() -> None:
    with pytest.raises(ValueError, match="not a backup code"):
        backup_codes.digest(KEY, "password1")
