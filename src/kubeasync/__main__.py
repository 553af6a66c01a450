"""The ``kubeasync`` command line.

    python -m kubeasync demo
    python -m kubeasync serve --port 8080 --kubeconfig ./fake.kubeconfig
    python -m kubeasync models widgets-crd.yaml -o widgets.py

Each subcommand is one function that adds its parser (see :data:`COMMANDS`); adding a
command is writing that function and listing it there.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

Subparsers = Any  # argparse's _SubParsersAction is private


def _add_serve(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the embedded Kubernetes API server",
        description="Run the in-memory Kubernetes API server (with a simulated node) until"
        " interrupted, and write a kubeconfig that kubectl or any client can use.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument("--kubeconfig", metavar="PATH",
                        help="write a kubeconfig for the server here")
    parser.add_argument("--token", help="require this bearer token")
    parser.add_argument("--no-simulate", dest="simulate", action="store_false",
                        help="no simulated node: pods stay Pending, jobs never run")
    parser.add_argument("--run-seconds", type=float, default=5.0,
                        help="how long simulated pods that are not servers run (default 5)")
    parser.add_argument("--fast", action="store_true",
                        help="run the simulated node at test speed (milliseconds, not seconds)")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from .testing import FakeApiServer, Timings

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = FakeApiServer(
            host=args.host,
            port=args.port,
            token=args.token,
            simulate=args.simulate,
            timings=Timings() if args.fast else Timings(
                schedule=0.5, start=1.0, run=args.run_seconds, terminate=1.0),
        )
        async with server:
            print(f"kubeasync fake API server listening on {server.url}", flush=True)
            if args.kubeconfig:
                path = server.write_kubeconfig(args.kubeconfig)
                print(f"kubeconfig written to {path}; try: KUBECONFIG={path} kubectl get pods",
                      flush=True)
            await stop.wait()
            print("stopping", flush=True)

    asyncio.run(run())
    return 0


def _add_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="a ten-second tour of kubeasync on the embedded API server",
        description="Create a Job, Pods, a Service and a PVC in a scratch namespace while"
        " watch loops print every event; follow a pod's log; list with selectors and"
        " pagination; delete with DeleteOptions; clean up. Runs on the embedded API server"
        " unless --kubeconfig names a real cluster.",
    )
    parser.add_argument("--kubeconfig", metavar="PATH",
                        help="run against this cluster instead of the embedded server")
    parser.add_argument("--context", help="the kubeconfig context to use")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import demo_main

    asyncio.run(demo_main(args.kubeconfig, args.context))
    return 0


def _add_models(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="write typed models for the custom resources of a CRD",
        description="Write a Python module of msgspec models (and the ResourceDescriptor)"
        " for every served version of the CustomResourceDefinitions in a YAML file, from"
        " their openAPIV3Schema: the storage version's classes take the plain names"
        " (Widget, WidgetList, WIDGETS), the other versions' carry the version.",
    )
    parser.add_argument("crd", metavar="CRD.yaml",
                        help="a file with one or more CustomResourceDefinitions ('-': stdin)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="write the module here (default: standard output)")
    parser.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .crd_models import CRDModelError, generate_models
    from .manifests import ManifestError, load_all_yaml
    from .models._base import to_dict

    try:
        source = sys.stdin if args.crd == "-" else Path(args.crd)
        objects = load_all_yaml(source)
        crds = [to_dict(o) if not isinstance(o, dict) else o for o in objects]
        text = generate_models(crds, source=Path(args.crd).name if args.crd != "-" else "")
    except (OSError, ManifestError, CRDModelError) as exc:
        print(f"kubeasync models: error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"kubeasync models: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS: list[Callable[[Subparsers], None]] = [_add_demo, _add_models, _add_serve]
"""Every subcommand's parser builder, in the order ``--help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeasync", description="kubeasync tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
