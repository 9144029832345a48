"""Back-Channel Logout from two `idp serve` processes sharing one PostgreSQL database (INTERFACE §3): people sign in
at one replica and out at the other, both replicas' outbox workers race for the messages, and the job board's
endpoint (a real HTTP server on 127.0.0.1) gets exactly one valid logout token per session end."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from idp.container import Idp
from tests.conftest import FAST_ARGON2, drop_pg_database, recreate_pg_database
from tests.replicas.processes import Replica, run_cli, with_services
from tests.support.ports import free_port
from tests.support.receiver import receiver, validate_logout_token

PASSWORD = "a long and correct password"
REDIRECT_URI = "https://jobs.example/callback"
PEOPLE = 12
DELIVERY_DEADLINE_SECONDS = 60
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf(page: httpx.Response) -> str:
    match = _CSRF.search(page.text)
    assert match, (page.status_code, page.text[:300])
    return match.group(1)


def sign_in_get_tokens_and_sign_out(a: Replica, b: Replica, email: str, client_id: str, secret: str) -> None:
    """Sign in and get a code at `a`, redeem it at `b`, sign out at `b`."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        login = browser.get(f"{a.base}/login")
        signed_in = browser.post(
            f"{a.base}/login", data={"username": email, "password": PASSWORD, "csrf_token": csrf(login)}
        )
        assert signed_in.status_code == 303, signed_in.text
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": "s",
            "nonce": "n",
        }
        answer = browser.get(f"{a.base}/authorize", params=params)
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = httpx.post(
            f"{b.base}/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
            auth=(client_id, secret),
        )
        assert tokens.status_code == 200, tokens.text
        confirm = browser.get(f"{b.base}/logout")
        assert browser.post(f"{b.base}/logout", data={"csrf_token": csrf(confirm)}).status_code == 200


def test_two_replicas_deliver_each_logout_token_exactly_once(postgres_database: str, tmp_path: Path) -> None:
    name = f"idp_test_bcl_replicas_{os.getpid()}_{time.monotonic_ns()}"
    url = recreate_pg_database(name)
    port_a = free_port()
    settings: dict[str, Any] = {
        "database_url": url,
        "issuer": f"http://127.0.0.1:{port_a}",
        "outbox_poll_seconds": 0.1,  # both replicas look often, so they race for the same rows
        **FAST_ARGON2,
    }
    run_cli("migrate", settings=settings, cwd=tmp_path)
    with receiver() as board:
        a = Replica("a", settings, tmp_path, port=port_a)
        b = Replica("b", settings, tmp_path)
        try:
            a.wait_ready()
            b.wait_ready()

            async def setup(idp: Idp) -> tuple[str, str]:
                for n in range(PEOPLE):
                    await idp.users.create(f"p{n}@example.com", password=PASSWORD)
                client, secret = await idp.clients.create(
                    "Jobs", redirect_uris=[REDIRECT_URI], backchannel_logout_uri=board.uri
                )
                assert secret is not None
                return client.client_id, secret

            client_id, secret = with_services(settings, setup)
            for n in range(PEOPLE):
                first, second = (a, b) if n % 2 else (b, a)
                sign_in_get_tokens_and_sign_out(first, second, f"p{n}@example.com", client_id, secret)

            deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
            while len(board.tokens) < PEOPLE:
                assert time.monotonic() < deadline, f"{len(board.tokens)} of {PEOPLE} delivered\n{a.log()}\n{b.log()}"
                time.sleep(0.1)
            jwks = httpx.get(f"{a.base}/jwks").json()
        finally:
            # Both stopped before counting: nothing more can arrive.
            a.terminate()
            b.terminate()
            drop_pg_database(name)
        assert len(board.tokens) == PEOPLE
        assert board.tries == PEOPLE
        issuer = settings["issuer"]
        claims = [validate_logout_token(t, jwks, issuer=issuer, client_id=client_id) for t in board.tokens]
        assert len({c["sid"] for c in claims}) == PEOPLE
        assert len({c["jti"] for c in claims}) == PEOPLE
