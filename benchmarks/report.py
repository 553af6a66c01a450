"""Turn one run's results into the table, the target check, the plot and the docs page.

Every figure is shown with its ratio to the baseline (``msgspec-plain``) measured in the
same run: for times and memory a ratio below 1 is better, for rates above 1 is better.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASELINE = "msgspec-plain"
KUBEASYNC = "kubeasync"
WATCHER = "kubeasync-watcher"
IDLE_CPU_LIMIT_MS_PER_S = 1.0  # "no CPU": under 0.1 % of one core for all the watches
IDLE_MEMORY_LIMIT_KB = 100.0

BEGIN = "<!-- BEGIN GENERATED: python -m benchmarks.run --write-docs -->"
END = "<!-- END GENERATED -->"


@dataclass(frozen=True)
class Column:
    cell: str  # the result cell it reads
    title: str  # with {placeholders} from the sizes
    key: str  # "median" or a key of the result
    unit: str
    better: str  # "lower" | "higher"


COLUMNS = [
    Column("list_small", "LIST {list_small} typed", "median", "s", "lower"),
    Column("list_large", "LIST {list_large} typed", "median", "s", "lower"),
    Column("dicts_small", "LIST {list_small} dicts", "median", "s", "lower"),
    Column("dicts_large", "LIST {list_large} dicts", "median", "s", "lower"),
    Column("rss", "peak RSS, LIST {list_large}", "median", "MB", "lower"),
    Column("watch", "WATCH {watch} events", "median", "ev/s", "higher"),
    Column("get", "GET x{get} @{concurrency}", "median", "req/s", "higher"),
    Column("idle", "memory / idle watch ({idle})", "median", "KB", "lower"),
    Column("idle", "CPU, {idle} idle watches", "idle_cpu_ms_per_s", "ms/s", "lower"),
    Column("idle", "event latency p50 (max)", "latency_p50_ms", "ms", "lower"),
    Column("idle", "burst: 1 event to each of {idle}", "burst_ms", "ms", "lower"),
]


def median(result: dict[str, Any] | None) -> float | None:
    if not result or not result.get("ok") or not result.get("samples"):
        return None
    return float(statistics.median(result["samples"]))


def value(result: dict[str, Any] | None, key: str) -> float | None:
    if key == "median":
        return median(result)
    if not result or not result.get("ok"):
        return None
    raw = result.get(key)
    return None if raw is None else float(raw)


def fmt_number(x: float, unit: str) -> str:
    if unit == "s":
        return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"
    if unit in ("ev/s", "req/s"):
        return f"{x:,.0f} {unit}"
    if unit == "ms":
        return f"{x:.2f} ms" if x < 10 else f"{x:,.0f} ms"
    if unit == "ms/s":
        return f"{x:.2f} ms/s"
    return f"{x:,.0f} {unit}" if x >= 10 else f"{x:.1f} {unit}"


def fmt_ratio(x: float, base: float | None) -> str:
    if base is None or base == 0:
        return ""
    r = x / base
    return f" ({r:.2f}x)" if r < 10 else f" ({r:.0f}x)" if r < 1000 else f" ({r:,.0f}x)"


def cell_text(result: dict[str, Any] | None, column: Column, base: float | None) -> str:
    if result is None:
        return "-"
    if not result.get("ok"):
        if result.get("na"):
            return str(result["na"])
        return "error (see details)"
    x = value(result, column.key)
    if x is None:
        return "-"
    text = fmt_number(x, column.unit) + fmt_ratio(x, base)
    if column.key == "latency_p50_ms" and result.get("latency_max_ms") is not None:
        worst = fmt_number(float(result["latency_max_ms"]), "ms")
        text = f"{fmt_number(x, 'ms')} (max {worst})" + fmt_ratio(x, base)
    if column.cell == "idle" and column.key == "median" and result.get("opened") != result.get("requested"):
        text += f" [only {result.get('opened')}/{result.get('requested')} opened]"
    if column.key == "burst_ms" and result.get("burst_delivered") != result.get("opened"):
        text += f" [{result.get('burst_delivered')}/{result.get('opened')} delivered]"
    return text


def gzip_text(results: dict[str, dict[str, Any]]) -> str:
    for cell in ("list_large", "list_small", "dicts_large"):
        server = (results.get(cell) or {}).get("server") or {}
        if server.get("lists"):
            return "yes" if server.get("list_gzip_asked") else "no"
    return "-"


def titles(sizes: dict[str, Any]) -> list[str]:
    return [c.title.format(**sizes) for c in COLUMNS]


def table(run: dict[str, Any]) -> str:
    """The results as one Markdown table: each figure with its ratio to the baseline."""
    sizes = run["sizes"]
    results: dict[str, dict[str, Any]] = run["results"]
    base = results.get(BASELINE, {})
    head = ["client", *titles(sizes), "asks gzip"]
    rows = [head, ["---"] * len(head)]
    for client, meta in run["clients"].items():
        cells = results.get(client, {})
        label = meta["label"]
        if not meta.get("installed", True):
            why = "not built" if "not built" in meta.get("missing", "") else "not installed"
            rows.append([label, *([why] * len(COLUMNS)), "-"])
            continue
        row = [label]
        for column in COLUMNS:
            if column.cell not in meta["cells"]:
                row.append("-")
                continue
            row.append(cell_text(cells.get(column.cell), column,
                                 value(base.get(column.cell), column.key)))
        row.append(gzip_text(cells))
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def details(run: dict[str, Any]) -> str:
    """Per client and cell: samples, spread, and what the server saw."""
    lines = ["| client | cell | samples (median; min-max) | notes |", "|---|---|---|---|"]
    for client, cells in run["results"].items():
        label = run["clients"][client]["label"]
        for cell, result in cells.items():
            notes = []
            if not result.get("ok"):
                text = result.get("na") or result.get("error", "?")
                lines.append(f"| {label} | {cell} | - | {text} |")
                continue
            samples = result.get("samples") or []
            unit = result.get("unit", "")
            spread = (
                f"{len(samples)}: {_num(statistics.median(samples))} {unit}; "
                f"{_num(min(samples))}-{_num(max(samples))}" if samples else "-"
            )
            if "retained_mb" in result:
                notes.append(f"retained after the list {result['retained_mb']:.0f} MB, "
                             f"process peak {result['peak_mb']:.0f} MB")
            if "opened" in result:
                notes.append(f"{result['opened']}/{result['requested']} watches opened, "
                             f"{result.get('delivered')} single events delivered, burst "
                             f"{result.get('burst_delivered')}/{result['opened']}")
                if result.get("errors"):
                    notes.append("errors: " + "; ".join(result["errors"]))
            if "gomaxprocs" in result:
                notes.append(go_notes(result))
            server = result.get("server") or {}
            if server.get("lists") and cell.startswith(("list", "dicts", "rss")):
                accept = ", ".join(f"'{k}'" for k in server.get("accept_encoding", {}))
                notes.append(f"{server['lists']} list requests, Accept-Encoding {accept or '-'}, "
                             f"{server.get('gzip_served', 0)} gzipped")
            if server.get("watch_params") and cell == "watch":
                notes.append("watch query: " + server["watch_params"][-1])
            lines.append(f"| {label} | {cell} | {spread} | {'; '.join(notes)} |")
    return "\n".join(lines)


def go_notes(result: dict[str, Any]) -> str:
    """How a Go worker ran: its GOMAXPROCS, its cores, what the server answered."""
    answers = ", ".join(f"{k or '-'} x{v}" for k, v in (result.get("content_types") or {}).items())
    protocols = ", ".join(result.get("protocols") or {})
    return (f"GOMAXPROCS={result['gomaxprocs']} on CPU {result.get('cpu_affinity')}, "
            f"{result.get('go_version')}, client-go {result.get('client_go')}; answers: "
            f"{answers or '-'} ({result.get('gzip_answers', 0)} gzipped, {protocols or '-'})")


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


# ------------------------------------------------------------------------------ targets


def _ratio(run: dict[str, Any], client_a: str, client_b: str, cell: str,
           key: str = "median") -> float | None:
    a = value(run["results"].get(client_a, {}).get(cell), key)
    b = value(run["results"].get(client_b, {}).get(cell), key)
    if a is None or b is None or b == 0:
        return None
    return a / b


def targets(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target of issue 7."""
    results = run["results"]
    kube = results.get(KUBEASYNC, {})
    out: list[tuple[str, str, str]] = []

    def check(name: str, measured: float | None, ok: Callable[[float], bool], fmt: str,
              pending_cell: str | None = None) -> None:
        if measured is None:
            result = kube.get(pending_cell or "") or {}
            if result.get("na") == "n/a (not implemented)":
                out.append((name, "n/a", "PENDING (kubeasync watch not implemented yet)"))
            else:
                out.append((name, "n/a", "NOT MEASURED"))
            return
        out.append((name, fmt.format(measured), "met" if ok(measured) else "MISSED"))

    check("LIST 10k typed <= 0.45x the plain msgspec decode time",
          _ratio(run, KUBEASYNC, BASELINE, "list_large"), lambda r: r <= 0.45, "{:.2f}x")
    check("LIST 10k typed >= 3x faster than lightkube",
          _ratio(run, "lightkube", KUBEASYNC, "list_large"), lambda r: r >= 3, "{:.1f}x faster")
    check("LIST 10k typed >= 15x faster than kubernetes_asyncio",
          _ratio(run, "kubernetes_asyncio", KUBEASYNC, "list_large"), lambda r: r >= 15,
          "{:.1f}x faster")
    check("WATCH (watch_stream) >= 1.4x the events/s of a plain msgspec line decode",
          _ratio(run, KUBEASYNC, BASELINE, "watch"), lambda r: r >= 1.4, "{:.2f}x", "watch")
    check("WATCH (watch_stream) >= 1.4x the events/s of lightkube",
          _ratio(run, KUBEASYNC, "lightkube", "watch"), lambda r: r >= 1.4, "{:.2f}x", "watch")
    check("WATCH (resilient watch()) >= 1.4x the events/s of a plain msgspec line decode",
          _ratio(run, WATCHER, BASELINE, "watch"), lambda r: r >= 1.4, "{:.2f}x", "watch")
    check("WATCH (resilient watch()) >= 1.4x the events/s of lightkube",
          _ratio(run, WATCHER, "lightkube", "watch"), lambda r: r >= 1.4, "{:.2f}x", "watch")
    check("peak RSS of the 10k list <= 1.1x the baseline's",
          _ratio(run, KUBEASYNC, BASELINE, "rss"), lambda r: r <= 1.1, "{:.2f}x")
    check("GET throughput >= lightkube's",
          _ratio(run, KUBEASYNC, "lightkube", "get"), lambda r: r >= 1.0, "{:.2f}x")
    check(f"idle watch: no CPU (< {IDLE_CPU_LIMIT_MS_PER_S:g} ms/s for all of them)",
          value(kube.get("idle"), "idle_cpu_ms_per_s"),
          lambda v: v < IDLE_CPU_LIMIT_MS_PER_S, "{:.2f} ms/s", "idle")
    check(f"idle watch: under {IDLE_MEMORY_LIMIT_KB:g} KB each",
          value(kube.get("idle"), "median"), lambda v: v < IDLE_MEMORY_LIMIT_KB, "{:.1f} KB",
          "idle")
    return out


