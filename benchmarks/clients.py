"""One adapter per client: each client used through its own idiomatic API.

An adapter opens a client configured for the local server (kubeasync from a
``ClusterConfig``, every peer from the kubeconfig file the harness writes) and offers the
same few operations, so that the scenarios in :mod:`benchmarks.worker` are written once:

- ``list_typed(ns)`` / ``list_dicts(ns)``: every pod of a namespace, as the client's typed
  objects / as plain dicts (``NotSupported`` where the client offers no dicts);
- ``get(ns, name)``: one pod;
- ``watch(ns)``: an async iterator of the objects of watch events, through the client's own
  watch API (``NotSupported``/``NotImplementedError`` where there is none yet);
- ``sent(obj)``: the server's send timestamp carried by an idle-watch event;
- for the load benchmark (:mod:`benchmarks.load`): ``list_selector(ns, labels)``,
  ``patch(ns, name, patch)`` (a JSON merge patch), ``create(ns, body)`` (a pod as a dict),
  ``delete(ns, name)``, and ``name_of(obj)`` / ``annotation(obj, key)`` to check answers.

The sync official client has a :class:`SyncAdapter` with the same operations as plain
functions; the worker drives it with threads.

A peer is imported only when its adapter is opened, so the harness and the test suite run
without the optional ``bench`` extra.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from .data import SENT_ANNOTATION

__all__ = ["ADAPTERS", "Adapter", "ClientGo", "Env", "NotSupported", "SyncAdapter", "adapter_for",
           "clientgo_binary", "plain_connection"]

LIST_RV = "1"
BOOKMARK_PREFIX = b'{"type":"BOOKMARK"'
ERROR_PREFIX = b'{"type":"ERROR"'


class WatchErrorEvent(Exception):
    """The server ended a watch with an ERROR event (e.g. 410: too old resourceVersion)."""


class NotSupported(Exception):
    """The client offers no such operation (reported as n/a)."""


@dataclass
class Env:
    server: str
    kubeconfig: str
    connections: int = 100  # how many concurrent connections the scenario needs


class Adapter:
    name = ""
    label = ""
    distribution: str | None = None  # the package whose version is reported
    is_async = True
    baseline = False
    watch_api = ""

    async def open(self, env: Env) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    async def list_typed(self, ns: str) -> list[Any]:
        raise NotSupported

    async def list_dicts(self, ns: str) -> list[Any]:
        raise NotSupported

    async def get(self, ns: str, name: str) -> Any:
        raise NotSupported

    def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        """The objects of the events after ``resource_version`` (bookmarks are skipped)."""
        raise NotSupported

    async def list_selector(self, ns: str, labels: dict[str, str]) -> list[Any]:
        raise NotSupported

    async def patch(self, ns: str, name: str, patch: dict[str, Any]) -> Any:
        raise NotSupported

    async def create(self, ns: str, body: dict[str, Any]) -> Any:
        raise NotSupported

    async def delete(self, ns: str, name: str) -> None:
        raise NotSupported

    def sent(self, obj: Any) -> float:
        return float(obj.metadata.annotations[SENT_ANNOTATION])

    def resource_version(self, obj: Any) -> str:
        return str(obj.metadata.resource_version)

    def name_of(self, obj: Any) -> str:
        return str(obj.metadata.name)

    def annotation(self, obj: Any, key: str) -> str | None:
        annotations = obj.metadata.annotations or {}
        value = annotations.get(key)
        return None if value is None else str(value)

    def check_typed(self, obj: Any) -> None:
        """Fail loudly if a typed object did not really decode."""
        assert self.resource_version(obj), obj


class SyncAdapter:
    name = ""
    label = ""
    distribution: str | None = None
    is_async = False
    baseline = False
    watch_api = ""

    def open(self, env: Env) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def list_typed(self, ns: str) -> list[Any]:
        raise NotSupported

    def list_dicts(self, ns: str) -> list[Any]:
        raise NotSupported

    def get(self, ns: str, name: str) -> Any:
        raise NotSupported

    def watch(self, ns: str, resource_version: str = LIST_RV) -> Iterator[Any]:
        raise NotSupported

    def sent(self, obj: Any) -> float:
        return float(obj.metadata.annotations[SENT_ANNOTATION])

    def resource_version(self, obj: Any) -> str:
        return str(obj.metadata.resource_version)

    def check_typed(self, obj: Any) -> None:
        assert self.resource_version(obj), obj


# ------------------------------------------------------------------------------ baselines


def plain_connection(kubeconfig: str) -> tuple[str, ssl.SSLContext | bool, dict[str, str]]:
    """What a hand-written client takes from a kubeconfig: the current context's server,
    an SSL context trusting its CA (``True``: the system's), and the bearer token header."""
    config = yaml.safe_load(Path(kubeconfig).read_text())

    def entry(section: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(e for e in config[section] if e["name"] == name)
        return found

    context = entry("contexts", config["current-context"])["context"]
    cluster = entry("clusters", context["cluster"])["cluster"]
    user = entry("users", context["user"])["user"] if context.get("user") else {}
    ssl_context: ssl.SSLContext | bool = True
    if cluster.get("insecure-skip-tls-verify"):
        ssl_context = False
    elif cluster.get("certificate-authority-data"):
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        ssl_context = ssl.create_default_context(cadata=ca)
    elif cluster.get("certificate-authority"):
        ssl_context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return str(cluster["server"]).rstrip("/"), ssl_context, headers



class AiohttpRaw(Adapter):
    """The floor: aiohttp reads the bytes, nothing is decoded."""

    name = "aiohttp-raw"
    label = "aiohttp raw read (floor)"
    distribution = "aiohttp"
    baseline = True
    watch_api = "aiohttp stream, count lines"

    async def open(self, env: Env) -> None:
        import aiohttp

        self.base, ssl_context, headers = plain_connection(env.kubeconfig)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=ssl_context), auto_decompress=True,
            headers=headers,
        )

    async def close(self) -> None:
        await self.session.close()

    async def _read(self, path: str) -> bytes:
        async with self.session.get(self.base + path) as resp:
            resp.raise_for_status()
            return await resp.read()

    async def _send(self, method: str, path: str, body: bytes | None = None,
                    content_type: str = "application/json",
                    params: dict[str, str] | None = None) -> bytes:
        headers = {"Content-Type": content_type} if body is not None else None
        async with self.session.request(method, self.base + path, data=body, headers=headers,
                                        params=params) as resp:
            resp.raise_for_status()
            return await resp.read()

    async def list_typed(self, ns: str) -> list[Any]:
        body = await self._read(f"/api/v1/namespaces/{ns}/pods")
        return [body]

    list_dicts = list_typed

    async def get(self, ns: str, name: str) -> Any:
        return await self._read(f"/api/v1/namespaces/{ns}/pods/{name}")

    async def _lines(self, ns: str, resource_version: str) -> AsyncIterator[bytes]:
        """The event lines of a watch; bookmarks (a real server's) are not events."""
        url = f"{self.base}/api/v1/namespaces/{ns}/pods"
        params = {"watch": "true", "resourceVersion": resource_version}
        async with self.session.get(url, params=params, timeout=None) as resp:
            resp.raise_for_status()
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                if b"\n" in buffer:
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.startswith(ERROR_PREFIX):
                            raise WatchErrorEvent(line[:300].decode(errors="replace"))
                        if not line.startswith(BOOKMARK_PREFIX):
                            yield line

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        async for line in self._lines(ns, resource_version):
            yield line

    def sent(self, obj: Any) -> float:
        key = b'"' + SENT_ANNOTATION.encode() + b'":"'
        start = obj.index(key) + len(key)
        return float(obj[start:obj.index(b'"', start)])

    def resource_version(self, obj: Any) -> str:
        key = b'"resourceVersion":"'
        start = obj.index(key) + len(key)
        return str(obj[start:obj.index(b'"', start)].decode())


