"""idp beside node-oidc-provider, on one machine in one run: the benchmark of issue #12. Not a test.

    .venv/bin/python bench/side_by_side.py            # medians of 3 x 10 s, then idp --workers 2 unpinned
    .venv/bin/python bench/side_by_side.py --quick    # 1 x 3 s, to see that everything works

Starts node-oidc-provider (bench/node, pinned, in-memory adapter) and `idp serve` (PostgreSQL database created for
the run, `idp migrate`, INFO access logs), both pinned to CPU 0, drives them with wrk from CPU 1, signs people in
to idp with a Python client doing the real form flow, and prints one table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_DIR = BENCH / "node"
HOST = "127.0.0.1"  # never anything else
DB = "idp_bench_sbs"
DB_URL = f"postgresql+asyncpg://postgres@{HOST}:5432/{DB}"
# None: idp talks to PostgreSQL over TCP on 127.0.0.1; a directory: over the Unix socket in it (`--pg-socket`).
PG_SOCKET: str | None = None


def db_url(db: str) -> str:
    """idp's IDP_DATABASE_URL for the bench database `db`, over TCP or the Unix socket (`--pg-socket`)."""
    if PG_SOCKET:
        return f"postgresql+asyncpg://postgres@/{db}?host={PG_SOCKET}"
    return f"postgresql+asyncpg://postgres@{HOST}:5432/{db}"


REDIRECT_URI = "http://127.0.0.1:9/cb"  # never followed: the bench reads the code from the Location header
PASSWORD = "bench password, long enough"  # noqa: S105 - accounts of a throwaway database
USER_SCOPE = "openid email profile offline_access"
SERVER_CPU, LOAD_CPU = "0", "1"
DISTURBED_PCT = 15.0
SIGNIN_MAX_RAMP = 60.0  # at most this long for every person to sign in once before a sign-in run is measured
HZ = os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(time.strftime("%H:%M:%S"), text, file=sys.stderr, flush=True)


# -- machine: CPU accounting -------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def tree_ticks(root: int) -> int:
    """CPU ticks of a process and all its live descendants (uvicorn's supervisor and its --workers)."""
    parents: dict[int, int] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields:
            parents[pid] = int(fields[1])
    total = 0
    for pid in parents:
        cur = pid
        for _ in range(10):
            if cur == root:
                total += _ticks(pid)
                break
            cur = parents.get(cur, 0)
            if cur <= 1:
                break
    return total


def _cpus() -> dict[str, list[int]]:
    """(busy, total, softirq) ticks of each CPU from /proc/stat."""
    result = {}
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(v) for v in values[:8]]
                idle = numbers[3] + numbers[4]
                result[name] = [sum(numbers) - idle, sum(numbers), numbers[6]]
    return result


class PgWatch:
    """CPU of the PostgreSQL backends serving one database, sampled every 0.1 s during a run.

    Sampling (rather than two snapshots) also catches pool connections opened and closed mid-run, and, unlike the
    postmaster's total for exited children, leaves out the backends of other databases: other helpers' test suites
    on the same server do not count as idp's PostgreSQL CPU."""

    def __init__(self, db: str | None) -> None:
        self.db = db
        self.first: dict[int, int] = {}  # pid: ticks when first seen (0 for backends that started mid-run)
        self.last: dict[int, int] = {}
        self.not_ours: set[int] = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _scan(self, initial: bool) -> None:
        assert self.db is not None
        for pid in _all_pids():
            if pid in self.not_ours:
                continue
            if pid in self.last:
                ticks = _ticks(pid)
                if ticks:
                    self.last[pid] = ticks
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
                with open(f"/proc/{pid}/comm", "rb") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if title.startswith("postgres:") and self.db in title.split():
                ticks = _ticks(pid)
                self.first[pid] = ticks if initial else 0
                self.last[pid] = ticks
            elif comm == b"postgres" and not title.startswith("postgres:"):
                continue  # just forked, no title yet: look again next time
            else:
                self.not_ours.add(pid)

    def _run(self) -> None:
        while not self.stopping.wait(0.1):
            self._scan(initial=False)

    def start(self) -> PgWatch:
        if self.db:
            self._scan(initial=True)
            self.thread.start()
        return self

    def stop(self) -> int:
        """Ticks used by the database's backends since start()."""
        if not self.db:
            return 0
        self.stopping.set()
        self.thread.join()
        self._scan(initial=False)
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


@dataclass
class Snapshot:
    t: float
    server: int
    cpus: dict[str, list[int]]


def snapshot(server_pid: int) -> Snapshot:
    return Snapshot(t=time.monotonic(), server=tree_ticks(server_pid), cpus=_cpus())


