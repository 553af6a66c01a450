"""Run a command in a pod of a Deployment, then forward one of its ports.

    python examples/exec_and_forward.py --deployment web -- sh -c 'hostname; nginx -v'
    python examples/exec_and_forward.py --deployment web --create --port 80 -- hostname

It finds a running, ready pod of the Deployment (by the Deployment's selector), runs the
command in it and prints its output and exit code, then forwards the pod's ``--port`` to
a free local port, sends one HTTP request through it and prints the first line of what
comes back. ``--create`` first creates the Deployment (nginx, one replica) and deletes it
at the end. The exit status is the command's.

Import it to run it elsewhere (its tests run it on the embedded server and on a real API
server with a VirtualKubelet as the node, which answers every port as an echo server):

    pod = await ready_pod(kube, "web", namespace="default")
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import kubeasync
from kubeasync import custom_resource
from kubeasync.models import Pod

# Deployments as plain dicts: enough to read a selector.
DEPLOYMENTS = custom_resource(group="apps", version="v1", kind="Deployment",
                              plural="deployments", subresources=("status", "scale"))


def deployment_manifest(name: str, port: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                     "ports": [{"containerPort": port}]}]},
        }},
    }


def _ready(pod: Pod) -> bool:
    status = pod.status
    if status is None or status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


async def ready_pod(kube: kubeasync.Client, deployment: str, *, namespace: str | None = None,
                    timeout: float = 120) -> str:
    """The name of a running, ready pod of the Deployment (waiting for one)."""
    found = await kube.resource(DEPLOYMENTS).get(deployment, namespace=namespace)
    labels = found["spec"]["selector"].get("matchLabels") or {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        pods = await kube.pods.list(namespace=namespace, label_selector=labels)
        for pod in pods.items or []:
            if _ready(pod) and pod.metadata is not None and pod.metadata.name:
                return pod.metadata.name
        if loop.time() > deadline:
            raise TimeoutError(f"no ready pod of deployment {deployment} in {timeout:g} s")
        await asyncio.sleep(0.5)


async def first_response_line(kube: kubeasync.Client, pod: str, port: int, *,
                              namespace: str | None = None) -> bytes:
    """Forward the pod's port locally, send an HTTP request, return the first line back."""
    async with kube.pods.port_forward(pod, port, namespace=namespace) as forward:
        reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
        try:
            writer.write(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            await writer.drain()
            return await asyncio.wait_for(reader.readline(), 30)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def run(kube: kubeasync.Client, deployment: str, command: list[str], *, port: int,
              namespace: str | None = None, create: bool = False) -> int:
    deployments = kube.resource(DEPLOYMENTS)
    if create:
        await deployments.create(deployment_manifest(deployment, port), namespace=namespace)
    try:
        pod = await ready_pod(kube, deployment, namespace=namespace)
        result = await kube.pods.exec(pod, command, namespace=namespace, timeout=60)
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        print(f"{pod}: {' '.join(command)} exited with {result.exit_code}", file=sys.stderr)
        line = await first_response_line(kube, pod, port, namespace=namespace)
        print(f"{pod}:{port} answered: {line.decode(errors='replace').rstrip()}",
              file=sys.stderr)
        return result.exit_code
    finally:
        if create:
            with contextlib.suppress(kubeasync.NotFound):
                await deployments.delete(deployment, namespace=namespace,
                                         propagation_policy="Foreground")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: autodetect)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--deployment", required=True, help="the Deployment's name")
    parser.add_argument("--port", type=int, default=80, help="the pod port to forward")
    parser.add_argument("--create", action="store_true",
                        help="create the Deployment first (and delete it at the end)")
    parser.add_argument("command", nargs="+", help="the command to run (after --)")
    args = parser.parse_args(argv)
    config = (kubeasync.ClusterConfig.from_kubeconfig(args.kubeconfig, context=args.context)
              if args.kubeconfig else None)
    async with kubeasync.Client(config, context=None if config else args.context,
                                namespace=args.namespace) as kube:
        return await run(kube, args.deployment, args.command, port=args.port,
                         namespace=args.namespace, create=args.create)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
