"""Capabilities: what a resource has beyond the core verbs, one module per subresource.

Each module describes its subresource (a :class:`~kubeasync.core.descriptor.Capability`:
the wire, what is sent and what comes back) and defines one mixin class with its methods;
the :func:`capability` decorator registers it. The API class of a descriptor has exactly
the mixins of its subresources (:func:`api_class`), so ``kube.config_maps`` has no
``get_status`` at run time, and the declared classes of the catalogue say the same to mypy.

Adding a subresource is one module here (and its import below) plus the name in the
subresources of the kinds that have it.
"""

from . import attach, eviction, exec, log, portforward, scale, status
from ._registry import CAPABILITIES, api_class, capability, combination
from .attach import AttachApi
from .eviction import EvictionApi
from .exec import ExecApi
from .log import LogApi
from .portforward import PortForwardApi
from .scale import ScaleApi
from .status import StatusApi

__all__ = [
    "CAPABILITIES",
    "AttachApi",
    "EvictionApi",
    "ExecApi",
    "LogApi",
    "PortForwardApi",
    "ScaleApi",
    "StatusApi",
    "api_class",
    "attach",
    "capability",
    "combination",
    "eviction",
    "exec",
    "log",
    "portforward",
    "scale",
    "status",
]
