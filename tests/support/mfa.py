"""Helpers for two-step verification tests: enroll through the pages and compute real TOTP codes."""

from __future__ import annotations

import html
import re
from datetime import datetime

import httpx
import pyotp

from idp.auth import backup_codes
from idp.auth.crypto import Sealer
from idp.auth.tokens import derive_key
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
    shown = await codes_page(browser, done)
    assert shown.status_code == 200, shown.text
    return secret, codes_from(shown.text)


async def codes_page(browser: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Post/Redirect/Get: the backup-codes page that a successful enrollment, regeneration or first second step
    redirects to (the codes wait there, sealed to the session, never in the URL)."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/account/security/backup-codes"), location
    return await browser.get(location)


def codes_page_sync(browser: httpx.Client, response: httpx.Response) -> httpx.Response:
    """`codes_page` for a synchronous client."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/account/security/backup-codes"), location
    return browser.get(location)


async def authenticator_added_elsewhere(running: Running, user_id: str, now: datetime) -> str:
    """Give the account a confirmed authenticator and its backup codes without touching its sessions (enrolling
    in another browser would end them); returns the secret. An import's authenticator, which comes without
    backup codes, is tested through the import itself (tests/http/onboarding)."""
    secret = pyotp.random_base32()
    key = running.idp.settings.encryption_key
    assert key is not None
    sealed = Sealer(key.get_secret_value(), "totp").seal(secret.encode(), aad=user_id)
    backup_key = derive_key(key.get_secret_value(), "backup-codes")
    async with running.idp.db.transaction() as session:
        assert await mfa_store.enable_totp(session, user_id, sealed, 0, now)
        codes = [backup_codes.digest(backup_key, c) for c in backup_codes.generate()]
        await mfa_store.replace_backup_codes(session, user_id, codes, now)
    return secret


_HIDDEN = re.compile(r'<input type="hidden" name="(next|done)" value="([^"]*)">')


async def confirm_saved(browser: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    """Tick "I have saved these codes" on the backup-codes page and go on: the 303 to wherever the person goes."""
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
    response = await browser.post(
        "/account/security/backup-codes/saved", data={**fields, "saved": "yes", "csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 303, response.text
    return response
