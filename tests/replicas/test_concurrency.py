"""The concurrency stage: single-use things fired 32-wide at two real replicas on PostgreSQL (issue #10).

Each stage sends 32 requests at once (asyncio.gather of httpx requests, alternating between the replicas) and
asserts exactly the right number of winners and no 5xx: one for an authorization code, a refresh token, a TOTP
step and a backup code; all 32 for correct sign-ins of one account (which once deadlocked in the attempt limiter);
at most the limit for bad admin tokens, the rest 429.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from idp.container import Idp
from tests.conftest import FAST_ARGON2, drop_pg_database, recreate_pg_database, run_sync
from tests.replicas.processes import Replica, run_cli, with_services
from tests.support.mfa import secret_from, totp_code
from tests.support.ports import free_port

WIDTH = 32
PASSWORD = "a long and correct password"
REDIRECT_URI = "https://jobs.example/callback"
ADMIN_LIMIT = 20
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_BACKUP = re.compile(r'class="backup-code">([a-z0-9-]+)<')


@dataclass
class Cluster:
    a: Replica
    b: Replica
    client_id: str
    client_secret: str

    def replica(self, i: int) -> Replica:
        return self.a if i % 2 == 0 else self.b


@pytest.fixture(scope="module")
def cluster(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"idp_test_concurrency_{worker}_{os.getpid()}"
    url = recreate_pg_database(name)
    workdir = tmp_path_factory.mktemp("concurrency")
    port_a = free_port()
    settings: dict[str, Any] = {
        "database_url": url,
        "issuer": f"http://127.0.0.1:{port_a}",
        "secret_key": "s" * 40,
        "encryption_key": "e" * 40,
        "admin_max_failures_per_address": ADMIN_LIMIT,
        **FAST_ARGON2,
    }
    run_cli("migrate", settings=settings, cwd=workdir)
    a = Replica("a", settings, workdir, port=port_a)
    b = Replica("b", settings, workdir)
    try:
        a.wait_ready()
        b.wait_ready()

        async def setup(idp: Idp) -> tuple[str, str]:
            for email in ("many@example.com", "code@example.com", "step@example.com", "backup@example.com"):
                await idp.users.create(email, password=PASSWORD)
            client, secret = await idp.clients.create("Jobs", redirect_uris=[REDIRECT_URI])
            assert secret is not None
            return client.client_id, secret

        client_id, client_secret = with_services(settings, setup)
        yield Cluster(a, b, client_id, client_secret)
    finally:
        for replica in (a, b):
            replica.terminate()
        drop_pg_database(name)


# -- helpers ------------------------------------------------------------------------------------------------


def browser() -> httpx.AsyncClient:
    """One person's browser: cookies are per host, not per port, so one jar serves both replicas."""
    return httpx.AsyncClient(follow_redirects=False, timeout=30)


async def post_form(http: httpx.AsyncClient, replica: Replica, path: str, data: dict[str, str]) -> httpx.Response:
    page = await http.get(replica.base + path)
    match = _CSRF.search(page.text)
    assert match, (page.status_code, page.text[:300])
    return await http.post(replica.base + path, data={**data, "csrf_token": match.group(1)})


async def sign_in(http: httpx.AsyncClient, replica: Replica, email: str) -> httpx.Response:
    return await post_form(http, replica, "/login", {"username": email, "password": PASSWORD})


async def fire(make: Callable[[int], Awaitable[httpx.Response]]) -> list[int]:
    """WIDTH requests at once; their statuses, none a 5xx."""
    responses = await asyncio.gather(*(make(i) for i in range(WIDTH)))
    statuses = [response.status_code for response in responses]
    assert not [s for s in statuses if s >= 500], statuses
    return statuses


async def browsers(n: int) -> list[httpx.AsyncClient]:
    return [browser() for _ in range(n)]