def cpu_used(before: Snapshot, after: Snapshot, pg_ticks: int, load_ticks: int) -> dict[str, float]:
    """Percent of one core used between two snapshots: server, PostgreSQL, load generator, softirq, other."""
    seconds = max(after.t - before.t, 1e-6)
    pct = {
        "server": 100 * (after.server - before.server) / HZ / seconds,
        "pg": 100 * pg_ticks / HZ / seconds,
        "load": 100 * load_ticks / HZ / seconds,
    }
    busy = soft = 0.0
    for name, (b, total, s) in after.cpus.items():
        b0, total0, s0 = before.cpus.get(name, (0, 0, 0))
        span = max(total - total0, 1)
        busy += (b - b0) / span
        soft += (s - s0) / span
    pct["softirq"] = 100 * soft
    pct["other"] = max(100 * busy - pct["server"] - pct["pg"] - pct["load"] - pct["softirq"], 0.0)
    return pct


def machine_quiet(seconds: float = 3.0) -> dict[str, Any]:
    """Load average, and which processes used CPU during `seconds` of watching (before anything starts)."""
    before = {pid: _ticks(pid) for pid in _all_pids()}
    cpus0 = _cpus()
    time.sleep(seconds)
    cpus1 = _cpus()
    busy: list[tuple[float, int, str]] = []
    for pid in _all_pids():
        used = _ticks(pid) - before.get(pid, 0)
        pct = 100 * used / HZ / seconds
        if pct >= 5 and pid != os.getpid():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:80]
            except OSError:
                cmd = "?"
            busy.append((pct, pid, cmd))
    busy.sort(reverse=True)
    total_busy = sum(cpus1[n][0] - cpus0[n][0] for n in cpus1)
    total = sum(cpus1[n][1] - cpus0[n][1] for n in cpus1)
    with open("/proc/loadavg", encoding="ascii") as f:
        loadavg = " ".join(f.read().split()[:3])
    busy_pct = 100 * total_busy / max(total, 1)
    return {
        "loadavg": loadavg,
        "busy_pct": round(busy_pct, 1),
        "busy_processes": [f"{pct:.0f}% {cmd}" for pct, _, cmd in busy[:5]],
        "quiet": busy_pct < 10 and not busy,
    }


def wait_quiet(max_seconds: float, threshold_pct: float = 10.0, window: float = 3.0) -> None:
    """Return once the CPUs together were under `threshold_pct` busy for `window` s, or after `max_seconds`."""
    if max_seconds <= 0:
        return
    started = time.monotonic()
    while True:
        before = _cpus()
        time.sleep(window)
        after = _cpus()
        busy = sum(after[n][0] - before[n][0] for n in after)
        total = sum(after[n][1] - before[n][1] for n in after)
        pct = 100 * busy / max(total, 1)
        waited = time.monotonic() - started
        if pct < threshold_pct:
            if waited > window + 1:
                say(f"waited {waited:.0f} s for a quiet machine")
            return
        if waited >= max_seconds:
            say(f"machine still {pct:.0f}% busy after {waited:.0f} s; measuring anyway")
            return


# -- processes ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    parts = urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0] if isinstance(proc.args, list) else proc.args} exited; see {log}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready within {seconds:.0f} s; see {log}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(25)  # idp lets requests in flight finish for up to 20 s
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def psql(*commands: str) -> None:
    args = ["psql", "-qX", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", "SET client_min_messages = warning"]
    for c in commands:
        args += ["-c", c]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **PG_ENV})  # noqa: S603


PG_ENV = {"PGHOST": HOST, "PGPORT": "5432", "PGUSER": "postgres", "PGCONNECT_TIMEOUT": "5"}


# -- HTTP helpers for preparing tokens ----------------------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    """client_secret_basic: id and secret form-urlencoded, then base64 (RFC 6749 §2.3.1)."""
    return "Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Target:
    """One server under test, and what the benchmark needs from it."""

    name: str
    base: str
    proc: subprocess.Popen[bytes]
    client_id: str
    client_secret: str
    db: str | None = None  # PostgreSQL database whose backends count as its PostgreSQL CPU
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> str:
        return basic(self.client_id, self.client_secret)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _location(response: Any) -> str:
    location = response.headers.get("location")
    if response.status_code not in (302, 303) or not location:
        raise SystemExit(f"expected a redirect, got {response.status_code}: {response.text[:300]}")
    return location


def user_tokens(target: Target, email: str | None, count: int) -> list[dict[str, Any]]:
    """`count` token responses (access, refresh, ID token) through the authorization code flow, one sign-in.

    idp: the real form sign-in once, then single sign-on for each further code. node: its authorization endpoint
    and the bench's interaction route (bench/node/provider.js), which signs the bench account in and consents."""
    import httpx

    results = []
    with httpx.Client(base_url=target.base, follow_redirects=False, timeout=30) as http:
        if target.name == "idp":
            page = http.get("/login")
            csrf = _CSRF.search(page.text)
            assert csrf, page.text[:300]
            signed = http.post("/login", data={"username": email, "password": PASSWORD, "csrf_token": csrf[1]})
            _location(signed)
        for _ in range(count):
            verifier, challenge = pkce()
            params = {
                "response_type": "code",
                "client_id": target.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": USER_SCOPE,
                "state": secrets.token_urlsafe(8),
                "nonce": secrets.token_urlsafe(8),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            if target.name == "node":
                params["prompt"] = "consent"  # node drops offline_access without it
            url = target.paths["authorization_endpoint"] + "?" + urlencode(params)
            for _hop in range(10):
                location = _location(http.get(url))
                if location.startswith(REDIRECT_URI):
                    break
                url = location
            else:
                raise SystemExit(f"{target.name}: no code after 10 redirects")
            query = parse_qs(urlsplit(location).query)
            if "code" not in query:
                raise SystemExit(f"{target.name}: authorization failed: {query}")
            answer = http.post(
                target.paths["token_endpoint"],
                headers={"Authorization": target.auth},
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                },
            )
            if answer.status_code != 200 or "refresh_token" not in answer.json():
                raise SystemExit(f"{target.name}: token exchange failed: {answer.status_code} {answer.text[:300]}")
            results.append(answer.json())
    return results


