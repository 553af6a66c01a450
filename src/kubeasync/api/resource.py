"""The generic API of one resource: the core verbs, typed by the model and list model.

:class:`ResourceApi` has the verbs every resource has (get, list, iterate, create,
replace, patch, delete, delete_collection, watch, watch_stream, informer), checked against
the descriptor's verbs. What a kind has beyond them (status, logs, scale, eviction, exec,
...) are capabilities: each is one module in :mod:`kubeasync.api.capabilities` whose mixin
adds its methods, and an API class has exactly the mixins of its descriptor's subresources.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import msgspec

from ..core.backoff import Backoff
from ..core.codec import AnyDecoder, answer_kind, check_continue, decode, decoder_for, kind_decoder
from ..core.descriptor import ResourceDescriptor
from ..core.errors import ApiError, Gone, MethodNotAllowed, NotFound
from ..core.metadata import is_metadata_only, metadata_descriptor
from ..core.objects import accessor_for, namespace_of
from ..core.params import (
    DEFAULT_MAX_LINE_BYTES,
    DeleteParams,
    GetParams,
    ListParams,
    PatchParams,
    PatchType,
    PropagationPolicy,
    WatcherConfig,
    WatchParams,
    WriteParams,
)
from ..core.request import JSON, Request, RequestBuilder, encode_object, encode_patch
from ..models import Status
from ..models.meta_v1 import PartialObjectMetadata, PartialObjectMetadataList
from ..runtime.conditions import Deleted
from ..runtime.informer import Informer
from ..runtime.waits import wait_for as _wait_for
from ..runtime.watcher import Watcher
from ..streams.watch_stream import WatchStream
from ..transport.base import HttpResponse

if TYPE_CHECKING:
    from .client import Client

__all__ = ["ResourceApi"]

T = TypeVar("T")
L = TypeVar("L")
R = TypeVar("R")

_FALLBACK_DELETE_CONCURRENCY = 8


_STATUS_DECODER = decoder_for(Status)
_GET = GetParams()


class ResourceApi(Generic[T, L]):
    """Every core verb for one resource, typed by its model ``T`` and list model ``L``.

    ``namespace=None`` means the client's default namespace (the kubeconfig context's);
    cluster-scoped resources take no namespace. Arguments are checked before anything is
    sent: a bad one raises ``ValueError`` naming it.
    """

    capabilities: frozenset[str] = frozenset()
    """The subresources whose methods this class has (``{"status", "log"}`` for pods)."""

    def __init__(self, client: Client, descriptor: ResourceDescriptor[T, L]) -> None:
        self.descriptor = descriptor
        self._client = client
        self._session = client.session
        self._requests: RequestBuilder[T, L] = RequestBuilder(descriptor)
        # Every answer is checked to be of the resource's kind (or its list kind).
        self._decoder = kind_decoder(descriptor.model, descriptor.kind, descriptor.api_version)
        self._list_decoder = kind_decoder(descriptor.list_model, descriptor.list_kind,
                                          descriptor.api_version)
        self._access = accessor_for(descriptor.model)
        # Set when the server answered a collection delete with 405: this client then lists
        # and deletes one by one (Services have a collection delete from Kubernetes 1.23 on).
        self._collection_delete_refused = False
        self._metadata_api: ResourceApi[PartialObjectMetadata, PartialObjectMetadataList] | None = (
            None
        )
        # Set when the server answered a metadata-only read with 406: plain JSON from then on.
        self._partial_refused = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.descriptor.api_prefix}/{self.descriptor.plural}>"

    # ----------------------------------------------------------- shared by capabilities

    def _namespace(self, namespace: str | None) -> str | None:
        return self.descriptor.namespace_for(namespace, default=self._client.namespace)

    def _collection_namespace(self, namespace: str | None, all_namespaces: bool) -> str | None:
        if not isinstance(all_namespaces, bool):
            raise ValueError(f"all_namespaces must be a bool, got {all_namespaces!r}")
        return self.descriptor.namespace_for(
            namespace, default=self._client.namespace, all_namespaces=all_namespaces
        )

    def _object_namespace(self, obj: object, namespace: str | None) -> str | None:
        """``namespace=``, else the object's ``metadata.namespace``, else the default."""
        if namespace is None and self.descriptor.namespaced:
            namespace = namespace_of(obj)
        return self._namespace(namespace)

    async def _send(self, request: Request, timeout: float | None) -> HttpResponse:
        return await self._session.send(request, timeout=timeout)

    async def _call(self, request: Request, timeout: float | None) -> T:
        return await self._session.request(request, self._decoder, timeout=timeout)

    async def _read(self, request: Request, decoder: AnyDecoder[R], timeout: float | None) -> R:
        """A GET; a metadata-only one is sent again as plain JSON if the server refuses
        the PartialObjectMetadata Accept header (406): full objects decode into the
        metadata models too, keeping only their metadata."""
        if self._partial_refused:
            request = dataclasses.replace(request, headers={"Accept": JSON})
        try:
            return await self._session.request(request, decoder, timeout=timeout)
        except ApiError as exc:
            if exc.code != 406 or self._partial_refused or not is_metadata_only(self.descriptor):
                raise
            self._partial_refused = True
            plain = dataclasses.replace(request, headers={"Accept": JSON})
            return await self._session.request(plain, decoder, timeout=timeout)

    def _metadata(self) -> ResourceApi[PartialObjectMetadata, PartialObjectMetadataList]:
        """The same resource read as metadata only (``metadata_only=True``)."""
        api = self._metadata_api
        if api is None:
            api = self._metadata_api = ResourceApi(self._client,
                                                   metadata_descriptor(self.descriptor))
        return api

    async def _call_object_or_status(
        self, request: Request, decoder: AnyDecoder[R], timeout: float | None
    ) -> R | Status:
        body = (await self._send(request, timeout)).body
        if answer_kind(body, request) == "Status":
            return decode(_STATUS_DECODER, body, request)
        return decode(decoder, body, request)

    async def _replace_at(
        self,
        name: str,
        obj: T | Mapping[str, Any],
        namespace: str | None,
        subresource: str | None,
        params: WriteParams,
        timeout: float | None,
    ) -> T:
        ns = self._object_namespace(obj, namespace)
        body = encode_object(self.descriptor, obj, name=name, namespace=ns)
        request = self._requests.replace(name, ns, body, params, subresource=subresource)
        return await self._call(request, timeout)

    async def _patch_at(
        self,
        name: str,
        patch: object,
        namespace: str | None,
        subresource: str | None,
        params: PatchParams,
        timeout: float | None,
    ) -> T:
        ns = (self._object_namespace(patch, namespace)
              if params.patch_type is PatchType.APPLY else self._namespace(namespace))
        body = encode_patch(self.descriptor, patch, params.patch_type, name=name, namespace=ns)
        request = self._requests.patch(name, ns, body, params, subresource=subresource)
        return await self._call(request, timeout)

    # ----------------------------------------------------------- reads

    @overload
    async def get(
        self, name: str, *, namespace: str | None = ..., resource_version: str | None = ...,
        metadata_only: Literal[False] = ..., timeout: float | None = ...,
    ) -> T: ...

    @overload
    async def get(
        self, name: str, *, namespace: str | None = ..., resource_version: str | None = ...,
        metadata_only: Literal[True], timeout: float | None = ...,
    ) -> PartialObjectMetadata: ...

    @overload
    async def get(
        self, name: str, *, namespace: str | None = ..., resource_version: str | None = ...,
        metadata_only: bool, timeout: float | None = ...,
    ) -> T | PartialObjectMetadata: ...

    async def get(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        metadata_only: bool = False,
        timeout: float | None = None,
    ) -> T | PartialObjectMetadata:
        """``GET .../{plural}/{name}``: read one object.

        ``metadata_only=True`` reads it as a
        :class:`~kubeasync.models.PartialObjectMetadata` (kind, apiVersion, metadata).
        """
        if _metadata_only(metadata_only):
            return await self._metadata().get(name, namespace=namespace,
                                              resource_version=resource_version,
                                              timeout=timeout)
        request = self._requests.get(
            name, self._namespace(namespace),
            _GET if resource_version is None else GetParams(resource_version),
        )
        return await self._read(request, self._decoder, timeout)

    @overload
    async def list(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ..., limit: int | None = ...,
        continue_: str | None = ..., resource_version: str | None = ...,
        resource_version_match: str | None = ..., metadata_only: Literal[False] = ...,
        timeout: float | None = ...,
    ) -> L: ...

    @overload
    async def list(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ..., limit: int | None = ...,
        continue_: str | None = ..., resource_version: str | None = ...,
        resource_version_match: str | None = ..., metadata_only: Literal[True],
        timeout: float | None = ...,
    ) -> PartialObjectMetadataList: ...

    @overload
    async def list(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ..., limit: int | None = ...,
        continue_: str | None = ..., resource_version: str | None = ...,
        resource_version_match: str | None = ..., metadata_only: bool,
        timeout: float | None = ...,
    ) -> L | PartialObjectMetadataList: ...

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
        metadata_only: bool = False,
        timeout: float | None = None,
    ) -> L | PartialObjectMetadataList:
        """``GET .../{plural}``: one page of objects (all of them unless ``limit`` is given).

        Selectors take the Kubernetes string syntax or a mapping (see
        :mod:`kubeasync.selectors`). The answer's ``metadata.continue_`` is the token for
        the next page, and ``metadata.resource_version`` the list's resourceVersion.
        ``metadata_only=True`` asks for a
        :class:`~kubeasync.models.PartialObjectMetadataList` (see ``docs/performance.md``).
        """
        if _metadata_only(metadata_only):
            return await self._metadata().list(
                namespace=namespace, all_namespaces=all_namespaces,
                label_selector=label_selector, field_selector=field_selector, limit=limit,
                continue_=continue_, resource_version=resource_version,
                resource_version_match=resource_version_match, timeout=timeout,
            )
        params = ListParams(label_selector, field_selector, limit, continue_,
                            resource_version, resource_version_match)
        request = self._requests.list(self._collection_namespace(namespace, all_namespaces),
                                      params)
        return await self._read(request, self._list_decoder, timeout)

    @overload
    def iterate(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ..., page_size: int = ...,
        metadata_only: Literal[False] = ..., timeout: float | None = ...,
    ) -> AsyncIterator[T]: ...

    @overload
    def iterate(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ..., page_size: int = ...,
        metadata_only: Literal[True], timeout: float | None = ...,
    ) -> AsyncIterator[PartialObjectMetadata]: ...

    @overload
    def iterate(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ..., page_size: int = ...,
        metadata_only: bool, timeout: float | None = ...,
    ) -> AsyncIterator[T] | AsyncIterator[PartialObjectMetadata]: ...

    def iterate(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        page_size: int = 500,
        metadata_only: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[T] | AsyncIterator[PartialObjectMetadata]:
        """Every matching object, fetched ``page_size`` at a time by following continue tokens.

        If a continue token expires between pages (410 Gone, as when the list takes longer
        than etcd's compaction window), it falls back to one full list, as client-go's
        pager does, and yields only the objects it has not yielded yet.
        ``metadata_only=True`` yields :class:`~kubeasync.models.PartialObjectMetadata`.
        """
        if _metadata_only(metadata_only):
            return self._metadata().iterate(
                namespace=namespace, all_namespaces=all_namespaces,
                label_selector=label_selector, field_selector=field_selector,
                page_size=page_size, timeout=timeout,
            )
        # Checked here, before the first iteration, as a call with a bad argument should.
        namespace_ = self._collection_namespace(namespace, all_namespaces)
        params = ListParams(label_selector, field_selector, limit=page_size)
        return self._iterate(namespace_, params, timeout)

    async def _iterate(
        self, namespace_: str | None, params: ListParams, timeout: float | None
    ) -> AsyncIterator[T]:
        key = self._access.key
        seen: set[tuple[str, str]] = set()
        tokens: set[str] = set()
        continue_: str | None = None
        while True:
            request = self._requests.list(namespace_, params.page(continue_))
            try:
                page = await self._read(request, self._list_decoder, timeout)
            except Gone:
                if continue_ is None:
                    raise
                full = self._requests.list(
                    namespace_, ListParams(params.label_selector, params.field_selector)
                )
                page = await self._read(full, self._list_decoder, timeout)
                for item in self._access.list_parts(page)[0]:
                    if key(item) not in seen:
                        yield item
                return
            items, token, _ = self._access.list_parts(page)
            check_continue(token, tokens, request)  # a token handed back again would loop
            for item in items:
                seen.add(key(item))
                yield item
            if not token:
                return
            tokens.add(token)
            continue_ = token

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
        ns = self._object_namespace(obj, namespace)
        body = encode_object(self.descriptor, obj, namespace=ns, require_name=True)
        request = self._requests.create(ns, body, WriteParams(dry_run, field_manager))
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
        set, the server answers 409 :class:`~kubeasync.Conflict` if it changed since.

        The namespace comes from ``namespace=``, else the object's, else the default."""
        return await self._replace_at(name, obj, namespace, None,
                                      WriteParams(dry_run, field_manager), timeout)

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
        return await self._patch_at(name, patch, namespace, None,
                                    PatchParams(PatchType.coerce(patch_type), field_manager, force, dry_run),
                                    timeout)

    async def delete(
        self,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: PropagationPolicy | str | None = None,
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
        params = DeleteParams(grace_period_seconds, propagation_policy, preconditions, dry_run)
        request = self._requests.delete(name, self._namespace(namespace), params)
        return await self._call_object_or_status(request, self._decoder, timeout)

    async def delete_collection(
        self,
        *,
        namespace: str | None = None,
        label_selector: object = None,
        field_selector: object = None,
        grace_period_seconds: int | None = None,
        propagation_policy: PropagationPolicy | str | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> L | Status:
        """``DELETE .../{plural}`` with selectors: delete every matching object.

        Returns the list of deleted objects (or a ``Status``, if the server answers one).

        Resources the server deletes no collection of (Services before Kubernetes 1.23:
        the server answers 405 MethodNotAllowed; resources whose verbs lack
        ``deletecollection``) are handled here instead: kubeasync lists the matches and
        deletes them one by one, at most 8 at a time, and returns the list of what it
        deleted (objects already gone are skipped). A 405 is remembered: this client then
        goes straight to the list.
        """
        ns = self._namespace(namespace)
        selectors = ListParams(label_selector, field_selector)
        # Built before anything is deleted, so that a bad option raises first.
        params = DeleteParams(grace_period_seconds, propagation_policy, None, dry_run)
        if self.descriptor.supports("deletecollection") and not self._collection_delete_refused:
            request = self._requests.delete_collection(ns, selectors, params)
            try:
                return await self._call_object_or_status(request, self._list_decoder, timeout)
            except MethodNotAllowed:
                self._collection_delete_refused = True
        return await self._delete_each(ns, selectors, params, timeout)

    async def _delete_each(
        self, namespace: str | None, selectors: ListParams, params: DeleteParams,
        timeout: float | None,
    ) -> L:
        listing = self._requests.list(namespace, selectors)
        page = await self._session.request(listing, self._list_decoder, timeout=timeout)
        matches = self._access.list_parts(page)[0]

        async def delete_one(item: T) -> T | None:
            item_namespace, item_name = self._access.key(item)
            request = self._requests.delete(
                item_name, item_namespace if self.descriptor.namespaced else None, params
            )
            try:
                answer = await self._call_object_or_status(request, self._decoder, timeout)
            except NotFound:
                return None
            return item if isinstance(answer, Status) else answer

        results = await _bounded_gather(
            [delete_one(item) for item in matches], _FALLBACK_DELETE_CONCURRENCY
        )
        return self._make_list([item for item in results if item is not None])

    def _make_list(self, items: builtins.list[T]) -> L:
        envelope = {
            "kind": self.descriptor.list_kind,
            "apiVersion": self.descriptor.api_version,
            "metadata": {},
            "items": items,
        }
        return decode(self._list_decoder, msgspec.json.encode(envelope))

    # ----------------------------------------------------------- watches

    @overload
    def watch(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ...,
        resource_version: str | None = ..., send_initial_events: bool | None = ...,
        bookmarks: bool = ..., timeout_seconds: int = ..., idle_timeout: float | None = ...,
        page_size: int = ..., backoff: Backoff | None = ..., max_line_bytes: int = ...,
        transform: Callable[[T], T] | None = ..., metadata_only: Literal[False] = ...,
    ) -> Watcher[T]: ...

    @overload
    def watch(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ...,
        resource_version: str | None = ..., send_initial_events: bool | None = ...,
        bookmarks: bool = ..., timeout_seconds: int = ..., idle_timeout: float | None = ...,
        page_size: int = ..., backoff: Backoff | None = ..., max_line_bytes: int = ...,
        transform: Callable[[PartialObjectMetadata], PartialObjectMetadata] | None = ...,
        metadata_only: Literal[True],
    ) -> Watcher[PartialObjectMetadata]: ...

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
        transform: Callable[[Any], Any] | None = None,
        metadata_only: bool = False,
    ) -> Watcher[T] | Watcher[PartialObjectMetadata]:
        """A resilient watch: the current objects (as ADDED), then every change.

        ``async for event in api.watch(...)`` survives disconnects, stalls and expired
        resource versions without missing or repeating a change; see ``docs/watching.md``
        and :mod:`kubeasync.runtime.watcher` for its state machine.

        Args:
            resource_version: resume from this checkpoint (a saved
                ``watcher.resource_version``) instead of listing the current state first.
            send_initial_events: ``None`` (auto): get the initial state from a
                ``sendInitialEvents`` watch where the server supports it, else by a
                paginated list (a 400/422 answer is remembered for the client);
                ``True``: always stream it; ``False``: always list.
            bookmarks: also yield BOOKMARK events (they always advance the checkpoint).
            timeout_seconds: each watch request asks the server to end it after a random
                time in ``[timeout_seconds, 2 * timeout_seconds)``; the watcher then
                continues where it was.
            idle_timeout: seconds without a byte after which the connection is dropped as
                stalled and the watch resumed (default: the request's timeout + 30 s).
            page_size: objects per page of the initial list.
            backoff: the :class:`~kubeasync.Backoff` after failures (0.8 s -> 30 s).
            max_line_bytes: the largest event accepted (default 32 MiB).
            transform: applied to every object before it is recorded and yielded, e.g.
                :func:`~kubeasync.drop_managed_fields` to save memory.
            metadata_only: watch :class:`~kubeasync.models.PartialObjectMetadata`
                instead of whole objects (see ``docs/performance.md``).
        """
        if _metadata_only(metadata_only):
            return self._metadata().watch(
                namespace=namespace, all_namespaces=all_namespaces,
                label_selector=label_selector, field_selector=field_selector,
                resource_version=resource_version, send_initial_events=send_initial_events,
                bookmarks=bookmarks, timeout_seconds=timeout_seconds,
                idle_timeout=idle_timeout, page_size=page_size, backoff=backoff,
                max_line_bytes=max_line_bytes, transform=transform,
            )
        config = WatcherConfig(label_selector, field_selector, send_initial_events, bookmarks,
                               timeout_seconds, idle_timeout, page_size,
                               backoff if backoff is not None else Backoff(), max_line_bytes,
                               transform)
        return Watcher(self._session, self.descriptor,
                       self._collection_namespace(namespace, all_namespaces), config,
                       resource_version=resource_version, features=self._client.features)

    @overload
    def informer(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ...,
        transform: Callable[[T], T] | None = ...,
        send_initial_events: bool | None = ..., timeout_seconds: int = ...,
        idle_timeout: float | None = ..., page_size: int = ..., backoff: Backoff | None = ...,
        max_line_bytes: int = ...,
        metadata_only: Literal[False] = ...,
    ) -> Informer[T]: ...

    @overload
    def informer(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ...,
        transform: Callable[[PartialObjectMetadata], PartialObjectMetadata] | None = ...,
        send_initial_events: bool | None = ..., timeout_seconds: int = ...,
        idle_timeout: float | None = ..., page_size: int = ..., backoff: Backoff | None = ...,
        max_line_bytes: int = ...,
        metadata_only: Literal[True],
    ) -> Informer[PartialObjectMetadata]: ...

    def informer(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        transform: Callable[[Any], Any] | None = None,
        send_initial_events: bool | None = None,
        timeout_seconds: int = 300,
        idle_timeout: float | None = None,
        page_size: int = 500,
        backoff: Backoff | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        metadata_only: bool = False,
    ) -> Informer[T] | Informer[PartialObjectMetadata]:
        """A shared local cache of the collection, kept current by one resilient watch.

        The same arguments on the same client give the same :class:`~kubeasync.Informer`
        (selectors compare in their string form, ``transform`` by identity). Start it
        with ``async with``, then ``await informer.wait_synced()``, ``get()``, ``list()``,
        ``add_index()``/``by_index()`` and ``async for change in informer.changes()``;
        see ``docs/informer.md``. ``transform`` is applied to every object before it is
        stored (e.g. :func:`~kubeasync.drop_managed_fields`); the other options are
        :meth:`watch`'s. ``metadata_only=True`` caches
        :class:`~kubeasync.models.PartialObjectMetadata` (an informer of its own).
        """
        if _metadata_only(metadata_only):
            return self._metadata().informer(
                namespace=namespace, all_namespaces=all_namespaces,
                label_selector=label_selector, field_selector=field_selector,
                transform=transform, send_initial_events=send_initial_events,
                timeout_seconds=timeout_seconds, idle_timeout=idle_timeout,
                page_size=page_size, backoff=backoff, max_line_bytes=max_line_bytes,
            )
        config = WatcherConfig(label_selector, field_selector, send_initial_events, False,
                               timeout_seconds, idle_timeout, page_size,
                               backoff if backoff is not None else Backoff(), max_line_bytes,
                               transform)
        return self._client.informers.get(
            self._session, self.descriptor,
            self._collection_namespace(namespace, all_namespaces), config,
            self._client.features,
        )

    @overload
    async def wait_for(
        self, name: str, condition: Deleted, *, namespace: str | None = None,
        timeout: float | None = None,
    ) -> T | None: ...

    @overload
    async def wait_for(
        self, name: str, condition: Callable[[T], bool], *, namespace: str | None = None,
        timeout: float | None = None,
    ) -> T: ...

    async def wait_for(
        self,
        name: str,
        condition: Callable[[T], bool] | Deleted,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> T | None:
        """Wait until the object satisfies ``condition`` and return it (that state).

        ``condition`` is a predicate on the object, one of :mod:`kubeasync.conditions`
        (``pod_ready``, ``job_finished``, ``deployment_available``, ...), or
        ``kubeasync.conditions.deleted``, which waits until the object is gone and
        returns its last state (``None`` if it did not exist). One GET, then one watch of
        this object from the GET's resourceVersion: no change is missed, nothing polls.

        Raises :class:`~kubeasync.NotFound` if the object does not exist or is deleted
        meanwhile, and :class:`~kubeasync.WaitTimeout` (a ``TimeoutError``, naming the
        last state seen) when ``timeout`` seconds pass first.
        """
        return await _wait_for(self, name, condition, namespace=namespace, timeout=timeout)

    @overload
    def watch_stream(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ...,
        resource_version: str | None = ..., send_initial_events: bool = ...,
        bookmarks: bool = ..., timeout_seconds: int | None = ...,
        idle_timeout: float | None = ..., max_line_bytes: int = ...,
        metadata_only: Literal[False] = ...,
    ) -> WatchStream[T]: ...

    @overload
    def watch_stream(
        self, *, namespace: str | None = ..., all_namespaces: bool = ...,
        label_selector: object = ..., field_selector: object = ...,
        resource_version: str | None = ..., send_initial_events: bool = ...,
        bookmarks: bool = ..., timeout_seconds: int | None = ...,
        idle_timeout: float | None = ..., max_line_bytes: int = ...,
        metadata_only: Literal[True],
    ) -> WatchStream[PartialObjectMetadata]: ...

    def watch_stream(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        field_selector: object = None,
        resource_version: str | None = None,
        send_initial_events: bool = False,
        bookmarks: bool = False,
        timeout_seconds: int | None = 300,
        idle_timeout: float | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        metadata_only: bool = False,
    ) -> WatchStream[T] | WatchStream[PartialObjectMetadata]:
        """One raw watch request: events until the server closes the stream, nothing hidden.

        No list, no retries, no relist: ``ERROR`` events (such as 410 Expired) are yielded
        as :class:`~kubeasync.ErrorEvent`, and failures raise. The arguments mean what
        they mean for :meth:`watch` (``bookmarks=True`` asks the server for BOOKMARK
        events; ``timeout_seconds=None`` leaves the duration to the server;
        ``metadata_only=True`` streams :class:`~kubeasync.models.PartialObjectMetadata`).
        """
        if _metadata_only(metadata_only):
            return self._metadata().watch_stream(
                namespace=namespace, all_namespaces=all_namespaces,
                label_selector=label_selector, field_selector=field_selector,
                resource_version=resource_version, send_initial_events=send_initial_events,
                bookmarks=bookmarks, timeout_seconds=timeout_seconds,
                idle_timeout=idle_timeout, max_line_bytes=max_line_bytes,
            )
        params = WatchParams(label_selector, field_selector, resource_version,
                             timeout_seconds=timeout_seconds, bookmarks=bookmarks,
                             send_initial_events=send_initial_events)
        request = self._requests.watch(self._collection_namespace(namespace, all_namespaces),
                                       params)
        return WatchStream(self._session, request, self.descriptor.model,
                           idle_timeout=idle_timeout, max_line_bytes=max_line_bytes)


def _metadata_only(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"metadata_only must be a bool, got {value!r}")
    return value


async def _bounded_gather(coros: Iterable[Awaitable[R]], limit: int) -> builtins.list[R]:
    """Run awaitables at most ``limit`` at a time; on the first failure cancel the rest."""
    semaphore = asyncio.Semaphore(limit)

    async def run(aw: Awaitable[R]) -> R:
        async with semaphore:
            return await aw

    tasks = [asyncio.ensure_future(run(c)) for c in coros]
    try:
        return builtins.list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
