"""Named conditions for :meth:`~kubeasync.ResourceApi.wait_for`.

    from kubeasync import conditions

    pod = await kube.pods.wait_for("web-0", conditions.pod_ready, timeout=60)
    job = await kube.jobs.wait_for("nightly", conditions.job_finished, timeout=600)
    await kube.pods.wait_for("web-0", conditions.deleted, timeout=60)

A condition is a predicate on the object (a :class:`Condition` is one with a name, for
messages); any ``lambda obj: ...`` works as well. They read model instances and plain dicts
alike. :data:`deleted` is the one that is not a predicate: it waits for the object to be
gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # the models are imported only by what uses them
    from ..models.apiextensions_v1 import CustomResourceDefinition
    from ..models.apps_v1 import Deployment
    from ..models.batch_v1 import Job
    from ..models.core_v1 import Pod

__all__ = [
    "Condition",
    "Deleted",
    "condition_status",
    "crd_established",
    "deleted",
    "deployment_available",
    "describe",
    "job_complete",
    "job_failed",
    "job_finished",
    "pod_ready",
    "pod_running",
]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Condition(Generic[T_contra]):
    """A named predicate: ``Condition("Ready", lambda pod: ...)``."""

    __slots__ = ("name", "test")

    def __init__(self, name: str, test: Callable[[T_contra], bool]) -> None:
        self.name = name
        self.test = test

    def __call__(self, obj: T_contra) -> bool:
        return bool(self.test(obj))

    def __repr__(self) -> str:
        return f"<Condition {self.name}>"


class Deleted:
    """The condition "the object is gone" (use the :data:`deleted` instance)."""

    __slots__ = ()
    name = "deleted"

    def __repr__(self) -> str:
        return "<Condition deleted>"


deleted = Deleted()
"""Wait until the object is deleted (``wait_for`` then returns its last state, or ``None``
when it was already gone)."""


def _get(obj: Any, *path: str) -> Any:
    """A field of a model instance (snake_case attributes) or a dict (wire names)."""
    for step in path:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            obj = obj.get(_WIRE.get(step, step))
        else:
            obj = getattr(obj, step, None)
    return obj


_WIRE = {"observed_generation": "observedGeneration", "deletion_timestamp": "deletionTimestamp",
         "resource_version": "resourceVersion"}


def condition_status(obj: Any, type_: str) -> str | None:
    """The ``status`` (``"True"``, ``"False"``, ``"Unknown"``) of the condition of type
    ``type_`` in ``status.conditions``, or ``None`` when there is none."""
    for condition in _get(obj, "status", "conditions") or []:
        if _get(condition, "type") == type_:
            status = _get(condition, "status")
            return status if isinstance(status, str) else None
    return None


def _pod_running(pod: Pod) -> bool:
    return bool(_get(pod, "status", "phase") == "Running")


def _pod_ready(pod: Pod) -> bool:
    return condition_status(pod, "Ready") == "True"


def _job_complete(job: Job) -> bool:
    return condition_status(job, "Complete") == "True"


def _job_failed(job: Job) -> bool:
    return condition_status(job, "Failed") == "True"


def _job_finished(job: Job) -> bool:
    return _job_complete(job) or _job_failed(job)


def _deployment_available(deployment: Deployment) -> bool:
    # A status about an older spec says nothing about this one.
    generation = _get(deployment, "metadata", "generation")
    observed = _get(deployment, "status", "observed_generation")
    if generation is not None and (observed is None or observed < generation):
        return False
    return condition_status(deployment, "Available") == "True"


def _crd_established(crd: CustomResourceDefinition) -> bool:
    return condition_status(crd, "Established") == "True"


pod_running: Condition[Pod] = Condition("pod Running", _pod_running)
"""``status.phase`` is ``Running``."""
pod_ready: Condition[Pod] = Condition("pod Ready", _pod_ready)
"""The ``Ready`` condition is ``True``."""
job_complete: Condition[Job] = Condition("Job Complete", _job_complete)
"""The ``Complete`` condition is ``True``."""
job_failed: Condition[Job] = Condition("Job Failed", _job_failed)
"""The ``Failed`` condition is ``True``."""
job_finished: Condition[Job] = Condition("Job Complete or Failed", _job_finished)
"""``Complete`` or ``Failed`` is ``True`` (look at which one on the returned Job)."""
deployment_available: Condition[Deployment] = Condition(
    "Deployment Available", _deployment_available)
"""``Available`` is ``True`` in a status whose ``observedGeneration`` has caught up with
``metadata.generation`` (so it is about the current spec)."""
crd_established: Condition[CustomResourceDefinition] = Condition(
    "CRD Established", _crd_established)
"""The ``Established`` condition is ``True``: the API server serves the new resource."""


def describe(obj: Any) -> str:
    """A short account of an object's state, for messages: resourceVersion, generation,
    phase and conditions."""
    parts = [f"resourceVersion={_get(obj, 'metadata', 'resource_version')}"]
    generation = _get(obj, "metadata", "generation")
    if generation is not None:
        observed = _get(obj, "status", "observed_generation")
        parts.append(f"generation={generation} observedGeneration={observed}")
    if _get(obj, "metadata", "deletion_timestamp"):
        parts.append("being deleted")
    phase = _get(obj, "status", "phase")
    if phase:
        parts.append(f"phase={phase}")
    conditions = []
    for condition in _get(obj, "status", "conditions") or []:
        text = f"{_get(condition, 'type')}={_get(condition, 'status')}"
        reason = _get(condition, "reason")
        conditions.append(f"{text} ({reason})" if reason else text)
    if conditions:
        parts.append("conditions: " + ", ".join(conditions))
    return "; ".join(parts)
