"""Helpers for two-step verification tests: enroll through the pages and compute real TOTP codes."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pyotp

from idp.auth.crypto import Sealer
from idp.store import mfa as mfa_store
from tests.conftest import Running
from tests.support.pages import csrf_from

_SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
_CODES = re.compile(r'class="backup-code">([a-z0-9-]+)<')


def totp_code(secret: str, at: datetime, offset_steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(at, counter_offset=offset_steps)


def secret_from(html: str) -> str:
    match = _SECRET.search(html)
    assert match, "no #totp-secret on the page"
    return match.group(1).replace(" ", "")


def codes_from(html: str) -> list[str]:
    return _CODES.findall(html)


async def enroll(browser: httpx.AsyncClient, now: datetime) -> tuple[str, list[str]]:
    """Enable two-step verification for the signed-in browser; returns the secret and the backup codes."""
    page = await browser.get("/account/security/totp")
    assert page.status_code == 200, page.text
    secret = secret_from(page.text)
    done = await browser.post(
        "/account/security/totp", data={"code": totp_code(secret, now), "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 200, done.text
    return secret, codes_from(done.text)


async def authenticator_added_elsewhere(running: Running, user_id: str, now: datetime) -> str:
    """Give the account a confirmed authenticator without touching its sessions, as an import with
    `totp_secret` (INTERFACE §7) does; returns the secret."""
    secret = pyotp.random_base32()
    key = running.idp.settings.encryption_key
    assert key is not None
    sealed = Sealer(key.get_secret_value(), "totp").seal(secret.encode(), aad=user_id)
    async with running.idp.db.transaction() as session:
        assert await mfa_store.enable_totp(session, user_id, sealed, 0, now)
    return secret
