"""FakeApiServer: an in-memory Kubernetes API server on aiohttp, over real sockets.

Routes are derived from the resource descriptor table: every descriptor is served under
its own path family with the verbs and subresources it declares, and discovery documents
are built from the same rows. Nothing here is written per resource.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import yaml
from aiohttp import web

from ..api.client import Client
from ..config import BearerToken, ClusterConfig, NoAuth
from ..core.descriptor import ResourceDescriptor
from . import _openapi as openapi
from . import _status as st
from ._cluster import NODE_NAME, ControlPlane
from ._crds import CustomResources
from ._eviction import evict
from ._faults import FaultRule, Faults
from ._kinds import strategy_for
from ._kubelet_proxy import KubeletProxy
from ._partial import partial_list, partial_object, wants_partial
from ._registry import ListOptions, Registry, meta, rid
from ._served import SERVED_RESOURCES, version_priority
from ._store import Event, Expired, Obj, Store
from ._subresources import scale, token_request
from ._tables import table, wants_table
from ._validation import check_fields
from .kubelet import VirtualKubelet
from .kubelet.logs import LogBook
from .kubelet.pods import Timings
from .kubelet.resources import LEASES, NODES

__all__ = ["DEFAULT_VERSION", "SERVED_RESOURCES", "FakeApiServer"]

Descriptor = ResourceDescriptor[Any, Any]
LineEncoder = Callable[[str, Mapping[str, Any]], bytes]

GZIP_THRESHOLD = 128 * 1024  # kube-apiserver compresses answers above this size
DEFAULT_VERSION: dict[str, str] = {
    "major": "1",
    "minor": "20",
    "gitVersion": "v1.20.2",
    "gitCommit": "faecb196815e248d3ecfb03c680a4507229c2a56",
    "gitTreeState": "clean",
    "buildDate": "2021-01-13T13:20:00Z",
    "goVersion": "go1.15.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_TRUE = ("1", "t", "T", "true", "TRUE", "True")  # Go's strconv.ParseBool
_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "log": ["get"],
                      "finalize": ["update"], "eviction": ["create"], "binding": ["create"],
                      "exec": ["create", "get"], "attach": ["create", "get"],
                      "portforward": ["create", "get"], "scale": ["get", "patch", "update"],
                      "token": ["create"]}
# What the server serves beyond the subresources of the table (which the client has
# methods for): pods/binding, the scheduler's write.
_SERVER_SUBRESOURCES: dict[tuple[str, str], frozenset[str]] = {
    ("", "Pod"): frozenset({"binding"}),
}


def _with_node_resources(resources: tuple[Descriptor, ...]) -> tuple[Descriptor, ...]:
    """The table plus Node and Lease (what kubelets need), unless it has them already."""
    present = {(d.group, d.plural) for d in resources}
    return resources + tuple(d for d in (NODES, LEASES) if (d.group, d.plural) not in present)


def _subresources(d: Descriptor) -> frozenset[str]:
    return frozenset(d.subresources) | _SERVER_SUBRESOURCES.get((d.group, d.kind), frozenset())
_HTML_502 = (
    "<html>\r\n<head><title>{code} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{code}"
    " Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_ENCODER = msgspec.json.Encoder()


def _true(value: str | None) -> bool:
    return value in _TRUE


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise st.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


def _list_options_invalid(causes: list[st.Cause]) -> st.StatusError:
    rendered = [f"{c.field}: {c.message}" for c in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return st.StatusError(
        422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {summary}',
        {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [c.as_dict() for c in causes]},
    )


class _Watch:
    """One open watch: events of one resource, queued by the store listener."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_event(self, event: Event) -> None:
        if event.resource == self.resource:
            self.queue.put_nowait(("event", event))


