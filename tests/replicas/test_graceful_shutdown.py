"""SIGTERM lets a request in flight finish (uvicorn's graceful shutdown in `idp serve`): a slow sign-in under way
when the orchestrator stops a replica still gets its answer and its session."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from idp.store.migrate import upgrade
from tests.replicas.processes import Replica, run_cli

PASSWORD = "a slow but correct password"
# About 1.5 s of argon2 per sign-in on the CI machine: long enough to be surely in flight when SIGTERM arrives.
SLOW_ARGON2 = {"argon2_memory_kib": 65536, "argon2_time_cost": 40}
SIGNAL_AFTER_SECONDS = 0.4


def test_sigterm_lets_a_slow_sign_in_finish(fresh_pg: Callable[[], str], tmp_path: Path) -> None:
    url = fresh_pg()
    asyncio.run(asyncio.to_thread(upgrade, url))
    settings: dict[str, object] = {"database_url": url, "secret_key": "s" * 40, "encryption_key": "e" * 40}
    settings |= SLOW_ARGON2
    run_cli("users", "create", "--email", "slow@example.com", "--password-stdin",
            settings=settings, cwd=tmp_path, stdin=PASSWORD + "\n")  # fmt: skip
    replica = Replica("slow", {**settings, "issuer": "http://127.0.0.1"}, tmp_path)
    with contextlib.ExitStack() as stack:
        stack.callback(replica.terminate)
        replica.wait_ready()
        browser = httpx.Client(base_url=replica.base, timeout=30)
        stack.callback(browser.close)
        page = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert csrf
        answer: dict[str, object] = {}

        def sign_in() -> None:
            try:
                answer["response"] = browser.post(
                    "/login", data={"username": "slow@example.com", "password": PASSWORD, "csrf_token": csrf.group(1)}
                )
            except httpx.HTTPError as exc:
                answer["error"] = exc
            answer["at"] = time.monotonic()

        thread = threading.Thread(target=sign_in)
        thread.start()
        time.sleep(SIGNAL_AFTER_SECONDS)
        assert thread.is_alive(), "the sign-in was not slow enough to be in flight"
        signalled_at = time.monotonic()
        replica.process.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        status = replica.wait()

    assert "error" not in answer, f"the request in flight was cut off: {answer.get('error')!r}\n{replica.log()}"
    response = answer["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 303, response.text
    assert "idp_session" in response.cookies
    assert float(answer["at"]) > signalled_at  # type: ignore[arg-type]
    assert status in (0, -signal.SIGTERM)
    messages = [record.get("message") for record in replica.log_records()]
    assert "Application shutdown complete." in messages