def targets_table(run: dict[str, Any]) -> str:
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(run)]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ plot


PLOTS = [
    ("list_large", "median", "LIST {list_large} pods, typed (s, log)", True),
    ("list_small", "median", "LIST {list_small} pods, typed (s, log)", True),
    ("watch", "median", "WATCH: events/s (log)", True),
    ("get", "median", "GET x{get} at {concurrency}: requests/s", False),
    ("rss", "median", "peak RSS growth, LIST {list_large} (MB)", False),
    ("idle", "median", "memory per idle watch (KB)", False),
]


def plot(run: dict[str, Any], path: Path) -> bool:
    """A bar chart per metric; False (and no file) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = run["sizes"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, (cell, key, title, log) in zip(axes.flat, PLOTS, strict=True):
        labels, values, colors = [], [], []
        for client, meta in run["clients"].items():
            x = value(run["results"].get(client, {}).get(cell), key)
            if x is None:
                continue
            labels.append(meta["label"])
            values.append(x)
            colors.append("#d62728" if client.startswith(KUBEASYNC) else
                          "#7f7f7f" if meta.get("baseline") else "#1f77b4")
        ax.barh(labels[::-1], values[::-1], color=colors[::-1])
        base = value(run["results"].get(BASELINE, {}).get(cell), key)
        if base:
            ax.axvline(base, color="black", linestyle="--", linewidth=1)
        if log:
            ax.set_xscale("log")
        ax.set_title(title.format(**sizes), fontsize=10)
        ax.tick_params(labelsize=8)
        for y, x in enumerate(values[::-1]):
            ax.text(x, y, f" {_num(x) if x >= 1000 else f'{x:.3g}'}", va="center", fontsize=7)
    fig.suptitle("kubeasync vs Python Kubernetes clients (dashed: plain msgspec baseline; "
                 "lower is better for time and memory)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------ docs


def generated_section(run: dict[str, Any], image: str | None) -> str:
    meta = run["meta"]
    parts = [
        BEGIN,
        "",
        f"Run of {meta['date']}, `{meta['command']}` ({meta['profile']} sizes), "
        f"{meta['duration_s'] / 60:.1f} minutes.",
        "",
        "**Machine:** " + meta["machine"],
        "",
        "**Versions:** " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "### Results",
        "",
        "Each figure is the median of its samples, with its ratio to the plain msgspec "
        "baseline of the same run in parentheses (times and memory: lower is better; "
        "rates: higher is better).",
        "",
        table(run),
        "",
    ]
    if image:
        parts += [f"![benchmark results]({image})", ""]
    parts += ["### Targets (issue 7)", "", targets_table(run), "", "### Details", "",
              details(run), "", END]
    return "\n".join(parts)


def write_docs(run: dict[str, Any], page: Path, image_path: Path) -> None:
    image = None
    if plot(run, image_path):
        image = str(image_path.relative_to(page.parent))
    section = generated_section(run, image)
    if page.exists():
        text = page.read_text()
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _m: section, text)
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
    else:
        text = "# Performance\n\n" + section + "\n"
    page.write_text(text)
