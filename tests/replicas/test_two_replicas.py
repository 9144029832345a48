"""Two `idp serve` processes on two ports sharing one PostgreSQL database, as behind a load balancer.

A person and a relying party may reach either replica for any request: a session, a CSRF token, an authorization
code, a refresh token, an attempt counter and a used TOTP step are the same on both. The replicas start at the same
moment on an empty database with no IDP_SECRET_KEY or IDP_ENCRYPTION_KEY, so they also have to agree on the keys
they generate. Finally a third replica is killed (SIGKILL) under a bounded load: the others keep serving and no
session is lost. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.container import Idp
from tests.conftest import FAST_ARGON2, drop_pg_database, recreate_pg_database
from tests.replicas.processes import Replica, run_cli, with_services
from tests.support.mfa import secret_from, totp_code
from tests.support.ports import free_port

PASSWORD = "a long and correct password"
REDIRECT_URI = "https://jobs.example/callback"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_BACKUP = re.compile(r'class="backup-code">([a-z0-9-]+)<')

# The kill scenario: bounded in requests and time.
LOAD_THREADS = 4
LOAD_REQUESTS_PER_THREAD = 90
KILL_AFTER_REQUESTS = 100
LOAD_TIMEOUT_SECONDS = 60


@dataclass
class Cluster:
    settings: dict[str, Any]
    a: Replica
    b: Replica
    workdir: Path
    client_id: str = ""
    client_secret: str = ""
    extra: list[Replica] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return str(self.settings["issuer"])


@pytest.fixture(scope="module")
def cluster(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"idp_test_two_replicas_{worker}_{os.getpid()}"
    url = recreate_pg_database(name)
    workdir = tmp_path_factory.mktemp("replicas")
    port_a = free_port()
    # No secret_key or encryption_key: the replicas generate them, and must agree, through the database.
    settings: dict[str, Any] = {"database_url": url, "issuer": f"http://127.0.0.1:{port_a}", **FAST_ARGON2}
    run_cli("migrate", settings=settings, cwd=workdir)
    a = Replica("a", settings, workdir, port=port_a)
    b = Replica("b", settings, workdir)  # started at the same moment as A, on a database without any key
    cluster = Cluster(settings, a, b, workdir)
    try:
        a.wait_ready()
        b.wait_ready()

        async def setup(idp: Idp) -> tuple[str, str]:
            for email in ("ann@example.com", "limits@example.com", "totp@example.com", "load@example.com"):
                await idp.users.create(email, password=PASSWORD, name=email.split("@")[0])
            client, secret = await idp.clients.create("Jobs", redirect_uris=[REDIRECT_URI])
            assert secret is not None
            return client.client_id, secret

        cluster.client_id, cluster.client_secret = with_services(settings, setup)
        yield cluster
    finally:
        for replica in (a, b, *cluster.extra):
            replica.terminate()
        drop_pg_database(name)


class Browser:
    """A person's browser. Cookies are per host, not per port, so one jar serves both replicas, as one
    hostname in front of a load balancer would."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    def get(self, replica: Replica, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(replica.base + path, **kw)

    def post(self, replica: Replica, path: str, data: dict[str, str], *, form_from: Replica | None = None,
             form_path: str | None = None) -> httpx.Response:  # fmt: skip
        """POST a form with a CSRF token read from `form_path` on `form_from` (by default the same page)."""
        page = self.get(form_from or replica, form_path or path)
        match = _CSRF.search(page.text)
        assert match, (page.status_code, page.text[:300])
        return self.http.post(replica.base + path, data={**data, "csrf_token": match.group(1)})

    def sign_in(self, replica: Replica, email: str, password: str = PASSWORD, **kw: Any) -> httpx.Response:
        return self.post(replica, "/login", {"username": email, "password": password}, form_path="/login", **kw)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(cluster: Cluster) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": cluster.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email offline_access",
        "state": "st-1",
        "nonce": "n-1",
    }


