"""kubeasync: a fast asyncio Kubernetes API client built on aiohttp and msgspec.

    import kubeasync

    async with kubeasync.Client() as kube:
        pod = await kube.pods.get("web-0", namespace="default")
        async for event in kube.pods.watch(namespace="default"):
            print(event.type, event.object.metadata.name)

        async with kube.pods.informer(namespace="default") as pods:   # a shared local cache
            await pods.wait_synced()
            async for change in pods.changes():
                print(change.type, change.name)
"""

from ._version import __version__
from .api.capabilities import EvictionApi, LogApi, StatusApi
from .api.client import Client
from .api.resource import ResourceApi
from .config import (
    Auth,
    BasicAuth,
    BearerToken,
    ClientCertificate,
    ClusterConfig,
    Credential,
    ExecPlugin,
    Impersonation,
    NoAuth,
    RefreshingAuth,
    TokenFile,
)
from .core.backoff import Backoff
from .core.descriptor import ResourceDescriptor, custom_resource
from .core.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    ConnectError,
    DecodeError,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    ServerError,
    StreamError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
)
from .core.objects import object_key
from .core.params import PatchType, PropagationPolicy
from .core.request import Request
from .kinds import (
    BUILTIN_RESOURCES,
    CONFIG_MAPS,
    JOBS,
    NAMESPACES,
    PERSISTENT_VOLUME_CLAIMS,
    PODS,
    SERVICES,
    PodApi,
)
from .runtime.informer import Change, ChangesLagged, ChangeStream, Informer, drop_managed_fields
from .runtime.watcher import Watcher, WatcherStats
from .streams.events import (
    AddedEvent,
    BookmarkEvent,
    DeletedEvent,
    ErrorEvent,
    Event,
    ModifiedEvent,
    WatchEvent,
)
from .streams.log_stream import LogStream
from .streams.watch_stream import WatchStream
from .transport.policy import RetryPolicy

__all__ = [
    "BUILTIN_RESOURCES",
    "CONFIG_MAPS",
    "JOBS",
    "NAMESPACES",
    "PERSISTENT_VOLUME_CLAIMS",
    "PODS",
    "SERVICES",
    "AddedEvent",
    "AlreadyExists",
    "ApiError",
    "Auth",
    "Backoff",
    "BadRequest",
    "BasicAuth",
    "BearerToken",
    "BookmarkEvent",
    "Change",
    "ChangeStream",
    "ChangesLagged",
    "Client",
    "ClientCertificate",
    "ClusterConfig",
    "ConfigError",
    "Conflict",
    "ConnectError",
    "Credential",
    "DecodeError",
    "DeletedEvent",
    "ErrorEvent",
    "Event",
    "EvictionApi",
    "ExecPlugin",
    "Forbidden",
    "Gone",
    "Impersonation",
    "Informer",
    "Invalid",
    "KubeError",
    "LogApi",
    "LogStream",
    "MethodNotAllowed",
    "ModifiedEvent",
    "NoAuth",
    "NotFound",
    "PatchType",
    "PodApi",
    "PropagationPolicy",
    "RefreshingAuth",
    "Request",
    "RequestTimeout",
    "ResourceApi",
    "ResourceDescriptor",
    "RetryPolicy",
    "ServerError",
    "StatusApi",
    "StreamError",
    "TokenFile",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "WatchEvent",
    "WatchStream",
    "Watcher",
    "WatcherStats",
    "__version__",
    "custom_resource",
    "drop_managed_fields",
    "object_key",
]
