"""The exec and port-forward benchmark runs and reports, at a tiny size (never how fast)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import exec_portforward


def test_the_benchmark_runs_on_the_embedded_server(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    figures = exec_portforward.main(["--execs", "5", "--mib", "1", "--json", str(out)])
    assert figures["server"] == "embedded"
    assert figures["exec"]["execs"] == 5
    assert 0 < figures["exec"]["p50_ms"] <= figures["exec"]["p99_ms"]
    assert figures["port_forward"]["mib"] == 1 and figures["port_forward"]["mb_per_s"] > 0
    assert json.loads(out.read_text()) == figures
