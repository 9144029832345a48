"""Small helpers for bench/oidc.sh (standard library only). Not a test; see bench/README.md.

oidc_helper.py basic < client.json          the Authorization header value for client_secret_basic
oidc_helper.py field NAME < some.json        one top-level field of a JSON object
oidc_helper.py cpu SERVER_PID DB SHELL_PID   a CPU-time snapshot: server, DB's PostgreSQL backends, the
                                             shell's finished children (wrk), each CPU
oidc_helper.py row ENDPOINT LEVEL WRK_OUT CPU_BEFORE CPU_AFTER   one summary row (JSON)
oidc_helper.py brief < ROW                   one row as a short line
oidc_helper.py report RESULTS.jsonl          the results as a table
oidc_helper.py profile-top RAW [N]           top functions of a py-spy `--format raw` profile
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import quote_plus


def basic() -> None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, joined by ':', then base64."""
    client = json.load(sys.stdin)
    pair = f"{quote_plus(client['client_id'])}:{quote_plus(client['client_secret'])}"
    print("Basic " + base64.b64encode(pair.encode()).decode())


def field(name: str) -> None:
    value = json.load(sys.stdin).get(name)
    if value is None:
        raise SystemExit(f"oidc_helper: no field {name!r} in the JSON on stdin")
    print(value)