async def close(clients: list[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()


async def tokens_for(cluster: Cluster, email: str) -> tuple[str, dict[str, Any]]:
    """An authorization code for `email` (not redeemed), and a redeemed one's token response."""
    async with browser() as http:
        assert (await sign_in(http, cluster.a, email)).status_code == 303
        params = {
            "response_type": "code",
            "client_id": cluster.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid offline_access",
            "state": "s",
            "nonce": "n",
        }
        codes = []
        for _ in range(2):
            issued = await http.get(cluster.a.base + "/authorize", params=params)
            assert issued.status_code == 303, issued.text
            codes.append(parse_qs(urlsplit(issued.headers["location"]).query)["code"][0])
    redeemed = await token(cluster, cluster.b, code_grant(codes[1]))
    assert redeemed.status_code == 200, redeemed.text
    return codes[0], redeemed.json()


def code_grant(code: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}


async def token(cluster: Cluster, replica: Replica, data: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(replica.base + "/token", data=data, auth=(cluster.client_id, cluster.client_secret))


async def enroll(cluster: Cluster, email: str) -> tuple[str, list[str]]:
    """Turn on two-step verification for `email` through the pages; its TOTP secret and backup codes."""
    async with browser() as http:
        assert (await sign_in(http, cluster.a, email)).status_code == 303
        page = await http.get(cluster.a.base + "/account/security/totp")
        secret = secret_from(page.text)
        done = await post_form(
            http, cluster.a, "/account/security/totp", {"code": totp_code(secret, datetime.now(UTC))}
        )
        # Post/Redirect/Get: the codes are on the page the enrollment redirects to (the same replica's session).
        assert done.status_code == 303, done.text
        shown = await http.get(cluster.a.base + done.headers["location"])
        return secret, _BACKUP.findall(shown.text)


async def password_step(cluster: Cluster, email: str) -> list[httpx.AsyncClient]:
    """WIDTH browsers that each passed the password for `email` and wait at the second step."""
    clients = await browsers(WIDTH)
    steps = await asyncio.gather(*(sign_in(http, cluster.replica(i), email) for i, http in enumerate(clients)))
    assert [s.status_code for s in steps] == [303] * WIDTH, [s.status_code for s in steps]
    assert all(s.headers["location"].startswith("/login/verify") for s in steps)
    return clients


# -- the stages ---------------------------------------------------------------------------------------------


def test_32_correct_sign_ins_of_one_account_all_get_in(cluster: Cluster) -> None:
    async def go() -> list[int]:
        clients = await browsers(WIDTH)
        try:
            return await fire(lambda i: sign_in(clients[i], cluster.replica(i), "many@example.com"))
        finally:
            await close(clients)

    assert run_sync(go) == [303] * WIDTH


def test_one_authorization_code_redeemed_32_times_has_one_winner(cluster: Cluster) -> None:
    async def go() -> list[int]:
        code, _ = await tokens_for(cluster, "code@example.com")
        return await fire(lambda i: token(cluster, cluster.replica(i), code_grant(code)))

    statuses = run_sync(go)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == WIDTH - 1, statuses


def test_one_refresh_token_used_32_times_has_one_winner(cluster: Cluster) -> None:
    async def go() -> list[int]:
        _, tokens = await tokens_for(cluster, "code@example.com")
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        return await fire(lambda i: token(cluster, cluster.replica(i), refresh))

    statuses = run_sync(go)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == WIDTH - 1, statuses


def test_one_totp_code_at_32_second_steps_has_one_winner(cluster: Cluster) -> None:
    async def go() -> list[int]:
        secret, _ = await enroll(cluster, "step@example.com")
        clients = await password_step(cluster, "step@example.com")
        # The next step's code: within the allowed skew, and later than the step the enrollment used.
        code = totp_code(secret, datetime.now(UTC), offset_steps=1)
        try:
            return await fire(lambda i: post_form(clients[i], cluster.replica(i), "/login/verify", {"code": code}))
        finally:
            await close(clients)

    statuses = run_sync(go)
    assert statuses.count(303) == 1, statuses
    assert statuses.count(400) == WIDTH - 1, statuses


def test_one_backup_code_at_32_second_steps_has_one_winner(cluster: Cluster) -> None:
    async def go() -> list[int]:
        _, codes = await enroll(cluster, "backup@example.com")
        clients = await password_step(cluster, "backup@example.com")
        try:
            return await fire(
                lambda i: post_form(clients[i], cluster.replica(i), "/login/recovery", {"code": codes[0]})
            )
        finally:
            await close(clients)

    statuses = run_sync(go)
    assert len([s for s in statuses if s in (200, 303)]) == 1, statuses
    assert statuses.count(400) == WIDTH - 1, statuses


def test_32_bad_admin_tokens_get_at_most_the_limit_of_401s(cluster: Cluster) -> None:
    async def go() -> tuple[list[int], int]:
        async with httpx.AsyncClient(timeout=30) as http:
            statuses = await fire(
                lambda i: http.get(
                    cluster.replica(i).base + "/admin/api/users", headers={"Authorization": f"Bearer idpadm_guess{i}"}
                )
            )
            after = await http.get(cluster.a.base + "/admin/api/users", headers={"Authorization": "Bearer idpadm_x"})
            return statuses, after.status_code

    statuses, after = run_sync(go)
    assert set(statuses) == {401, 429}, statuses
    assert statuses.count(401) <= ADMIN_LIMIT, statuses
    assert after == 429
