"""Smoke test of the soak (``benchmarks/soak.py``): a few seconds, small N and M, every
fault kind. It checks correctness only (no loss, no duplicate, convergence), never how
fast anything is."""

from __future__ import annotations

from benchmarks import soak


async def test_soak_runs_every_fault_kind_and_converges_without_loss() -> None:
    options = soak.Options(
        duration=3.0, watchers=8, writers=2, seed=7, names=8, write_pause=0.02,
        fault_interval=0.08, watch_timeout=1, idle_timeout=1.0, backoff_max=0.5,
        converge_timeout=30.0,
    )
    result = await soak.soak(options)
    report = soak.summary(result)
    assert result.ok, report
    assert result.converged, report
    assert result.losses == 0 and result.duplicates == 0 and result.gaps == 0, report
    assert not result.watcher_errors and not result.writer_errors, report
    assert sum(result.writes.values()) > 0, report
    assert sum(result.events.values()) > 0, report
    for kind in soak.FAULT_KINDS:
        assert result.faults_injected[kind] >= 1, (kind, report)
        assert result.faults_triggered[kind] >= 1, (kind, report)
    assert "PASS" in report


def test_soak_command_line_options() -> None:
    options, args = soak.parse_args(["--duration", "2", "--watchers", "3", "--writers", "1",
                                     "--seed", "5", "--json", "out.json"])
    assert (options.duration, options.watchers, options.writers, options.seed) == (2, 3, 1, 5)
    assert args.json == "out.json"