class FakeApiServer:
    """An in-memory Kubernetes API server for tests, demos and local development.

    Use it as ``async with FakeApiServer() as server:`` and connect with
    ``kubeasync.Client(server.config())``.

    Args:
        host: the address to listen on (default 127.0.0.1).
        port: the port to listen on (default 0: a free port).
        resources: the descriptor table to serve (default: :data:`SERVED_RESOURCES`, every
            row of the catalogue; ``simulate=True`` adds Nodes and Leases to any table).
        token: if given, every API request must carry ``Authorization: Bearer <token>``.
        namespaces: namespaces that exist from the start.
        simulate: run a simulated node (a :class:`~kubeasync.testing.VirtualKubelet` named
            ``fake-node``, talking to this server over HTTP) and the job controller.
        timings: how fast the scheduler and the simulated node are (see :class:`Timings`).
        watch_history: how many changes are kept for watches and continue tokens to
            resume from; older resourceVersions answer 410.
        bookmark_interval: seconds between BOOKMARK events on watches that allow them.
        watch_timeout: seconds a watch lasts when the client gives no ``timeoutSeconds``.
        watch_list: accept ``sendInitialEvents`` (streaming lists, Kubernetes >= 1.27);
            ``False`` rejects ``resourceVersionMatch`` on watches with 422, as 1.20 does.
        version: the ``/version`` document.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        resources: Iterable[Descriptor] = SERVED_RESOURCES,
        token: str | None = None,
        namespaces: Iterable[str] = ("default", "kube-system", "kube-public", "kube-node-lease"),
        simulate: bool = False,
        timings: Timings | None = None,
        watch_history: int = 1000,
        bookmark_interval: float = 60.0,
        watch_timeout: float = 1800.0,
        watch_list: bool = True,
        version: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.simulate = simulate
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.watch_list = watch_list
        self.version = dict(version or DEFAULT_VERSION)
        self.store = Store(history=watch_history)
        if simulate:  # the simulated node needs its Node and Lease, whatever the table
            resources = _with_node_resources(tuple(resources))
        self.registry = Registry(self.store, resources)
        self.logs = LogBook()
        self.timings = timings or Timings()
        self.control_plane = ControlPlane(self.registry, self.logs, simulate=simulate,
                                          timings=self.timings)
        self.node: VirtualKubelet | None = None
        """The simulated node while the server runs (``simulate=True``), else None."""
        self._node_errors: list[BaseException] = []
        self._node_start: asyncio.Task[None] | None = None
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        """Every request received, as ``(method, path and query)``, in order."""
        self._groups: dict[tuple[str, str], list[Descriptor]] = {}
        self._serve(self.registry.resources)
        self.crds = CustomResources(self.registry, self._serve)
        self._watches: set[_Watch] = set()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.kubelets = KubeletProxy(self.registry, self.logs, self._stopping)
        if self.registry.namespaces is not None:
            for name in namespaces:
                self.registry.create(self.registry.namespaces, None, {"metadata": {"name": name}},
                                     manager="kube-apiserver")

    def _serve(self, resources: tuple[Descriptor, ...]) -> None:
        """Serve this table from now on (at start, and when a CRD comes or goes)."""
        self.registry.resources = resources
        self._groups, _ = _index(resources)
        self.control_plane.serve(resources)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeApiServer:
        if self._runner is not None:
            raise RuntimeError("the server is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Cancelling handlers when the client leaves ends watches and log follows at once.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        self._stopping = asyncio.Event()
        self.kubelets.stopping = self._stopping
        self.control_plane.start()
        if self.simulate:
            self._start_node()
        return self

    def _start_node(self) -> None:
        """The simulated node: the same VirtualKubelet anyone can run against any API
        server, sharing this server's log book (so ``append_log`` reaches its pods). It
        registers in the background, as a kubelet joins a running control plane: pods
        created before its Node is Ready are scheduled as soon as it is."""
        node = VirtualKubelet(Client(self.config()), name=NODE_NAME, timings=self.timings,
                              logs=self.logs, delete_node_on_exit=False)
        self.node = node
        self._node_errors = node.errors

        async def start() -> None:
            try:
                await node.start()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # reported like a controller's failure
                node.errors.append(error)

        self._node_start = asyncio.get_running_loop().create_task(start())

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping.set()
        node, self.node = self.node, None
        if self._node_start is not None:
            starting, self._node_start = self._node_start, None
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        if node is not None:
            await node.stop()
            await node.kube.close()
        await self.control_plane.stop()
        await self.kubelets.close()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeApiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ for tests and users

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._runner is None:
            raise RuntimeError("the server is not running: use `async with FakeApiServer()`")
        return f"http://{self.host}:{self.port}"

    def config(self, namespace: str = "default") -> ClusterConfig:
        """A :class:`~kubeasync.ClusterConfig` for this server."""
        auth = BearerToken(self.token) if self.token else NoAuth()
        return ClusterConfig(server=self.url, namespace=namespace, auth=auth,
                             source="kubeasync.testing.FakeApiServer")

    def kubeconfig(self, *, context: str = "kubeasync-fake",
                   namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig document for this server (``kubectl``, or any client, can use it)."""
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {
                "cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], **options: str) -> Path:
        """Write :meth:`kubeconfig` to ``path`` (mode 0600); return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.kubeconfig(**options), sort_keys=False)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return target

    @property
    def errors(self) -> list[BaseException]:
        """What the server's own controllers and its simulated node raised (a test should
        find this empty: the pytest plugin checks it)."""
        return [*self.control_plane.errors, *self._node_errors]

    @property
    def resource_version(self) -> str:
        """The current (latest) resourceVersion."""
        return str(self.store.rv)

    def compact(self) -> None:
        """Forget the change history: every older resourceVersion (and every continue
        token) now answers 410 Expired, as after an etcd compaction."""
        self.store.compact()

    def bookmark(self) -> None:
        """Send a BOOKMARK now on every open watch that allows them."""
        for watch in list(self._watches):
            watch.queue.put_nowait(("bookmark", None))

    @property
    def open_watches(self) -> int:
        """How many watch requests are being served right now."""
        return len(self._watches)

    def end_watches(self, *, abort: bool = True) -> int:
        """End every open watch now: cut off (``abort``, as a dropped connection) or with
        the clean end of a timeout. Returns how many there were. Nothing is sent between
        this call and the next ``await``, so changes made right after it are missed by the
        watchers, which must catch up on their own."""
        watches = list(self._watches)
        for watch in watches:
            watch.queue.put_nowait(("end", abort))
        return len(watches)

    def append_log(self, namespace: str, pod: str, container: str, line: str, *,
                   previous: bool = False, at: datetime | None = None) -> None:
        """Add a line (or several, split on newlines) to a container's log; followers see
        it at once. ``previous=True`` writes the log of the previous container instance;
        ``at`` backdates the line (for ``sinceSeconds``/``sinceTime`` tests)."""
        self.logs.append(namespace, pod, container, line, previous=previous, at=at)

    def resource(self, which: str | Descriptor) -> Descriptor:
        """A served descriptor, by descriptor, plural (``"pods"``) or ``"jobs.batch"``."""
        if isinstance(which, ResourceDescriptor):
            return which
        for d in self.registry.resources:
            if which in (d.plural, f"{d.plural}.{d.group}", d.kind):
                return d
        raise KeyError(f"{which!r} is not served")

    def get_object(self, which: str | Descriptor, name: str,
                   namespace: str | None = "default") -> dict[str, Any] | None:
        """The stored object (a JSON dict, not a copy: do not modify it), or None."""
        return self.registry.find(self.resource(which), namespace, name)

    def list_objects(self, which: str | Descriptor,
                     namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a resource, ordered by namespace and name."""
        d = self.resource(which)
        return [obj for _k, obj in self.store.sorted_items(rid(d), namespace)]

    def delete_object(self, which: str | Descriptor, name: str,
                      namespace: str | None = "default", **options: Any) -> dict[str, Any]:
        """Delete an object directly, as a DELETE with these DeleteOptions would
        (``propagationPolicy="Background"``, ``gracePeriodSeconds=0``...)."""
        d = self.resource(which)
        return self.registry.delete(d, namespace if d.namespaced else None, name, options)

    def put_object(self, which: str | Descriptor, obj: Mapping[str, Any],
                   namespace: str | None = None) -> dict[str, Any]:
        """Create an object directly (as a POST would, with validation and defaults)."""
        d = self.resource(which)
        body = json.loads(json.dumps(obj))
        if namespace is None and d.namespaced:
            namespace = meta(body).get("namespace") or "default"
        return self.registry.create(d, namespace if d.namespaced else None, body,
                                    manager="kubeasync-testing")

    # ------------------------------------------------------------ HTTP plumbing

    def _json(self, request: web.Request, body: Any, status: int = 200,
              headers: Mapping[str, str] | None = None) -> web.Response:
        data = _ENCODER.encode(body)
        out = {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        out.update(headers or {})
        if len(data) > GZIP_THRESHOLD and "gzip" in request.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data, compresslevel=1)
            out["Content-Encoding"] = "gzip"
            out["Vary"] = "Accept-Encoding"
        return web.Response(body=data, status=status, headers=out)

    def _error(self, request: web.Request, error: st.StatusError) -> web.Response:
        return self._json(request, error.body(), error.code, error.headers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            rule = self.faults.take(request.method, request.path, watch=False)
            if rule is not None:
                answer = await self._fault(request, rule)
                if answer is not None:
                    return answer
            self._authenticate(request)
            return await self._route(request)
        except st.StatusError as error:
            return self._error(request, error)

    async def _fault(self, request: web.Request, rule: FaultRule) -> web.StreamResponse | None:
        if rule.action == "delay":
            await asyncio.sleep(rule.seconds)
            return None
        if rule.action == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on an aborted connection
        if rule.action == "html":
            return web.Response(status=rule.status, text=_HTML_502.format(code=rule.status),
                                content_type="text/html")
        headers: dict[str, str] = {}
        details: dict[str, Any] = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
            details["retryAfterSeconds"] = rule.retry_after
        return self._error(request, st.StatusError(
            rule.status, rule.reason, rule.text, details, headers=headers))

    def _authenticate(self, request: web.Request) -> None:
        if not self.token or request.path in ("/healthz", "/readyz", "/livez"):
            return
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            raise st.StatusError(401, "Unauthorized", "Unauthorized")

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return self._json(request, {"paths": sorted(self._root_paths())})
        head = parts[0]
        if head in ("healthz", "readyz", "livez") and len(parts) == 1:
            return web.Response(text="ok", content_type="text/plain")
        if parts == ["version"]:
            return self._json(request, self.version)
        if head == "openapi":
            return self._openapi(request, parts[1:])
        if head == "api":
            if len(parts) == 1:
                return self._json(request, self._api_versions())
            group, version, rest = "", parts[1], parts[2:]
        elif head == "apis":
            if len(parts) == 1:
                return self._json(request, self._group_list())
            if len(parts) == 2:
                group_doc = self._group(parts[1])
                if group_doc is None:
                    raise self._no_route()
                return self._json(request, group_doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise self._no_route()
        served = self._groups.get((group, version))
        if served is None:
            raise self._no_route()
        if not rest:
            return self._json(request, self._resource_list(group, version, served))
        namespace: str | None = None
        namespaced = {d.plural: d for d in served if d.namespaced}
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in namespaced:
            namespace, d, rest = rest[1], namespaced[rest[2]], rest[3:]
        else:
            found = next((d for d in served if d.plural == rest[0]), None)
            if found is None:
                raise self._no_route()
            d, rest = found, rest[1:]
            if d.namespaced and rest:
                raise self._no_route()  # a namespaced object needs its namespace in the path
        if len(rest) > 2:
            raise self._no_route()
        name = rest[0] if rest else None
        subresource = rest[1] if len(rest) > 1 else None
        if subresource is not None and subresource not in _subresources(d):
            raise self._no_route()
        return await self._resource(request, d, namespace, name, subresource)

    @staticmethod
    def _no_route() -> st.StatusError:
        return st.StatusError(404, "NotFound", "the server could not find the requested resource",
                              {})

    # ------------------------------------------------------------ resources

    @staticmethod
    def _require(d: Descriptor, verb: str) -> None:
        if not d.supports(verb):
            raise st.method_not_allowed()

    @staticmethod
    def _manager(request: web.Request) -> str:
        manager = request.query.get("fieldManager")
        if manager:
            return manager
        agent = request.headers.get("User-Agent", "")
        return agent.split("/")[0].strip() or "unknown"

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise st.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    async def _body(self, request: web.Request, d: Descriptor) -> Any:
        raw = await request.read()
        content_type = request.content_type
        if content_type not in ("application/json", "application/yaml", "application/x-yaml",
                                "application/octet-stream"):
            # Notably protobuf (what `kubectl create configmap ...` sends): not spoken here.
            raise st.StatusError(
                415, "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types"
                " include: application/json, application/yaml", {})
        try:
            if content_type in ("application/yaml", "application/x-yaml"):
                return yaml.safe_load(raw.decode("utf-8"))
            return msgspec.json.decode(raw)
        except (msgspec.DecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise st.bad_request(
                f"the object provided is unrecognized (must be of type {d.kind}): couldn't get"
                f" version/kind; json parse error: {exc}"
            ) from None

    def _list_options(self, request: web.Request) -> ListOptions:
        q = request.query
        return ListOptions(
            label_selector=q.get("labelSelector", ""),
            field_selector=q.get("fieldSelector", ""),
            limit=_int_param(q, "limit") or 0,
            continue_=q.get("continue", ""),
            resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""),
        )

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip():
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError as exc:
                raise st.bad_request(f"invalid DeleteOptions: {exc}") from None
            if isinstance(body, dict):
                options.update(body)
        q = request.query
        grace = _int_param(q, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            options["orphanDependents"] = _true(q["orphanDependents"])
        if q.getall("dryRun", []):
            options["dryRun"] = q.getall("dryRun")
        return options

    async def _resource(self, request: web.Request, d: Descriptor, namespace: str | None,
                        name: str | None, subresource: str | None) -> web.StreamResponse:
        method = request.method
        registry = self.registry
        if name is None:
            if method == "GET":
                if _true(request.query.get("watch")):
                    self._require(d, "watch")
                    return await self._watch(request, d, namespace)
                self._require(d, "list")
                listing = registry.list(d, namespace, self._list_options(request))
                if wants_table(request.headers.get("Accept", "")):
                    listing = table(d.group, d.kind, listing["items"], listing["metadata"],
                                    columns=self.crds.columns(d))
                elif self._partial(request, d, collection=True):
                    listing = partial_list(listing)
                elif self.crds.serves(d):
                    listing = _unstructured_list(d, listing)
                return self._json(request, listing)
            if method == "POST" and (namespace is not None or not d.namespaced):
                self._require(d, "create")
                body = await self._body(request, d)
                warnings = self._check_fields(request, d, body)
                created = registry.create(d, namespace, body, dry_run=self._dry_run(request),
                                          manager=self._manager(request))
                return self._json(request, _in_version(d, created), 201, warnings)
            if method == "DELETE" and (namespace is not None or not d.namespaced):
                self._require(d, "deletecollection")
                options = await self._delete_options(request)
                dry_run = self._dry_run(request) or "All" in (options.get("dryRun") or [])
                return self._json(request, registry.delete_collection(
                    d, namespace, self._list_options(request), options, dry_run=dry_run))
            raise st.method_not_allowed()
        if subresource == "log":
            if method != "GET":
                raise st.method_not_allowed()
            return await self.kubelets.logs(request, registry.get(d, namespace, name))
        if subresource == "eviction":
            if method != "POST":
                raise st.method_not_allowed()
            return self._json(request, evict(self.registry, self.registry.resources, d, namespace or "",
                                             name, await request.read()), 201)
        if subresource in ("exec", "attach", "portforward"):
            if method not in ("GET", "POST"):
                raise st.method_not_allowed()
            return await self.kubelets.stream(request, registry.get(d, namespace, name),
                                              subresource)
        if subresource == "binding":
            if method != "POST":
                raise st.method_not_allowed()
            return await self._bind(request, d, namespace, name)
        if subresource == "scale":
            return self._json(request, scale(
                registry, d, namespace, name, method, await request.read(),
                request.headers.get("Content-Type", ""), paths=self.crds.scale_paths(d),
                manager=self._manager(request), dry_run=self._dry_run(request)))
        if subresource == "token":
            if method != "POST":
                raise st.method_not_allowed()
            body = await self._body(request, d) if (await request.read()).strip() else None
            return self._json(request, token_request(registry, d, namespace or "", name, body),
                              201)
        if subresource == "finalize" and method != "PUT":
            raise st.method_not_allowed()
        if method == "GET":
            self._require(d, "get")
            obj = _in_version(d, registry.get(d, namespace, name))
            if wants_table(request.headers.get("Accept", "")):
                obj = table(d.group, d.kind, [obj],
                            {"resourceVersion": meta(obj).get("resourceVersion")},
                            columns=self.crds.columns(d))
            elif subresource is None and self._partial(request, d, collection=False):
                obj = partial_object(obj)
            return self._json(request, obj)
        if method == "PUT":
            self._require(d, "update")
            body = await self._body(request, d)
            warnings = self._check_fields(request, d, body)
            return self._json(request, _in_version(d, registry.replace(
                d, namespace, name, body, subresource=subresource,
                dry_run=self._dry_run(request), manager=self._manager(request))), 200, warnings)
        if method == "PATCH":
            self._require(d, "patch")
            raw = await request.read()
            warnings = self._check_fields(request, d, _patch_body(request.content_type, raw))
            fresh = (request.content_type == "application/apply-patch+yaml"
                     and registry.find(d, namespace, name) is None)
            patched = registry.patch(
                d, namespace, name, raw, request.headers.get("Content-Type", ""),
                subresource=subresource, dry_run=self._dry_run(request),
                manager=self._manager(request), force=_true(request.query.get("force")),
                field_manager_given=bool(request.query.get("fieldManager")))
            return self._json(request, _in_version(d, patched), 201 if fresh else 200,
                              warnings)
        if method == "DELETE" and subresource is None:
            self._require(d, "delete")
            options = await self._delete_options(request)
            dry_run = self._dry_run(request) or "All" in (options.get("dryRun") or [])
            return self._json(request, registry.delete(d, namespace, name, options,
                                                       dry_run=dry_run))
        raise st.method_not_allowed()

    def _check_fields(self, request: web.Request, d: Descriptor,
                      body: Any) -> dict[str, str]:
        """``fieldValidation``: a 400 for unknown fields (Strict), or their warnings."""
        warnings = check_fields(d, body, request.query.get("fieldValidation", ""),
                                self.crds.served_crds())
        if not warnings:
            return {}
        return {"Warning": ", ".join('299 - "{}"'.format(w.replace('"', '\\"'))
                                     for w in warnings)}

    # ------------------------------------------------------------ watch

    def _watch_start(self, request: web.Request, d: Descriptor,
                     namespace: str | None,
                     ) -> tuple[list[bytes], _Watch | None, Callable[[Obj], bool]]:
        """Validate a watch and compute its first lines; subscribe it (in one step, with no
        await in between, so no event can fall between the history and the live stream)."""
        q = request.query
        match = self.registry.matcher(d, namespace, q.get("labelSelector", ""),
                                      q.get("fieldSelector", ""))
        bookmarks = _true(q.get("allowWatchBookmarks"))
        initial = _true(q.get("sendInitialEvents"))
        rv = q.get("resourceVersion", "")
        rv_match = q.get("resourceVersionMatch", "")
        causes: list[st.Cause] = []
        if not self.watch_list:
            if rv_match:
                causes.append(st.forbidden("resourceVersionMatch",
                                           "resourceVersionMatch is forbidden for watch"))
            initial = False
        elif initial:
            if rv_match != "NotOlderThan":
                causes.append(st.forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
            if not bookmarks:
                causes.append(st.forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true"))
        elif rv_match:
            causes.append(st.forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
        if causes:
            raise _list_options_invalid(causes)
        lines: list[bytes] = []
        strategy = strategy_for(d)
        line = self._line_encoder(request, d)
        if initial or rv in ("", "0"):
            for _key, obj in self.store.sorted_items(rid(d), namespace if d.namespaced else None):
                if match(obj):
                    lines.append(line("ADDED", obj))
            if initial:
                lines.append(line("BOOKMARK", _bookmark(d, self.store.rv, strategy.bookmark_body,
                                                        initial_end=True)))
        else:
            try:
                start = int(rv)
            except ValueError:
                raise st.bad_request(
                    f'resourceVersion: Invalid value: "{rv}": must be a number') from None
            try:
                for event in self.store.events_after(start):
                    if event.resource == rid(d):
                        converted = _convert(event, match, line)
                        if converted is not None:
                            lines.append(converted)
            except Expired as exc:
                error = st.expired(str(exc)).body()
                return [_line("ERROR", error)], None, match
        watch = _Watch(rid(d))
        self.store.subscribe(watch.on_event)
        self._watches.add(watch)
        return lines, watch, match

    async def _watch(self, request: web.Request, d: Descriptor,
                     namespace: str | None) -> web.StreamResponse:
        q = request.query
        timeout = _int_param(q, "timeoutSeconds")
        # 0 (or nothing) means the server's own timeout, as kube-apiserver reads it.
        deadline = time.monotonic() + (timeout if timeout else self.watch_timeout)
        bookmarks = _true(q.get("allowWatchBookmarks"))
        lines, watch, match = self._watch_start(request, d, namespace)
        processed = self.store.rv  # every change up to it is in ``lines`` or the queue
        line = self._line_encoder(request, d)
        rule = self.faults.take(request.method, request.path, watch=True)
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "application/json", "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        sent = 0
        try:
            await response.prepare(request)
            if rule is not None and rule.action == "stall":
                await self._stopping.wait()
                self._abort(request)
                return response
            drop_after = rule.events if rule is not None else None
            mid_line = rule is not None and rule.mid_line

            async def send(data: bytes) -> bool:
                nonlocal sent
                if drop_after is not None and sent >= drop_after:
                    if mid_line:
                        # Half a line, flushed (close, not abort), then no more.
                        await response.write(data[: max(1, len(data) // 2)])
                        if request.transport is not None:
                            request.transport.close()
                    else:
                        self._abort(request)
                    return False
                await response.write(data)
                sent += 1
                return True

            for data in lines:
                if not await send(data):
                    return response
            if watch is None:  # an ERROR event ends the watch
                await response.write_eof()
                return response
            strategy = strategy_for(d)
            next_bookmark = time.monotonic() + self.bookmark_interval

            def covered() -> int:
                # A bookmark claims only what this watch has processed: with changes
                # still queued (a slow reader), the rv of the last one taken; a client
                # resuming from it must get the rest.
                return self.store.rv if watch.queue.empty() else processed

            stopping = asyncio.ensure_future(self._stopping.wait())
            getter: asyncio.Future[Any] | None = None
            try:
                while True:
                    now = time.monotonic()
                    wake = min(deadline, next_bookmark) if bookmarks else deadline
                    if now >= deadline:
                        if bookmarks:  # as the real server does shortly before a timeout
                            await send(line("BOOKMARK", _bookmark(d, covered(),
                                                                  strategy.bookmark_body)))
                        break
                    if bookmarks and now >= next_bookmark:
                        next_bookmark = now + self.bookmark_interval
                        await watch.queue.put(("bookmark", None))
                    getter = asyncio.ensure_future(watch.queue.get())
                    done, _pending = await asyncio.wait({getter, stopping},
                                                        timeout=max(0.0, wake - now),
                                                        return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        if stopping in done:
                            break
                        continue
                    kind, payload = getter.result()
                    if kind == "end":
                        if payload:
                            self._abort(request)
                            return response
                        break
                    if kind == "bookmark":
                        if bookmarks:
                            mark = line("BOOKMARK", _bookmark(d, covered(),
                                                              strategy.bookmark_body))
                            if not await send(mark):
                                return response
                        continue
                    processed = payload.rv
                    converted = _convert(payload, match, line)
                    if converted is not None and not await send(converted):
                        return response
            finally:
                # Also when the client leaves and this handler is cancelled mid-wait: a
                # getter left pending would be collected with its queue, mid-get.
                stopping.cancel()
                if getter is not None:
                    getter.cancel()
            await response.write_eof()
            return response
        except (ConnectionResetError, ConnectionError):
            return response
        finally:
            if watch is not None:
                self.store.unsubscribe(watch.on_event)
                self._watches.discard(watch)

    serve_partial_metadata = True
    """Whether metadata-only requests get PartialObjectMetadata (set it False on one server
    to play an API server that answers them with the full objects)."""

    def _partial(self, request: web.Request, d: Descriptor, *, collection: bool,
                 watch: bool = False) -> bool:
        return self.serve_partial_metadata and wants_partial(
            request.headers.get("Accept", ""), d, collection=collection, watch=watch)

    def _line_encoder(self, request: web.Request, d: Descriptor) -> LineEncoder:
        """How this watch writes events: objects (in the version watched), metadata only,
        or one-row Tables for kubectl."""
        if self._partial(request, d, collection=True, watch=True):
            return lambda kind, obj: _line(kind, obj if kind == "ERROR" else partial_object(obj))
        if not wants_table(request.headers.get("Accept", "")):
            def in_version(kind: str, obj: Mapping[str, Any]) -> bytes:
                if kind in ("BOOKMARK", "ERROR") or obj.get("apiVersion") == d.api_version:
                    return _line(kind, obj)
                return _line(kind, _in_version(d, dict(obj)))

            return in_version
        columns = self.crds.columns(d)

        def as_table(kind: str, obj: Mapping[str, Any]) -> bytes:
            if kind in ("BOOKMARK", "ERROR"):
                return _line(kind, obj)
            return _line(kind, table(d.group, d.kind, [obj],
                                     {"resourceVersion": meta(obj).get("resourceVersion")},
                                     columns=columns))

        return as_table

    @staticmethod
    def _abort(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()

    # ------------------------------------------------------------ binding

    async def _bind(self, request: web.Request, d: Descriptor, namespace: str | None,
                    name: str) -> web.Response:
        body = await self._body(request, d)
        target = body.get("target") if isinstance(body, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise st.StatusError(422, "Invalid", 'Binding.core "" is invalid: target.name:'
                                 " Required value", {"kind": "Binding", "causes": [
                                     st.required("target.name").as_dict()]})
        assert isinstance(target, dict)
        if target.get("kind", "Node") not in ("", "Node"):
            raise st.bad_request(f"a binding can only target a Node, not {target['kind']}")
        self.registry.bind(d, namespace, name, node, manager=self._manager(request),
                           dry_run=self._dry_run(request))
        return self._json(request, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                    "status": "Success", "code": 201}, 201)

    # ------------------------------------------------------------ discovery

    def _root_paths(self) -> list[str]:
        paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3",
                 "/readyz", "/version"]
        for group, version in self._groups:
            if group:
                paths += [f"/apis/{group}", f"/apis/{group}/{version}"]
        return sorted(set(paths))

    def _api_versions(self) -> dict[str, Any]:
        address = f"{self.host}:{self.port}"
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": address}]}

    def _group(self, group: str) -> dict[str, Any] | None:
        versions = sorted((v for (g, v) in self._groups if g == group), key=version_priority)
        if not group or not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0]}

    def _group_list(self) -> dict[str, Any]:
        groups = []
        for group in dict.fromkeys(g for (g, _v) in self._groups if g):
            doc = self._group(group)
            assert doc is not None
            groups.append({k: v for k, v in doc.items() if k not in ("kind", "apiVersion")})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group: str, version: str,
                       served: list[Descriptor]) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for d in sorted(served, key=lambda d: d.plural):
            strategy = strategy_for(d)
            entry: dict[str, Any] = {"name": d.plural, "singularName": "",
                                     "namespaced": d.namespaced, "kind": d.kind,
                                     "verbs": sorted(d.verbs)}
            if d.short_names:
                entry["shortNames"] = list(d.short_names)
            if strategy.categories:
                entry["categories"] = list(strategy.categories)
            entry["storageVersionHash"] = _storage_version_hash(d)
            resources.append(entry)
            for sub in sorted(_subresources(d)):
                resources.append({"name": f"{d.plural}/{sub}", "singularName": "",
                                  "namespaced": d.namespaced, "kind": d.kind,
                                  "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])})
        doc: dict[str, Any] = {"kind": "APIResourceList"}
        if group:
            doc["apiVersion"] = "v1"
        doc["groupVersion"] = f"{group}/{version}" if group else version
        doc["resources"] = resources
        return doc

    # ------------------------------------------------------------ openapi

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        crds = self.crds.served_crds()
        if parts == ["v2"]:
            accept = request.headers.get("Accept", "")
            if accept and not any(t in accept for t in ("application/json", "*/*")):
                # client-go asks for the protobuf form only; this server writes JSON only
                raise st.StatusError(406, "NotAcceptable",
                                     "only application/json is served here", {})
            return self._json(request, openapi.v2_document(self.registry.resources, crds,
                                                           self.version))
        if parts == ["v3"]:
            index = {}
            for (group, version), served in self._groups.items():
                key = f"apis/{group}/{version}" if group else f"api/{version}"
                digest = openapi.v3_hash(group, version, served, crds)
                index[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
            return self._json(request, {"paths": index})
        if parts[:1] == ["v3"] and len(parts) >= 3:
            if parts[1] == "api" and len(parts) == 3:
                group, version = "", parts[2]
            elif parts[1] == "apis" and len(parts) == 4:
                group, version = parts[2], parts[3]
            else:
                raise self._no_route()
            documented = self._groups.get((group, version))
            if documented is None:
                raise self._no_route()
            return self._json(request, openapi.v3_document(group, version, documented, crds,
                                                           self.version))
        raise self._no_route()


_INDEXES: dict[int, tuple[tuple[Descriptor, ...], dict[tuple[str, str], list[Descriptor]],
                          dict[str, Descriptor]]] = {}


def _index(resources: tuple[Descriptor, ...],
           ) -> tuple[dict[tuple[str, str], list[Descriptor]], dict[str, Descriptor]]:
    """A table's descriptors by group-version and by store name, computed once per table
    (the hundreds of servers of a test suite share the default one)."""
    cached = _INDEXES.get(id(resources))
    if cached is None or cached[0] is not resources:
        groups: dict[tuple[str, str], list[Descriptor]] = {}
        for d in resources:
            groups.setdefault((d.group, d.version), []).append(d)
        cached = (resources, groups, {rid(d): d for d in resources})
        if len(_INDEXES) > 64:  # tables of CRDs come and go
            _INDEXES.clear()
        _INDEXES[id(resources)] = cached
    return cached[1], cached[2]  # shared: never changed, replaced whole by _serve


def _patch_body(content_type: str, raw: bytes) -> Any:
    """A patch's object, for field validation (None for a JSON patch or what does not parse:
    the patch itself answers those)."""
    if content_type == "application/json-patch+json":
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        if content_type != "application/apply-patch+yaml":
            return None
    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None


def _unstructured_list(d: Descriptor, listing: Obj) -> Obj:
    """A custom resource's list as kube-apiserver writes it (unstructured): every item
    keeps its ``apiVersion`` and ``kind``, and ``metadata.continue`` is always there."""
    items = [{"apiVersion": d.api_version, "kind": d.kind, **_in_version(d, item)}
             for item in listing["items"]]
    return {**listing, "metadata": {"continue": "", **listing["metadata"]}, "items": items}


def _in_version(d: Descriptor, obj: Obj) -> Obj:
    """An object in the version it is asked for: the versions of one resource share its
    storage (a custom resource's, autoscaling's v1 and v2), and differ in ``apiVersion``
    only (as with a CRD's ``None`` conversion)."""
    if obj.get("apiVersion") == d.api_version or obj.get("kind") != d.kind:
        return obj
    return {**obj, "apiVersion": d.api_version}


def _storage_version_hash(d: Descriptor) -> str:
    """What discovery reports as ``storageVersionHash``: the first 8 bytes of the SHA-256
    of ``group/version/kind``, in base64 (kube-apiserver's ``discovery.StorageVersionHash``)."""
    digest = hashlib.sha256(f"{d.group}/{d.version}/{d.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _line(kind: str, obj: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode({"type": kind, "object": obj}) + b"\n"


def _bookmark(d: Descriptor, rv: int, body: Mapping[str, Any], *,
              initial_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": d.kind, "apiVersion": d.api_version, "metadata": metadata, **body}


def _convert(event: Event, match: Callable[[Obj], bool],
             line: LineEncoder | None = None) -> bytes | None:
    """What one watcher sees of a change, given its selectors (as the watch cache does):
    an object that starts matching is ADDED, one that stops matching is DELETED."""
    line = line or _line
    current = event.obj if event.type != "DELETED" else None
    now_matches = current is not None and match(current)
    was_matching = event.old is not None and match(event.old)
    if now_matches and not was_matching:
        assert current is not None
        return line("ADDED", current)
    if now_matches and was_matching:
        assert current is not None
        return line("MODIFIED", current)
    if was_matching and event.old is not None:
        gone: Obj = dict(event.old)
        gone["metadata"] = {**meta(event.old), "resourceVersion": str(event.rv)}
        return line("DELETED", gone)
    return None
