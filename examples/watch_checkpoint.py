"""A watch loop that saves its place and resumes from it after a restart.

    python examples/watch_checkpoint.py --namespace default --state ./pods.checkpoint

Every event is handled once; the watcher's ``resource_version`` (the point up to which
everything has been yielded) is saved to a file after each event, atomically, so a restart
resumes right after the last handled event instead of replaying the whole namespace.

If the saved resourceVersion has expired by the time the loop restarts (the server keeps a
few minutes of history), the watcher relists: every current object comes again as ADDED,
and handlers must tolerate seeing an object they already know (as level-triggered
controllers do). Deletions made while the loop was down are not reported in that case,
because a new process has no record of what it had seen.

Import it to run it elsewhere (its test runs it against the embedded API server):

    await follow(kube, namespace="default", state=Path("pods.checkpoint"), handle=print)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubeasync
from kubeasync.models import Pod


def load_checkpoint(state: Path) -> str | None:
    try:
        return state.read_text().strip() or None
    except FileNotFoundError:
        return None


def save_checkpoint(state: Path, resource_version: str) -> None:
    # write then rename: a crash never leaves a half-written checkpoint behind
    partial = state.with_name(state.name + ".tmp")
    partial.write_text(resource_version)
    os.replace(partial, state)


async def follow(
    kube: kubeasync.Client,
    *,
    namespace: str | None,
    state: Path,
    handle: Callable[[kubeasync.Event[Pod]], Any],
    stop_after: int | None = None,
) -> str | None:
    """Handle pod events from the saved checkpoint on; returns the last checkpoint.

    ``stop_after`` ends the loop after that many events (for tests and one-shot runs).
    """
    watcher = kube.pods.watch(namespace=namespace, resource_version=load_checkpoint(state))
    handled = 0
    async with watcher:
        async for event in watcher:
            handle(event)
            handled += 1
            if watcher.resource_version is not None:
                save_checkpoint(state, watcher.resource_version)
            if stop_after is not None and handled >= stop_after:
                break
    return watcher.resource_version


def print_event(event: kubeasync.Event[Pod]) -> None:
    pod = event.object
    name = pod.metadata.name if pod.metadata else "?"
    phase = pod.status.phase if pod.status else None
    print(f"{event.type:9} {name:30} {phase or ''}", flush=True)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", "-n", help="default: the context's namespace")
    parser.add_argument("--state", type=Path, default=Path("pods.checkpoint"),
                        help="the checkpoint file (default ./pods.checkpoint)")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    args = parser.parse_args(argv)
    config = kubeasync.ClusterConfig.from_kubeconfig(args.kubeconfig) if args.kubeconfig else None
    async with kubeasync.Client(config) as kube:
        await follow(kube, namespace=args.namespace, state=args.state, handle=print_event)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