def endpoint_path(target: Target, key: str) -> str:
    return urlsplit(target.paths[key]).path


# -- wrk ---------------------------------------------------------------------------------------------------------


@dataclass
class Work:
    name: str
    label: str


WORKS = [
    Work("discovery", "discovery"),
    Work("jwks", "JWKS"),
    Work("token", "client_credentials token"),
    Work("introspect", "introspection"),
    Work("userinfo", "userinfo"),
    Work("refresh", "refresh, rotated"),
]


def wrk_setup(target: Target, work: str, connections: int, email: str | None) -> tuple[str, str, dict[str, str]]:
    """(path, Lua script, environment) for one work, with fresh tokens where it needs them; checked once by hand."""
    import httpx

    env = {"BENCH_METHOD": "GET", "BENCH_BODY": "", "BENCH_AUTH": ""}
    script = str(BENCH / "post.lua")
    if work == "discovery":
        path = "/.well-known/openid-configuration"
    elif work == "jwks":
        path = endpoint_path(target, "jwks_uri")
    elif work == "token":
        path = endpoint_path(target, "token_endpoint")
        env.update(BENCH_METHOD="POST", BENCH_BODY="grant_type=client_credentials", BENCH_AUTH=target.auth)
    elif work == "introspect":
        path = endpoint_path(target, "introspection_endpoint")
        token = user_tokens(target, email, 1)[0]["access_token"]
        body = f"token={token}&token_type_hint=access_token"
        env.update(BENCH_METHOD="POST", BENCH_BODY=body, BENCH_AUTH=target.auth)
    elif work == "userinfo":
        path = endpoint_path(target, "userinfo_endpoint")
        token = user_tokens(target, email, 1)[0]["access_token"]
        env.update(BENCH_AUTH=f"Bearer {token}")
    elif work == "refresh":
        path = endpoint_path(target, "token_endpoint")
        # One family per connection and a few spare: each refresh token is used once, its successor next.
        tokens = [t["refresh_token"] for t in user_tokens(target, email, connections + 4)]
        env.update(BENCH_REFRESH_TOKENS=" ".join(tokens), BENCH_AUTH=target.auth)
        script = str(BENCH / "refresh.lua")
        return path, script, env  # checking by hand would spend a token
    else:
        raise SystemExit(f"unknown work {work}")
    headers = {"Authorization": env["BENCH_AUTH"]} if env["BENCH_AUTH"] else {}
    if env["BENCH_METHOD"] == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    answer = httpx.request(env["BENCH_METHOD"], target.base + path, headers=headers, content=env["BENCH_BODY"])
    if answer.status_code != 200 or (work == "introspect" and '"active":true' not in answer.text.replace(" ", "")):
        raise SystemExit(f"{target.name} {work}: fails before the benchmark: {answer.status_code} {answer.text[:300]}")
    return path, script, env


