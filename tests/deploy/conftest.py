"""Shared helpers for the deploy/ checks: where the files are, and settings as the containers would get them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# A stand-in for a real random secret (32+ characters) where a file leaves the value to the operator.
SECRET = "x" * 48

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_all_yaml(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, resolved against `env` (a required one must be
    there)."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert operator not in (":?", "?"), f"${{{name}}} is required: {argument}"
        return argument if operator in (":-", "-") else ""

    return _INTERPOLATION.sub(one, value)


def settings_fields() -> set[str]:
    """Every IDP_* variable idp reads."""
    from idp.config import ENV_PREFIX, Settings

    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}
