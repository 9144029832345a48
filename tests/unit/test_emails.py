"""#10.9, #10.17: one email normaliser (NFKC, case-folded) and the characters an address may not carry."""

from __future__ import annotations

import pytest

from idp.errors import InvalidInput
from idp.services.users import MAX_EMAIL_LENGTH, check_email, normalize_email


@pytest.mark.parametrize(
    "variant",
    [
        "kim@example.com",
        "KIM@EXAMPLE.COM",
        "\u212aim@example.com",  # Kelvin sign
        "ｋｉｍ@example.com",  # fullwidth letters
        "ＫＩＭ＠ｅｘａｍｐｌｅ．ｃｏｍ",  # fullwidth everything, the @ included
        "  kim@example.com ",
    ],
)
def test_look_alikes_of_one_address_have_one_form(variant: str) -> None:
    assert normalize_email(variant) == "kim@example.com"


def test_composed_and_decomposed_accents_are_one_address() -> None:
    assert normalize_email("e\u0301ve@example.no") == normalize_email("\u00c9VE@example.no") == "\u00e9ve@example.no"


def test_case_folding_goes_beyond_lower() -> None:
    assert normalize_email("Straße@example.de") == normalize_email("STRASSE@example.de")


@pytest.mark.parametrize(
    "email",
    [
        "k\u200bim@example.com",  # zero-width space (Cf)
        "ki\u00adm@example.com",  # soft hyphen (Cf)
        "kim\u200d@example.com",  # zero-width joiner (Cf)
        "\u202ekim@example.com",  # right-to-left override (Cf)
        "kim@exa\u2028mple.com",  # line separator (Zl)
        "kim@exa\u2029mple.com",  # paragraph separator (Zp)
        "ki\x07m@example.com",  # control (Cc)
        "ki\x85m@example.com",  # NEL (Cc)
        "ki\u00a0m@example.com",  # no-break space
        "ki\u3000m@example.com",  # ideographic space
        "kim@exa mple.com",
        "ki\tm@example.com",
    ],
)
def test_invisible_control_and_space_characters_are_refused(email: str) -> None:
    with pytest.raises(InvalidInput):
        check_email(email)


def test_a_fullwidth_at_sign_cannot_smuggle_a_second_at() -> None:
    with pytest.raises(InvalidInput):
        check_email("a＠b@example.com")


def test_the_length_of_the_normalised_form_is_checked() -> None:
    """#10.9: İ folds to two characters, so a 319-character address becomes 383 once normalised."""
    email = "\u0130" * 64 + "@" + "a" * 250 + ".com"
    assert len(email) <= MAX_EMAIL_LENGTH < len(normalize_email(email))
    with pytest.raises(InvalidInput, match="normalised"):
        check_email(email)


def test_a_long_local_part_that_folds_within_the_limit_is_accepted() -> None:
    email = "\u0130" * 64 + "@example.com"
    assert check_email(email) == email
    assert len(normalize_email(email)) <= MAX_EMAIL_LENGTH
