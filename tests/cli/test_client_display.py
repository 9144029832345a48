"""`idp clients create --display-name --logo-uri --client-uri` (INTERFACE §2): the board's display metadata."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import assert_one_line_failure, run_idp


def test_clients_create_takes_display_metadata(migrated: str, tmp_path: Path) -> None:
    result = run_idp(
        "clients",
        "create",
        "--name",
        "jn-prod",
        "--redirect-uri",
        "https://jobbnorge.example/callback",
        "--display-name",
        "Jobbnorge",
        "--logo-uri",
        "https://cdn.jobbnorge.example/logo.png",
        "--client-uri",
        "https://jobbnorge.example/",
        database_url=migrated,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    client = json.loads(result.stdout)
    assert (client["name"], client["client_name"]) == ("jn-prod", "Jobbnorge")
    assert client["logo_uri"] == "https://cdn.jobbnorge.example/logo.png"
    assert client["client_uri"] == "https://jobbnorge.example/"


def test_clients_create_refuses_a_logo_that_is_not_https(migrated: str, tmp_path: Path) -> None:
    for logo in ("http://cdn.jobbnorge.example/logo.png", "javascript:alert(1)", "data:image/png;base64,AAAA"):
        result = run_idp(
            "clients",
            "create",
            "--name",
            "jn-prod",
            "--redirect-uri",
            "https://jobbnorge.example/callback",
            "--logo-uri",
            logo,
            database_url=migrated,
            cwd=tmp_path,
        )
        assert "logo_uri" in assert_one_line_failure(result)
