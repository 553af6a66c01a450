"""Import time of kubeasync (and of lightkube's models, when installed), in fresh processes.

Usage::

    python benchmarks/import_time.py                       # 15 rounds, median of each statement
    python benchmarks/import_time.py --reps 31
    python benchmarks/import_time.py --baseline ../baseline-0.1   # also a checkout of an
                                                                  # earlier version, same run

Each statement is timed inside a fresh interpreter: wall clock and the process's CPU time
around the statement only, so interpreter start-up is not counted. On a shared machine the
CPU time is the steadier figure, and the ratios use it. The statements take turns, one
round at a time, so that a busy machine slows all of them alike, after one warm-up round
that writes the bytecode caches (a user's install has them). A ``--baseline`` checkout (a
folder holding the ``kubeasync`` package, or a ``src/`` layout; repeatable) is put first on
``PYTHONPATH`` for its rows, and each of its runs checks that the baseline's ``kubeasync``
is the one imported. With lightkube installed (``pip install -e '.[bench]'``), a second
table puts each kubeasync statement next to lightkube's equivalent, measured in the same
rounds: ``import kubeasync`` / ``import lightkube``, the Deployment model of each, and the
client class of each (what a program that talks to a cluster pays). Then
``python -X importtime -c "import kubeasync"`` shows the modules that cost the most (their
own time, the median over the rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Statement:
    label: str
    code: str
    baseline: Path | None = None  # where kubeasync is imported from, None: the installed one
    needs: str = ""  # a module that must be importable, else the row is skipped


def _probe(code: str, baseline: Path | None) -> str:
    check = ""
    if baseline is not None:
        check = (
            "import kubeasync as _k, os as _os\n"
            f"assert _os.path.realpath(_k.__file__).startswith({str(baseline.resolve())!r}),"
            " _k.__file__\n"
        )
    return (
        "import time as _t\n"
        "_start, _cpu = _t.perf_counter(), _t.process_time()\n"
        f"{code}\n"
        "_elapsed, _cpu = _t.perf_counter() - _start, _t.process_time() - _cpu\n"
        f"{check}"
        "print(_elapsed, _cpu)\n"
    )


def _env(baseline: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    # Measure what a user's install does: with cached bytecode (the warm-up round writes it).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline)
    return env


def time_once(statement: Statement) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run of the statement in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _probe(statement.code, statement.baseline)],
        capture_output=True,
        text=True,
        env=_env(statement.baseline),
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"{statement.label}: failed:\n{done.stderr}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def importtime(code: str, baseline: Path | None = None) -> dict[str, int]:
    """Module -> its own import time in microseconds, from ``python -X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_env(baseline),
        check=True,
        timeout=120,
    )
    own: dict[str, int] = {}
    for line in done.stderr.splitlines():
        # "import time:       248 |        248 |   kubeasync._version"
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        own[name.strip()] = int(self_us)
    return own


def _baseline_root(path: Path) -> Path:
    """The folder to put on PYTHONPATH for a checkout (``src/`` layout or flat)."""
    return path / "src" if (path / "src" / "kubeasync").is_dir() else path


def _importable(module: str) -> bool:
    code = f"import importlib.util as u; raise SystemExit(u.find_spec({module!r}) is None)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    return done.returncode == 0


# kubeasync's statement -> lightkube's equivalent (the side-by-side table).
EQUIVALENTS = {
    "import kubeasync": "import lightkube",
    "from kubeasync.models.apps_v1 import Deployment":
        "from lightkube.resources.apps_v1 import Deployment",
    "from kubeasync import Client": "from lightkube import AsyncClient",
}


