"""oidc/pkce.py against RFC 7636: the Appendix B vector, the §4.1 and §4.2 syntax, the S256 check."""

from __future__ import annotations

import pytest

from idp.oidc import pkce

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_appendix_b_vector() -> None:
    assert pkce.s256(VERIFIER) == CHALLENGE
    assert pkce.verify_s256(VERIFIER, CHALLENGE)


def test_a_different_verifier_does_not_match() -> None:
    assert not pkce.verify_s256(VERIFIER[:-1] + "Y", CHALLENGE)
    assert not pkce.verify_s256(VERIFIER, CHALLENGE[:-1] + "N")


@pytest.mark.parametrize("verifier", ["a" * 43, "A" * 128, "0123456789-._~" * 4, VERIFIER])
def test_verifier_syntax_accepts_43_to_128_unreserved(verifier: str) -> None:
    assert pkce.is_valid_verifier(verifier)


@pytest.mark.parametrize(
    "verifier",
    [
        "a" * 42,
        "a" * 129,
        "",
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + "=",
        "a" * 42 + " ",
        "a" * 42 + "\u00e9",
        "a" * 42 + "\uff41",
        "a" * 43 + "\n",
        "a" * 42 + "\x00",
    ],
    ids=["42", "129", "empty", "plus", "slash", "padding", "space", "e-acute", "fullwidth", "newline", "nul"],
)
def test_verifier_syntax_refuses_the_rest(verifier: str) -> None:
    assert not pkce.is_valid_verifier(verifier)


def test_a_malformed_verifier_never_matches_and_never_raises() -> None:
    # A non-ASCII verifier would make the hash raise; the check must say no instead.
    assert not pkce.verify_s256("\u00e9" * 43, CHALLENGE)
    assert not pkce.verify_s256(VERIFIER, "\u00e9" * 43)


@pytest.mark.parametrize("challenge", [CHALLENGE, "A" * 43, "-_" * 21 + "a"])
def test_challenge_syntax_is_43_base64url_characters(challenge: str) -> None:
    assert pkce.is_valid_challenge(challenge)


@pytest.mark.parametrize(
    "challenge", [CHALLENGE + "=", CHALLENGE[:-1], CHALLENGE[:-1] + "+", "a" * 42 + ".", "a" * 43 + "\n"]
)
def test_challenge_syntax_refuses_padding_other_lengths_and_other_alphabets(challenge: str) -> None:
    assert not pkce.is_valid_challenge(challenge)


def test_only_s256_is_named() -> None:
    assert pkce.S256 == "S256"