def token_request(cluster: Cluster, replica: Replica, data: dict[str, str]) -> httpx.Response:
    auth = (cluster.client_id, cluster.client_secret)
    return httpx.post(replica.base + "/token", data=data, auth=auth, timeout=10)


# -- one person, one client, two replicas -------------------------------------------------------------------


def test_replicas_started_together_generated_the_same_keys(cluster: Cluster) -> None:
    jwks_a = httpx.get(cluster.a.base + "/jwks", timeout=10).json()
    jwks_b = httpx.get(cluster.b.base + "/jwks", timeout=10).json()
    assert jwks_a == jwks_b
    assert sorted(key["alg"] for key in jwks_a["keys"]) == ["ES256", "RS256"]


def test_signed_in_on_one_replica_is_signed_in_on_the_other(cluster: Cluster, browser: Browser) -> None:
    a, b = cluster.a, cluster.b
    # The sign-in form comes from A, its CSRF token is checked by B: both derive it from one secret key.
    response = browser.sign_in(b, "ann@example.com", form_from=a)
    assert response.status_code == 303, response.text

    for replica in (a, b):
        account = browser.get(replica, "/account")
        assert account.status_code == 200, (replica.name, account.status_code)
        assert "ann@example.com" in account.text

    signed_out = browser.post(a, "/logout", {}, form_from=b)
    assert signed_out.status_code in (200, 303), signed_out.text
    for replica in (a, b):
        after = browser.get(replica, "/account")
        assert after.status_code == 303
        assert after.headers["location"].startswith("/login")


