"""Smoke tests of the benchmark harness (``benchmarks/``), at tiny sizes.

They check that the harness runs and reports, never how fast anything is: there is no
timing assertion here. kubeasync and the two baselines always run; a peer client runs only
when it is installed (it comes from the optional ``bench`` extra, not from ``dev``).
"""

from __future__ import annotations

import gzip
import http.client
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from benchmarks import data, report, run
from benchmarks.plain_models import Pod as PlainPod
from kubeasync.models import Pod

REPO = Path(__file__).resolve().parent.parent


def harness(clients: str, cells: str | None = None) -> dict[str, Any]:
    argv = ["--quick", "--clients", clients, *(["--cells", cells] if cells else [])]
    return run.run_all(run.parse_args(argv))


@pytest.fixture(scope="module")
def core_run() -> dict[str, Any]:
    return harness("aiohttp-raw,msgspec-plain,kubeasync,kubeasync-watcher")


def test_data_is_apiserver_shaped() -> None:
    body = data.pod_bytes(7)
    assert 6000 < len(body) < 7500
    pod = msgspec.json.decode(body, type=Pod)
    assert pod.metadata is not None and pod.metadata.managed_fields is not None
    assert len(pod.metadata.managed_fields) == 2
    assert pod.spec is not None and len(pod.spec.containers or []) == 2
    assert b" " not in body.split(b'"')[0]  # compact, as the apiserver writes it
    # the baseline models decode every field the data carries
    plain = msgspec.json.decode(body, type=PlainPod)
    assert _without_nulls(msgspec.to_builtins(plain)) == _without_nulls(msgspec.json.decode(body))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with run.server_process(run.PROFILES["quick"]) as url:
        yield url


def _get(url: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def test_server_gzips_large_lists_only_when_asked(server: str) -> None:
    path = "/api/v1/namespaces/pods-100/pods"
    plain = _get(server, path)
    assert plain.getheader("Content-Type") == "application/json"
    assert plain.getheader("Transfer-Encoding") == "chunked"
    assert plain.getheader("Content-Encoding") is None
    zipped = _get(server, path, {"Accept-Encoding": "gzip"})
    assert zipped.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body  # type: ignore[attr-defined]
    assert len(json.loads(plain.body)["items"]) == 100  # type: ignore[attr-defined]
    small = _get(server, "/api/v1/namespaces/bench/pods/small", {"Accept-Encoding": "gzip"})
    assert small.getheader("Content-Encoding") is None
    assert small.getheader("Content-Length") == str(len(small.body))  # type: ignore[attr-defined]


def test_server_pages_and_field_selector(server: str) -> None:
    first = json.loads(_get(server, "/api/v1/namespaces/pods-100/pods?limit=30").body)  # type: ignore[attr-defined]
    assert len(first["items"]) == 30 and first["metadata"]["continue"] == "30"
    last = json.loads(
        _get(server, "/api/v1/namespaces/pods-100/pods?limit=30&continue=90").body  # type: ignore[attr-defined]
    )
    assert len(last["items"]) == 10 and "continue" not in last["metadata"]
    one = json.loads(
        _get(server, "/api/v1/namespaces/x/pods?fieldSelector=metadata.name%3Dweb").body  # type: ignore[attr-defined]
    )
    assert [p["metadata"]["name"] for p in one["items"]] == ["web"]


def test_server_streams_events_and_keeps_the_connection(server: str) -> None:
    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    for _ in range(2):  # the same connection serves a second stream (keep-alive)
        conn.request("GET", "/api/v1/namespaces/events-20/pods?watch=true")
        response = conn.getresponse()
        lines = response.read().splitlines()
        assert len(lines) == 20
        events = [json.loads(line) for line in lines]
        assert {e["type"] for e in events} == {"MODIFIED"}
        assert events[-1]["object"]["metadata"]["resourceVersion"] == "200019"
    conn.close()


def test_core_clients_run_and_report(core_run: dict[str, Any]) -> None:
    results = core_run["results"]
    for client in ("aiohttp-raw", "msgspec-plain", "kubeasync"):
        for cell in run.ALL_CELLS:
            result = results[client][cell]
            if client == "kubeasync" and cell in run.WATCH_ONLY and not result["ok"]:
                # the watch API is not on main yet: reported, not crashed
                assert result.get("na") == "n/a (not implemented)", result
                continue
            assert result["ok"], (client, cell, result)
            assert result["samples"], (client, cell)
            assert result["gc_enabled_after"] is True, (client, cell)
    kube = results["kubeasync"]
    assert kube["list_large"]["server"]["list_gzip_asked"] >= 1  # records what it asks
    assert set(results["kubeasync-watcher"]) == set(run.WATCH_ONLY)


def test_report_has_ratios_and_targets(core_run: dict[str, Any]) -> None:
    table = report.table(core_run)
    assert "msgspec plain (baseline)" in table and "(1.00x)" in table
    kube_row = next(line for line in table.splitlines() if line.startswith("| kubeasync |"))
    assert "x)" in kube_row  # figures carry their ratio to the baseline
    verdicts = report.targets(core_run)
    assert len(verdicts) == 11
    assert all(v[2] in ("met", "MISSED", "NOT MEASURED") or v[2].startswith("PENDING")
               for v in verdicts)


def test_write_docs_keeps_the_hand_written_text(core_run: dict[str, Any], tmp_path: Path) -> None:
    core_run = {**core_run, "meta": {"date": "today", "command": "python -m benchmarks.run",
                                     "profile": "quick", "duration_s": 1.0, "machine": "m",
                                     "versions": {"kubeasync": "0"}}}
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nhand-written\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    report.write_docs(core_run, page, tmp_path / "img" / "benchmarks.png")
    text = page.read_text()
    assert "hand-written" in text and "after" in text and "old" not in text
    assert "| kubeasync |" in text
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "img" / "benchmarks.png").stat().st_size > 0


@pytest.mark.parametrize("peer", ["lightkube", "kubernetes_asyncio", "kr8s", "kubernetes"])
def test_peer_runs_when_installed(peer: str) -> None:
    if importlib.util.find_spec(peer) is None:
        pytest.skip(f"{peer} is not installed (optional 'bench' extra)")
    result = harness(peer, "list_small,watch")
    for cell in ("list_small", "watch"):
        assert result["results"][peer][cell]["ok"], result["results"][peer][cell]


def test_command_line_help() -> None:
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "--quick" in out and "--write-docs" in out
