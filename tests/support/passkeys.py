"""A software WebAuthn authenticator for protocol tests: a P-256 key of its own, attestation "none", and
assertions signed as a real authenticator signs them (WebAuthn §6.1, §6.3), built with fido2's data structures."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData

FLAG = AuthenticatorData.FLAG
_CREATE = re.compile(r'data-passkey-create="([^"]+)"')
_GET = re.compile(r'data-passkey-get="([^"]+)"')
_RESET = re.compile(r'data-passkey-reset="([^"]+)"')


def creation_options_from(page: str) -> str:
    match = _CREATE.search(page)
    assert match, "no passkey creation options on the page"
    return html.unescape(match.group(1))


def request_options_from(page: str) -> str:
    match = _GET.search(page)
    assert match, "no passkey request options on the page"
    return html.unescape(match.group(1))


def reset_options_from(page: str) -> str:
    """The request options of "Use a passkey" on the password-reset page."""
    match = _RESET.search(page)
    assert match, "no passkey request options on the reset page"
    return html.unescape(match.group(1))


class SoftAuthenticator:
    """One credential on one authenticator; `synced` sets the backup-eligible and backup-state flags."""

    def __init__(self, *, origin: str = "http://testserver", synced: bool = False, user_verified: bool = True) -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0
        self.user_handle = b""
        self.flags = FLAG.UP | (FLAG.UV if user_verified else 0) | (FLAG.BE | FLAG.BS if synced else 0)

    @property
    def credential_id_b64(self) -> str:
        return websafe_encode(self.credential_id)

    def register(self, options_json: str, *, origin: str | None = None, rp_id: str | None = None) -> str:
        """The JSON a browser posts back from navigator.credentials.create."""
        options: dict[str, Any] = json.loads(options_json)
        self.user_handle = websafe_decode(options["user"]["id"])
        client_data = CollectedClientData.create(
            "webauthn.create", websafe_decode(options["challenge"]), origin or self.origin
        )
        attested = AttestedCredentialData.create(
            b"\0" * 16, self.credential_id, ES256.from_cryptography_key(self.key.public_key())
        )
        auth_data = AuthenticatorData.create(
            hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest(),
            self.flags | FLAG.AT,
            self.counter,
            attested,
        )
        attestation = AttestationObject.create("none", auth_data, {})
        return json.dumps(
            {
                "id": self.credential_id_b64,
                "rawId": self.credential_id_b64,
                "type": "public-key",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": websafe_encode(client_data),
                    "attestationObject": websafe_encode(attestation),
                    "transports": ["internal", "hybrid"],
                },
            }
        )

    def assertion(
        self,
        options_json: str,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        counter: int | None = None,
    ) -> str:
        """The JSON a browser posts back from navigator.credentials.get; the counter goes up by one unless given."""
        options: dict[str, Any] = json.loads(options_json)
        if counter is None:
            self.counter += 1
            counter = self.counter
        client_data = CollectedClientData.create(
            "webauthn.get", websafe_decode(options["challenge"]), origin or self.origin
        )
        auth_data = AuthenticatorData.create(
            hashlib.sha256((rp_id or options["rpId"]).encode()).digest(), self.flags, counter
        )
        signature = self.key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": self.credential_id_b64,
                "rawId": self.credential_id_b64,
                "type": "public-key",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": websafe_encode(client_data),
                    "authenticatorData": websafe_encode(auth_data),
                    "signature": websafe_encode(signature),
                    "userHandle": websafe_encode(self.user_handle),
                },
            }
        )
