"""The user-facing API: :class:`Client` and the per-resource :class:`ResourceApi`.

One generic class implements every verb for every resource; the descriptor decides paths,
scope, model types, and which capabilities exist (only resources with a ``log``
subresource get :class:`LogsApi`'s ``logs``/``stream_logs``). ``kube.pods``, ``kube.jobs``
and the others are built in a loop over :data:`~kubeasync.resources.BUILTIN_RESOURCES`.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from ..config.cluster import ClusterConfig, autodetect
from ..core.descriptor import ResourceDescriptor
from ..core.errors import Gone, NotFound
from ..core.names import validate_namespace
from ..core.request import (
    PatchType,
    Request,
    RequestBuilder,
    coerce_patch_type,
    delete_options,
    encode_object,
    encode_patch,
)
from ..kinds import SEED_RESOURCES as BUILTIN_RESOURCES  # the six seed attributes, for now
from ..models.meta_v1 import Status
from ..models.version import Info
from ..runtime.informer import Informer, shared_informer, stop_informers
from ..streams.watch import (
    DEFAULT_MAX_LINE_BYTES,
    Backoff,
    LogStream,
    Watcher,
    WatchStream,
    stream_lines,
)
from ..transport.session import RetryPolicy, Session, decode, decoder_for

if TYPE_CHECKING:  # the seed kinds' models, for the annotations only: not imported at run time
    from ..models.batch_v1 import Job, JobList
    from ..models.core_v1 import (
        ConfigMap,
        ConfigMapList,
        Namespace,
        NamespaceList,
        PersistentVolumeClaim,
        PersistentVolumeClaimList,
        Pod,
        PodList,
        Service,
        ServiceList,
    )

__all__ = ["Client", "LogsApi", "ResourceApi"]

T = TypeVar("T")
L = TypeVar("L")

_FALLBACK_DELETE_CONCURRENCY = 8


class _KindProbe(msgspec.Struct):
    kind: str | None = None


_KIND_PROBE = msgspec.json.Decoder(_KindProbe)
_STATUS_DECODER = decoder_for(Status)


def object_key(obj: object) -> tuple[str, str]:
    """``(namespace, name)`` of a model instance or a dict (``""`` when absent)."""
    if isinstance(obj, Mapping):
        meta = obj.get("metadata") or {}
        return (meta.get("namespace") or "", meta.get("name") or "")
    meta_obj = getattr(obj, "metadata", None)
    return (getattr(meta_obj, "namespace", None) or "", getattr(meta_obj, "name", None) or "")


class ResourceApi(Generic[T, L]):
    """Every verb for one resource, typed by its model ``T`` and list model ``L``.

    ``namespace=None`` means the client's default namespace (the kubeconfig context's);
    cluster-scoped resources take no namespace. Arguments are checked before anything is
    sent: a bad one raises ``ValueError`` naming it.
    """

    def __init__(
        self,
        session: Session,
        descriptor: ResourceDescriptor[T, L],
        default_namespace: str,
    ) -> None:
        self.descriptor = descriptor
        self._session = session
        self._default_namespace = default_namespace
        self._requests: RequestBuilder[T, L] = RequestBuilder(descriptor)
        self._decoder = decoder_for(descriptor.model)
        self._list_decoder = decoder_for(descriptor.list_model)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.descriptor.api_prefix}/{self.descriptor.plural}>"

    # ----------------------------------------------------------- namespaces

    def _namespace(self, namespace: str | None) -> str | None:
        if not self.descriptor.namespaced:
            if namespace is not None:
                raise ValueError(
                    f"{self.descriptor.plural} are cluster-scoped: namespace must not be given"
                )
            return None
        if namespace is None:
            return self._default_namespace
        return validate_namespace(namespace)

    def _collection_namespace(self, namespace: str | None, all_namespaces: bool) -> str | None:
        if all_namespaces:
            if namespace is not None:
                raise ValueError("give namespace or all_namespaces=True, not both")
            return None
        return self._namespace(namespace)

    # ----------------------------------------------------------- transport

    async def _call(self, request: Request, timeout: float | None) -> T:
        return await self._session.request(request, self._decoder, timeout=timeout)

    async def _call_object_or_status(
        self, request: Request, decoder: msgspec.json.Decoder[Any], timeout: float | None
    ) -> Any:
        response = await self._session.send(request, timeout=timeout)
        body = response.body
        if _KIND_PROBE.decode(body).kind == "Status":
            return decode(_STATUS_DECODER, body, request)
        return decode(decoder, body, request)

    # ----------------------------------------------------------- reads

    async def get(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """``GET .../{plural}/{name}``: read one object."""
        request = self._requests.get(
            name, self._namespace(namespace), resource_version=resource_version
        )
        return await self._call(request, timeout)

    async def get_status(
        self, name: str, *, namespace: str | None = None, timeout: float | None = None
    ) -> T:
        """``GET .../{plural}/{name}/status``: read one object through its status subresource."""
        request = self._requests.get(name, self._namespace(namespace), subresource="status")
        return await self._call(request, timeout)

    async def list(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        timeout: float | None = None,
    ) -> L:
        """``GET .../{plural}``: one page of objects (all of them unless ``limit`` is given).

        Selectors take the Kubernetes string syntax or a mapping (see
        :mod:`kubeasync.selectors`). The answer's ``metadata.continue_`` is the token for
        the next page, and ``metadata.resource_version`` the list's resourceVersion.
        """
        request = self._requests.list(
            self._collection_namespace(namespace, all_namespaces),
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_=continue_,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )
        return await self._session.request(request, self._list_decoder, timeout=timeout)

    async def iterate(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        page_size: int = 500,
        timeout: float | None = None,
    ) -> AsyncIterator[T]:
        """Every matching object, fetched ``page_size`` at a time by following continue tokens.

        If a continue token expires between pages (410 Gone, as when the list takes longer
        than etcd's compaction window), it falls back to one full list, as client-go's
        pager does, and yields only the objects it has not yielded yet.
        """
        namespace_ = self._collection_namespace(namespace, all_namespaces)
        continue_: str | None = None
        seen: set[tuple[str, str]] = set()
        while True:
            request = self._requests.list(
                namespace_,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_=continue_,
            )
            try:
                page = await self._session.request(request, self._list_decoder, timeout=timeout)
            except Gone:
                if continue_ is None:
                    raise
                full = self._requests.list(
                    namespace_, label_selector=label_selector, field_selector=field_selector
                )
                page = await self._session.request(full, self._list_decoder, timeout=timeout)
                for item in _items(page):
                    if object_key(item) not in seen:
                        yield item
                return
            for item in _items(page):
                seen.add(object_key(item))
                yield item
            continue_ = _continue_token(page)
            if not continue_:
                return

    # ----------------------------------------------------------- writes

    async def create(
        self,
        obj: T | Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """``POST .../{plural}``: create an object (a model instance or a plain dict).

        The namespace comes from ``namespace=``, else the object's ``metadata.namespace``,
        else the client's default namespace.
        """
        if namespace is None and self.descriptor.namespaced:
            namespace = _metadata_namespace(obj)
        ns = self._namespace(namespace)
        body = encode_object(self.descriptor, obj, namespace=ns, require_name=True)
        request = self._requests.create(ns, body, dry_run=dry_run, field_manager=field_manager)
        return await self._call(request, timeout)

    async def replace(
        self,
        name: str,
        obj: T | Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """``PUT .../{plural}/{name}``: replace an object. With ``metadata.resourceVersion``
        set, the server answers 409 :class:`~kubeasync.Conflict` if it changed since."""
        return await self._replace(name, obj, namespace, None, dry_run, field_manager, timeout)

    async def replace_status(
        self,
        name: str,
        obj: T | Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """``PUT .../{plural}/{name}/status``: replace the object's status.

        The server keeps the spec as it is; on built-in kinds it does write the metadata's
        labels and annotations sent along (custom resources keep theirs)."""
        return await self._replace(name, obj, namespace, "status", dry_run, field_manager, timeout)

    async def _replace(
        self,
        name: str,
        obj: T | Mapping[str, Any],
        namespace: str | None,
        subresource: str | None,
        dry_run: bool,
        field_manager: str | None,
        timeout: float | None,
    ) -> T:
        ns = self._namespace(namespace)
        body = encode_object(self.descriptor, obj, name=name, namespace=ns)
        request = self._requests.replace(
            name, ns, body, subresource=subresource, dry_run=dry_run, field_manager=field_manager
        )
        return await self._call(request, timeout)

    async def patch(
        self,
        name: str,
        patch: object,
        *,
        namespace: str | None = None,
        patch_type: PatchType | str = PatchType.MERGE,
        field_manager: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> T:
        """``PATCH .../{plural}/{name}`` with the content type of ``patch_type``.

        ``PatchType.JSON`` takes a list of operations; ``MERGE`` and ``STRATEGIC`` a partial
        object (dict or model); ``APPLY`` (server-side apply) a full object and requires
        ``field_manager``, with ``force=True`` to take over conflicting fields.
        """
        return await self._patch(
            name, patch, namespace, None, patch_type, field_manager, force, dry_run, timeout
        )

    async def patch_status(
        self,
        name: str,
        patch: object,
        *,
        namespace: str | None = None,
        patch_type: PatchType | str = PatchType.MERGE,
        field_manager: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> T:
        """``PATCH .../{plural}/{name}/status``: patch only the object's status."""
        return await self._patch(
            name, patch, namespace, "status", patch_type, field_manager, force, dry_run, timeout
        )

    async def _patch(
        self,
        name: str,
        patch: object,
        namespace: str | None,
        subresource: str | None,
        patch_type: PatchType | str,
        field_manager: str | None,
        force: bool | None,
        dry_run: bool,
        timeout: float | None,
    ) -> T:
        ns = self._namespace(namespace)
        kind = coerce_patch_type(patch_type)
        body = encode_patch(self.descriptor, patch, kind, name=name, namespace=ns)
        request = self._requests.patch(
            name,
            ns,
            body,
            kind,
            subresource=subresource,
            dry_run=dry_run,
            field_manager=field_manager,
            force=force,
        )
        return await self._call(request, timeout)

    async def delete(
        self,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> T | Status:
        """``DELETE .../{plural}/{name}`` with DeleteOptions in the body.

        Returns what the server answers: the object (with ``deletionTimestamp`` set while
        finalizers or a grace period hold it) or a ``Status`` (batch/v1 Jobs answer one).
        ``preconditions={"uid": ..., "resourceVersion": ...}`` make the server answer 409
        :class:`~kubeasync.Conflict` when the object is not that one any more.
        """
        request = self._requests.delete(
            name,
            self._namespace(namespace),
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        result: T | Status = await self._call_object_or_status(request, self._decoder, timeout)
        return result

    async def delete_collection(
        self,
        *,
        namespace: str | None = None,
        label_selector: object = None,
        field_selector: object = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> L | Status:
        """``DELETE .../{plural}`` with selectors: delete every matching object.

        Returns the list of deleted objects (or a ``Status``, if the server answers one).

        Resources without the ``deletecollection`` verb (Services, on every Kubernetes
        version: the server answers 405) are handled here instead: kubeasync lists the
        matches and deletes them one by one, at most 8 at a time, and returns the list of
        what it deleted (objects already gone are skipped).
        """
        ns = self._namespace(namespace)
        if not self.descriptor.supports("deletecollection"):
            return await self._delete_each(
                ns, label_selector, field_selector, grace_period_seconds,
                propagation_policy, dry_run, timeout,
            )
        request = self._requests.delete_collection(
            ns,
            label_selector=label_selector,
            field_selector=field_selector,
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            dry_run=dry_run,
        )
        result: L | Status = await self._call_object_or_status(
            request, self._list_decoder, timeout
        )
        return result

    async def _delete_each(
        self,
        namespace: str | None,
        label_selector: object,
        field_selector: object,
        grace_period_seconds: int | None,
        propagation_policy: str | None,
        dry_run: bool,
        timeout: float | None,
    ) -> L:
        # Check the options first, so that a bad one raises before anything is deleted.
        delete_options(
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            preconditions=None,
            dry_run=dry_run,
        )
        listing = self._requests.list(
            namespace, label_selector=label_selector, field_selector=field_selector
        )
        matches = _items(await self._session.request(listing, self._list_decoder, timeout=timeout))

        async def delete_one(item: T) -> T | None:
            item_namespace, item_name = object_key(item)
            request = self._requests.delete(
                item_name,
                item_namespace if self.descriptor.namespaced else None,
                grace_period_seconds=grace_period_seconds,
                propagation_policy=propagation_policy,
                dry_run=dry_run,
            )
            try:
                answer = await self._call_object_or_status(request, self._decoder, timeout)
            except NotFound:
                return None
            return item if isinstance(answer, Status) else answer

        results = await _bounded_gather(
            [delete_one(item) for item in matches], _FALLBACK_DELETE_CONCURRENCY
        )
        deleted = [item for item in results if item is not None]
        return self._make_list(deleted)

    def _make_list(self, items: builtins.list[T]) -> L:
        envelope = {
            "kind": self.descriptor.list_kind,
            "apiVersion": self.descriptor.api_version,
            "metadata": {},
            "items": items,
        }
        return decode(self._list_decoder, msgspec.json.encode(envelope))

    # ----------------------------------------------------------- watches

    def watch(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        resource_version: str | None = None,
        send_initial_events: bool | None = None,
        bookmarks: bool = False,
        timeout_seconds: int = 300,
        idle_timeout: float | None = None,
        page_size: int = 500,
        backoff: Backoff | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        transform: Callable[[T], T] | None = None,
    ) -> Watcher[T]:
        """A resilient watch: the current objects (as ADDED), then every change.

        ``async for event in api.watch(...)`` survives disconnects, stalls and expired
        resource versions without missing or repeating a change; see ``docs/watching.md``
        and :mod:`kubeasync.watch` for its state machine.

        Args:
            resource_version: resume from this checkpoint (a saved
                ``watcher.resource_version``) instead of listing the current state first.
            send_initial_events: ``None`` (auto): get the initial state from a
                ``sendInitialEvents`` watch where the server supports it, else by a
                paginated list (a 400/422 answer is remembered for the session);
                ``True``: always stream it; ``False``: always list.
            bookmarks: also yield BOOKMARK events (they always advance the checkpoint).
            timeout_seconds: each watch request asks the server to end it after a random
                time in ``[timeout_seconds, 2 * timeout_seconds)``; the watcher then
                continues where it was.
            idle_timeout: seconds without a byte after which the connection is dropped as
                stalled and the watch resumed (default: the request's timeout + 30 s).
            page_size: objects per page of the initial list.
            backoff: the :class:`~kubeasync.watch.Backoff` after failures (0.8 s -> 30 s).
            max_line_bytes: the largest event accepted (default 32 MiB).
            transform: applied to every object before it is recorded and yielded, e.g.
                :func:`~kubeasync.informer.drop_managed_fields` to save memory.
        """
        return Watcher(
            self._session,
            self.descriptor,
            namespace=self._collection_namespace(namespace, all_namespaces),
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            send_initial_events=send_initial_events,
            bookmarks=bookmarks,
            timeout_seconds=timeout_seconds,
            idle_timeout=idle_timeout,
            page_size=page_size,
            backoff=backoff,
            max_line_bytes=max_line_bytes,
            transform=transform,
        )

    def informer(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        transform: Callable[[T], T] | None = None,
        send_initial_events: bool | None = None,
        timeout_seconds: int = 300,
        idle_timeout: float | None = None,
        page_size: int = 500,
        backoff: Backoff | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> Informer[T]:
        """A shared local cache of the collection, kept current by one resilient watch.

        The same arguments on the same client give the same :class:`~kubeasync.Informer`
        (selectors compare in their string form, ``transform`` by identity). Start it
        with ``async with``, then ``await informer.wait_synced()``, ``get()``, ``list()``,
        ``add_index()``/``by_index()`` and ``async for change in informer.changes()``;
        see ``docs/informer.md``. ``transform`` is applied to every object before it is
        stored (e.g. :func:`~kubeasync.informer.drop_managed_fields`); the other options
        are :meth:`watch`'s.
        """
        return shared_informer(
            self._session,
            self.descriptor,
            namespace=self._collection_namespace(namespace, all_namespaces),
            label_selector=label_selector,
            field_selector=field_selector,
            transform=transform,
            send_initial_events=send_initial_events,
            timeout_seconds=timeout_seconds,
            idle_timeout=idle_timeout,
            page_size=page_size,
            backoff=backoff,
            max_line_bytes=max_line_bytes,
        )

    def watch_stream(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
        idle_timeout: float | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> WatchStream[T]:
        """One raw watch request: events until the server closes the stream, nothing hidden.

        No list, no retries, no relist: ``ERROR`` events (such as 410 Expired) are yielded
        as :class:`~kubeasync.watch.ErrorEvent`, and failures raise.
        """
        request = self._requests.watch(
            self._collection_namespace(namespace, all_namespaces),
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            allow_bookmarks=allow_bookmarks,
            send_initial_events=send_initial_events,
            resource_version_match="NotOlderThan" if send_initial_events else None,
        )
        return WatchStream(
            self._session,
            request,
            self.descriptor.model,
            idle_timeout=idle_timeout,
            max_line_bytes=max_line_bytes,
        )


class LogsApi(ResourceApi[T, L]):
    """A :class:`ResourceApi` for resources with a ``log`` subresource (pods)."""

    async def logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
        previous: bool = False,
        limit_bytes: int | None = None,
        timeout: float | None = None,
    ) -> str:
        """``GET .../pods/{name}/log``: the container's log so far, as text.

        Invalid UTF-8 is replaced, not raised. A pod that has not been scheduled yet has no
        log: the server answers 204 and this returns ``""``.
        """
        request = self._requests.logs(
            name,
            self._namespace(namespace),
            container=container,
            tail_lines=tail_lines,
            since_seconds=since_seconds,
            since_time=since_time,
            timestamps=timestamps,
            previous=previous,
            limit_bytes=limit_bytes,
        )
        response = await self._session.send(request, timeout=timeout)
        return response.body.decode("utf-8", errors="replace")

    def stream_logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
        previous: bool = False,
        limit_bytes: int | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> LogStream:
        """Log lines (``str``, without the newline) as they arrive.

        ``follow=True`` keeps the stream open until the container stops. Invalid UTF-8 is
        replaced, not raised; a last line without a newline is yielded too. A pod with
        several containers needs ``container=`` (the server answers 400
        :class:`~kubeasync.BadRequest` otherwise). Use ``async with`` or ``aclose()`` to
        stop early.
        """
        request = self._requests.logs(
            name,
            self._namespace(namespace),
            container=container,
            follow=follow,
            tail_lines=tail_lines,
            since_seconds=since_seconds,
            since_time=since_time,
            timestamps=timestamps,
            previous=previous,
            limit_bytes=limit_bytes,
        )
        return stream_lines(self._session, request, max_line_bytes=max_line_bytes)


def _items(page: Any) -> list[Any]:
    items = page.get("items") if isinstance(page, Mapping) else page.items
    return list(items or [])


def _continue_token(page: Any) -> str | None:
    if isinstance(page, Mapping):
        token = (page.get("metadata") or {}).get("continue")
    else:
        metadata = page.metadata
        token = metadata.continue_ if metadata is not None else None
    return token or None


def _metadata_namespace(obj: object) -> str | None:
    namespace, _ = object_key(obj)
    return namespace or None


async def _bounded_gather(coros: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Run awaitables at most ``limit`` at a time; on the first failure cancel the rest."""
    semaphore = asyncio.Semaphore(limit)

    async def run(aw: Awaitable[T]) -> T:
        async with semaphore:
            return await aw

    tasks = [asyncio.ensure_future(run(c)) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


_API_CLASSES: dict[bool, type[ResourceApi[Any, Any]]] = {False: ResourceApi, True: LogsApi}


class Client:
    """A connection to one Kubernetes cluster.

    ``Client()`` finds its configuration itself (KUBECONFIG or ``~/.kube/config``, else the
    in-cluster service account); ``Client(config)`` takes a :class:`ClusterConfig`.
    Use it as ``async with Client() as kube:`` so its connections are closed; it also works
    without ``async with`` if you ``await kube.close()`` at the end.

    Args:
        config: the cluster; found automatically when ``None``.
        context: the kubeconfig context to use (default: its current-context).
        namespace: the default namespace (default: the context's, else ``"default"``).
        timeout: seconds for one request (streams are not bounded by it).
        retry: the :class:`~kubeasync.session.RetryPolicy`.
        qps: an optional client-side rate limit in requests per second (off by default).
        burst: how many requests may go at once under ``qps`` (default: ``qps``).
        max_connections: connection pool size (default unlimited: each watch holds one).
    """

    pods: LogsApi[Pod, PodList]
    jobs: ResourceApi[Job, JobList]
    services: ResourceApi[Service, ServiceList]
    persistent_volume_claims: ResourceApi[PersistentVolumeClaim, PersistentVolumeClaimList]
    namespaces: ResourceApi[Namespace, NamespaceList]
    config_maps: ResourceApi[ConfigMap, ConfigMapList]

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
        )
        for descriptor in BUILTIN_RESOURCES:
            setattr(self, descriptor.attribute, self.resource(descriptor))

    def resource(self, descriptor: ResourceDescriptor[T, L]) -> ResourceApi[T, L]:
        """The API for any resource: a built-in row, your own typed descriptor, or a CRD
        from :func:`~kubeasync.resources.custom_resource` (plain dicts)."""
        cls = _API_CLASSES[descriptor.has_subresource("log")]
        return cls(self.session, descriptor, self.namespace)

    async def version(self) -> Info:
        """``GET /version``: the server's version."""
        return await self.session.request(Request("GET", "/version"), decoder_for(Info))

    async def close(self) -> None:
        """Stop the client's informers and close every connection."""
        await stop_informers(self.session)
        await self.session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<kubeasync.Client {self.config.server} namespace={self.namespace!r}>"
