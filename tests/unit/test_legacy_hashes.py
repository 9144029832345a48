"""Imported job-board hashes: every supported format made by its real producer verifies the right password only;
ASP.NET Core Identity blobs agree with Microsoft's published vectors; unknown or too costly hashes are refused with
a reason that never repeats the hash."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import pytest

from idp.auth.legacy_hashes import (
    ASPNET_PREFIX,
    UnknownHashFormat,
    check_legacy_hash,
    decode_aspnet,
    first_match,
    verify_legacy,
)
from idp.auth.passwords import PasswordPool
from tests.support.legacy import ASPNET_PUBLISHED, ASPNET_PUBLISHED_PASSWORD, PRODUCERS, aspnet_v3

PASSWORD = "Tr0ub4dor&3 ∆ ø"


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_each_format_verifies_the_password_and_nothing_else(producer: str) -> None:
    stored = PRODUCERS[producer](PASSWORD)
    check_legacy_hash(stored)
    assert verify_legacy(stored, PASSWORD) is True
    assert verify_legacy(stored, PASSWORD[:-1]) is False
    assert verify_legacy(stored, PASSWORD.upper()) is False
    assert verify_legacy(stored, "") is False


@pytest.mark.parametrize("name", sorted(ASPNET_PUBLISHED))
def test_aspnet_identity_published_vectors(name: str) -> None:
    stored = ASPNET_PREFIX + ASPNET_PUBLISHED[name]
    assert verify_legacy(stored, ASPNET_PUBLISHED_PASSWORD) is True
    assert verify_legacy(stored, "my passworD") is False


def test_aspnet_v3_from_cryptography_matches_the_published_vector() -> None:
    # The second implementation (cryptography's PBKDF2) builds Microsoft's vector byte for byte.
    built = aspnet_v3(ASPNET_PUBLISHED_PASSWORD, prf=1, rounds=10_000, salt=bytes(range(16)))
    assert built == ASPNET_PREFIX + ASPNET_PUBLISHED["v3-sha256-10000"]
    decoded = decode_aspnet(built)
    assert (decoded.digest, decoded.rounds, decoded.salt) == ("sha256", 10_000, bytes(range(16)))


@pytest.mark.parametrize("prf", [0, 1, 2])
def test_aspnet_v3_every_prf(prf: int) -> None:
    stored = aspnet_v3(PASSWORD, prf=prf, rounds=1000)
    assert verify_legacy(stored, PASSWORD) is True
    assert verify_legacy(stored, "nope") is False


BAD = {
    "empty": ("", "no supported format"),
    "md5": ("5f4dcc3b5aa765d61d8327deb882cf99", "no supported format"),
    "sha1 crypt": ("$sha1$40000$jtNX3nZ2$hBNaIXkt4wBI2o5rsi8KejSjNqIq", "no supported format"),
    "bcrypt cut": ("$2b$04$abcdefghijklmnopqrstuv", "bcrypt hash is malformed"),
    "bcrypt costly": ("$2b$31$" + "a" * 53, "cost must be between"),
    "pbkdf2 garbage": ("$pbkdf2-sha256$x$y$z", "pbkdf2-sha256 hash is malformed"),
    "pbkdf2 costly": ("$pbkdf2-sha256$900000000$c2FsdA$" + "A" * 43, "more work"),
    "django costly": ("pbkdf2_sha256$900000000$salt$" + "A" * 43 + "=", "more work"),
    "phpass costly": ("$P$" + "S" + "a" * 8 + "b" * 22, "more work"),
    "argon2 memory": ("$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$" + "A" * 43, "more memory"),
    "aspnet not base64": (ASPNET_PREFIX + "!!!", "not base64"),
    "aspnet version 7": (ASPNET_PREFIX + base64.b64encode(b"\x07" + bytes(60)).decode(), "neither a V2 nor a V3"),
    "aspnet costly": (
        ASPNET_PREFIX + base64.b64encode(b"\x01" + struct.pack(">III", 1, 10**9, 16) + bytes(48)).decode(),
        "more work",
    ),
    "aspnet short salt": (
        ASPNET_PREFIX + base64.b64encode(b"\x01" + struct.pack(">III", 1, 1000, 4) + bytes(36)).decode(),
        "shorter than 128 bits",
    ),
    "too long": ("$2b$" + "a" * 2000, "at most 1024"),
    "control characters": ("$2b$04$\x00", "printable ASCII"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_refusals_give_a_reason_and_never_the_hash(case: str) -> None:
    stored, reason = BAD[case]
    with pytest.raises(UnknownHashFormat) as caught:
        check_legacy_hash(stored)
    assert reason in str(caught.value)
    if len(stored) > 12:
        assert stored[3:] not in str(caught.value)
    assert verify_legacy(stored, "anything") is False


def test_first_match_picks_the_hash_the_password_matches() -> None:
    hashes = [PRODUCERS["bcrypt-2b"]("first board"), PRODUCERS["django"]("second board")]
    assert first_match(hashes, "first board") == 0
    assert first_match(hashes, "second board") == 1
    assert first_match(hashes, "neither") is None


@pytest.fixture
def pool() -> Iterator[PasswordPool]:
    made = PasswordPool(memory_kib=1024, time_cost=1, parallelism=1, workers=1, queue=2)
    yield made
    made.shutdown()


async def test_legacy_verification_runs_in_the_password_pool(pool: PasswordPool) -> None:
    hashes = [PRODUCERS["phpass-P"]("wordpress pw"), PRODUCERS["scrypt"]("other")]
    assert await pool.verify_legacy(hashes, "other") == 1
    assert await pool.verify_legacy(hashes, "nope") is None
