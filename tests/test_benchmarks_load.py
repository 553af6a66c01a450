"""Smoke tests of the load benchmark and of the real-apiserver benchmark's pipeline, on the
embedded API server at tiny sizes (``benchmarks/load.py``, ``benchmarks/real_apiserver.py``).

They check that the harnesses run, check the answers and report, never how fast anything
is: there is no timing assertion here. Neither Go nor a real kube-apiserver is needed (the
real-apiserver benchmark takes any kubeconfig; here the embedded server's, with client-go
absent). lightkube runs where it is installed (the optional ``bench`` extra).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import load, real_apiserver, run

REPO = Path(__file__).resolve().parent.parent
QUICK = load.PROFILES["quick"]


@pytest.fixture(scope="module")
def fake_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded server in its own process, seeded as the load benchmark seeds it."""
    with load.fake_apiserver(tmp_path_factory.mktemp("fake")) as kubeconfig:
        asyncio.run(load.seed(kubeconfig, QUICK))
        yield kubeconfig


@pytest.fixture
def no_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEASYNC_BENCH_CLIENTGO", str(tmp_path / "absent"))


def load_worker(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.load_worker", *args], cwd=REPO,
                         capture_output=True, text=True, check=True, env=run.worker_env(),
                         timeout=120)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_load_harness_runs_every_client_and_reports(no_go: None) -> None:
    result = load.run_all(load.parse_args(["--quick", "--targets", "fake"]))
    fake = result["targets"]["fake"]
    assert fake["seeded"]["pods"] == QUICK.pods
    for client in result["clients"]:
        cells = fake["results"][client]
        if client in load.MIXED_CLIENTS:
            mixed = cells["mixed"]
            assert mixed["ok"], (client, mixed)
            assert [r["requests"] for r in mixed["per_rep"]] == [QUICK.requests] * QUICK.reps
            assert set(mixed["latency_by_op"]) <= {"get", "list", "patch", "create", "delete"}
            assert mixed["latency_by_op"]["get"]["count"] > mixed["latency_by_op"]["list"]["count"]
            assert mixed["cpu_us_per_request"] > 0 and mixed["fds"] > 0
            assert mixed["gc_enabled_after"] is True
        idle = cells["idle"]
        assert idle["ok"], (client, idle)
        assert idle["delivered"] == QUICK.watches  # every watch was open and got the change
    text = load.report(result)
    assert "| kubeasync |" in text and "hand-written baseline" in text
    verdicts = load.targets(result)
    assert len(verdicts) == 3
    assert all(v[2] in ("met", "MISSED", "NOT MEASURED") for v in verdicts)


def test_load_checks_every_answer(fake_kubeconfig: str) -> None:
    """Told that the pods are in more label groups than they are, the LIST check fails."""
    args = ["--client", "kubeasync", "--scenario", "mixed", "--kubeconfig", fake_kubeconfig,
            "--namespace", load.NAMESPACE, "--pods", str(QUICK.pods), "--tasks", "4",
            "--requests", "200", "--reps", "1"]
    good = load_worker(*args, "--groups", str(QUICK.groups))
    assert good["ok"], good
    wrong = load_worker(*args, "--groups", str(QUICK.groups + 1))
    assert wrong["ok"] is False
    assert "LIST g" in wrong["error"]


def test_real_apiserver_pipeline_on_the_embedded_server(fake_kubeconfig: str,
                                                        no_go: None) -> None:
    argv = ["--kubeconfig", fake_kubeconfig, "--pods", "12", "--events", "6", "--reps", "2",
            "--budget", "2", "--clients", "msgspec-plain,kubeasync,client-go"]
    result = real_apiserver.run_all(real_apiserver.parse_args(argv))
    assert result["setup"]["seeded"]["pods"] == 12
    assert result["skipped"].keys() == {"client-go"}
    for client in ("msgspec-plain", "kubeasync"):
        for cell in real_apiserver.CELLS:
            cell_result = result["results"][client][cell]
            assert cell_result["ok"], (client, cell, cell_result)
            assert len(cell_result["cpu_s"]) == len(cell_result["samples"]) >= 1
    table = real_apiserver.table(result)
    assert "| client-go | skipped |" in table
    assert [v[2] for v in real_apiserver.targets(result)] == ["NOT MEASURED"] * 3


def test_real_apiserver_watch_checks_the_last_event(fake_kubeconfig: str) -> None:
    setup = asyncio.run(real_apiserver.prepare(fake_kubeconfig, pods=12, events=4,
                                               concurrency=4))
    args = real_apiserver.parse_args(["--pods", "12", "--events", "4", "--reps", "1",
                                      "--budget", "1"])
    cell = real_apiserver.cell_args("watch", args, setup, fake_kubeconfig)
    good = run.run_worker("kubeasync", cell, 60)
    assert good["ok"], good
    wrong = run.run_worker("kubeasync", [*cell, "--expect-last-rv", "1"], 60)
    assert wrong["ok"] is False and "wrong last event" in wrong["error"]
