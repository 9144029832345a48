"""MemoryBytecodeCache: environments sharing it compile a template once; an edited template is compiled again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from idp.template_cache import MemoryBytecodeCache


def counting_environment(folder: Path, cache: MemoryBytecodeCache) -> tuple[Environment, list[str]]:
    env = Environment(loader=FileSystemLoader(folder), bytecode_cache=cache, autoescape=True)
    compiled: list[str] = []
    compile_source = env.compile

    def compile(source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name or "")
        return compile_source(source, name, *args, **kwargs)

    env.compile = compile  # type: ignore[method-assign]
    return env, compiled


def test_a_second_environment_reuses_the_compiled_template(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("Hello {{ name }}")
    cache = MemoryBytecodeCache()
    first, first_compiled = counting_environment(tmp_path, cache)
    second, second_compiled = counting_environment(tmp_path, cache)

    assert first.get_template("page.html").render(name="<ann>") == "Hello &lt;ann&gt;"
    assert second.get_template("page.html").render(name="bo") == "Hello bo"

    assert first_compiled == ["page.html"]
    assert second_compiled == []


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("Hello {{ name }}")
    cache = MemoryBytecodeCache()
    first, _ = counting_environment(tmp_path, cache)
    assert first.get_template("page.html").render(name="ann") == "Hello ann"

    page.write_text("Goodbye {{ name }}")
    later, compiled = counting_environment(tmp_path, cache)

    assert later.get_template("page.html").render(name="ann") == "Goodbye ann"
    assert compiled == ["page.html"]
