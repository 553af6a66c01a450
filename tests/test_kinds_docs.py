"""docs/kinds.md's Python blocks type-check under ``mypy --strict`` as a user would write
them, and examples/widgets.py is what ``python -m kubeasync models`` writes today."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from kubeasync.crd_models import generate_models
from kubeasync.manifests import load_all_yaml
from kubeasync.models import to_dict

CHECKOUT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_kinds_page_type_checks(tmp_path: Path) -> None:
    blocks = BLOCK.findall((CHECKOUT / "docs" / "kinds.md").read_text())
    assert len(blocks) >= 7
    files = []
    for index, block in enumerate(blocks):
        path = tmp_path / f"kinds_block_{index}.py"
        path.write_text(block)
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        capture_output=True, text=True, cwd=CHECKOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_widget_models_are_current() -> None:
    crds = [to_dict(o) if not isinstance(o, dict) else o
            for o in load_all_yaml(CHECKOUT / "examples" / "manifests" / "widgets-crd.yaml")]
    expected = generate_models(crds, source="widgets-crd.yaml")
    assert (CHECKOUT / "examples" / "widgets.py").read_text() == expected, (
        "run: python -m kubeasync models examples/manifests/widgets-crd.yaml -o examples/widgets.py")
