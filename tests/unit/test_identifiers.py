"""Identifiers operators type on a command line (client ids, key ids) never begin with "-", which argparse would
read as an option: `idp users subjects --client -x…` failed that way about one time in 64."""

from __future__ import annotations

from idp.auth.tokens import new_identifier


def test_an_identifier_never_reads_as_an_option() -> None:
    # A leading "-" comes up once in 64 draws of token_urlsafe; 4,000 draws would show it with certainty in practice.
    drawn = [new_identifier(18) for _ in range(4000)]
    assert not [value for value in drawn if value.startswith("-")]
    assert len(set(drawn)) == len(drawn)
    assert {len(value) for value in drawn} == {24}
