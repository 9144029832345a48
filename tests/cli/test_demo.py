"""`idp demo` serves idp and the example job board; a person signs in on the board through idp and back, twice."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from idp.cli import DEMO_EMAIL, DEMO_PASSWORD
from tests.support.live import accepts, stop, wait_until_closed, wait_until_serving
from tests.support.ports import free_port

START_SECONDS = 60.0
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def idp_command() -> list[str]:
    script = Path(sys.executable).with_name("idp")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "idp.cli"]


@contextmanager
def running_demo(workdir: Path, idp_port: int, board_port: int) -> Iterator[Path]:
    """`idp demo` on the given ports in `workdir` (its own SQLite file, no IDP_* from outside); yields its log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "JOBBOARD_"))}
    env["IDP_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'idp.db'}"
    env["IDP_MANAGEMENT_PORT"] = "0"  # parallel tests must not all claim port 9000
    log = workdir / f"demo-{idp_port}.log"
    command = [*idp_command(), "demo", "--port", str(idp_port), "--jobboard-port", str(board_port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(process, [idp_port, board_port], log, what="idp demo", timeout=START_SECONDS, interval=0.1)
        yield log
    finally:
        stop(process, timeout=30)
    # Stopping idp stops the job board too.
    assert process.returncode == 128 + signal.SIGTERM, log.read_text()
    wait_until_closed(board_port, message="the job board outlived idp")


def sign_in_on_the_board(board: str, idp: str) -> str:
    """Sign in at the job board as a person would: Sign in, idp's form, back on the board. Returns the page."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        at_idp = browser.get(f"{board}/login")
        assert at_idp.status_code == 200
        assert str(at_idp.url).startswith(f"{idp}/login?"), at_idp.url
        form = {
            "username": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "csrf_token": _CSRF.search(at_idp.text).group(1),  # type: ignore[union-attr]
            "next": at_idp.url.params["next"],
        }
        back = browser.post(f"{idp}/login", data=form)
        assert back.status_code == 200, back.text
        assert str(back.url) == f"{board}/", back.url
        assert {"idp_session", "jobboard_session"} <= {cookie.name for cookie in browser.cookies.jar}

        signed_out = browser.post(f"{board}/logout")
        assert signed_out.status_code == 200, signed_out.text
        assert str(signed_out.url).startswith(f"{board}/?state="), signed_out.url
        assert "You have signed out." in signed_out.text
        assert "idp_session" not in {cookie.name for cookie in browser.cookies.jar}
        return html.unescape(back.text)


def test_demo_job_board_signs_in_through_idp_and_keeps_its_client_across_restarts(tmp_path: Path) -> None:
    idp_port, board_port = free_port(), free_port()
    idp, board = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{board_port}"

    with running_demo(tmp_path, idp_port, board_port) as log:
        page = sign_in_on_the_board(board, idp)
        assert f"Job board: {board}" in log.read_text()
    saved = json.loads((tmp_path / "idp.demo-client.json").read_text())

    assert "Signed in as Demo Person." in page
    assert re.search(r"id='amr'>\[\"pwd\"\]<", page), page
    assert "id='acr'>pwd<" in page
    claims = json.loads(re.search(r"<pre id='claims'>(.*?)</pre>", page, re.S).group(1))  # type: ignore[union-attr]
    assert claims["iss"] == idp  # the demo's issuer follows --port
    assert claims["aud"] == saved["client_id"]
    assert (tmp_path / "idp.demo-client.json").stat().st_mode & 0o077 == 0

    # A restart reuses the registered client: same id, same secret, and it still works.
    with running_demo(tmp_path, idp_port, board_port):
        page = sign_in_on_the_board(board, idp)
    assert json.loads((tmp_path / "idp.demo-client.json").read_text()) == saved
    assert "id='acr'>pwd<" in page


def test_demo_refuses_a_busy_job_board_port(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "JOBBOARD_"))}
    env["IDP_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    env["IDP_MANAGEMENT_PORT"] = "0"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*idp_command(), "demo", "--port", str(free_port()), "--jobboard-port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr.strip().splitlines()[-1]


def test_demo_refuses_a_busy_idp_port_before_its_banner(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "JOBBOARD_"))}
    env["IDP_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    env["IDP_MANAGEMENT_PORT"] = "0"
    board_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*idp_command(), "demo", "--port", str(port), "--jobboard-port", str(board_port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"idp: port {port} is in use; choose another with --port"]
    assert result.stdout == ""
    assert not accepts(board_port)  # the job board was not started either


def test_demo_is_sqlite_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    result = subprocess.run(
        [*idp_command(), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "only runs on the embedded SQLite database" in result.stderr


def test_signing_out_at_idp_signs_the_person_out_of_the_demo_board(tmp_path: Path) -> None:
    """Back-Channel Logout end to end: idp's outbox POSTs a logout token, the board checks it and ends its session."""
    idp_port, board_port = free_port(), free_port()
    idp, board = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{board_port}"
    with running_demo(tmp_path, idp_port, board_port), httpx.Client(follow_redirects=True, timeout=10) as browser:
        at_idp = browser.get(f"{board}/login")
        form = {
            "username": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "csrf_token": _CSRF.search(at_idp.text).group(1),  # type: ignore[union-attr]
            "next": at_idp.url.params["next"],
        }
        assert "Signed in as Demo Person." in browser.post(f"{idp}/login", data=form).text
        refused = httpx.post(f"{board}/backchannel-logout", data={"logout_token": "e30.e30.e30"})
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_request"
        assert "Signed in as Demo Person." in browser.get(f"{board}/").text

        confirm = browser.get(f"{idp}/logout")
        assert "Demo job board" in confirm.text.split("will be signed out too:")[1]  # named as signed out
        done = browser.post(f"{idp}/logout", data={"csrf_token": _CSRF.search(confirm.text).group(1)})  # type: ignore[union-attr]
        assert done.status_code == 200

        deadline = time.monotonic() + 30
        while "You were signed out at idp." not in (page := browser.get(f"{board}/")).text:
            assert "Signed in as Demo Person." in page.text
            assert time.monotonic() < deadline, "the board was never told"
            time.sleep(0.2)
        assert "Sign in" in browser.get(f"{board}/").text  # and stays signed out


def wait_for_link(log: Path, email: str, path: str) -> str:
    """The link the demo's mail catcher printed for `email` (it sends from the outbox within a poll or two)."""
    deadline = time.monotonic() + 30
    pattern = re.compile(r"\[demo mail\] to " + re.escape(email) + r": .*\n((?:\[demo mail\]   \S+\n)+)")
    while True:
        for block in pattern.findall(log.read_text()):
            for link in re.findall(r"\[demo mail\]   (\S+)", block):
                if path in link:
                    return str(link)
        assert time.monotonic() < deadline, f"no {path} link for {email} in the demo's output:\n{log.read_text()}"
        time.sleep(0.2)


def test_demo_sign_up_from_the_board_with_the_caught_email(tmp_path: Path) -> None:
    """A newcomer signs up from the demo board, opens the link the demo printed, and is back at the board verified."""
    idp_port, board_port = free_port(), free_port()
    idp, board = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{board_port}"
    email, password = "newcomer@example.com", "violet kettle drums at midnight"
    with (
        running_demo(tmp_path, idp_port, board_port) as log,
        httpx.Client(follow_redirects=True, timeout=10) as browser,
    ):
        assert "local mail catcher" in log.read_text()
        at_idp = browser.get(f"{board}/login")
        assert "Create an account" in at_idp.text
        next_url = at_idp.url.params["next"]
        form = browser.get(f"{idp}/signup", params={"next": next_url})
        assert form.status_code == 200
        sent = browser.post(
            f"{idp}/signup",
            data={
                "email": email,
                "name": "New Comer",
                "password": password,
                "next": next_url,
                "csrf_token": _CSRF.search(form.text).group(1),  # type: ignore[union-attr]
            },
        )
        assert "Check your email" in sent.text
        link = wait_for_link(log, email, "/verify-email?token=")
        assert link.startswith(f"{idp}/verify-email?token=")
        at_login = browser.get(link)  # verified, then on to the board's request, which asks to sign in
        assert str(at_login.url).startswith(f"{idp}/login?"), at_login.url
        back = browser.post(
            f"{idp}/login",
            data={
                "username": email,
                "password": password,
                "csrf_token": _CSRF.search(at_login.text).group(1),  # type: ignore[union-attr]
                "next": at_login.url.params["next"],
            },
        )
        assert str(back.url) == f"{board}/", back.url
        page = html.unescape(back.text)
    claims = json.loads(re.search(r"<pre id='claims'>(.*?)</pre>", page, re.S).group(1))  # type: ignore[union-attr]
    assert claims["email"] == email
    assert claims["email_verified"] is True
