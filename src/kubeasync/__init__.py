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
from .api.client import Client, LogsApi, ResourceApi
from .config import (
    Auth,
    BasicAuth,
    BearerToken,
    ClientCertificate,
    ClusterConfig,
    Credential,
    ExecPlugin,
    NoAuth,
    RefreshingAuth,
    TokenFile,
)
from .core.descriptor import ResourceDescriptor, custom_resource
from .core.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
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
from .core.request import PatchType, PropagationPolicy, Request
from .kinds import (
    BUILTIN_RESOURCES,
    CONFIG_MAPS,
    JOBS,
    NAMESPACES,
    PERSISTENT_VOLUME_CLAIMS,
    PODS,
    SERVICES,
)
from .runtime.informer import Change, ChangesLagged, ChangeStream, Informer, drop_managed_fields
from .streams.watch import (
    AddedEvent,
    Backoff,
    BookmarkEvent,
    DeletedEvent,
    ErrorEvent,
    LogStream,
    ModifiedEvent,
    Watcher,
    WatcherStats,
    WatchEvent,
    WatchStream,
)
from .transport.session import RetryPolicy

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
    "Credential",
    "DecodeError",
    "DeletedEvent",
    "ErrorEvent",
    "ExecPlugin",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "KubeError",
    "LogStream",
    "LogsApi",
    "MethodNotAllowed",
    "ModifiedEvent",
    "NoAuth",
    "NotFound",
    "PatchType",
    "PropagationPolicy",
    "RefreshingAuth",
    "Request",
    "RequestTimeout",
    "ResourceApi",
    "ResourceDescriptor",
    "RetryPolicy",
    "ServerError",
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
]
