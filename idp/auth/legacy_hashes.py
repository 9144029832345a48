"""Password hashes imported from job boards (INTERFACE §7): recognised, bounded in cost, and verified.

libpass (the maintained passlib fork) parses and checks the PHC/passlib pbkdf2, Django, phpass and scrypt formats;
bcrypt and argon2-cffi check their own; an ASP.NET Core Identity blob's header is decoded here and its PBKDF2 comes
from hashlib. A hash is never part of an error message: a refusal says which rule it broke, not what it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bcrypt
from argon2 import PasswordHasher, extract_parameters
from argon2 import exceptions as argon2_errors
from passlib import hash as passlib_hash  # type: ignore[import-untyped]  # libpass ships no type hints

from idp.errors import InvalidInput

MAX_HASH_LENGTH = 1024
ASPNET_PREFIX = "aspnet-identity:"

# Ceilings on the work one imported hash may ask of a sign-in: above them a file could make every guess at one
# account cost seconds of CPU or gigabytes of memory in the shared password pool.
MAX_PBKDF2_ROUNDS = 2_000_000
MAX_BCRYPT_COST = 16
MAX_PHPASS_LOG_ROUNDS = 20  # WordPress writes 13 ($P$B), passlib 19
MAX_SCRYPT_LOG_N = 20
MAX_SCRYPT_R = 16
MAX_SCRYPT_P = 4
MAX_ARGON2_MEMORY_KIB = 262_144
MAX_ARGON2_TIME_COST = 16
MAX_ARGON2_PARALLELISM = 16
# bcrypt reads at most 72 bytes; the systems that made these hashes (PHP, Ruby, Node) cut longer passwords there.
BCRYPT_MAX_BYTES = 72


class UnknownHashFormat(InvalidInput):
    """The imported hash is in no supported format, or breaks a cost limit; the message never holds the hash."""


@dataclass(frozen=True)
class _Scheme:
    name: str
    prefixes: tuple[str, ...]
    check: Callable[[str], None]  # raises UnknownHashFormat when malformed or too costly
    verify: Callable[[str, str], bool]


def _refuse(name: str, why: str) -> UnknownHashFormat:
    return UnknownHashFormat(f"password_hash: {name} hash {why}")


# -- bcrypt ---------------------------------------------------------------------------------------------------


def _check_bcrypt(stored: str) -> None:
    parts = stored.split("$")
    if len(parts) != 4 or not parts[2].isdigit() or len(parts[3]) != 53:
        raise _refuse("bcrypt", "is malformed")
    if not 4 <= int(parts[2]) <= MAX_BCRYPT_COST:
        raise _refuse("bcrypt", f"cost must be between 4 and {MAX_BCRYPT_COST}")


def _verify_bcrypt(stored: str, password: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:BCRYPT_MAX_BYTES], stored.encode())
    except ValueError:
        return False


# -- argon2 ---------------------------------------------------------------------------------------------------

_ARGON2 = PasswordHasher()


def _check_argon2(stored: str) -> None:
    try:
        params = extract_parameters(stored)
    except (argon2_errors.InvalidHashError, ValueError):
        raise _refuse("argon2", "is malformed") from None
    if (
        params.memory_cost > MAX_ARGON2_MEMORY_KIB
        or params.time_cost > MAX_ARGON2_TIME_COST
        or params.parallelism > MAX_ARGON2_PARALLELISM
    ):
        raise _refuse("argon2", "asks for more memory or time than idp allows")


def _verify_argon2(stored: str, password: str) -> bool:
    try:
        return _ARGON2.verify(stored, password)
    except (argon2_errors.VerificationError, argon2_errors.InvalidHashError):
        return False


# -- libpass (passlib) formats -----------------------------------------------------------------------------------


def _passlib_scheme(name: str, handler: object, prefixes: tuple[str, ...], limit: Callable[[object], bool]) -> _Scheme:
    def check(stored: str) -> None:
        try:
            parsed = handler.from_string(stored)  # type: ignore[attr-defined]  # passlib handlers are untyped classes
        except (ValueError, TypeError):
            raise _refuse(name, "is malformed") from None
        if not limit(parsed):
            raise _refuse(name, "asks for more work than idp allows")

    def verify(stored: str, password: str) -> bool:
        try:
            return bool(handler.verify(password, stored))  # type: ignore[attr-defined]  # untyped passlib handler
        except (ValueError, TypeError):
            return False

    return _Scheme(name, prefixes, check, verify)


def _rounds_at_most(ceiling: int) -> Callable[[object], bool]:
    return lambda parsed: int(getattr(parsed, "rounds", 0)) <= ceiling


def _scrypt_bounded(parsed: object) -> bool:
    return (
        int(getattr(parsed, "rounds", 99)) <= MAX_SCRYPT_LOG_N
        and int(getattr(parsed, "block_size", 99)) <= MAX_SCRYPT_R
        and int(getattr(parsed, "parallelism", 99)) <= MAX_SCRYPT_P
    )


# -- ASP.NET Core Identity ----------------------------------------------------------------------------------------

# Microsoft.AspNetCore.Identity.PasswordHasher: V2 is 0x00 | salt(16) | subkey(32), PBKDF2-HMAC-SHA1 at 1000
# rounds; V3 is 0x01 | prf(uint32 BE) | rounds(uint32 BE) | salt length(uint32 BE) | salt | subkey.
_ASPNET_PRF = {0: "sha1", 1: "sha256", 2: "sha512"}


@dataclass(frozen=True)
class AspNetIdentityHash:
    """A decoded ASP.NET Core Identity password hash."""

    digest: str
    rounds: int
    salt: bytes
    subkey: bytes


def decode_aspnet(stored: str) -> AspNetIdentityHash:
    """Decode `aspnet-identity:<base64>`; UnknownHashFormat when the blob is not a V2 or V3 hash."""
    try:
        blob = base64.b64decode(stored[len(ASPNET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("ASP.NET Identity", "is not base64") from None
    if len(blob) == 49 and blob[0] == 0x00:
        return AspNetIdentityHash("sha1", 1000, blob[1:17], blob[17:])
    if len(blob) < 13 or blob[0] != 0x01:
        raise _refuse("ASP.NET Identity", "is neither a V2 nor a V3 blob")
    prf, rounds, salt_length = struct.unpack(">III", blob[1:13])
    if prf not in _ASPNET_PRF:
        raise _refuse("ASP.NET Identity", "names an unknown pseudo-random function")
    salt, subkey = blob[13 : 13 + salt_length], blob[13 + salt_length :]
    if salt_length < 16 or len(salt) != salt_length or len(subkey) < 16:
        raise _refuse("ASP.NET Identity", "has a salt or subkey shorter than 128 bits")
    if not 1 <= rounds <= MAX_PBKDF2_ROUNDS:
        raise _refuse("ASP.NET Identity", "asks for more work than idp allows")
    return AspNetIdentityHash(_ASPNET_PRF[prf], rounds, salt, subkey)


def _check_aspnet(stored: str) -> None:
    decode_aspnet(stored)


def _verify_aspnet(stored: str, password: str) -> bool:
    decoded = decode_aspnet(stored)
    derived = hashlib.pbkdf2_hmac(
        decoded.digest, password.encode(), decoded.salt, decoded.rounds, dklen=len(decoded.subkey)
    )
    return hmac.compare_digest(derived, decoded.subkey)


# -- the table ------------------------------------------------------------------------------------------------------

SCHEMES: tuple[_Scheme, ...] = (
    _Scheme("bcrypt", ("$2a$", "$2b$", "$2y$"), _check_bcrypt, _verify_bcrypt),
    _Scheme("argon2", ("$argon2id$", "$argon2i$"), _check_argon2, _verify_argon2),
    _passlib_scheme(
        "pbkdf2-sha256", passlib_hash.pbkdf2_sha256, ("$pbkdf2-sha256$",), _rounds_at_most(MAX_PBKDF2_ROUNDS)
    ),
    _passlib_scheme(
        "pbkdf2-sha512", passlib_hash.pbkdf2_sha512, ("$pbkdf2-sha512$",), _rounds_at_most(MAX_PBKDF2_ROUNDS)
    ),
    _passlib_scheme(
        "django-pbkdf2-sha256",
        passlib_hash.django_pbkdf2_sha256,
        ("pbkdf2_sha256$",),
        _rounds_at_most(MAX_PBKDF2_ROUNDS),
    ),
    _passlib_scheme("phpass", passlib_hash.phpass, ("$P$", "$H$"), _rounds_at_most(MAX_PHPASS_LOG_ROUNDS)),
    _passlib_scheme("scrypt", passlib_hash.scrypt, ("$scrypt$",), _scrypt_bounded),
    _Scheme("aspnet-identity", (ASPNET_PREFIX,), _check_aspnet, _verify_aspnet),
)


def _scheme_of(stored: str) -> _Scheme | None:
    return next((s for s in SCHEMES if stored.startswith(s.prefixes)), None)


def check_legacy_hash(stored: str) -> str:
    """The scheme name of an importable hash; UnknownHashFormat (with a reason, never the hash) otherwise."""
    if len(stored) > MAX_HASH_LENGTH:
        raise UnknownHashFormat(f"password_hash must have at most {MAX_HASH_LENGTH} characters")
    if not stored.isascii() or not stored.isprintable():
        raise UnknownHashFormat("password_hash must be printable ASCII")
    scheme = _scheme_of(stored)
    if scheme is None:
        raise UnknownHashFormat(
            "password_hash is in no supported format (bcrypt, argon2, pbkdf2-sha256/512, Django pbkdf2_sha256, "
            "phpass, scrypt, aspnet-identity)"
        )
    scheme.check(stored)
    return scheme.name


def verify_legacy(stored: str, password: str) -> bool:
    """True when `password` matches the imported hash; any unreadable hash is a mismatch."""
    scheme = _scheme_of(stored)
    if scheme is None:
        return False
    try:
        scheme.check(stored)
    except UnknownHashFormat:
        return False
    return scheme.verify(stored, password)


def first_match(hashes: Sequence[str], password: str) -> int | None:
    """The index of the first hash `password` matches, or None (a merged account holds one per job board)."""
    return next((index for index, stored in enumerate(hashes) if verify_legacy(stored, password)), None)
