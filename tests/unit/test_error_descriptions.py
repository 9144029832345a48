"""Public error descriptions are fixed per case and within RFC 6749's characters; services stay off the web layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import idp
import idp.oidc.userinfo  # defines an OAuthError subclass of its own
from idp.errors import Refusal, Refused, UnreadableInput
from idp.oidc.errors import (
    DESCRIPTION_CHARACTERS,
    REFUSALS,
    UNREADABLE,
    InvalidRequest,
    OAuthError,
    from_refusal,
    from_unreadable,
)

PACKAGE = Path(idp.__file__).parent


def subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


WIRE_ERRORS = {cls.__name__ for cls in subclasses(OAuthError)} | {"OAuthError"}


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_description_pattern_is_rfc_6749s() -> None:
    allowed = "".join(chr(c) for c in range(0x20, 0x7F) if c not in (0x22, 0x5C))
    assert DESCRIPTION_CHARACTERS.fullmatch(allowed)
    for refused in ['"', "\\", "\u00a7", "\u00e9", "\n", "\t", "\x7f", ""]:
        assert not DESCRIPTION_CHARACTERS.fullmatch(refused), repr(refused)


@pytest.mark.parametrize("case", list(Refusal))
def test_every_refusal_has_one_wire_error_with_a_fixed_public_description(case: Refusal) -> None:
    error_class, description = REFUSALS[case]
    assert issubclass(error_class, OAuthError)
    assert DESCRIPTION_CHARACTERS.fullmatch(description), description
    wire = from_refusal(Refused(case, "sent 'scope\"\\\u00e9' by the client"))
    assert type(wire) is error_class
    assert wire.description == description
    assert case.value in wire.detail
    assert "scope" in wire.detail  # the private detail reaches the log, not the description


@pytest.mark.parametrize("kind", [*UNREADABLE, "a-kind-added-later"])
def test_unreadable_input_has_a_fixed_public_description(kind: str) -> None:
    wire = from_unreadable(UnreadableInput('the field "x\u00e9" was sent more than once', kind, "x\u00e9"))
    assert isinstance(wire, InvalidRequest)
    assert DESCRIPTION_CHARACTERS.fullmatch(wire.description), wire.description
    assert "x\u00e9" not in wire.description
    assert "x\u00e9" in wire.detail


def wire_error_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    # oidc/errors.py builds errors from its own tables (REFUSALS, UNREADABLE), checked entry by entry above.
    for path in [p for p in sources() if p != PACKAGE / "oidc" / "errors.py"]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in WIRE_ERRORS:
                    calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", node))
    return calls


def test_wire_errors_are_built_with_literal_descriptions_in_rfc_6749_characters() -> None:
    """A description written as a literal cannot carry request input; detail= may (it only reaches the log)."""
    calls = wire_error_calls()
    assert len(calls) > 40  # the walk found the endpoints' errors
    for where, call in calls:
        assert call.args, f"{where}: a wire error without a description"
        description = call.args[0]
        assert isinstance(description, ast.Constant), f"{where}: the description must be a literal string"
        assert isinstance(description.value, str)
        assert DESCRIPTION_CHARACTERS.fullmatch(description.value), f"{where}: {description.value!r}"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "services").glob("*.py")), ids=lambda p: p.name)
def test_services_raise_domain_errors_and_never_import_the_web_layer(path: Path) -> None:
    web = ("starlette", "idp.oidc.errors", "idp.web", "idp.account", "idp.admin", "idp.app", "idp.templating")
    offending = [name for name in imports_of(path) if name.startswith(web)]
    assert not offending, f"{path.name} imports {offending}"
    # The only protocol module a service may use is the pure PKCE one.
    oidc = {name for name in imports_of(path) if name.startswith("idp.oidc")} - {"idp.oidc", "idp.oidc.pkce"}
    assert not oidc, f"{path.name} imports {oidc}"


def test_the_pkce_module_is_pure() -> None:
    assert imports_of(PACKAGE / "oidc" / "pkce.py") <= {
        "__future__",
        "__future__.annotations",
        "base64",
        "hashlib",
        "hmac",
        "re",
    }
