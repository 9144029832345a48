"""`idp clients create --backchannel-logout-uri` (INTERFACE §2): registered, shown, and refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import assert_one_line_failure, run_idp


def test_the_cli_registers_and_shows_the_uri(migrated: str, tmp_path: Path) -> None:
    created = run_idp(
        *("clients", "create", "--name", "Nordic Jobs", "--redirect-uri", "https://jobs.example/callback"),
        *("--backchannel-logout-uri", "https://jobs.example/bcl"),
        database_url=migrated,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    client_id = json.loads(created.stdout)["client_id"]
    assert json.loads(created.stdout)["backchannel_logout_uri"] == "https://jobs.example/bcl"
    shown = run_idp("clients", "show", client_id, database_url=migrated, cwd=tmp_path)
    assert json.loads(shown.stdout)["backchannel_logout_uri"] == "https://jobs.example/bcl"
    bad = run_idp(
        *("clients", "create", "--name", "X", "--redirect-uri", "https://x.example/cb"),
        *("--backchannel-logout-uri", "https://x.example/b#f"),
        database_url=migrated,
        cwd=tmp_path,
    )
    assert "fragment" in assert_one_line_failure(bad)
