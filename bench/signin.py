"""Load for bench/side_by_side.py's sign-in rows: people signing in through idp's real form flow, and a probe.

    signin.py flow BASE CLIENT_ID REDIRECT_URI CONCURRENCY SECONDS MAX_RAMP EMAIL...   (password on stdin)
    signin.py probe HOST PORT PATH SECONDS INTERVAL

`flow`: CONCURRENCY people at once, each in a loop: GET /authorize (no session, so a redirect to /login), GET
/login (the form and its CSRF token), POST /login with the email and password; a new browser (no cookies) each
time. Counting starts once every person has signed in once (or after MAX_RAMP seconds): it prints `start` then,
and after SECONDS one JSON line with what it saw. `probe`: GET PATH every INTERVAL seconds on one kept-alive
connection, then prints the latencies as a JSON list. Not a test; standard library and httpx only.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import sys
import time
from typing import Any
from urllib.parse import urlencode

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Window:
    """The measured window: it opens when every person has finished one sign-in, or at the latest after a ramp."""

    def __init__(self, people: int, seconds: float, max_ramp: float) -> None:
        self.waiting = people
        self.seconds = seconds
        self.started = time.monotonic()
        self.max_ramp = max_ramp
        self.start: float | None = None
        self.end: float | None = None
        self.opened = asyncio.Event()

    def open(self) -> None:
        if self.start is None:
            self.start = time.monotonic()
            self.end = self.start + self.seconds
            print("start", flush=True)
            self.opened.set()

    def warmed(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.open()

    def over(self, now: float) -> bool:
        return self.end is not None and now >= self.end

    def counts(self, now: float) -> bool:
        return self.start is not None and self.end is not None and self.start <= now < self.end


async def person(
    i: int, base: str, client_id: str, redirect_uri: str, email: str, password: str, w: Window, out: dict[str, Any]
) -> None:
    """One person's browser, signing in again and again until the window closes."""
    import httpx

    first = True
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=120) as browser:
        n = 0
        while not w.over(time.monotonic()):
            browser.cookies.clear()  # a new browser each time: no session to reuse
            n += 1
            began = time.monotonic()
            params = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid",
                "state": f"s{i}-{n}",
                "nonce": f"n{i}-{n}",
            }
            statuses: list[int] = []
            ok = False
            posted = began
            try:
                r = await browser.get("/authorize?" + urlencode(params))
                statuses.append(r.status_code)
                if r.status_code in (302, 303):
                    form = await browser.get(r.headers["location"])
                    statuses.append(form.status_code)
                    match = _CSRF.search(form.text)
                    if form.status_code == 200 and match:
                        posted = time.monotonic()
                        data = {
                            "username": email,
                            "password": password,
                            "csrf_token": match[1],
                            "next": form.url.params.get("next", ""),
                        }
                        r = await browser.post("/login", data=data)
                        statuses.append(r.status_code)
                        ok = r.status_code == 303
            except httpx.HTTPError as exc:
                out["exceptions"].append(type(exc).__name__)
            done = time.monotonic()
            # 5xx anywhere, the ramp included: a server error is never noise.
            out["5xx"] += sum(1 for s in statuses if s >= 500)
            out["503"] += sum(1 for s in statuses if s == 503)
            if w.counts(done):
                if ok:
                    out["post"].append(done - posted)
                    out["flow"].append(done - began)
                else:
                    out["failed"].append(statuses)
            elif not ok and w.start is None:
                out["ramp_failed"].append(statuses)
            if first and ok:
                first = False
                w.warmed()


async def flow(args: list[str]) -> None:
    base, client_id, redirect_uri, concurrency, seconds, max_ramp, *emails = args
    password = sys.stdin.readline().rstrip("\n")
    people = int(concurrency)
    w = Window(people, float(seconds), float(max_ramp))
    out: dict[str, Any] = {"post": [], "flow": [], "failed": [], "ramp_failed": [], "exceptions": [], "5xx": 0}
    out["503"] = 0

    async def ramp_limit() -> None:
        try:
            await asyncio.wait_for(w.opened.wait(), w.max_ramp)
        except TimeoutError:
            out["ramp_timed_out"] = True
            w.open()

    tasks = [person(i, base, client_id, redirect_uri, emails[i % len(emails)], password, w, out) for i in range(people)]
    limiter = asyncio.create_task(ramp_limit())
    await asyncio.gather(*tasks)
    limiter.cancel()
    out["seconds"] = float(seconds)
    out["ramp_seconds"] = (w.start or time.monotonic()) - w.started
    print(json.dumps(out), flush=True)


def probe(args: list[str]) -> None:
    host, port, path, seconds, interval = args[0], int(args[1]), args[2], float(args[3]), float(args[4])
    conn = http.client.HTTPConnection(host, port, timeout=30)
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        conn.request("GET", path)
        conn.getresponse().read()
        samples.append(time.perf_counter() - began)
        time.sleep(interval)
    print(json.dumps(samples), flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["flow"]:
        asyncio.run(flow(argv[1:]))
    elif argv[:1] == ["probe"]:
        probe(argv[1:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
