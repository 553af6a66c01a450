"""docs/controllers.md: every Python block type-checks under ``mypy --strict`` (the whole
blocks, or fragments needing only ``kube: kubeasync.Client`` in scope), and the page is in
the site's navigation. (Its complete scripts also run: tests/test_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "controllers.md"
PRELUDE = "import kubeasync\n\nkube: kubeasync.Client\n\n"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_python_blocks_type_check_under_mypy_strict(tmp_path: Path) -> None:
    from mypy import api

    scripts = []
    for index, block in enumerate(blocks()):
        script = tmp_path / f"controllers_md_{index}.py"
        script.write_text(PRELUDE + block, encoding="utf-8")
        scripts.append(str(script))
    assert len(scripts) >= 8
    stdout, stderr, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), *scripts])
    assert status == 0, stdout + stderr


def test_the_page_is_in_the_navigation() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    assert "controllers.md" in repr(config["nav"])
