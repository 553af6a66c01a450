"""Apply a manifest with server-side apply, then wait until its Deployments are available.

    python examples/apply_manifest.py examples/manifests/web.yaml --field-manager demo

It reads the manifest (every document; built-in kinds become typed objects), applies it
in a safe order (Namespaces and CRDs first) and, for each Deployment in it, follows the
Deployment with a watch until the controller reports the new template rolled out and
available (``observedGeneration`` caught up, every replica updated and available), printing
the progress. The exit status is 0 when every Deployment became available within
``--timeout`` seconds, 1 otherwise (2 when the manifest or the apply failed).

Import it to run it elsewhere (its tests run it on the embedded server, whose controllers
make the Deployment available, and on a real kube-apiserver):

    deployments = await apply_and_wait(kube, kubeasync.load_all_yaml(path), field_manager="me")
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubeasync
from kubeasync.models.apps_v1 import Deployment


def progress(deployment: Deployment) -> tuple[bool, str]:
    """Whether the Deployment's current template is rolled out and available, and a line
    saying where it is (as ``kubectl rollout status`` does)."""
    spec, status, meta = deployment.spec, deployment.status, deployment.metadata
    wanted = (spec.replicas if spec is not None and spec.replicas is not None else 1)
    if status is None or (status.observed_generation or 0) < (meta.generation or 0):
        return False, "waiting for the controller to see the new generation"
    updated, available = status.updated_replicas or 0, status.available_replicas or 0
    if updated < wanted:
        return False, f"{updated} of {wanted} replicas updated"
    if (status.replicas or 0) > updated:
        return False, f"{(status.replicas or 0) - updated} old replicas still running"
    if available < updated:
        return False, f"{available} of {updated} updated replicas available"
    return True, f"available ({available}/{wanted})"


async def wait_available(
    kube: kubeasync.Client, name: str, namespace: str, *,
    say: Callable[[str], Any] = print,
) -> Deployment:
    """Watch the Deployment until :func:`progress` says it is available."""
    last = ""
    async with kube.deployments.watch(namespace=namespace,
                                      field_selector={"metadata.name": name}) as events:
        async for event in events:
            if event.type == "DELETED":
                raise RuntimeError(f"deployment {namespace}/{name} was deleted")
            done, line = progress(event.object)
            if line != last:
                say(f"deployment {namespace}/{name}: {line}")
                last = line
            if done:
                return event.object
    raise RuntimeError(f"the watch on deployment {namespace}/{name} ended")


async def apply_and_wait(
    kube: kubeasync.Client,
    objs: list[kubeasync.KubeObject],
    *,
    field_manager: str,
    timeout: float = 300.0,
    say: Callable[[str], Any] = print,
) -> list[Deployment]:
    """Apply ``objs``, then wait (at most ``timeout`` seconds, for all of them together)
    until every Deployment among them is available; returns those Deployments."""
    applied = await kube.apply(objs, field_manager=field_manager)
    say(f"applied {len(applied)} objects")
    deployments = [o for o in applied if isinstance(o, Deployment)]
    waits = [wait_available(kube, d.metadata.name or "", d.metadata.namespace or kube.namespace,
                            say=say) for d in deployments]
    return list(await asyncio.wait_for(asyncio.gather(*waits), timeout))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", nargs="?", type=Path,
                        default=Path(__file__).parent / "manifests" / "web.yaml")
    parser.add_argument("--field-manager", default="apply-manifest-example")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the Deployments (default 300)")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    args = parser.parse_args(argv)
    try:
        objs = kubeasync.load_all_yaml(args.manifest)
    except (OSError, kubeasync.ManifestError) as exc:
        print(f"apply_manifest: {exc}", file=sys.stderr)
        return 2
    config = kubeasync.ClusterConfig.from_kubeconfig(args.kubeconfig) if args.kubeconfig else None
    async with kubeasync.Client(config) as kube:
        try:
            await apply_and_wait(kube, objs, field_manager=args.field_manager,
                                 timeout=args.timeout)
        except kubeasync.ApplyError as exc:
            print(f"apply_manifest: {exc}", file=sys.stderr)
            return 2
        except TimeoutError:
            print(f"apply_manifest: not available within {args.timeout} s", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
