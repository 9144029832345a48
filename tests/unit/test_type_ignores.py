"""Every `# type: ignore` left in idp/ names its error code and says why (on its line or the line above)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "idp"
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[a-z-]+(, *[a-z-]+)*\])?(?P<rest>.*)$")


def test_every_type_ignore_has_a_code_and_a_reason() -> None:
    unexplained = []
    for path in sorted(ROOT.rglob("*.py")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            match = IGNORE.search(line)
            if match is None:
                continue
            reason_after = match.group("rest").strip().startswith("#")
            reason_above = number > 1 and lines[number - 2].strip().startswith("#")
            if not match.group("code") or not (reason_after or reason_above):
                unexplained.append(f"{path.relative_to(ROOT.parent)}:{number}: {line.strip()}")
    assert not unexplained, "type: ignore without an error code or a reason:\n" + "\n".join(unexplained)
