"""Pods that run on a (virtual) kubelet, for the exec, attach and port-forward tests."""

from __future__ import annotations

from typing import Any

import kubeasync

from .waiting import eventually


def pod_body(name: str, *, containers: tuple[str, ...] = ("app",), ports: tuple[int, ...] = (),
             annotations: dict[str, str] | None = None, restart: str = "Always",
             node: str | None = None, pod_spec: dict[str, Any] | None = None,
             **container: Any) -> dict[str, Any]:
    """A pod of busybox containers; ``container`` options go into each container,
    ``pod_spec`` into the pod's spec (``nodeSelector``, ``schedulerName``...)."""
    spec: dict[str, Any] = {
        **(pod_spec or {}),
        "restartPolicy": restart,
        "containers": [{"name": c, "image": "busybox:1.36",
                        **({"ports": [{"containerPort": p} for p in ports]} if ports else {}),
                        **container}
                       for c in containers],
    }
    if node is not None:
        spec["nodeName"] = node
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": spec}


async def phase(kube: kubeasync.Client, name: str, namespace: str) -> str | None:
    pod = await kube.pods.get(name, namespace=namespace)
    return pod.status.phase if pod.status is not None else None


async def wait_running(kube: kubeasync.Client, name: str, namespace: str,
                       timeout: float = 30) -> None:
    async def running() -> bool:
        return await phase(kube, name, namespace) == "Running"

    await eventually(running, f"pod {namespace}/{name} Running", timeout)


async def running_pod(kube: kubeasync.Client, name: str, namespace: str = "default",
                      timeout: float = 30, **options: Any) -> None:
    """Create a pod and wait until it runs."""
    await kube.pods.create(pod_body(name, **options), namespace=namespace)
    await wait_running(kube, name, namespace, timeout)
