"""Typed user code type-checks: every Python block of the README and docs/ passes
``mypy --strict``, against the installed package, with no cast.

A whole program (a block that calls ``asyncio.run(``) is checked as a module. Any other
block is a fragment, checked as the body of ``async def snippet(kube: kubeasync.Client) ->
None`` after ``import kubeasync`` (its imports hoisted): ``kube`` is the one name it may use
without defining it; what else it needs it imports or takes as typed parameters of a
function, as user code would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
DOCUMENTS = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
PREAMBLE = "import kubeasync\n\n\nasync def snippet(kube: kubeasync.Client) -> None:\n"


def blocks() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for index, block in enumerate(BLOCK.findall(document.read_text())):
            found.append((f"{document.relative_to(CHECKOUT)}#{index}", block))
    return found


def as_module(block: str) -> str:
    if "asyncio.run(" in block:
        return block
    imports = [line for line in block.splitlines() if re.match(r"(from \S+ )?import ", line)]
    body = [line for line in block.splitlines() if line not in imports]
    return "\n".join(imports) + "\n" + PREAMBLE + textwrap.indent("\n".join(body), "    ") + \
        "\n"


def test_every_python_block_of_the_docs_passes_mypy_strict(tmp_path: Path) -> None:
    found = blocks()
    assert len(found) > 40, "the docs lost their examples?"
    names: dict[str, str] = {}
    for number, (where, block) in enumerate(found):
        module = tmp_path / f"block_{number}.py"
        module.write_text(as_module(block))
        names[module.name] = where
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary",
         *sorted(str(p) for p in tmp_path.glob("block_*.py"))],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    errors = []
    for line in result.stdout.splitlines():
        match = re.match(r"(block_\d+\.py):(\d+): (error|note): (.*)", line)
        if match and match.group(3) == "error":
            errors.append(f"{names[match.group(1)]} (line {match.group(2)} as checked):"
                          f" {match.group(4)}")
    assert not errors, "\n".join(errors)
    assert result.returncode == 0, result.stdout + result.stderr
