"""Which mixin class gives which subresource its methods, and the API class of a descriptor."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ...core.descriptor import Capability, ResourceDescriptor
from ..resource import ResourceApi

__all__ = ["CAPABILITIES", "api_class", "capability", "combination"]

C = TypeVar("C", bound=type[ResourceApi[Any, Any]])

CAPABILITIES: dict[str, Capability] = {}
"""Every capability the client knows, by subresource name."""

_MIXINS: dict[str, type[ResourceApi[Any, Any]]] = {}
_CLASSES: dict[frozenset[str], type[ResourceApi[Any, Any]]] = {frozenset(): ResourceApi}
_LOCK = threading.Lock()


def capability(description: Capability) -> Callable[[C], C]:
    """Register a mixin as the methods of one subresource (a class decorator)."""

    def register(mixin: C) -> C:
        name = description.subresource
        if name in _MIXINS:
            raise ValueError(f"the {name!r} capability is registered twice")
        for method in description.methods:
            if method not in vars(mixin):
                raise ValueError(f"{mixin.__name__} does not define {method!r}")
        mixin.capabilities = frozenset({name})
        CAPABILITIES[name] = description
        _MIXINS[name] = mixin
        _CLASSES[frozenset({name})] = mixin
        return mixin

    return register


def combination(cls: C) -> C:
    """Register a declared class of several capabilities (``class PodApi(LogApi[T, L],
    StatusApi[T, L], ...)``), so that descriptors with exactly those subresources get it:
    its static type and its runtime class are then the same."""
    names: frozenset[str] = frozenset().union(
        *(getattr(base, "capabilities", frozenset()) for base in cls.__mro__[1:])
    )
    cls.capabilities = names
    with _LOCK:
        existing = _CLASSES.get(names)
        if existing is not None and existing is not cls:
            raise ValueError(f"{cls.__name__} and {existing.__name__} have the same capabilities")
        _CLASSES[names] = cls
    return cls


def api_class(descriptor: ResourceDescriptor[Any, Any]) -> type[ResourceApi[Any, Any]]:
    """The API class whose methods are exactly the capabilities of ``descriptor``'s
    subresources (subresources without a capability module add nothing)."""
    names = frozenset(name for name in descriptor.subresources if name in _MIXINS)
    cls = _CLASSES.get(names)
    if cls is None:
        with _LOCK:
            cls = _CLASSES.get(names)
            if cls is None:
                bases = tuple(_MIXINS[name] for name in sorted(names))
                title = "".join(name.capitalize() for name in sorted(names))
                cls = type(f"{title}Api", bases, {"capabilities": names,
                                                  "__module__": __name__})
                _CLASSES[names] = cls
    return cls
