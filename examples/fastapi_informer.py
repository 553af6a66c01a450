"""A FastAPI service that answers from an informer's local cache, not from the API server.

    KUBECONFIG=~/.kube/config uvicorn examples.fastapi_informer:app --port 8000
    curl localhost:8000/pods?selector=app%3Dweb

At startup it opens one kubeasync Client and one pod informer (one list, then one watch);
every request is answered from the informer's store in microseconds, however many requests
arrive, and the API server sees no extra load. ``/healthz`` answers 503 until the store
has synced.

``create_app(config)`` builds the app for any cluster (its test passes the embedded API
server's config); ``app`` is the one uvicorn imports, configured from the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query

import kubeasync
from kubeasync.models import Pod, to_dict


def _summary(pod: Pod) -> dict[str, Any]:
    meta = pod.metadata
    return {
        "namespace": meta.namespace if meta else None,
        "name": meta.name if meta else None,
        "phase": pod.status.phase if pod.status else None,
        "node": pod.spec.node_name if pod.spec else None,
        "labels": (meta.labels if meta else None) or {},
    }


def create_app(config: kubeasync.ClusterConfig | None = None, *,
               namespace: str | None = None, all_namespaces: bool = True) -> FastAPI:
    """The service, watching ``namespace`` (or every namespace) of the given cluster."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with kubeasync.Client(config) as kube:
            informer = kube.pods.informer(
                namespace=namespace,
                all_namespaces=all_namespaces and namespace is None,
                transform=kubeasync.drop_managed_fields,
            )
            informer.add_index("by_node", lambda pod: [pod.spec.node_name]
                               if pod.spec and pod.spec.node_name else [])
            async with informer:
                state["pods"] = informer
                yield
                state.clear()

    app = FastAPI(title="pods from an informer", lifespan=lifespan)

    def pods() -> kubeasync.Informer[Pod]:
        informer: kubeasync.Informer[Pod] = state["pods"]
        return informer

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        if not pods().synced:
            raise HTTPException(status_code=503, detail="the pod cache has not synced yet")
        return {"synced": True, "pods": len(pods())}

    @app.get("/pods")
    async def list_pods(selector: str | None = Query(default=None),
                        node: str | None = Query(default=None)) -> list[dict[str, Any]]:
        try:
            found = (pods().by_index("by_node", node) if node is not None
                     else pods().list(label_selector=selector))
        except ValueError as exc:  # a malformed selector names itself in the message
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return [_summary(pod) for pod in found]

    @app.get("/pods/{namespace}/{name}")
    async def get_pod(namespace: str, name: str) -> dict[str, Any]:
        pod = pods().get(name, namespace=namespace)
        if pod is None:
            raise HTTPException(status_code=404, detail=f"pod {namespace}/{name} not found")
        return to_dict(pod)

    return app


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn examples.fastapi_informer:app``: built on first access, so importing the
    # module (for create_app) needs no cluster configuration.
    if name == "app":
        return create_app()
    raise AttributeError(name)