def statements(baselines: list[Path]) -> list[Statement]:
    out = [
        Statement("import kubeasync", "import kubeasync"),
        Statement(
            "from kubeasync.models.apps_v1 import Deployment",
            "from kubeasync.models.apps_v1 import Deployment",
        ),
        Statement("from kubeasync import Client", "from kubeasync import Client"),
        Statement(
            "import kubeasync + a Deployment decoder",
            "import kubeasync, msgspec\n"
            "from kubeasync.models.apps_v1 import Deployment\n"
            "msgspec.json.Decoder(Deployment)",
        ),
    ]
    for index, baseline in enumerate(baselines, start=1):
        name = baseline.parent.name if baseline.name == "src" else baseline.name
        out.insert(index, Statement(f"import kubeasync ({name})", "import kubeasync", baseline))
    out += [
        Statement(
            "lightkube: from lightkube.resources.core_v1 import Pod",
            "from lightkube.resources.core_v1 import Pod",
            needs="lightkube",
        ),
    ]
    out += [Statement(f"lightkube: {code}", code, needs="lightkube")
            for code in EQUIVALENTS.values()]
    return [s for s in out if not s.needs or _importable(s.needs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=15, help="rounds (fresh processes each)")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="a checkout of an earlier version (repeatable)",
    )
    parser.add_argument("--top", type=int, default=15, help="modules in the breakdown")
    args = parser.parse_args(argv)
    baselines = [_baseline_root(path.resolve()) for path in args.baseline]
    todo = statements(baselines)
    samples: dict[Statement, list[tuple[float, float]]] = {s: [] for s in todo}
    breakdown: dict[str, list[int]] = {}
    for statement in todo:  # warm-up: writes the bytecode caches, not counted
        time_once(statement)
    for _ in range(args.reps):
        for statement in todo:
            samples[statement].append(time_once(statement))
        for module, us in importtime("import kubeasync").items():
            breakdown.setdefault(module, []).append(us)
    wall = {s: statistics.median(w for w, _ in v) for s, v in samples.items()}
    cpu = {s: statistics.median(c for _, c in v) for s, v in samples.items()}
    first = todo[0]
    width = max(len(s.label) for s in todo)
    print(f"python {sys.version.split()[0]}, {args.reps} rounds, medians (fresh processes)")
    print(
        f"{'statement':<{width}}  {'wall ms':>8}  {'min':>6}  {'cpu ms':>7}  {'min':>6}"
        f"  {'cpu vs first':>12}"
    )
    for statement in todo:
        values = samples[statement]
        print(
            f"{statement.label:<{width}}  {wall[statement] * 1000:8.1f}"
            f"  {min(w for w, _ in values) * 1000:6.1f}  {cpu[statement] * 1000:7.1f}"
            f"  {min(c for _, c in values) * 1000:6.1f}  {cpu[statement] / cpu[first]:11.2f}x"
        )
    by_label = {s.label: s for s in todo}
    pairs = [(by_label[ours], by_label[f"lightkube: {theirs}"])
             for ours, theirs in EQUIVALENTS.items()
             if ours in by_label and f"lightkube: {theirs}" in by_label]
    if pairs:
        left = max(len(ours.label) for ours, _ in pairs)
        print(f"\nside by side, cpu ms (median of the same {args.reps} rounds)")
        print(f"{'kubeasync':<{left}}  {'ms':>6}  {'lightkube':<{left + 3}}  {'ms':>6}"
              f"  {'ratio':>6}")
        for ours, theirs in pairs:
            print(f"{ours.label:<{left}}  {cpu[ours] * 1000:6.1f}"
                  f"  {theirs.code:<{left + 3}}  {cpu[theirs] * 1000:6.1f}"
                  f"  {cpu[ours] / cpu[theirs]:5.2f}x")
    own = {m: statistics.median(v) for m, v in breakdown.items()}
    total = sum(own.values())
    print(
        f"\npython -X importtime -c 'import kubeasync': {total / 1000:.1f} ms in all, top modules"
    )
    print(f"{'module':<48}  {'own ms':>7}  {'share':>6}")
    for module, us in sorted(own.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{module:<48}  {us / 1000:7.1f}  {us / total:6.1%}")
    groups: dict[str, float] = {}
    for module, us in own.items():
        top = module.split(".")[0]
        if top == "kubeasync":
            top = ".".join(module.split(".")[:2])
        groups[top] = groups.get(top, 0) + us
    print(f"\n{'package':<48}  {'own ms':>7}  {'share':>6}")
    for package, us in sorted(groups.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{package:<48}  {us / 1000:7.1f}  {us / total:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
