"""Label and field selector helpers (``In``, ``NotIn``, ``Exists``, ...): the public home of
:mod:`kubeasync.core.selectors`."""

from .core.selectors import (
    DoesNotExist,
    Equal,
    Exists,
    In,
    LabelSelector,
    NotEqual,
    NotIn,
    parse_label_selector,
    render_field_selector,
    render_label_selector,
)

__all__ = [
    "DoesNotExist",
    "Equal",
    "Exists",
    "In",
    "LabelSelector",
    "NotEqual",
    "NotIn",
    "parse_label_selector",
    "render_field_selector",
    "render_label_selector",
]
