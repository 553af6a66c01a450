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

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api.apply import ApplyConflict, ApplyError, FieldConflict
    from .api.capabilities import (
        AttachApi,
        EvictionApi,
        ExecApi,
        LogApi,
        PortForwardApi,
        ScaleApi,
        StatusApi,
    )
    from .api.client import Client
    from .api.discovery import AmbiguousResourceError, NoMatchError
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
        DeploymentApi,
        PodApi,
    )
    from .manifests import KubeObject, Manifest, ManifestError, dump_all_yaml, load_all_yaml
    from .runtime import conditions as conditions
    from .runtime.controller import (
        DONE,
        REQUEUE,
        Controller,
        ControllerStats,
        ObjectKey,
        Result,
        annotations_changed,
        generation_changed,
        labels_changed,
        requeue_after,
    )
    from .runtime.events import EventRecorder, object_reference
    from .runtime.finalizers import Finalizer
    from .runtime.informer import Change, ChangesLagged, ChangeStream, Informer, drop_managed_fields
    from .runtime.leader import LeaderElection
    from .runtime.sharding import Sharding
    from .runtime.waits import WaitTimeout
    from .runtime.watcher import Watcher, WatcherStats
    from .runtime.workqueue import (
        ExponentialBackoff,
        MaxOf,
        QueueShutDown,
        RateLimiter,
        TokenBucket,
        WorkQueue,
        default_rate_limiter,
    )
    from .streams.events import (
        AddedEvent,
        BookmarkEvent,
        DeletedEvent,
        ErrorEvent,
        Event,
        ModifiedEvent,
        WatchEvent,
    )
    from .streams.exec import ExecProcess, ExecResult, ExitStatusUnknown
    from .streams.log_stream import LogStream
    from .streams.portforward import PortForward, PortForwardError, PortReader, PortWriter
    from .streams.watch_stream import WatchStream
    from .transport.policy import RetryPolicy