def run_wrk(
    target: Target, path: str, script: str, env: dict[str, str], seconds: int, connections: int, db: str | None
) -> dict[str, Any]:
    """One wrk run pinned to the load CPU; wrk's summary, errors and the CPU used meanwhile."""
    args = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    args += ["--latency", "-s", script, target.base + path]
    watch = PgWatch(db).start()
    before = snapshot(target.proc.pid)
    started = os.times()
    out = subprocess.run(  # noqa: S603 - fixed arguments
        args, env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    ended = os.times()
    after = snapshot(target.proc.pid)
    pg_ticks = watch.stop()
    match = re.search(r"^BENCH_JSON (\{.*\})$", out.stdout, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk gave no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    result = json.loads(match.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    result["errors"] = (int(non2xx[1]) if non2xx else 0) + sum(v for k, v in result.items() if k.startswith("err_"))
    wrk_ticks = round(
        (ended.children_user + ended.children_system - started.children_user - started.children_system) * HZ
    )
    result["cpu"] = cpu_used(before, after, pg_ticks, wrk_ticks)
    return result


# -- password sign-in --------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def probe(management: str, seconds: float) -> subprocess.Popen[str]:
    """/healthz on the management port every 10 ms, from the load CPU: its latency is the event loop's delay."""
    parts = urlsplit(management)
    args = ["taskset", "-c", LOAD_CPU, sys.executable, str(BENCH / "signin.py"), "probe", parts.hostname or HOST]
    args += [str(parts.port), "/healthz", str(seconds), "0.01"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)  # noqa: S603


def sign_in_run(target: Target, emails: list[str], concurrency: int, seconds: int, management: str) -> dict[str, Any]:
    """The real form flow, `concurrency` people at once (bench/signin.py); once each has signed in, `seconds`
    measured, with the loop-lag probe and the CPU accounting over the measured part only."""
    args = ["taskset", "-c", LOAD_CPU, sys.executable, str(BENCH / "signin.py"), "flow", target.base]
    args += [target.client_id, REDIRECT_URI, str(concurrency), str(seconds), str(SIGNIN_MAX_RAMP), *emails]
    client = subprocess.Popen(  # noqa: S603
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert client.stdin is not None
    assert client.stdout is not None
    client.stdin.write(PASSWORD + "\n")
    client.stdin.close()
    if client.stdout.readline().strip() != "start":
        client.wait(timeout=60)
        raise SystemExit(f"sign-in client failed: {client.stderr.read()[-1000:] if client.stderr else ''}")
    watch = PgWatch(target.db).start()
    before = snapshot(target.proc.pid)
    load_before = tree_ticks(client.pid)
    prober = probe(management, seconds)
    time.sleep(seconds)
    after = snapshot(target.proc.pid)
    load_ticks = tree_ticks(client.pid) - load_before
    pg_ticks = watch.stop()
    stdout = client.stdout.read()  # the people finish the sign-ins in flight, then it prints and exits
    if client.wait(timeout=300) != 0:
        raise SystemExit(f"sign-in client failed: {client.stderr.read()[-1000:] if client.stderr else ''}")
    lag = json.loads(prober.communicate(timeout=60)[0] or "[]")
    data = json.loads(stdout)
    return {
        "rate": len(data["post"]) / data["seconds"],
        "ok": len(data["post"]),
        "failed": len(data["failed"]),
        "ramp_failed": len(data["ramp_failed"]),
        "ramp_seconds": data["ramp_seconds"],
        "ramp_timed_out": data.get("ramp_timed_out", False),
        "5xx": data["5xx"],
        "503": data["503"],
        "exceptions": len(data["exceptions"]),
        "post_p50": pct(data["post"], 50),
        "post_p99": pct(data["post"], 99),
        "flow_p50": pct(data["flow"], 50),
        "flow_p99": pct(data["flow"], 99),
        "lag_p50": pct(lag, 50),
        "lag_p99": pct(lag, 99),
        "lag_max": max(lag) if lag else float("nan"),
        "cpu": cpu_used(before, after, pg_ticks, load_ticks),
    }


def argon2_bound(workers: int, pinned: bool) -> dict[str, float]:
    """argon2id at idp's cost: one verification's median (pinned to the server CPU), and the pool's throughput."""
    code = (
        "import asyncio, json, statistics, sys; sys.path.insert(0, sys.argv[1]);"
        "import passwords as p; w = int(sys.argv[2]);"
        "t = statistics.median(p.single_verification(15));"
        "s, ok = asyncio.run(p.pool_throughput(30 * w, w, 32));"
        "print(json.dumps({'median': t, 'pool_rate': ok / s}))"
    )
    args = [sys.executable, "-c", code, str(BENCH), str(workers)]
    if pinned:
        args = ["taskset", "-c", SERVER_CPU, *args]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)  # noqa: S603
    return json.loads(out.stdout)


def metrics_lag(management: str) -> str:
    """What idp's /metrics says about event-loop lag, if anything."""
    try:
        parts = urlsplit(management)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except OSError as exc:
        return f"/metrics unreadable ({exc})"
    lines = [line for line in text.splitlines() if "lag" in line.lower() and not line.startswith("#")]
    return "; ".join(lines[:6]) if lines else "none"


# -- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Options:
    runs: int
    seconds: int
    warmup: int
    connections: int
    signin: list[int]
    users: int
    workers_run: bool
    works: list[str]
    out: Path
    wait_quiet: float


def ensure_tools() -> None:
    if not Path(sys.executable).with_name("idp").exists():
        raise SystemExit("run it with idp's virtualenv: .venv/bin/python bench/side_by_side.py (see bench/README.md)")
    for tool in ("taskset", "psql", "node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing")
    if shutil.which("wrk") is None:
        say("wrk is missing: apt-get install -y wrk")
        subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)  # noqa: S607
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 CPUs: the servers on CPU 0, the load on CPU 1")
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        say("npm ci in bench/node (node-oidc-provider, pinned by package-lock.json)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)  # noqa: S607


def idp_cli(*args: str, stdin: str | None = None) -> str:
    idp = Path(sys.executable).with_name("idp")
    env = {**os.environ, "IDP_DATABASE_URL": DB_URL, "IDP_LOG_LEVEL": "WARNING"}
    out = subprocess.run(  # noqa: S603
        [str(idp), *args], input=stdin, capture_output=True, text=True, env=env, cwd=OUT_DIR, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"idp {args[0]} {args[1] if len(args) > 1 else ''} failed: {out.stderr.strip()[-500:]}")
    return out.stdout


OUT_DIR = Path(".")


def prepare_idp(users: int) -> tuple[str, str, list[str]]:
    """A fresh database, migrated, with the bench client and `users` accounts, all through idp's CLI."""
    say(f"database {DB}: drop, create, idp migrate")
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}")
    idp_cli("migrate")
    grants = ["--grant-type", "client_credentials", "--grant-type", "authorization_code"]
    grants += ["--grant-type", "refresh_token"]
    client = json.loads(idp_cli("clients", "create", "--name", "bench", "--redirect-uri", REDIRECT_URI, *grants))
    emails = [f"person{i}@bench.invalid" for i in range(users)]
    say(f"idp users create x {users} (8 at a time)")
    for first in range(0, users, 8):
        batch = emails[first : first + 8]
        idp = str(Path(sys.executable).with_name("idp"))
        env = {**os.environ, "IDP_DATABASE_URL": DB_URL, "IDP_LOG_LEVEL": "WARNING"}
        procs = [
            subprocess.Popen(  # noqa: S603
                [idp, "users", "create", "--email", e, "--password-stdin"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                cwd=OUT_DIR,
            )
            for e in batch
        ]
        for p in procs:
            _, err = p.communicate(PASSWORD.encode() + b"\n", timeout=120)
            if p.returncode != 0:
                raise SystemExit(f"idp users create failed: {err.decode()[-300:]}")
    return client["client_id"], client["client_secret"], emails


def start_idp(client: tuple[str, str], workers: int, pinned: bool) -> tuple[Target, str]:
    port, mport = free_port(), free_port()
    base = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "IDP_DATABASE_URL": DB_URL,
        "IDP_ISSUER": base,
        "IDP_LOG_LEVEL": "INFO",
        "IDP_MANAGEMENT_PORT": str(mport),
    }
    idp = str(Path(sys.executable).with_name("idp"))
    args = [idp, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    if pinned:
        args = ["taskset", "-c", SERVER_CPU, *args]
    log = OUT_DIR / f"idp-workers{workers}.log"
    say(f"idp serve --workers {workers} {'on CPU ' + SERVER_CPU if pinned else 'unpinned'}, INFO logs to {log}")
    proc = subprocess.Popen(args, env=env, cwd=OUT_DIR, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # noqa: S603
    target = Target("idp", base, proc, client[0], client[1], db=DB)
    wait_http(base + "/.well-known/openid-configuration", proc, log)
    return target, f"http://{HOST}:{mport}"


def start_node() -> Target:
    port = free_port()
    client_id, secret = "bench-" + secrets.token_hex(4), secrets.token_urlsafe(32)
    log = OUT_DIR / "node.log"
    args = ["taskset", "-c", SERVER_CPU, "node", str(NODE_DIR / "provider.js"), str(port), client_id, secret]
    args.append(REDIRECT_URI)
    say(f"node-oidc-provider on CPU {SERVER_CPU}, log {log}")
    env = {**os.environ, "NODE_ENV": "production"}
    proc = subprocess.Popen(args, env=env, cwd=NODE_DIR, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # noqa: S603
    base = f"http://{HOST}:{port}"
    target = Target("node", base, proc, client_id, secret)
    wait_http(base + "/.well-known/openid-configuration", proc, log)
    return target


def discover(target: Target) -> None:
    import httpx

    target.paths = httpx.get(target.base + "/.well-known/openid-configuration").json()


def bench_works(targets: list[Target], opts: Options, emails: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each work against each target: a warm-up, then `runs` measured runs, node and idp taking turns."""
    results: dict[str, list[dict[str, Any]]] = {}  # "work/server": one result per run
    for work in opts.works:
        wait_quiet(opts.wait_quiet)
        setups = {}
        for t in targets:
            setups[t.name] = wrk_setup(t, work, opts.connections, emails[0])
            path, script, env = setups[t.name]
            if opts.warmup:
                run_wrk(t, path, script, env, opts.warmup, opts.connections, t.db)
        for n in range(opts.runs):
            for t in targets if n % 2 == 0 else list(reversed(targets)):
                if work == "refresh" and (n > 0 or opts.warmup):
                    setups[t.name] = wrk_setup(t, work, opts.connections, emails[0])  # the last run lost some
                path, script, env = setups[t.name]
                r = run_wrk(t, path, script, env, opts.seconds, opts.connections, t.db)
                results.setdefault(f"{work}/{t.name}", []).append(r)
                c = r["cpu"]
                say(
                    f"{work:10} {t.name:5} run {n + 1}: {r['rps']:8.0f} req/s  p99 {r['p99_us'] / 1000:6.1f} ms  "
                    f"errors {r['errors']}  CPU server {c['server']:.0f}% PG {c['pg']:.0f}% wrk {c['load']:.0f}% "
                    f"other {c['other']:.0f}%"
                )
    return results


def bench_signin(target: Target, management: str, opts: Options, emails: list[str]) -> dict[int, list[dict[str, Any]]]:
    results: dict[int, list[dict[str, Any]]] = {}
    for concurrency in opts.signin:
        wait_quiet(opts.wait_quiet)
        for n in range(opts.runs):
            # Each run ramps up unmeasured first, until every person has signed in once (bench/signin.py).
            r = sign_in_run(target, emails[:concurrency], concurrency, opts.seconds, management)
            results.setdefault(concurrency, []).append(r)
            say(
                f"sign-in x{concurrency} run {n + 1}: {r['rate']:.1f}/s  POST p50 {r['post_p50'] * 1000:.0f} ms "
                f"p99 {r['post_p99'] * 1000:.0f} ms  5xx {r['5xx']}  failed {r['failed']}  "
                f"probe p99 {r['lag_p99'] * 1000:.1f} ms  CPU idp {r['cpu']['server']:.0f}% PG {r['cpu']['pg']:.0f}%"
            )
    return results


def med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def med_cpu(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r["cpu"][key] for r in rows)


def table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def per_cpu(idp_rows: list[dict[str, Any]], node_rows: list[dict[str, Any]]) -> str:
    """idp/node in requests per second of server CPU: less moved than req/s when other processes share CPU 0."""
    if not node_rows:
        return "—"
    idp = statistics.median(r["rps"] / max(r["cpu"]["server"], 1) for r in idp_rows)
    node = statistics.median(r["rps"] / max(r["cpu"]["server"], 1) for r in node_rows)
    return f"{idp / node:.2f}×"


# Issue #12's targets, shown beside each row (ratios to node in one run; sign-in against the argon2 bound).
TARGETS = {
    "discovery": "≥ 2×",
    "jwks": "≥ 2×",
    "token": "≥ 1.25×",
    "introspect": "≥ 1.5×",
    "userinfo": "≥ 1.5×",
    "refresh": "≥ 1.25×",
    "signin": "≥ 90 %, no 5xx, p99 < 3× p50",
    "lag": "< 5 ms",
}


def _ms(rows: list[dict[str, Any]], key: str, scale: float, digits: int = 1) -> str:
    return f"{med(rows, key) * scale:.{digits}f}" if rows else "—"


def _cpu(rows: list[dict[str, Any]], key: str) -> str:
    return f"{med_cpu(rows, key):.0f}%" if rows else "—"


def report(raw: dict[str, Any]) -> tuple[str, list[str]]:
    """The run's one table (markdown) and the notes under it, from its results as saved in results.json."""
    one = raw["pinned"]
    two = raw.get("workers2", {"works": {}, "signin": {}})
    bound1, bound2 = raw["argon2_pinned"], raw.get("argon2_unpinned")
    header = ["work (target)", "node req/s", "idp req/s", "idp/node", "per CPU-s", "p99 ms node / idp"]
    header += ["CPU node / idp", "PG CPU", "other CPU", "errors node / idp"]
    header += ["2 workers: idp req/s", "idp/node", "p99 ms", "CPU idp / PG"]
    lines = [header]
    disturbed = set()
    for w in WORKS:
        rows = one["works"].get(f"{w.name}/idp", [])
        node = one["works"].get(f"{w.name}/node", [])
        rows2 = two["works"].get(f"{w.name}/idp", [])
        if not rows:
            continue
        for group in (rows, node, rows2):
            if group and med_cpu(group, "other") > DISTURBED_PCT:
                disturbed.add(w.name)
        n_rps = med(node, "rps") if node else float("nan")
        lines.append(
            [
                f"{w.label} ({TARGETS[w.name]})",
                fmt_rate(n_rps) if node else "—",
                fmt_rate(med(rows, "rps")),
                f"{med(rows, 'rps') / n_rps:.2f}×" if node else "—",
                per_cpu(rows, node),
                f"{_ms(node, 'p99_us', 1e-3)} / {_ms(rows, 'p99_us', 1e-3)}",
                f"{_cpu(node, 'server')} / {_cpu(rows, 'server')}",
                _cpu(rows, "pg"),
                f"{max(med_cpu(g, 'other') for g in (rows, node) if g):.0f}%",
                f"{sum(r['errors'] for r in node) if node else '—'} / {sum(r['errors'] for r in rows)}",
                fmt_rate(med(rows2, "rps")) if rows2 else "—",
                f"{med(rows2, 'rps') / n_rps:.2f}×" if rows2 and node else "—",
                _ms(rows2, "p99_us", 1e-3),
                f"{_cpu(rows2, 'server')} / {_cpu(rows2, 'pg')}" if rows2 else "—",
            ]
        )
    signin1 = {int(k): v for k, v in one["signin"].items()}
    signin2 = {int(k): v for k, v in two["signin"].items()}
    for concurrency, rows in signin1.items():
        rows2 = signin2.get(concurrency, [])
        for group in (rows, rows2):
            if group and med_cpu(group, "other") > DISTURBED_PCT:
                disturbed.add(f"sign-in x{concurrency}")
        lines.append(
            [
                f"password sign-in, {concurrency} concurrent ({TARGETS['signin']})",
                "—",
                f"{med(rows, 'rate'):.1f}/s",
                f"{100 * med(rows, 'rate') / bound1['bound']:.0f} % of bound",
                "",
                f"POST: p50 {_ms(rows, 'post_p50', 1e3, 0)}, p99 {_ms(rows, 'post_p99', 1e3, 0)}",
                f"— / {_cpu(rows, 'server')}",
                _cpu(rows, "pg"),
                _cpu(rows, "other"),
                f"5xx {sum(r['5xx'] for r in rows)}, failed {sum(r['failed'] for r in rows)}",
                f"{med(rows2, 'rate'):.1f}/s" if rows2 else "—",
                f"{100 * med(rows2, 'rate') / bound2['bound']:.0f} % of bound" if rows2 and bound2 else "—",
                f"p50 {_ms(rows2, 'post_p50', 1e3, 0)}, p99 {_ms(rows2, 'post_p99', 1e3, 0)}"
                + f"; 5xx {sum(r['5xx'] for r in rows2)}"
                if rows2
                else "—",
                f"{_cpu(rows2, 'server')} / {_cpu(rows2, 'pg')}" if rows2 else "—",
            ]
        )
    for concurrency, rows in signin1.items():
        rows2 = signin2.get(concurrency, [])
        blank = ["", "", "", "", ""]
        lines.append(
            [
                f"event-loop lag p99, sign-in x{concurrency} ({TARGETS['lag']})",
                "—",
                f"{_ms(rows, 'lag_p99', 1e3)} ms",
                "",
                "",
                f"probe p50 {_ms(rows, 'lag_p50', 1e3)}, max {max(r['lag_max'] for r in rows) * 1e3:.0f}",
                *blank[:4],
                f"{_ms(rows2, 'lag_p99', 1e3)} ms" if rows2 else "—",
                "",
                f"probe p50 {_ms(rows2, 'lag_p50', 1e3)}" if rows2 else "",
                "",
            ]
        )
    lines.append(
        [
            "argon2 bound (same run)",
            "—",
            f"{bound1['bound']:.1f}/s",
            "",
            "",
            f"one verification {bound1['median'] * 1000:.1f} ms",
            bound1["how"],
            "",
            "",
            "",
            f"{bound2['bound']:.1f}/s" if bound2 else "—",
            "",
            bound2["how"] if bound2 else "",
            "",
        ]
    )
    notes = []
    if disturbed:
        notes.append(
            f"other load above {DISTURBED_PCT:.0f}% of a core during: {', '.join(sorted(disturbed))} (figures low)"
        )
    notes.append(f"idp /metrics event-loop lag series: {one.get('lag_metric', 'none')}")
    return table(lines), notes


def render(raw: dict[str, Any]) -> str:
    """Everything the run prints at the end, from its results (results.json)."""
    text, notes = report(raw)
    out = [*raw["header"], f"load average after: {raw.get('loadavg_after', '?')}", "", text]
    out += [f"- {note}" for note in notes]
    out += [
        "- idp: one worker pinned to CPU 0 (`taskset -c 0`), like node; `2 workers`: `idp serve --workers 2` unpinned",
        "  (load still on CPU 1), its ratio against the same run's pinned node.",
        "- per CPU-s: idp/node of req/s per server CPU-second; moves less than req/s when CPU 0 is shared.",
        "- event-loop lag: the latency of GET /healthz on the management port (same process and event loop, no",
        "  database), sent every 10 ms from CPU 1 during the sign-in runs; p99 per run, median over the runs.",
        "- sign-in: GET /authorize → GET /login (CSRF) → POST /login, a new browser (no cookies) each time, one",
        "  account per concurrent person; rate = sign-ins completed per second; POST latency in ms; bound = the",
        "  argon2 bound in the last row (1 worker: 1 / one verification on CPU 0; 2 workers: PasswordPool, 2 threads).",
    ]
    return "\n".join(out)


def output(*args: str) -> str:
    """A tool's standard output, stripped; empty when it fails (only used to describe the machine)."""
    run = subprocess.run(args, capture_output=True, text=True, check=False, env={**os.environ, **PG_ENV})  # noqa: S603
    return run.stdout.strip()


def describe(quiet: dict[str, Any], opts: Options) -> list[str]:
    import importlib.metadata as md
    import importlib.util as u

    node = output("node", "--version")
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    oidc = lock["packages"]["node_modules/oidc-provider"]["version"]
    pg = output("psql", "-AtqX", "-d", "postgres", "-c", "SHOW server_version")
    git = output("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = output("git", "-C", str(ROOT), "status", "--porcelain", "--", "idp")
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    loop = "uvloop" if u.find_spec("uvloop") else "asyncio"
    parser = "httptools" if u.find_spec("httptools") else "h11"
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.node()}, {model} × "
        f"{os.cpu_count()}, {platform.machine()}",
        f"idp at {git}{' (idp/ modified)' if dirty else ''}; CPython {platform.python_version()}, "
        f"uvicorn {md.version('uvicorn')}, installed: {loop} / {parser} (idp serve picks its own); "
        f"PostgreSQL {pg}",
        f"node-oidc-provider {oidc} on Node.js {node}, in-memory adapter",
        f"runs: median of {opts.runs} × {opts.seconds} s (warm-up {opts.warmup} s), wrk -t1 -c{opts.connections}; "
        f"servers on CPU {SERVER_CPU}, load on CPU {LOAD_CPU}, PostgreSQL unpinned, idp connects to it over "
        + (f"the Unix socket in {PG_SOCKET}" if PG_SOCKET else f"TCP {HOST}:5432"),
        f"machine before the run: load average {quiet['loadavg']}, {quiet['busy_pct']:.0f}% busy over 3 s"
        + (f"; busy: {', '.join(quiet['busy_processes'])}" if quiet["busy_processes"] else "")
        + (" — quiet" if quiet["quiet"] else " — NOT quiet: figures are noisy"),
    ]


@contextlib.contextmanager
def cleanup(procs: list[subprocess.Popen[bytes]], keep_db: bool) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            stop(p)
        if not keep_db:
            with contextlib.suppress(subprocess.CalledProcessError):
                psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def main() -> None:
    global OUT_DIR, DB_URL, PG_SOCKET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s each, 1 s warm-up")
    parser.add_argument("--runs", type=int, help="measured runs per work (default 3)")
    parser.add_argument("--seconds", type=int, help="seconds per run (default 10)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per work and server (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--signin", default="8,32", help="sign-in concurrencies (default 8,32)")
    parser.add_argument("--works", default=",".join(w.name for w in WORKS), help="which wrk works to run")
    parser.add_argument("--no-workers-run", action="store_true", help="skip the run with idp --workers 2 unpinned")
    parser.add_argument(
        "--wait-quiet", type=float, default=0, help="before each work, wait up to this many seconds for an idle machine"
    )
    parser.add_argument("--keep-db", action="store_true", help=f"keep the database {DB} afterwards")
    parser.add_argument("--report", metavar="RESULTS_JSON", help="print the table of an earlier run and stop")
    parser.add_argument("--out", help="directory for logs and raw results (default: a new one under /tmp)")
    parser.add_argument(
        "--pg-socket",
        metavar="DIR",
        help="idp connects to PostgreSQL over the Unix socket in DIR (e.g. /var/run/postgresql) instead of TCP",
    )
    args = parser.parse_args()
    if args.report:
        print(render(json.loads(Path(args.report).read_text())))
        return
    PG_SOCKET = args.pg_socket
    DB_URL = db_url(DB)
    signin = [int(c) for c in args.signin.split(",") if c]
    opts = Options(
        runs=args.runs or (1 if args.quick else 3),
        seconds=args.seconds or (3 if args.quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        connections=args.connections,
        signin=signin,
        users=max(signin, default=1),
        workers_run=not args.no_workers_run,
        works=[w for w in args.works.split(",") if w],
        out=Path(args.out or tempfile.mkdtemp(prefix="idp-side-by-side.")),
        wait_quiet=args.wait_quiet,
    )
    opts.out.mkdir(parents=True, exist_ok=True)
    OUT_DIR = opts.out
    # A plain `kill` (also SIGINT when started in the background, where it is ignored) still stops both servers
    # and drops the database: SystemExit unwinds through cleanup().
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.update(PG_ENV)

    ensure_tools()
    wait_quiet(opts.wait_quiet)
    say("is the machine quiet? (3 s)")
    quiet = machine_quiet()
    header = describe(quiet, opts)
    for line in header:
        say(line)
    client_id, secret, emails = prepare_idp(opts.users)
    bound1 = argon2_bound(1, pinned=True)
    bound1.update(bound=1 / bound1["median"], how=f"1 / one verification on CPU {SERVER_CPU}")
    procs: list[subprocess.Popen[bytes]] = []
    raw: dict[str, Any] = {"header": header, "quiet": quiet, "argon2_pinned": bound1}
    with cleanup(procs, args.keep_db):
        node = start_node()
        procs.append(node.proc)
        idp, management = start_idp((client_id, secret), 1, pinned=True)
        procs.append(idp.proc)
        for t in (node, idp):
            discover(t)
        works = bench_works([node, idp], opts, emails)
        sign = bench_signin(idp, management, opts, emails) if signin else {}
        raw["pinned"] = {"works": works, "signin": sign, "lag_metric": metrics_lag(management)}
        stop(idp.proc)
        if opts.workers_run:
            bound2 = argon2_bound(2, pinned=False)
            bound2.update(bound=bound2["pool_rate"], how="PasswordPool, 2 threads, unpinned")
            raw["argon2_unpinned"] = bound2
            idp2, management2 = start_idp((client_id, secret), 2, pinned=False)
            procs.append(idp2.proc)
            discover(idp2)
            works2 = bench_works([idp2], opts, emails)
            # The same run's node figures (one core), for the ratio.
            works2.update({k: v for k, v in works.items() if k.endswith("/node")})
            sign2 = bench_signin(idp2, management2, opts, emails) if signin else {}
            raw["workers2"] = {"works": works2, "signin": sign2, "lag_metric": metrics_lag(management2)}
    raw["loadavg_after"] = machine_quiet(1.0)["loadavg"]
    (opts.out / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    print()
    print(render(raw))
    print(f"- raw results and server logs: {opts.out}")


if __name__ == "__main__":
    main()
