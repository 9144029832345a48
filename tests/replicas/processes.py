"""Real `idp` processes for replica tests: migrate, create users and clients, and serve on free 127.0.0.1 ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from idp.auth.passwords import PasswordPool
from idp.clock import Clock
from idp.config import Settings
from idp.container import Idp, build_services
from idp.ops.metrics import Metrics
from tests.conftest import run_sync
from tests.support.ports import free_port

IDP = [sys.executable, "-m", "idp.cli"]
START_SECONDS = 30.0
STOP_SECONDS = 30.0


def idp_env(settings: dict[str, object]) -> dict[str, str]:
    """The environment of an idp process: this one's without any IDP_ variable, plus `settings` as IDP_*."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("IDP_")}
    # No management listener unless a test asks for one: parallel replicas would all want port 9000.
    env["IDP_MANAGEMENT_PORT"] = "0"
    env.update({f"IDP_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def run_cli(*args: str, settings: dict[str, object], cwd: Path, stdin: str = "") -> dict[str, object]:
    """Run one `idp` command to completion; its JSON output."""
    result = subprocess.run(
        [*IDP, *args], input=stdin, capture_output=True, text=True, env=idp_env(settings), cwd=cwd, timeout=120
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, object] = json.loads(result.stdout)
    return output


class Replica:
    """`idp serve` on 127.0.0.1:<free port>, its output kept in files under `workdir`."""

    def __init__(self, name: str, settings: dict[str, object], workdir: Path, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*IDP, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=idp_env(settings),
            cwd=workdir,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited: {self.log()}"
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {START_SECONDS}s: {self.log()}")

    def terminate(self) -> int:
        """SIGTERM, then wait for the exit (SIGKILL only if it hangs); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        self.process.kill()
        self.wait()

    def wait(self) -> int:
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def log_records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def with_services(settings: dict[str, object], fn: Callable[[Idp], Coroutine[Any, Any, Any]]) -> Any:
    """Run `fn(idp)` against the replicas' database in this process (setting up users and clients)."""

    async def go() -> Any:
        config = Settings(_env_file=None, **settings)  # type: ignore[arg-type]
        pool = PasswordPool(
            memory_kib=config.argon2_memory_kib,
            time_cost=config.argon2_time_cost,
            parallelism=config.argon2_parallelism,
            workers=1,
            queue=4,
        )
        idp = await build_services(config, Clock(), Metrics(lambda: 0), pool)
        try:
            return await fn(idp)
        finally:
            pool.shutdown()
            await idp.close()

    return run_sync(go)
