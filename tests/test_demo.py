"""The demo: the README's main command, run as a user runs it, and its report in-process."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import kubeasync
from kubeasync.demo import LOG_LINES, run_demo
from kubeasync.testing import FakeApiServer, Timings


def test_python_m_kubeasync_demo_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubeasync", "demo"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "on the embedded API server" in out
    for expected in ("ADDED", "MODIFIED", "DELETED", "report 3/3 done",
                     "app=web,tier=front     -> ['web-0', 'web-1']", "== summary"):
        assert expected in out
    assert "Traceback" not in result.stderr


async def test_the_demo_does_what_it_says_and_cleans_up() -> None:
    timings = Timings(schedule=0.01, start=0.02, run=1.2, terminate=0.02)
    async with FakeApiServer(simulate=True, timings=timings) as server:
        async with kubeasync.Client(server.config()) as kube:
            out = io.StringIO()
            report = await run_demo(kube, out=out, append_log=server.append_log,
                                    namespace="demo")
            assert report.steps == ["create", "logs", "list", "delete"]
            # the watch loops saw the whole life of the objects
            assert report.events["ADDED"] >= 5 and report.events["DELETED"] >= 4
            assert report.events["MODIFIED"] >= 4
            # the followed log has every line the node wrote, in order
            assert [line for line in report.log_lines if line in LOG_LINES] == LOG_LINES
            assert report.listed == {
                "app=web,tier=front": ["web-0", "web-1"],
                "pages of 2": ["web-0", "web-1", "web-2"],
                "status.phase=Running": ["web-0", "web-1", "web-2"],
            }
            assert set(report.deleted) >= {
                "pod/web-0", "pod/web-1", "pod/web-2", "job/reports", "service/web",
                "persistentvolumeclaim/reports-data",
            }
        # the scratch namespace and everything in it are gone
        for _ in range(100):
            if server.get_object("namespaces", "demo", namespace=None) is None:
                break
            await asyncio.sleep(0.02)
        assert server.get_object("namespaces", "demo", namespace=None) is None
        assert server.list_objects("pods", namespace="demo") == []
