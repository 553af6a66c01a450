"""The Client: one connection to one cluster, and the APIs of its resources.

Everything that is per cluster lives on the Client, never in module globals: the session
(policy and transport), what it learned about its server (:class:`ServerFeatures`,
:class:`~kubeasync.api.discovery.Discovery`), and its shared informers. Two clients to two
clusters share nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import msgspec

from ..config import ClusterConfig, autodetect
from ..core.codec import decoder_for
from ..core.descriptor import ResourceDescriptor
from ..core.names import validate_namespace
from ..core.request import Request
from ..kinds import (
    ATTRIBUTES,
    BUILTIN_RESOURCES,
    BY_GROUP_VERSION_KIND,
    KindAttributes,
    descriptor_for_model,
)
from ..models import Info
from ..runtime.informer import InformerRegistry
from ..runtime.watcher import ServerFeatures
from ..transport.policy import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_REQUESTS,
    PROBE_AFTER,
    RetryPolicy,
    Session,
)
from .capabilities import api_class
from .discovery import Discovery, descriptor_for
from .resource import ResourceApi

if TYPE_CHECKING:
    from ..manifests import KubeObject

__all__ = ["Client"]

# Built-in group-versions win when a name matches several groups (resource_for("ingress")).
_BUILTIN_GROUP_VERSIONS = frozenset((d.group, d.version) for d in BUILTIN_RESOURCES)

T = TypeVar("T")
L = TypeVar("L")
S = TypeVar("S", bound=msgspec.Struct)


class Client(KindAttributes):
    """A connection to one Kubernetes cluster.

    ``Client()`` finds its configuration itself (KUBECONFIG or ``~/.kube/config``, else the
    in-cluster service account); ``Client(config)`` takes a :class:`ClusterConfig`.
    Use it as ``async with Client() as kube:`` so its connections are closed; it also works
    without ``async with`` if you ``await kube.close()`` at the end. A Client belongs to the
    event loop it is first used in.

    Args:
        config: the cluster; found automatically when ``None``.
        context: the kubeconfig context to use (default: its current-context).
        namespace: the default namespace (default: the context's, else ``"default"``).
        timeout: seconds one call may take, its retries included (streams: the wait for
            the answer's headers).
        retry: the :class:`~kubeasync.RetryPolicy`.
        qps: an optional client-side rate limit in requests per second (off by default).
        burst: how many requests may go at once under ``qps`` (default: ``qps``).
        max_connections: connection pool size (default unlimited: requests and streams have
            their own budgets below).
        max_body_bytes: the largest answer accepted once decompressed (default 2 GiB).
        max_requests: plain requests in flight at once (default 100; ``None``: no bound).
        max_streams: watches, log streams and WebSockets open at once (default no bound).
        probe_after: seconds of silence on every open stream after which the client checks
            the connection with one cheap request (``None``: never); see
            ``docs/robustness.md``.

    Attributes:
        kube.pods, kube.deployments, ...: the API of each built-in resource, typed with
            exactly its capabilities (see :mod:`kubeasync.kinds`); ``kube.resource(...)``
            gives any other, ``await kube.resource_for(...)`` finds one through discovery.
        features: what the client learned about its server.
        discovery: what the server serves (groups, versions, resources), cached.
        informers: the client's shared informers.
    """

    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        context: str | None = None,
        namespace: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        qps: float | None = None,
        burst: int | None = None,
        max_connections: int | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_requests: int | None = DEFAULT_MAX_REQUESTS,
        max_streams: int | None = None,
        probe_after: float | None = PROBE_AFTER,
    ) -> None:
        if config is None:
            config = autodetect(context=context)
        elif context is not None:
            raise ValueError("give config or context, not both (context picks a kubeconfig entry)")
        elif not isinstance(config, ClusterConfig):
            raise ValueError(f"config must be a ClusterConfig, not {type(config).__name__}")
        self.config = config
        self.namespace = validate_namespace(
            namespace if namespace is not None else config.namespace, "namespace"
        )
        self.session = Session(
            config,
            timeout=timeout,
            retry=retry,
            qps=qps,
            burst=burst,
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            max_requests=max_requests,
            max_streams=max_streams,
            probe_after=probe_after,
        )
        self.features = ServerFeatures()
        self.discovery = Discovery(self.session)
        self.informers = InformerRegistry()
        self._apis: dict[ResourceDescriptor[Any, Any], ResourceApi[Any, Any]] = {}
        self._registered: dict[tuple[str, str, str], ResourceDescriptor[Any, Any]] = {}
        self._registered_models: dict[type[Any], ResourceDescriptor[Any, Any]] = {}

    # ------------------------------------------------------------ resources

    def _resource(self, what: ResourceDescriptor[Any, Any] | type[Any]) -> ResourceApi[Any, Any]:
        # kube.resource(...), typed per model in KindAttributes.
        if isinstance(what, ResourceDescriptor):
            descriptor = what
        elif isinstance(what, type):
            found = self._descriptor_of_model(what)
            if found is None:
                raise ValueError(
                    f"{what.__name__} is not the model of a built-in resource: give a"
                    " ResourceDescriptor (or custom_resource(...)) for it, or register one"
                    " with kube.register(descriptor)"
                )
            descriptor = found
        else:
            raise ValueError(
                f"resource() takes a ResourceDescriptor or a model class, not {what!r}"
            )
        api = self._apis.get(descriptor)
        if api is None:
            api = self._apis[descriptor] = api_class(descriptor)(self, descriptor)
        return api

    def register(self, descriptor: ResourceDescriptor[T, L]) -> ResourceApi[T, L]:
        """Use your own models for a kind on this client: ``descriptor`` (for instance the
        one ``python -m kubeasync models crd.yaml`` writes, or a ResourceDescriptor of
        your own msgspec Structs) is then what :meth:`resource_for` and :meth:`apply`
        decode that group, version and kind into, and ``kube.resource(YourModel)`` finds
        it. A registration replaces an earlier one of the same kind (a built-in kind
        too). Returns the descriptor's API."""
        if not isinstance(descriptor, ResourceDescriptor):
            raise ValueError(
                f"register() takes a ResourceDescriptor, not {type(descriptor).__name__}"
            )
        key = (descriptor.group, descriptor.version, descriptor.kind)
        previous = self._registered.get(key)
        if previous is not None and previous.typed:
            self._registered_models.pop(previous.model, None)
        self._registered[key] = descriptor
        if descriptor.typed:
            self._registered_models[descriptor.model] = descriptor
        return self.resource(descriptor)

    def _descriptor_of_model(self, model: type[Any]) -> ResourceDescriptor[Any, Any] | None:
        return self._registered_models.get(model) or descriptor_for_model(model)

    def _known_descriptor(
        self, group: str, version: str, kind: str
    ) -> ResourceDescriptor[Any, Any] | None:
        """The descriptor this client would use for a kind without asking the server: a
        registered one, else the catalogue's row; ``None`` for other kinds."""
        return self._registered.get((group, version, kind)) or BY_GROUP_VERSION_KIND.get(
            (group, version, kind)
        )

    async def resource_for(self, what: str, kind: str | None = None) -> ResourceApi[Any, Any]:
        """The API of a resource found through the server's discovery (cached per client;
        refreshed once when the cache does not have it, so a CRD created a moment ago
        resolves).

        - ``await kube.resource_for("example.com/v1", "Widget")``: by apiVersion and kind,
          as a manifest names it;
        - ``await kube.resource_for("deploy")``: by name, as kubectl matches it: plural,
          singular, short name or kind, in any case, optionally qualified as
          ``name.group`` or ``name.version.group`` (see
          :meth:`~kubeasync.api.discovery.ServerResources.find`).

        Built-in kinds are typed (their catalogue row, with the verbs and subresources the
        server has); kinds registered with :meth:`register` use their models; any other
        kind is a ``ResourceApi`` of plain dicts. Raises
        :class:`~kubeasync.NoMatchError` when the server serves nothing of the kind or
        name, :class:`~kubeasync.AmbiguousResourceError` when a name matches several
        groups and none is built in.
        """
        if kind is None:
            served = await self.discovery.find(what, builtin_groups=_BUILTIN_GROUP_VERSIONS)
        else:
            served = await self.discovery.find_kind(what, kind)
        known = self._known_descriptor(served.group, served.version, served.kind)
        return self.resource(descriptor_for(served, known))

    @overload
    async def apply(
        self, objs: S, *, field_manager: str, force: bool = False, dry_run: bool = False,
        establish_timeout: float = 60.0, timeout: float | None = None,
    ) -> S: ...

    @overload
    async def apply(
        self, objs: Mapping[str, Any], *, field_manager: str, force: bool = False,
        dry_run: bool = False, establish_timeout: float = 60.0, timeout: float | None = None,
    ) -> KubeObject: ...

    @overload
    async def apply(
        self, objs: Iterable[msgspec.Struct | Mapping[str, Any]], *, field_manager: str,
        force: bool = False, dry_run: bool = False, establish_timeout: float = 60.0,
        timeout: float | None = None,
    ) -> list[KubeObject]: ...

    async def apply(
        self,
        objs: msgspec.Struct | Mapping[str, Any] | Iterable[msgspec.Struct | Mapping[str, Any]],
        *,
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
        establish_timeout: float = 60.0,
        timeout: float | None = None,
    ) -> KubeObject | list[KubeObject]:
        """Server-side apply of one object (model or dict) or many (a list, or what
        :func:`~kubeasync.load_all_yaml` returns), as ``kubectl apply --server-side``.

        Namespaces are applied first, then CustomResourceDefinitions, then the rest in
        the order given; before the custom resources of a CRD applied in the same call it
        waits up to ``establish_timeout`` seconds for the CRD to be Established. Each
        object's namespace is its own, else the client's default. Returns what the server
        answered, typed (the object's own class for a model instance, the kind's model
        for a dict of a built-in or registered kind, else a dict): one object for one,
        a list in the order given for many.

        Args:
            field_manager: who owns the applied fields (kubectl uses ``"kubectl"``).
            force: take over fields another manager owns instead of failing.
            dry_run: let the server check everything and change nothing (custom resources
                of a CRD applied in the same dry run cannot be applied).
            timeout: per request, as for every other call.

        Raises :class:`~kubeasync.ApplyError` naming the object (position, document and
        line, kind, namespace, name) and why (``.error``), after applying the ones before
        it (``.applied``); :class:`~kubeasync.ApplyConflict`, also a
        :class:`~kubeasync.Conflict`, when fields belong to another field manager (its
        ``conflicts`` name the fields and managers).
        """
        from .apply import apply_objects

        if isinstance(objs, (str, bytes)):
            raise ValueError("objs must be objects, not YAML text: give"
                             " kubeasync.load_all_yaml(text) (or a path to it)")
        one = isinstance(objs, (msgspec.Struct, Mapping))
        batch: Iterable[object] = [objs] if isinstance(objs, (msgspec.Struct, Mapping)) else objs
        applied = await apply_objects(
            self, batch, field_manager=field_manager, force=force, dry_run=dry_run,
            establish_timeout=establish_timeout, timeout=timeout,
        )
        return applied[0] if one else applied

    def __getattr__(self, name: str) -> Any:
        # The built-in resources' attributes (kube.pods, ...), made on first use so that
        # a client imports only the models it uses.
        descriptor = ATTRIBUTES.get(name)
        if descriptor is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        api = self.resource(descriptor)
        self.__dict__[name] = api
        return api

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *ATTRIBUTES})

    async def version(self) -> Info:
        """``GET /version``: the server's version."""
        return await self.session.request(Request("GET", "/version"), decoder_for(Info))

    # ------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        """Stop the client's informers, end its watches and streams, and close every
        connection. Safe to call twice."""
        await self.informers.stop_all()
        await self.session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __del__(self) -> None:
        session = getattr(self, "session", None)
        if session is None or session.closed:
            return
        transport = session.transport
        if getattr(transport, "started", False):
            warnings.warn(
                f"{self!r} was never closed: use `async with kubeasync.Client(...) as kube:`"
                " or `await kube.close()`",
                ResourceWarning,
                stacklevel=2,
            )
            abandon = getattr(transport, "abandon", None)
            if abandon is not None:
                abandon()

    def __repr__(self) -> str:
        return f"<kubeasync.Client {self.config.server} namespace={self.namespace!r}>"
