"""Password hashes made by the programs job boards use (bcrypt, argon2-cffi, libpass, Django), and ASP.NET Core
Identity blobs built from the published format with `cryptography`'s PBKDF2 (not hashlib, which idp uses)."""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Callable

import bcrypt
from argon2 import PasswordHasher, Type
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from passlib import hash as passlib_hash

# dotnet/aspnetcore src/Identity/test/Identity.Test/PasswordHasherTest.cs: "my password" with the salt 00..0f.
ASPNET_PUBLISHED = {
    "v2": "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg==",
    "v3-sha256-10000": "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP+JIuUEw==",
    "v3-sha512-50": "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw",
}
ASPNET_PUBLISHED_PASSWORD = "my password"


def aspnet_v2(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=32, salt=salt, iterations=1000)  # noqa: S303 - V2 is SHA-1
    return "aspnet-identity:" + base64.b64encode(b"\x00" + salt + kdf.derive(password.encode())).decode()


def aspnet_v3(password: str, *, prf: int = 1, rounds: int = 10_000, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    algorithm = {0: hashes.SHA1(), 1: hashes.SHA256(), 2: hashes.SHA512()}[prf]  # noqa: S303 - ASP.NET V3 with PRF 0 is SHA-1
    subkey = PBKDF2HMAC(algorithm=algorithm, length=32, salt=salt, iterations=rounds).derive(password.encode())
    blob = b"\x01" + struct.pack(">III", prf, rounds, len(salt)) + salt + subkey
    return "aspnet-identity:" + base64.b64encode(blob).decode()


def django_pbkdf2(password: str) -> str:
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    return hasher.encode(password, hasher.salt(), iterations=1000)


def _bcrypt(prefix: bytes) -> Callable[[str], str]:
    return lambda password: bcrypt.hashpw(password.encode(), bcrypt.gensalt(4, prefix=prefix)).decode()


# Cheap costs: the formats are what matter here, not the work factors.
PRODUCERS: dict[str, Callable[[str], str]] = {
    "bcrypt-2b": _bcrypt(b"2b"),
    "bcrypt-2a": _bcrypt(b"2a"),
    # PHP's password_hash writes $2y$; the bcrypt package does not, but the hash is the same algorithm.
    "bcrypt-2y": lambda p: _bcrypt(b"2b")(p).replace("$2b$", "$2y$", 1),
    "argon2id": lambda p: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(p),
    "argon2i": lambda p: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.I).hash(p),
    "pbkdf2-sha256": lambda p: passlib_hash.pbkdf2_sha256.using(rounds=1000).hash(p),
    "pbkdf2-sha512": lambda p: passlib_hash.pbkdf2_sha512.using(rounds=1000).hash(p),
    "django": django_pbkdf2,
    "phpass-P": lambda p: passlib_hash.phpass.using(rounds=8).hash(p),
    "phpass-H": lambda p: passlib_hash.phpass.using(rounds=8, ident="H").hash(p),
    "scrypt": lambda p: passlib_hash.scrypt.using(rounds=10).hash(p),
    "aspnet-v2": aspnet_v2,
    "aspnet-v3": aspnet_v3,
}