def test_a_code_from_one_replica_is_redeemed_at_the_other_and_refresh_reuse_is_caught_by_both(
    cluster: Cluster, browser: Browser
) -> None:
    a, b = cluster.a, cluster.b
    assert browser.sign_in(a, "ann@example.com").status_code == 303
    issued = browser.get(a, "/authorize", params=authorize_params(cluster))
    assert issued.status_code == 303, issued.text
    answer = query_of(issued.headers["location"])
    assert answer["iss"] == cluster.issuer

    code = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT_URI}
    tokens = token_request(cluster, b, code)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    keys = KeySet.import_key_set(httpx.get(b.base + "/jwks", timeout=10).json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == cluster.issuer
    assert claims["aud"] == cluster.client_id
    assert claims["nonce"] == "n-1"
    userinfo = httpx.get(a.base + "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == claims["sub"]

    first = body["refresh_token"]
    rotated = token_request(cluster, a, {"grant_type": "refresh_token", "refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    reused = token_request(cluster, b, {"grant_type": "refresh_token", "refresh_token": first})
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The reuse revoked the whole family, on every replica.
    for replica in (a, b):
        family = token_request(cluster, replica, {"grant_type": "refresh_token", "refresh_token": second})
        assert family.status_code == 400, (replica.name, family.text)
        assert family.json()["error"] == "invalid_grant"
    # And a code is single use, whichever replica is asked.
    again = token_request(cluster, a, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_failed_sign_ins_on_both_replicas_count_together(cluster: Cluster, browser: Browser) -> None:
    a, b = cluster.a, cluster.b
    # The default limit: 5 failures for one account within the window, wherever they happened.
    for replica in (a, b, a, b, a):
        failed = browser.sign_in(replica, "limits@example.com", "a wrong password")
        assert failed.status_code == 400, (replica.name, failed.status_code)
    for replica in (b, a):
        refused = browser.sign_in(replica, "limits@example.com")  # the right password, too late
        assert refused.status_code == 429, (replica.name, refused.status_code)
        assert int(refused.headers["retry-after"]) > 0


def test_a_totp_code_used_on_one_replica_is_refused_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    person, replay = Browser(), Browser()
    try:
        # Enroll through the pages on A.
        assert person.sign_in(a, "totp@example.com").status_code == 303
        page = person.get(a, "/account/security/totp")
        assert page.status_code == 200, page.text
        secret = secret_from(page.text)
        enrolled = person.post(a, "/account/security/totp", {"code": totp_code(secret, datetime.now(UTC))})
        # Post/Redirect/Get: the codes are on the page the enrollment redirects to.
        assert enrolled.status_code == 303, enrolled.text
        backup_codes = _BACKUP.findall(person.get(a, enrolled.headers["location"]).text)
        assert len(backup_codes) == 8
        assert person.post(a, "/logout", {}).status_code in (200, 303)

        # Sign in on A with the next step's code (within the allowed skew, later than the enrollment's).
        code = totp_code(secret, datetime.now(UTC), offset_steps=1)
        step_one = person.sign_in(a, "totp@example.com")
        assert step_one.status_code == 303
        assert step_one.headers["location"].startswith("/login/verify")
        verified = person.post(a, "/login/verify", {"code": code, "next": "/account"})
        assert verified.status_code == 303, verified.text
        assert person.get(b, "/account").status_code == 200

        # The same code on B, from another browser: a replay.
        assert replay.sign_in(b, "totp@example.com").status_code == 303
        refused = replay.post(b, "/login/verify", {"code": code})
        assert refused.status_code == 400
        assert "not valid" in refused.text
        # B reads A's enrollment with the same keys: a backup code made on A signs in on B.
        recovered = replay.post(b, "/login/recovery", {"code": backup_codes[0]})
        assert recovered.status_code in (200, 303), recovered.text
        assert replay.get(b, "/account").status_code == 200
    finally:
        person.close()
        replay.close()


# -- a replica dies under load ------------------------------------------------------------------------------


@dataclass
class Outcome:
    replica: str
    status: int | None  # None: no HTTP answer (connection refused or cut)
    after_kill: bool


def test_killing_a_replica_under_load_loses_no_session(cluster: Cluster, browser: Browser) -> None:
    c = Replica("c", cluster.settings, cluster.workdir)
    cluster.extra.append(c)
    c.wait_ready()
    replicas = [cluster.a, cluster.b, c]
    # The session is made on the replica that is about to die.
    assert browser.sign_in(c, "load@example.com").status_code == 303
    cookies = dict(browser.http.cookies)

    killed = threading.Event()
    sent = 0
    lock = threading.Lock()
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS

    def load(offset: int) -> None:
        nonlocal sent
        with httpx.Client(cookies=cookies, timeout=5, follow_redirects=False) as http:
            for i in range(LOAD_REQUESTS_PER_THREAD):
                if time.monotonic() > deadline:
                    return
                replica = replicas[(i + offset) % len(replicas)]
                after_kill = killed.is_set()
                try:
                    status: int | None = http.get(replica.base + "/account").status_code
                except httpx.TransportError:
                    status = None
                with lock:
                    outcomes.append(Outcome(replica.name, status, after_kill))
                    sent += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    while sent < KILL_AFTER_REQUESTS and any(t.is_alive() for t in threads):
        time.sleep(0.005)
    c.process.kill()
    killed.set()
    for thread in threads:
        thread.join(timeout=LOAD_TIMEOUT_SECONDS)
    c.wait()

    assert len(outcomes) == LOAD_THREADS * LOAD_REQUESTS_PER_THREAD, "the load did not finish in time"
    survivors = [o for o in outcomes if o.replica != "c"]
    assert survivors
    assert {o.status for o in survivors} == {200}, "a surviving replica failed a request"
    on_c = [o for o in outcomes if o.replica == "c"]
    # C answered 200 until it died (requests in flight then were cut); after the kill, nothing.
    assert {o.status for o in on_c if o.status is not None} == {200}
    assert any(o.status is None for o in on_c if o.after_kill), "the load did not reach C after the kill"
    assert sum(1 for o in survivors if o.after_kill) >= LOAD_REQUESTS_PER_THREAD  # real load after the kill

    # The session made on C lives on.
    for replica in (cluster.a, cluster.b):
        account = browser.get(replica, "/account")
        assert account.status_code == 200, (replica.name, account.status_code)
        assert "load@example.com" in account.text
        assert httpx.get(replica.base + "/readyz", timeout=5).status_code == 200
