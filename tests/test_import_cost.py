"""What ``import kubeasync`` loads: every public name is imported on first use.

Checked in fresh interpreters (``sys.modules``), never by timing: the import-time figures
live in ``benchmarks/import_time.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import kubeasync

HEAVY = ("aiohttp", "yaml", "asyncio", "ssl", "kubeasync.api.client", "kubeasync.models")


def loaded_after(code: str) -> list[str]:
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_import_kubeasync_loads_no_client_transport_or_yaml() -> None:
    assert loaded_after("import kubeasync") == []


def test_a_model_import_loads_neither_the_client_nor_aiohttp() -> None:
    assert loaded_after("from kubeasync.models.apps_v1 import Deployment") == [
        "kubeasync.models"]


def test_the_client_is_there_on_first_use() -> None:
    loaded = loaded_after("import kubeasync\nkubeasync.Client")
    assert "kubeasync.api.client" in loaded and "aiohttp" not in loaded


def test_every_public_name_resolves() -> None:
    for name in kubeasync.__all__:
        assert getattr(kubeasync, name) is not None, name
    assert set(kubeasync.__all__) <= set(dir(kubeasync))
    assert kubeasync.Client.__module__ == "kubeasync.api.client"