class MsgspecPlain(AiohttpRaw):
    """The baseline: aiohttp, then a plain msgspec decode into plain Structs (GC on)."""

    name = "msgspec-plain"
    label = "msgspec plain (baseline)"
    distribution = "msgspec"
    watch_api = "aiohttp stream, msgspec.json.decode(line, type=WatchEvent[Pod])"

    async def list_typed(self, ns: str) -> list[Any]:
        from .plain_models import PodList

        body = await self._read(f"/api/v1/namespaces/{ns}/pods")
        return msgspec.json.decode(body, type=PodList).items

    async def list_dicts(self, ns: str) -> list[Any]:
        body = await self._read(f"/api/v1/namespaces/{ns}/pods")
        items: list[Any] = msgspec.json.decode(body)["items"]
        return items

    async def get(self, ns: str, name: str) -> Any:
        from .plain_models import Pod

        return msgspec.json.decode(await self._read(f"/api/v1/namespaces/{ns}/pods/{name}"),
                                   type=Pod)

    async def list_selector(self, ns: str, labels: dict[str, str]) -> list[Any]:
        from .plain_models import PodList

        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        body = await self._send("GET", f"/api/v1/namespaces/{ns}/pods",
                                params={"labelSelector": selector})
        return msgspec.json.decode(body, type=PodList).items or []

    async def patch(self, ns: str, name: str, patch: dict[str, Any]) -> Any:
        from .plain_models import Pod

        body = await self._send("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}",
                                msgspec.json.encode(patch), "application/merge-patch+json")
        return msgspec.json.decode(body, type=Pod)

    async def create(self, ns: str, body: dict[str, Any]) -> Any:
        from .plain_models import Pod

        answer = await self._send("POST", f"/api/v1/namespaces/{ns}/pods",
                                  msgspec.json.encode(body))
        return msgspec.json.decode(answer, type=Pod)

    async def delete(self, ns: str, name: str) -> None:
        await self._send("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}")

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        from .plain_models import Pod, WatchEvent

        async for line in self._lines(ns, resource_version):
            if line:
                yield msgspec.json.decode(line, type=WatchEvent[Pod]).object

    def sent(self, obj: Any) -> float:
        return float(obj.metadata.annotations[SENT_ANNOTATION])

    def resource_version(self, obj: Any) -> str:
        return str(obj.metadata.resource_version)


