"""How the harness runs client-go (``benchmarks/clientgo``), without Go.

The Go program is optional: when it is not built the harness says so in one line and goes
on; when it is, the worker replaces itself with it, pinned to one core with GOMAXPROCS=1.
A stand-in program (a Python script at the path the harness looks for) shows what the
worker hands over. No timing assertion here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import real_apiserver, report, run

REPO = Path(__file__).resolve().parent.parent

STAND_IN = """#!{python}
import json, os, sys
argv = sys.argv[1:]
print(json.dumps({{
    "ok": True, "argv": argv, "samples": [0.5], "cpu_s": [0.25], "unit": "s",
    "gomaxprocs_env": os.environ.get("GOMAXPROCS"),
    "affinity": sorted(os.sched_getaffinity(0)),
    "gomaxprocs": 1, "cpu_affinity": sorted(os.sched_getaffinity(0)),
    "content_types": {{"application/json": 1}}, "gzip_answers": 0,
    "gc_enabled_after": True,
}}))
"""


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    program = tmp_path / "clientgo"
    program.write_text(STAND_IN.format(python=sys.executable))
    program.chmod(0o755)
    monkeypatch.setenv("KUBEASYNC_BENCH_CLIENTGO", str(program))
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    return program


def worker(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.worker", *args], cwd=REPO,
                         capture_output=True, text=True, check=True, env=run.worker_env())
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_worker_execs_the_go_program_on_one_core(stand_in: Path) -> None:
    args = ["--client", "client-go-protobuf", "--scenario", "list", "--size", "10",
            "--server", "http://127.0.0.1:1", "--kubeconfig", "/dev/null", "--reps", "2"]
    result = worker(*args)
    assert result["argv"] == [*args, "--protobuf"]  # the same arguments, plus its own
    assert result["gomaxprocs_env"] == "1"
    assert len(result["affinity"]) == 1
    assert result["affinity"][0] in os.sched_getaffinity(0)


def test_worker_reports_a_missing_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEASYNC_BENCH_CLIENTGO", str(tmp_path / "absent"))
    result = worker("--client", "client-go", "--scenario", "get", "--size", "1",
                    "--server", "http://127.0.0.1:1", "--kubeconfig", "/dev/null")
    assert result["ok"] is False and "not built" in result["error"]


def test_harness_skips_client_go_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBEASYNC_BENCH_CLIENTGO", str(tmp_path / "absent"))
    clients = "msgspec-plain,client-go,client-go-protobuf"
    result = run.run_all(run.parse_args(["--quick", "--clients", clients, "--cells", "list_small"]))
    lines = [line for line in capsys.readouterr().err.splitlines() if "client-go" in line]
    assert len(lines) == 1, lines
    assert "skipped client-go" in lines[0]
    assert "KUBE_REAL_GO_CMD=benchmarks/clientgo" in lines[0]
    assert "client-go" not in result["results"]
    assert result["results"]["msgspec-plain"]["list_small"]["ok"]
    row = next(r for r in report.table(result).splitlines() if r.startswith("| client-go"))
    assert "not built" in row


def test_harness_runs_client_go_as_one_more_client(stand_in: Path) -> None:
    result = run.run_all(run.parse_args(["--quick", "--clients", "msgspec-plain,client-go",
                                         "--cells", "list_small"]))
    go = result["results"]["client-go"]["list_small"]
    assert go["ok"] and go["argv"][:2] == ["--client", "client-go"]
    assert "--server" in go["argv"] and "--kubeconfig" in go["argv"]
    assert "GOMAXPROCS=1" in report.details(result)


def test_real_apiserver_skips_both_go_rows_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBEASYNC_BENCH_CLIENTGO", str(tmp_path / "absent"))
    args = real_apiserver.parse_args(["--clients", "client-go,client-go-protobuf"])
    skipped = {c: run.missing(c) for c in args.clients.split(",")}
    assert all(skipped.values())
    real_apiserver.log_skipped(skipped)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_real_apiserver_targets_are_ratios_of_client_cpu() -> None:
    def cell(cpu: float) -> dict[str, Any]:
        return {"ok": True, "samples": [1.0, 1.0, 1.0], "cpu_s": [cpu, cpu * 2, cpu / 2]}

    results = {
        "kubeasync": {"list": cell(0.3), "watch": cell(0.5)},
        "client-go": {"list": cell(1.0), "watch": cell(1.0)},
        "client-go-protobuf": {"list": cell(0.4), "watch": cell(0.4)},
    }
    fake_run = {"pods": 10, "events": 100, "clients": list(results), "results": results,
                "skipped": {}}
    verdicts = real_apiserver.targets(fake_run)
    assert verdicts == [
        ("kubeasync client CPU per LIST <= 0.5x client-go JSON", "0.30x", "met"),
        ("kubeasync client CPU per LIST <= 1.0x client-go protobuf", "0.75x", "met"),
        ("kubeasync watch client CPU per event <= client-go protobuf", "1.25x", "MISSED"),
    ]
    table = real_apiserver.table(fake_run)
    assert "| kubeasync | JSON | 1.00 s | 300 ms | 0.30x | 0.75x |" in table
    assert "5000 us" in table  # 0.5 s of CPU over 100 events
