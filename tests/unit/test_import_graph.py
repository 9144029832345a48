"""No import circle in idp/: the module-level imports form a graph without cycles.

Imports under `if TYPE_CHECKING:` and inside functions do not count: they do not run when a module is loaded.
Importing `idp.a.b` also runs `idp/__init__.py` and `idp/a/__init__.py`, so those are edges too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "idp"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is loaded: not in functions, not under `if TYPE_CHECKING:`."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking_only(node):
                pending += node.body
            pending += node.orelse
        elif isinstance(node, ast.ClassDef):
            pending += node.body
        elif isinstance(node, ast.Try):
            pending += [*node.body, *node.orelse, *node.finalbody]
            for handler in node.handlers:
                pending += handler.body
        elif isinstance(node, ast.With | ast.For | ast.While):
            pending += [*node.body, *getattr(node, "orelse", [])]


def _with_parents(name: str) -> set[str]:
    """`name` (when it is one of ours) and every package above it, which importing it runs first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & MODULES.keys()


def imports_of(name: str) -> set[str]:
    """The idp modules that loading `name` loads directly."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in module_level_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _with_parents(alias.name)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
        else:
            target = node.module or ""
        found |= _with_parents(target)
        for alias in node.names:
            # `from idp.oidc import authorize` loads the submodule idp.oidc.authorize.
            found |= _with_parents(f"{target}.{alias.name}") - _with_parents(target)
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_known_edges() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    assert "idp.container" in graph["idp.app"]
    assert "idp.web.params" in graph["idp.oidc.authorize"]
    assert "idp.web" in graph["idp.oidc.authorize"]  # the package runs before its module
    # Under `if TYPE_CHECKING:` only: not an edge.
    assert "idp.container" not in graph["idp.web.request"]


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_idp() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    found = cycles(graph)
    assert not found, "import cycles in idp/ (module-level imports):\n" + "\n".join(
        " <-> ".join(component) for component in found
    )
