"""Every complete script in the README and docs/ runs as written.

Each fenced Python block that calls ``asyncio.run(`` is a whole program: it runs in its own
process, with ``KUBECONFIG`` pointing at an embedded API server (so ``kubeasync.Client()``
finds it, as it would find a real cluster). Scripts that end must exit 0; scripts that watch
forever must print and raise nothing for a few seconds.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

import kubeasync
from kubeasync.testing import FakeApiServer

CHECKOUT = Path(__file__).resolve().parent.parent
DOCUMENTS = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
RUNS_FOREVER_FOR = 3.0


def scripts() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for index, block in enumerate(BLOCK.findall(document.read_text())):
            if "asyncio.run(" in block:
                found.append((f"{document.name}#{index}", block))
    return found


SCRIPTS = scripts()


def test_the_documents_have_scripts() -> None:
    names = {name.split("#")[0] for name, _ in SCRIPTS}
    assert {"README.md", "getting-started.md", "resources.md", "watching.md"} <= names


@pytest.mark.parametrize("script", [s for _, s in SCRIPTS], ids=[n for n, _ in SCRIPTS])
async def test_script_runs(script: str, tmp_path: Path) -> None:
    async with FakeApiServer(simulate=True) as server:
        async with kubeasync.Client(server.config()) as kube:
            await kube.namespaces.create({"metadata": {"name": "shop"}})
            for namespace in ("shop", "default"):
                await kube.pods.create({
                    "metadata": {"name": "web-0" if namespace == "shop" else "web-9",
                                 "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}]},
                }, namespace=namespace)
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        program = tmp_path / "script.py"
        program.write_text(script)
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(program),
            cwd=tmp_path, env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": f"{CHECKOUT / 'src'}:{CHECKOUT}", "HOME": str(tmp_path),
                               "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None and process.stderr is not None
        reading = asyncio.gather(process.stdout.read(), process.stderr.read())
        try:
            await asyncio.wait_for(process.wait(), RUNS_FOREVER_FOR)
        except asyncio.TimeoutError:
            # a watch loop: it ran without failing; stop it and look at what it printed
            process.terminate()
            await process.wait()
            out, err = await reading
            assert not err.strip(), err.decode()
        else:
            out, err = await reading
            assert process.returncode == 0, err.decode()
        assert out.strip(), "the script printed nothing"