# Every public name is imported on first use: `import kubeasync` costs next to nothing,
# and a program pays for what it touches (the client, the controller runtime, ...).
_LAZY = {
    **dict.fromkeys(("ApplyConflict", "ApplyError", "FieldConflict"), ".api.apply"),
    **dict.fromkeys(("AttachApi", "EvictionApi", "ExecApi", "LogApi", "PortForwardApi", "ScaleApi",
                     "StatusApi"), ".api.capabilities"),
    "Client": ".api.client",
    **dict.fromkeys(("AmbiguousResourceError", "NoMatchError"), ".api.discovery"),
    "ResourceApi": ".api.resource",
    **dict.fromkeys(("Auth", "BasicAuth", "BearerToken", "ClientCertificate", "ClusterConfig",
                     "Credential", "ExecPlugin", "Impersonation", "NoAuth", "RefreshingAuth",
                     "TokenFile"), ".config"),
    "Backoff": ".core.backoff",
    **dict.fromkeys(("ResourceDescriptor", "custom_resource"), ".core.descriptor"),
    **dict.fromkeys(("AlreadyExists", "ApiError", "BadRequest", "ConfigError", "Conflict",
                     "ConnectError", "DecodeError", "Forbidden", "Gone", "Invalid", "KubeError",
                     "MethodNotAllowed", "NotFound", "RequestTimeout", "ServerError",
                     "StreamError", "TooManyRequests", "TransportError", "Unauthorized",
                     "UnsupportedMediaType"), ".core.errors"),
    "object_key": ".core.objects",
    **dict.fromkeys(("PatchType", "PropagationPolicy"), ".core.params"),
    "Request": ".core.request",
    **dict.fromkeys(("BUILTIN_RESOURCES", "CONFIG_MAPS", "JOBS", "NAMESPACES",
                     "PERSISTENT_VOLUME_CLAIMS", "PODS", "SERVICES", "DeploymentApi",
                     "PodApi"), ".kinds"),
    **dict.fromkeys(("KubeObject", "Manifest", "ManifestError", "dump_all_yaml",
                     "load_all_yaml"), ".manifests"),
    **dict.fromkeys(("Change", "ChangesLagged", "ChangeStream", "Informer",
                     "drop_managed_fields"), ".runtime.informer"),
    **dict.fromkeys(("Watcher", "WatcherStats"), ".runtime.watcher"),
    **dict.fromkeys(("AddedEvent", "BookmarkEvent", "DeletedEvent", "ErrorEvent", "Event",
                     "ModifiedEvent", "WatchEvent"), ".streams.events"),
    "LogStream": ".streams.log_stream",
    "WatchStream": ".streams.watch_stream",
    "RetryPolicy": ".transport.policy",
    "conditions": ".runtime.conditions",
    **dict.fromkeys(("DONE", "REQUEUE", "Controller", "ControllerStats", "ObjectKey", "Result",
                     "annotations_changed", "generation_changed", "labels_changed",
                     "requeue_after"), ".runtime.controller"),
    **dict.fromkeys(("EventRecorder", "object_reference"), ".runtime.events"),
    "Finalizer": ".runtime.finalizers",
    "LeaderElection": ".runtime.leader",
    "Sharding": ".runtime.sharding",
    "WaitTimeout": ".runtime.waits",
    **dict.fromkeys(("ExecProcess", "ExecResult", "ExitStatusUnknown"), ".streams.exec"),
    **dict.fromkeys(("PortForward", "PortForwardError", "PortReader", "PortWriter"),
                    ".streams.portforward"),
    **dict.fromkeys(("ExponentialBackoff", "MaxOf", "QueueShutDown", "RateLimiter",
                     "TokenBucket", "WorkQueue", "default_rate_limiter"), ".runtime.workqueue"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kubeasync' has no attribute {name!r}")
    loaded = importlib.import_module(module, __name__)
    value = loaded if name == "conditions" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BUILTIN_RESOURCES",
    "CONFIG_MAPS",
    "DONE",
    "JOBS",
    "NAMESPACES",
    "PERSISTENT_VOLUME_CLAIMS",
    "PODS",
    "REQUEUE",
    "SERVICES",
    "AddedEvent",
    "AlreadyExists",
    "AmbiguousResourceError",
    "ApiError",
    "ApplyConflict",
    "ApplyError",
    "AttachApi",
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
    "Controller",
    "ControllerStats",
    "Credential",
    "DecodeError",
    "DeletedEvent",
    "DeploymentApi",
    "ErrorEvent",
    "Event",
    "EventRecorder",
    "EvictionApi",
    "ExecApi",
    "ExecPlugin",
    "ExecProcess",
    "ExecResult",
    "ExitStatusUnknown",
    "ExponentialBackoff",
    "FieldConflict",
    "Finalizer",
    "Forbidden",
    "Gone",
    "Impersonation",
    "Informer",
    "Invalid",
    "KubeError",
    "KubeObject",
    "LeaderElection",
    "LogApi",
    "LogStream",
    "Manifest",
    "ManifestError",
    "MaxOf",
    "MethodNotAllowed",
    "ModifiedEvent",
    "NoAuth",
    "NoMatchError",
    "NotFound",
    "ObjectKey",
    "PatchType",
    "PodApi",
    "PortForward",
    "PortForwardApi",
    "PortForwardError",
    "PortReader",
    "PortWriter",
    "PropagationPolicy",
    "QueueShutDown",
    "RateLimiter",
    "RefreshingAuth",
    "Request",
    "RequestTimeout",
    "ResourceApi",
    "ResourceDescriptor",
    "Result",
    "RetryPolicy",
    "ScaleApi",
    "ServerError",
    "Sharding",
    "StatusApi",
    "StreamError",
    "TokenBucket",
    "TokenFile",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "WaitTimeout",
    "WatchEvent",
    "WatchStream",
    "Watcher",
    "WatcherStats",
    "WorkQueue",
    "__version__",
    "annotations_changed",
    "conditions",
    "custom_resource",
    "default_rate_limiter",
    "drop_managed_fields",
    "dump_all_yaml",
    "generation_changed",
    "labels_changed",
    "load_all_yaml",
    "object_key",
    "object_reference",
    "requeue_after",
]