# ------------------------------------------------------------------------------ kubeasync


class Kubeasync(Adapter):
    name = "kubeasync"
    label = "kubeasync"
    distribution = "kubeasync"
    watch_api = "pods.watch_stream()"

    async def open(self, env: Env) -> None:
        import kubeasync

        self.kube = kubeasync.Client(kubeasync.ClusterConfig.from_kubeconfig(env.kubeconfig))
        await self.kube.__aenter__()
        self.pods_as_dicts = self.kube.resource(
            kubeasync.custom_resource(group="", version="v1", kind="Pod", plural="pods")
        )

    async def close(self) -> None:
        await self.kube.__aexit__(None, None, None)

    async def list_typed(self, ns: str) -> list[Any]:
        return (await self.kube.pods.list(namespace=ns)).items or []

    async def list_dicts(self, ns: str) -> list[Any]:
        items: list[Any] = (await self.pods_as_dicts.list(namespace=ns))["items"]
        return items

    async def get(self, ns: str, name: str) -> Any:
        return await self.kube.pods.get(name, namespace=ns)

    async def list_selector(self, ns: str, labels: dict[str, str]) -> list[Any]:
        return (await self.kube.pods.list(namespace=ns, label_selector=labels)).items or []

    async def patch(self, ns: str, name: str, patch: dict[str, Any]) -> Any:
        return await self.kube.pods.patch(name, patch, namespace=ns)

    async def create(self, ns: str, body: dict[str, Any]) -> Any:
        return await self.kube.pods.create(body, namespace=ns)

    async def delete(self, ns: str, name: str) -> None:
        await self.kube.pods.delete(name, namespace=ns)

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        stream = self.kube.pods.watch_stream(namespace=ns, resource_version=resource_version)
        try:
            async for event in stream:
                if event.type == "ERROR":
                    raise WatchErrorEvent(str(event.object)[:300])
                if event.type != "BOOKMARK":
                    yield event.object
        finally:
            await _aclose(stream)


class KubeasyncWatcher(Kubeasync):
    """kubeasync's resilient watcher (initial list, then watch): watch scenarios only."""

    name = "kubeasync-watcher"
    label = "kubeasync watch()"
    watch_api = "pods.watch()"

    async def list_typed(self, ns: str) -> list[Any]:
        raise NotSupported

    async def list_dicts(self, ns: str) -> list[Any]:
        raise NotSupported

    async def get(self, ns: str, name: str) -> Any:
        raise NotSupported

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        # the resilient watcher lists first: it starts from the current state, whatever
        # resource_version says
        watcher = self.kube.pods.watch(namespace=ns)
        try:
            async for event in watcher:
                if event.type in ("ADDED", "MODIFIED", "DELETED"):
                    yield event.object
        finally:
            await _aclose(watcher)


async def _aclose(obj: Any) -> None:
    close = getattr(obj, "aclose", None) or getattr(obj, "close", None)
    if close is not None:
        result = close()
        if hasattr(result, "__await__"):
            await result


# ------------------------------------------------------------------------------ client-go


