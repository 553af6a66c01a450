"""The Client: one connection to one cluster, and the APIs of its resources.

Everything that is per cluster lives on the Client, never in module globals: the session
(policy and transport), what it learned about its server (:class:`ServerFeatures`,
:class:`~kubeasync.api.discovery.Discovery`), and its shared informers. Two clients to two
clusters share nothing.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar, overload

from ..config import ClusterConfig, autodetect
from ..core.codec import decoder_for
from ..core.descriptor import ResourceDescriptor
from ..core.names import validate_namespace
from ..core.request import Request
from ..kinds import ATTRIBUTES, KindAttributes, descriptor_for_model
from ..models import Info
from ..runtime.informer import InformerRegistry
from ..runtime.watcher import ServerFeatures
from ..transport.policy import DEFAULT_MAX_BODY_BYTES, RetryPolicy, Session
from .capabilities import api_class
from .discovery import Discovery
from .resource import ResourceApi

__all__ = ["Client"]

T = TypeVar("T")
L = TypeVar("L")


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
        max_connections: connection pool size (default unlimited: each watch holds one).
        max_body_bytes: the largest answer accepted once decompressed (default 2 GiB).

    Attributes:
        kube.pods, kube.jobs, ...: the API of each built-in resource (see
            :mod:`kubeasync.kinds`); ``kube.resource(...)`` gives any other.
        features: what the client learned about its server.
        discovery: the server's groups and versions, cached.
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
        )
        self.features = ServerFeatures()
        self.discovery = Discovery(self.session)
        self.informers = InformerRegistry()
        self._apis: dict[ResourceDescriptor[Any, Any], ResourceApi[Any, Any]] = {}

    # ------------------------------------------------------------ resources

    @overload
    def resource(self, what: ResourceDescriptor[T, L]) -> ResourceApi[T, L]: ...

    @overload
    def resource(self, what: type[T]) -> ResourceApi[T, Any]: ...

    def resource(self, what: ResourceDescriptor[Any, Any] | type[Any]) -> ResourceApi[Any, Any]:
        """The API for any resource: a built-in row, your own typed descriptor, a CRD
        from :func:`~kubeasync.custom_resource` (plain dicts), or a built-in model class
        (``kube.resource(ConfigMap)``). Its class has exactly the methods of the
        resource's capabilities (``get_status`` only with a ``status`` subresource)."""
        if isinstance(what, ResourceDescriptor):
            descriptor = what
        elif isinstance(what, type):
            found = descriptor_for_model(what)
            if found is None:
                raise ValueError(
                    f"{what.__name__} is not the model of a built-in resource: give a"
                    " ResourceDescriptor (or custom_resource(...)) for it"
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
