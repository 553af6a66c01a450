"""The ``eviction`` subresource: delete a pod the way a drain does, honouring its
PodDisruptionBudgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from ...core.codec import decode, decoder_for
from ...core.descriptor import Capability, ResourceDescriptor, Wire
from ...core.params import DeleteParams, PropagationPolicy
from ...core.request import JSON, Request, RequestBuilder
from ...models import Status
from ..resource import ResourceApi
from ._registry import capability

__all__ = ["EVICTION", "EvictionApi", "eviction_request"]

T = TypeVar("T")
L = TypeVar("L")

EVICTION = Capability(
    "eviction", Wire.JSON, request="policy/v1 Eviction (policy/v1beta1 where v1 is not served)",
    response="Status", methods=("evict",),
)

# Newest first: policy/v1 Eviction is served from Kubernetes 1.22; 1.20 takes v1beta1 only.
_EVICTION_VERSIONS = ("v1", "v1beta1")


def eviction_request(
    descriptor: ResourceDescriptor[Any, Any],
    name: str,
    namespace: str | None,
    options: DeleteParams,
    *,
    policy_version: str = "v1",
) -> Request:
    """``POST .../{name}/eviction`` with an Eviction of ``policy/{policy_version}`` (sans-IO)."""
    path = RequestBuilder(descriptor).object_path(name, namespace, "eviction")
    body: dict[str, object] = {
        "apiVersion": f"policy/{policy_version}",
        "kind": "Eviction",
        "metadata": {"name": name, **({"namespace": namespace} if namespace is not None else {})},
    }
    if options.body is not None:
        body["deleteOptions"] = msgspec.json.decode(options.body)
    # Repeating an eviction that went through could evict a second pod of the budget.
    return Request("POST", path, (), {"Accept": JSON, "Content-Type": JSON},
                   msgspec.json.encode(body), idempotent=False)


@capability(EVICTION)
class EvictionApi(ResourceApi[T, L]):
    """The API of a resource with an ``eviction`` subresource (pods)."""

    async def evict(
        self,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: PropagationPolicy | str | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> Status:
        """``POST .../pods/{name}/eviction``: delete the pod unless that would violate one
        of its PodDisruptionBudgets; then the server answers 429 and this raises
        :class:`~kubeasync.TooManyRequests` (try again later, as ``kubectl drain`` does).

        The Eviction is sent in the newest policy version the server serves (policy/v1,
        or policy/v1beta1 on servers before 1.22). Returns the server's ``Status``.
        """
        options = DeleteParams(grace_period_seconds, propagation_policy, preconditions, dry_run)
        served = await self._client.discovery.versions("policy")
        # A server that serves no policy group at all still evicts (the subresource is the
        # pod's): send the newest Eviction.
        version = next((v for v in _EVICTION_VERSIONS if v in served), _EVICTION_VERSIONS[0])
        request = eviction_request(self.descriptor, name, self._namespace(namespace), options,
                                   policy_version=version)
        response = await self._send(request, timeout)
        return decode(decoder_for(Status), response.body, request)