def clientgo_binary() -> Path:
    """Where ``KUBE_REAL_GO_CMD=benchmarks/clientgo .../build.sh`` installs the program."""
    return Path(os.environ.get("KUBEASYNC_BENCH_CLIENTGO", "/opt/kube-real/bin/clientgo"))


class ClientGo(Adapter):
    """client-go 1.20's typed clientset, in Go: the program in ``benchmarks/clientgo``.

    It speaks the worker protocol itself (the same flags, checks and result line); the
    worker only replaces itself with it (``exec``), pinned to one core with
    ``GOMAXPROCS=1``, so this adapter is never opened in Python.
    """

    name = "client-go"
    label = "client-go 1.20 (Go, JSON)"
    watch_api = "Pods(ns).Watch()"
    program_args: tuple[str, ...] = ()

    async def open(self, env: Env) -> None:
        raise RuntimeError(f"{self.name} is a Go program: benchmarks.worker execs it")


class ClientGoProtobuf(ClientGo):
    """The same program asking for ``application/vnd.kubernetes.protobuf`` (JSON where the
    server does not offer it: the benchmark server answers JSON only)."""

    name = "client-go-protobuf"
    label = "client-go 1.20 (Go, protobuf)"
    program_args = ("--protobuf",)


# ------------------------------------------------------------------------------ peers


class Lightkube(Adapter):
    name = "lightkube"
    label = "lightkube"
    distribution = "lightkube"
    watch_api = "AsyncClient.watch()"

    async def open(self, env: Env) -> None:
        from lightkube import AsyncClient, KubeConfig
        from lightkube.resources.core_v1 import Pod

        try:  # lightkube 1.0.1+ is built on httpx2, earlier versions on httpx
            import httpx2 as httpx
        except ImportError:
            import httpx  # type: ignore[no-redef]

        self.Pod = Pod
        options: dict[str, Any] = {}
        if env.connections > 100:  # httpx's default pool holds 100 connections
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
            # a transport of our own does not get the client's TLS settings: it is given
            # the kubeconfig's CA here
            verify = plain_connection(env.kubeconfig)[1]
            options["transport"] = httpx.AsyncHTTPTransport(limits=limits, verify=verify)
        self.client = AsyncClient(
            config=KubeConfig.from_file(env.kubeconfig), namespace="bench", **options
        )

    async def close(self) -> None:
        await self.client.close()

    async def list_typed(self, ns: str) -> list[Any]:
        return [pod async for pod in self.client.list(self.Pod, namespace=ns)]

    async def get(self, ns: str, name: str) -> Any:
        return await self.client.get(self.Pod, name, namespace=ns)

    async def list_selector(self, ns: str, labels: dict[str, str]) -> list[Any]:
        return [pod async for pod in self.client.list(self.Pod, namespace=ns, labels=labels)]

    async def patch(self, ns: str, name: str, patch: dict[str, Any]) -> Any:
        from lightkube.types import PatchType

        return await self.client.patch(self.Pod, name, patch, namespace=ns,
                                       patch_type=PatchType.MERGE)

    async def create(self, ns: str, body: dict[str, Any]) -> Any:
        return await self.client.create(self.Pod.from_dict(body), namespace=ns)

    async def delete(self, ns: str, name: str) -> None:
        await self.client.delete(self.Pod, name, namespace=ns)

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        async for _type, obj in self.client.watch(self.Pod, namespace=ns,
                                                  resource_version=resource_version):
            yield obj

    def resource_version(self, obj: Any) -> str:
        return str(obj.metadata.resourceVersion)


class KubernetesAsyncio(Adapter):
    name = "kubernetes_asyncio"
    label = "kubernetes_asyncio"
    distribution = "kubernetes_asyncio"
    watch_api = "watch.Watch().stream()"

    async def open(self, env: Env) -> None:
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        await config.load_kube_config(config_file=env.kubeconfig,
                                      client_configuration=configuration)
        configuration.connection_pool_maxsize = max(100, env.connections + 10)
        self.api_client = client.ApiClient(configuration)
        self.v1 = client.CoreV1Api(self.api_client)

    async def close(self) -> None:
        await self.api_client.close()

    async def list_typed(self, ns: str) -> list[Any]:
        items: list[Any] = (await self.v1.list_namespaced_pod(ns)).items
        return items

    async def list_dicts(self, ns: str) -> list[Any]:
        resp = await self.v1.list_namespaced_pod(ns, _preload_content=False)
        try:
            items: list[Any] = json.loads(await resp.read())["items"]
        finally:
            resp.release()
        return items

    async def get(self, ns: str, name: str) -> Any:
        return await self.v1.read_namespaced_pod(name, ns)

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        from kubernetes_asyncio import watch

        async with watch.Watch() as w:
            async for event in w.stream(self.v1.list_namespaced_pod, ns,
                                        resource_version=resource_version):
                yield event["object"]


