"""AEAD for secrets at rest (AES-256-GCM), keyed from the operator's encryption key by purpose."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.auth.tokens import derive_key

_VERSION = "v1"


class Sealer:
    """Seal and open small secrets; `aad` binds a ciphertext to its row so it cannot be moved to another."""

    def __init__(self, encryption_key: str, purpose: str) -> None:
        self._aead = AESGCM(derive_key(encryption_key, "at-rest:" + purpose))

    def seal(self, plaintext: bytes, aad: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, aad.encode())
        return _VERSION + "." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, aad: str) -> bytes:
        """The plaintext; ValueError if the token was altered, moved, or sealed under another key."""
        version, _, body = token.partition(".")
        if version != _VERSION:
            raise ValueError("unknown sealed-secret version")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], aad.encode())
        except InvalidTag:
            raise ValueError("sealed secret does not open with this key") from None