def _ticks(pid: int, *, children: bool = False) -> int:
    """utime + stime of a process (or cutime + cstime of its waited-for children), in clock ticks; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    # Fields 14-17 of proc(5) (utime, stime, cutime, cstime), counted here after "pid (comm)".
    return int(fields[13]) + int(fields[14]) if children else int(fields[11]) + int(fields[12])


def _pg_backends(db: str) -> dict[str, int]:
    """CPU ticks of each PostgreSQL backend connected to `db` (its title reads 'postgres: ... user db host ...')."""
    result = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        words = title.split()
        if title.startswith("postgres:") and db in words:
            result[entry] = _ticks(int(entry))
    return result


def _cpus() -> dict[str, list[int]]:
    """(busy, total, softirq) ticks of each CPU from /proc/stat."""
    result = {}
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(v) for v in values[:8]]
                idle = numbers[3] + numbers[4]  # idle + iowait
                result[name] = [sum(numbers) - idle, sum(numbers), numbers[6]]
    return result


def _postmaster_children() -> int:
    """CPU ticks of every exited PostgreSQL backend so far: the postmaster's cutime + cstime.

    Backends of pool connections that are opened and closed during a run exit before the last snapshot; their
    CPU time only shows up here (for every database on the server, so a quiet server matters).
    """
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
            comm = text[text.index("(") + 1 : text.rindex(")")]
            ppid = text.rsplit(")", 1)[1].split()[1]
            if comm != "postgres":
                continue
            with open(f"/proc/{ppid}/stat", encoding="ascii", errors="replace") as f:
                parent = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent[parent.index("(") + 1 : parent.rindex(")")] != "postgres":
            total += _ticks(int(entry), children=True)  # a postmaster: a postgres whose parent is not one
    return total


def _pg_stats(db: str) -> list[int]:
    """(commits, rollbacks, sessions) of `db` from pg_stat_database (flushed with up to a second's delay)."""
    query = "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database WHERE datname = :'db'\n"
    out = subprocess.run(  # noqa: S603 - fixed arguments; the name goes in as a psql variable, quoted by psql
        ["psql", "-Atq", "-d", "postgres", "-v", f"db={db}"],  # noqa: S607 - psql from PATH, like oidc.sh
        input=query,
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(v) for v in out.stdout.strip().split("|")]


def cpu(server_pid: str, db: str, shell_pid: str) -> None:
    snapshot = {
        "t": time.monotonic(),
        "server": _ticks(int(server_pid)),
        "pg": _pg_backends(db),
        "load": _ticks(int(shell_pid), children=True),
        "cpus": _cpus(),
        "pg_stats": _pg_stats(db),
        "pg_exited": _postmaster_children(),
    }
    print(json.dumps(snapshot))


def wait_quiet(max_seconds: float, threshold_pct: float = 10.0, window: float = 3.0) -> None:
    """Return once all CPUs together were busy under `threshold_pct` for `window` seconds, or after `max_seconds`."""
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
                print(f"    waited {waited:.0f} s for a quiet machine", file=sys.stderr)
            return
        if waited >= max_seconds:
            print(f"    warning: machine still {pct:.0f}% busy after {waited:.0f} s; measuring anyway", file=sys.stderr)
            return


def row(endpoint: str, level: str, path: str, before_path: str, after_path: str) -> None:
    """wrk's BENCH_JSON line (post.lua), its non-2xx count and the CPU used during the run, as one JSON line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"^BENCH_JSON (\{.*\})$", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"oidc_helper: no BENCH_JSON line in {path}; did wrk run post.lua?")
    result = json.loads(match.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    with open(before_path, encoding="utf-8") as f:
        before = json.load(f)
    with open(after_path, encoding="utf-8") as f:
        after = json.load(f)
    hz = os.sysconf("SC_CLK_TCK")
    seconds = after["t"] - before["t"]
    # Live backends of the database, plus every backend that exited meanwhile, less what those had used before.
    live = sum(ticks - before["pg"].get(pid, 0) for pid, ticks in after["pg"].items())
    gone = sum(ticks for pid, ticks in before["pg"].items() if pid not in after["pg"])
    pg = live + (after["pg_exited"] - before["pg_exited"]) - gone
    requests = max(result["requests"], 1)
    stats = [a - b for a, b in zip(after["pg_stats"], before["pg_stats"], strict=True)]
    result.update(
        endpoint=endpoint,
        log_level=level,
        server_cpu_pct=round(100 * (after["server"] - before["server"]) / hz / seconds, 1),
        pg_cpu_pct=round(100 * pg / hz / seconds, 1),
        pg_backends=len(after["pg"]),
        pg_commits_per_req=round(stats[0] / requests, 2),
        pg_rollbacks_per_req=round(stats[1] / requests, 2),
        pg_sessions_per_s=round(stats[2] / seconds, 1),
        wrk_cpu_pct=round(100 * (after["load"] - before["load"]) / hz / seconds, 1),
    )
    busy_all = softirq = 0.0
    for name, (busy, total, soft) in after["cpus"].items():
        busy0, total0, soft0 = before["cpus"].get(name, (0, 0, 0))
        span = max(total - total0, 1)
        result[f"{name}_busy_pct"] = round(100 * (busy - busy0) / span, 1)
        busy_all += (busy - busy0) / span
        softirq += (soft - soft0) / span
    # Kernel network work (loopback TCP) runs as softirq and belongs to no process.
    result["softirq_cpu_pct"] = round(100 * softirq, 1)
    # Whatever else ran on the machine meanwhile, in % of one CPU: a disturbed run shows here.
    known = result["server_cpu_pct"] + result["pg_cpu_pct"] + result["wrk_cpu_pct"] + result["softirq_cpu_pct"]
    result["other_cpu_pct"] = round(max(100 * busy_all - known, 0), 1)
    print(json.dumps(result))


DISTURBED_PCT = 15  # other load, in % of one core, above which a run is reported as disturbed


def disturbed() -> None:
    raise SystemExit(0 if json.load(sys.stdin).get("other_cpu_pct", 0) > DISTURBED_PCT else 1)


def _errors(r: dict[str, int]) -> int:
    return r["non_2xx"] + sum(v for k, v in r.items() if k.startswith("err_"))


def brief() -> None:
    r = json.load(sys.stdin)
    print(
        f"    {r['rps']:.0f} req/s, p50 {r['p50_us'] / 1000:.1f} ms, p99 {r['p99_us'] / 1000:.1f} ms, "
        f"CPU: idp {r['server_cpu_pct']:.0f}%, PostgreSQL {r['pg_cpu_pct']:.0f}%, wrk {r['wrk_cpu_pct']:.0f}%, "
        f"softirq {r['softirq_cpu_pct']:.0f}%, other {r['other_cpu_pct']:.0f}%; "
        f"{r['pg_sessions_per_s']:.0f} new PG connections/s; errors {_errors(r)}"
    )


def report(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    header = (
        "endpoint",
        "log",
        "req/s",
        "p50 ms",
        "p75 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "requests",
        "errors",
        "CPU: idp",
        "PG",
        "wrk",
        "softirq",
        "other",
        "PG commit+rollback/req",
        "PG new conns/s",
    )
    table = [header]
    for r in rows:
        errors = _errors(r)
        table.append(
            (
                r["endpoint"],
                r["log_level"],
                f"{r['rps']:.0f}",
                *(f"{r[k] / 1000:.1f}" for k in ("p50_us", "p75_us", "p90_us", "p99_us", "p999_us", "lat_max_us")),
                str(r["requests"]),
                str(errors),
                *(
                    f"{r.get(k, 0):.0f}%"
                    for k in ("server_cpu_pct", "pg_cpu_pct", "wrk_cpu_pct", "softirq_cpu_pct", "other_cpu_pct")
                ),
                f"{r.get('pg_commits_per_req', 0):.1f} + {r.get('pg_rollbacks_per_req', 0):.1f}",
                f"{r.get('pg_sessions_per_s', 0):.0f}",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for n, line in enumerate(table):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("CPU columns are % of one core during the measured run: idp (pinned), PostgreSQL (the database's backends")
    print("and any backend that exited), wrk, kernel softirq (loopback networking), everything else on the machine.")
    print("PG commit+rollback/req and new conns/s come from pg_stat_database (approximate: flushed about each second).")
    disturbed = [f"{r['endpoint']}/{r['log_level']}" for r in rows if r.get("other_cpu_pct", 0) > DISTURBED_PCT]
    if disturbed:
        print(f"warning: other load above 15% of a core during {', '.join(disturbed)}; those numbers are low, rerun")


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _split_frame(frame: str) -> tuple[str, str]:
    """('function', 'file') from py-spy's 'function (file:line)'."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match.group("func"), match.group("file")


def _area(file: str) -> str:
    """A coarse owner for a source file: the third-party package, 'idp', or the stdlib module."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if file.startswith("idp/") or "/idp/" in file:
        return "idp"
    parts = file.split("/")
    if "python3" in file and "lib" in parts:
        rest = file.split("/lib/", 1)[1].split("/", 1)
        tail = rest[1] if len(rest) > 1 else rest[0]
        return "stdlib:" + tail.split("/", 1)[0].removesuffix(".py")
    first = parts[0].removesuffix(".py")
    return first or "?"


def profile_top(path: str, limit: int = 15) -> None:
    """Where the event loop's time goes, from py-spy's collapsed stacks (`--format raw`).

    Only stacks of the event-loop thread count (those under asyncio's `_run_once`); idp is single-threaded apart
    from the password pool, whose idle threads py-spy does not always recognise as idle. Percentages are of the
    event loop's samples, i.e. of the CPU time the loop thread spent running rather than waiting in epoll.
    """
    self_fn: Counter[str] = Counter()
    self_area: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    other: Counter[str] = Counter()
    loop = 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if not line.strip():
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_split_frame(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not any(func == "BaseEventLoop._run_once" for func, _ in frames):
            leaf = frames[-1] if frames else ("(no Python frames)", "")
            other[f"{leaf[0]} ({leaf[1]})"] += count
            continue
        loop += count
        func, file = frames[-1]
        self_fn[f"{func} ({file})"] += count
        self_area[_area(file)] += count
        for name in {f"{fn} ({fl})" for fn, fl in frames}:
            inclusive[name] += count
    if not loop:
        raise SystemExit(f"oidc_helper: no event-loop samples in {path}")
    print(f"{loop} event-loop samples; {sum(other.values())} samples of other threads left out", end="")
    print(f" (mostly {other.most_common(1)[0][0]})" if other else "")
    print()

    def show(title: str, items: list[tuple[str, int]]) -> None:
        print(title)
        for name, count in items[:limit]:
            print(f"  {100 * count / loop:5.1f}%  {name}")
        print()

    show("self time by package", self_area.most_common())
    show("self time by function", self_fn.most_common())
    # The common ancestors (uvicorn's run loop, Starlette's middleware chain) are in nearly every sample and say
    # nothing; show what is under them.
    below = [(name, count) for name, count in inclusive.most_common() if count < 0.9 * loop]
    show("inclusive time by function (ancestors in 90%+ of samples left out)", below)
    show("inclusive time, idp's own functions", [(n, c) for n, c in below if "(idp/" in n])


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    command, args = argv[0], argv[1:]
    if command == "basic":
        basic()
    elif command == "field":
        field(args[0])
    elif command == "cpu":
        cpu(*args)
    elif command == "row":
        row(*args)
    elif command == "wait-quiet":
        wait_quiet(float(args[0]))
    elif command == "disturbed":
        disturbed()
    elif command == "brief":
        brief()
    elif command == "report":
        report(args[0])
    elif command == "profile-top":
        profile_top(args[0], int(args[1]) if len(args) > 1 else 15)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