class Kr8s(Adapter):
    name = "kr8s"
    label = "kr8s"
    distribution = "kr8s"
    watch_api = "api.watch()"

    async def open(self, env: Env) -> None:
        import warnings

        import kr8s.asyncio
        from kr8s.asyncio.objects import Pod

        self.Pod = Pod
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.api = await kr8s.asyncio.api(kubeconfig=env.kubeconfig, namespace="bench")

    async def close(self) -> None:
        session = getattr(self.api, "_session", None)
        if session is not None:
            await session.aclose()

    async def list_typed(self, ns: str) -> list[Any]:
        return [pod async for pod in self.api.get("pods", namespace=ns)]

    async def list_dicts(self, ns: str) -> list[Any]:
        return [pod async for pod in self.api.get("pods", namespace=ns, raw=True)]

    async def get(self, ns: str, name: str) -> Any:
        return await self.Pod.get(name, namespace=ns, api=self.api)

    async def watch(self, ns: str, resource_version: str = LIST_RV) -> AsyncIterator[Any]:
        async for _type, obj in self.api.watch("pods", namespace=ns, since=resource_version):
            yield obj

    def sent(self, obj: Any) -> float:
        return float(obj.annotations[SENT_ANNOTATION])

    def resource_version(self, obj: Any) -> str:
        return str(obj.metadata.resourceVersion)


class Kubernetes(SyncAdapter):
    """The official client: synchronous (urllib3); threads for concurrency."""

    name = "kubernetes"
    label = "kubernetes (official, sync)"
    distribution = "kubernetes"
    watch_api = "watch.Watch().stream()"

    def open(self, env: Env) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=env.kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = max(50, env.connections + 10)
        self.api_client = client.ApiClient(configuration)
        self.v1 = client.CoreV1Api(self.api_client)

    def close(self) -> None:
        self.api_client.close()

    def list_typed(self, ns: str) -> list[Any]:
        items: list[Any] = self.v1.list_namespaced_pod(ns).items
        return items

    def list_dicts(self, ns: str) -> list[Any]:
        resp = self.v1.list_namespaced_pod(ns, _preload_content=False)
        items: list[Any] = json.loads(resp.data)["items"]
        return items

    def get(self, ns: str, name: str) -> Any:
        return self.v1.read_namespaced_pod(name, ns)

    def watch(self, ns: str, resource_version: str = LIST_RV) -> Iterator[Any]:
        from kubernetes import watch

        w = watch.Watch()
        try:
            for event in w.stream(self.v1.list_namespaced_pod, ns,
                                  resource_version=resource_version):
                yield event["object"]
        finally:
            w.stop()


ADAPTERS: dict[str, type[Adapter] | type[SyncAdapter]] = {
    cls.name: cls
    for cls in (AiohttpRaw, MsgspecPlain, Kubeasync, KubeasyncWatcher, Lightkube,
                KubernetesAsyncio, Kr8s, Kubernetes, ClientGo, ClientGoProtobuf)
}
BASELINE = "msgspec-plain"
PEERS = ("lightkube", "kubernetes_asyncio", "kr8s", "kubernetes")
PEER_MODULES = {
    "lightkube": "lightkube",
    "kubernetes_asyncio": "kubernetes_asyncio",
    "kr8s": "kr8s",
    "kubernetes": "kubernetes",
}


def adapter_for(name: str) -> Adapter | SyncAdapter:
    return ADAPTERS[name]()


def is_go(name: str) -> bool:
    cls = ADAPTERS.get(name)
    return cls is not None and issubclass(cls, ClientGo)


def missing(name: str) -> str | None:
    """Why a client cannot run here (not installed, not built), or None."""
    if is_go(name):
        binary = clientgo_binary()
        if binary.exists():
            return None
        return (f"skipped client-go: {binary} is not built (build it in ~20 s with "
                "KUBE_REAL_GO_CMD=benchmarks/clientgo ../shared/tools/real-apiserver/build.sh,"
                " see benchmarks/README.md)")
    module = PEER_MODULES.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{name}: not installed (pip install -e '.[bench]')"
    return None
