"""Server CPU per request of idp's hot endpoints: a figure that holds on a busy machine. Not a test.

    .venv/bin/python bench/cpu_per_request.py                       # every work, 5 s each
    .venv/bin/python bench/cpu_per_request.py --works token,userinfo --seconds 8 --profile /tmp/prof
    git archive HEAD~3 | tar -x -C /tmp/before             # an older idp, side by side with this one:
    .venv/bin/python bench/cpu_per_request.py --compare /tmp/before --runs 3

Throughput depends on what else the machine runs; the CPU time the server process itself spent per answered
request hardly does. This starts `idp serve --workers 1` on PostgreSQL pinned to CPU 0 (INFO access logs to a file,
as in bench/side_by_side.py, whose set-up it reuses), drives each work with wrk from CPU 1, and reads the server's
utime+stime (/proc/<pid>/stat) and its database backends' before and after: µs of CPU per request. `--signin N` adds
the password sign-in flow at N concurrent, and prints CPU per sign-in beside one argon2 verification's.
`--profile DIR` records a py-spy speedscope profile of each work (open it at https://www.speedscope.app).

On a shared machine CPU per request still rises with the load of other processes (caches, hyperthreads), so
`--compare DIR` starts a second server from another copy of idp's source (put first on PYTHONPATH; same database
schema) and alternates the two run by run; the table gives each one's lowest and median figure of `--runs`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import side_by_side as sbs

WORKS = ["discovery", "jwks", "token", "introspect", "userinfo", "refresh"]


def user_system_ticks(root: int) -> tuple[int, int]:
    """(utime, stime) ticks of a process and its live descendants: Python's own work, and the kernel's (socket
    reads and writes, and on loopback TCP the receiving side's network stack too)."""
    user = system = 0
    for pid in sbs._all_pids():
        fields = sbs._stat_fields(pid)
        if not fields:
            continue
        cur = pid
        for _ in range(10):
            if cur == root:
                user += int(fields[11])
                system += int(fields[12])
                break
            parent = sbs._stat_fields(cur)
            cur = int(parent[1]) if parent else 0
            if cur <= 1:
                break
    return user, system


def record_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy recording the server (and its worker processes) for `seconds`, as a speedscope file."""
    spy_args = [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record"]
    spy_args += ["--subprocesses", "--format", "speedscope", "-o", str(out), "--rate", "250"]
    spy_args += ["--pid", str(pid), "--duration", str(round(seconds)), "--nonblocking"]
    spy = subprocess.Popen(spy_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    time.sleep(0.5)
    return spy


def measure(target: sbs.Target, work: str, seconds: int, connections: int, profile: Path | None) -> dict[str, Any]:
    """One work: a 1 s warm-up, then `seconds` of wrk with the CPU accounting (and py-spy, when asked)."""
    path, script, env = sbs.wrk_setup(target, work, connections, "person0@bench.invalid")
    if work != "refresh":  # refresh.lua rotates its own tokens from a pool: a warm-up leaves it none to send twice
        sbs.run_wrk(target, path, script, env, 1, connections, None)
    spy = None
    if profile is not None:
        spy = record_profile(target.proc.pid, profile / f"{work}.speedscope.json", seconds + 1)
    before = user_system_ticks(target.proc.pid)
    watch = sbs.PgWatch(target.db).start()
    result = sbs.run_wrk(target, path, script, env, seconds, connections, None)
    pg_ticks = watch.stop()
    after = user_system_ticks(target.proc.pid)
    if spy is not None:
        spy.wait(timeout=60)
    requests = max(result["requests"], 1)
    return {
        "work": work,
        "requests": result["requests"],
        "rps": result["rps"],
        "errors": result["errors"],
        "server_us": 1e6 * (sum(after) - sum(before)) / sbs.HZ / requests,
        "system_us": 1e6 * (after[1] - before[1]) / sbs.HZ / requests,
        "pg_us": 1e6 * pg_ticks / sbs.HZ / requests,
    }


def summary(rows: list[dict[str, Any]], labels: list[str]) -> str:
    """A Markdown table: per work, each idp's lowest and median server µs per request (and PostgreSQL's)."""
    head = "| work |" + "".join(f" {lab} µs/req min / median | {lab} PG µs/req |" for lab in labels)
    lines = [head, "|---|" + "---|---|" * len(labels)]
    works = list(dict.fromkeys(row["work"] for row in rows))
    for work in works:
        cells = []
        for label in labels:
            mine = [row for row in rows if row["work"] == work and row["idp"] == label]
            server = sorted(row["server_us"] for row in mine)
            pg = sorted(row["pg_us"] for row in mine)
            if not server:
                cells.append(" – | – |")
                continue
            cells.append(f" {server[0]:.0f} / {statistics.median(server):.0f} | {statistics.median(pg):.0f} |")
        lines.append(f"| {work} |" + "".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", default=",".join(WORKS), help=f"subset of {','.join(WORKS)}")
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per work (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--signin", type=int, default=0, help="also the sign-in flow at this many concurrent")
    parser.add_argument("--profile", metavar="DIR", help="record a py-spy speedscope profile per work into DIR")
    parser.add_argument("--runs", type=int, default=1, help="measured runs per work and server (default 1)")
    parser.add_argument("--compare", metavar="DIR", help="also an idp from this source tree, alternating with ours")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--pg-socket", metavar="DIR", help="idp reaches PostgreSQL over the Unix socket in DIR")
    args = parser.parse_args()
    sbs.DB = "idp_bench_cpu"
    sbs.PG_SOCKET = args.pg_socket
    sbs.DB_URL = sbs.db_url(sbs.DB)
    sbs.OUT_DIR = Path(tempfile.mkdtemp(prefix="idp-cpu."))
    profile = Path(args.profile) if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.update(sbs.PG_ENV)
    for tool in ("taskset", "psql", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing")
    client_id, secret, emails = sbs.prepare_idp(max(args.signin, 1))
    procs: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    with sbs.cleanup(procs, args.keep_db):
        targets: list[tuple[str, sbs.Target, str]] = []
        sources = [("this", None)] + ([("compare", args.compare)] if args.compare else [])
        for label, source in sources:
            env_before = os.environ.get("PYTHONPATH")
            if source:
                os.environ["PYTHONPATH"] = str(Path(source).resolve())
            try:
                idp, management = sbs.start_idp((client_id, secret), 1, pinned=True)
            finally:
                if source:
                    os.environ.pop("PYTHONPATH")
                    if env_before is not None:
                        os.environ["PYTHONPATH"] = env_before
            procs.append(idp.proc)
            sbs.discover(idp)
            targets.append((label, idp, management))
        for work in [w for w in args.works.split(",") if w]:
            for run in range(args.runs):
                # Alternating which goes first, so a change in the machine's load falls on both alike.
                order = targets if run % 2 == 0 else list(reversed(targets))
                for label, idp, _ in order:
                    row = measure(idp, work, args.seconds, args.connections, profile if label == "this" else None)
                    row["idp"] = label
                    sbs.say(
                        f"{label:7} {work:10} {row['requests']:7d} requests  {row['rps']:7.0f} req/s  errors "
                        f"{row['errors']}  server {row['server_us']:6.0f} µs/req (kernel {row['system_us']:4.0f})  "
                        f"PostgreSQL {row['pg_us']:5.0f} µs/req"
                    )
                    rows.append(row)
        if args.signin:
            bound = sbs.argon2_bound(1, pinned=True)
            for label, idp, management in targets:
                spy = None
                if profile is not None and label == "this":
                    # The ramp (each person's first sign-in) takes a few seconds before the measured part.
                    spy = record_profile(idp.proc.pid, profile / "signin.speedscope.json", args.seconds + 10)
                result = sbs.sign_in_run(idp, emails, args.signin, args.seconds, management)
                if spy is not None:
                    spy.wait(timeout=60)
                # % of a core over the measured window / sign-ins per second = CPU per sign-in.
                row = {
                    "idp": label,
                    "work": f"sign-in x{args.signin}",
                    "requests": result["ok"],
                    "rps": result["rate"],
                    "errors": result["5xx"],
                    "server_us": 1e4 * result["cpu"]["server"] / max(result["rate"], 1e-9),
                    "pg_us": 1e4 * result["cpu"]["pg"] / max(result["rate"], 1e-9),
                    "argon2_us": 1e6 * bound["median"],
                    "bound_pct": 100 * result["rate"] * bound["median"],
                    "lag_p99_ms": 1e3 * result["lag_p99"],
                }
                sbs.say(
                    f"{label:7} {row['work']}: {row['rps']:.1f}/s = {row['bound_pct']:.0f} % of the argon2 bound; "
                    f"server {row['server_us']:.0f} µs per sign-in (one argon2 verification {row['argon2_us']:.0f} "
                    f"µs), PostgreSQL {row['pg_us']:.0f} µs; loop-lag probe p99 {row['lag_p99_ms']:.1f} ms"
                )
                rows.append(row)
    print(summary(rows, [label for label, _ in sources]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    with contextlib.suppress(OSError):
        shutil.rmtree(sbs.OUT_DIR)


if __name__ == "__main__":
    main()
