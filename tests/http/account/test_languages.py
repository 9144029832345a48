"""Pages in English and Norwegian Bokmål: ui_locales, then the switcher's cookie, then Accept-Language."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from babel.messages.pofile import read_po

from tests.conftest import Running
from tests.support.oidc import auth_params, make_client, query_of

ROOT = Path(__file__).resolve().parents[3]


async def test_english_by_default(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert '<html lang="en">' in page.text
    assert "Sign in" in page.text


async def test_accept_language_picks_bokmal(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", headers={"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"})
    assert '<html lang="nb">' in page.text
    assert "Logg inn" in page.text
    assert "Passord" in page.text


async def test_accept_language_weights_are_respected(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", headers={"Accept-Language": "nb;q=0.2, en;q=0.9"})
    assert '<html lang="en">' in page.text


async def test_ui_locales_from_the_relying_party_wins(running: Running, client: httpx.AsyncClient) -> None:
    rp = await make_client(running.idp)
    start = await client.get(
        "/authorize", params=auth_params(rp, ui_locales="nb en"), headers={"Accept-Language": "en"}
    )
    login = await client.get(start.headers["location"], headers={"Accept-Language": "en"})
    assert '<html lang="nb">' in login.text
    assert query_of(start.headers["location"])["ui_locales"] == "nb en"


async def test_switcher_keeps_the_page_and_remembers_the_choice(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", params={"next": "/account"})
    assert 'href="/login?next=%2Faccount&amp;lang=nb"' in page.text
    switched = await client.get("/login", params={"next": "/account", "lang": "nb"})
    assert '<html lang="nb">' in switched.text
    assert "idp_lang=nb" in switched.headers["set-cookie"]
    again = await client.get("/login")
    assert '<html lang="nb">' in again.text


async def test_error_messages_are_translated(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", params={"lang": "nb"})
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    failed = await client.post(
        "/login", data={"username": "x@example.com", "password": "nope-nope", "csrf_token": token}
    )
    assert "E-postadressen eller passordet er feil." in failed.text


def test_catalogs_are_complete_and_current(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-o",
            str(pot),
            "idp",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        current = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    with (ROOT / "idp/locales/nb/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and m.string and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    missing = current - translated
    assert not missing, (
        f"untranslated messages (run pybabel extract and tools/nb_translations.py): {sorted(missing)[:5]}"
    )
