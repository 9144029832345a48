"""`idp users import FILE|- [--dry-run]` and `idp users subjects --client ID`, run as the console script against
each database: one JSON result per line and a summary, a re-run that changes nothing, CSV `external_id,sub`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.cli.test_cli import assert_one_line_failure, run_idp
from tests.support.legacy import PRODUCERS


def _client(database_url: str, tmp_path: Path) -> str:
    result = run_idp(
        "clients", "create", "--name", "Board", "--redirect-uri", "https://board.example/cb",
        database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    client_id: str = json.loads(result.stdout)["client_id"]
    return client_id


def _lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_import_rerun_dry_run_and_subjects(migrated: str, tmp_path: Path) -> None:
    client_id = _client(migrated, tmp_path)
    records = [
        {
            "email": f"cli{i}@example.com",
            "password_hash": PRODUCERS["pbkdf2-sha512"](f"pw {i}"),
            "external_id": {"client_id": client_id, "id": f"row-{i}"},
        }
        for i in range(3)
    ]
    path = tmp_path / "board.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))

    dry = run_idp("users", "import", "--dry-run", str(path), database_url=migrated, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert _lines(dry.stdout)[-1]["summary"] == {
        "lines": 3, "created": 3, "merged": 0, "unchanged": 0, "error": 0, "conflicts": 0, "dry_run": True,
    }  # fmt: skip

    first = run_idp("users", "import", str(path), database_url=migrated, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    results = _lines(first.stdout)
    assert [r["status"] for r in results[:-1]] == ["created"] * 3
    assert [r["line"] for r in results[:-1]] == [1, 2, 3]

    again = run_idp("users", "import", "-", database_url=migrated, cwd=tmp_path, stdin=path.read_text())
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in _lines(again.stdout)[:-1]] == ["unchanged"] * 3

    subjects = run_idp("users", "subjects", "--client", client_id, database_url=migrated, cwd=tmp_path)
    assert subjects.returncode == 0, subjects.stderr
    rows = list(csv.reader(io.StringIO(subjects.stdout)))
    assert rows[0] == ["external_id", "sub"]
    assert rows[1:] == [[f"row-{i}", str(results[i]["id"])] for i in range(3)]


def test_bad_lines_are_reported_and_the_exit_status_says_so(migrated: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"email": "ok@example.com"}\nnot json\n{"email": "x@example.com", "password_hash": "plain"}\n')
    result = run_idp("users", "import", str(path), database_url=migrated, cwd=tmp_path)
    assert result.returncode == 1
    lines = _lines(result.stdout)
    assert [r["status"] for r in lines[:-1]] == ["created", "error", "error"]
    assert "plain" not in lines[2]["reason"]
    assert result.stderr.strip() == "idp: 2 line(s) not imported; their results say why"


def test_missing_file_and_unknown_client(migrated: str, tmp_path: Path) -> None:
    line = assert_one_line_failure(
        run_idp("users", "import", str(tmp_path / "nope.jsonl"), database_url=migrated, cwd=tmp_path)
    )
    assert "cannot read" in line
    line = assert_one_line_failure(
        run_idp("users", "subjects", "--client", "nope", database_url=migrated, cwd=tmp_path)
    )
    assert "no client" in line
