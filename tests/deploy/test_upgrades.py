"""Zero-downtime upgrades rest on migrations being additive: while the migration Job runs and the Deployment rolls,
the previous release keeps running on the new schema. An upgrade() that drops, renames or retypes something would
break it, so each such step must wait for a release after the code stopped using it — and be listed here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

MIGRATIONS = sorted((ROOT / "migrations" / "versions").glob("*.py"))
# Operations that take away or change what an older release may still read or write.
CONTRACTING = {"drop_table", "drop_column", "rename_table", "alter_column", "drop_constraint", "execute"}
# "<migration file>: <operation>" for reviewed contracting steps (the code that needed it left a release before).
REVIEWED: set[str] = {
    # Back-fills the column this revision adds (tokens.offline); the previous release neither reads nor writes it.
    "2026_11_30_0009_session_details.py: execute",
}


def calls_in_upgrade(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    return [
        node.func.attr
        for node in ast.walk(upgrade)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]


@pytest.mark.parametrize("path", MIGRATIONS, ids=[p.name for p in MIGRATIONS])
def test_upgrade_only_adds(path: Path) -> None:
    contracting = {f"{path.name}: {name}" for name in calls_in_upgrade(path) if name in CONTRACTING}
    assert contracting <= REVIEWED, f"not additive (the running release may break during an upgrade): {contracting}"


def test_the_check_sees_operations() -> None:
    assert "create_table" in calls_in_upgrade(MIGRATIONS[0])
