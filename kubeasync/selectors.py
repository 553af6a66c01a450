"""Label and field selectors: the Kubernetes string syntax, a mapping, or small helpers.

    label_selector="app=web,tier!=db"                      # passed through as is
    label_selector={"app": "web"}                           # app=web
    label_selector={"env": In("prod", "staging"),           # env in (prod,staging)
                    "canary": DoesNotExist(),               # !canary
                    "tier": NotEqual("db")}                 # tier!=db

Field selectors support only ``=``, ``==`` and ``!=`` on the server, so the mapping form
accepts plain values and :class:`NotEqual`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DoesNotExist",
    "Equal",
    "Exists",
    "In",
    "NotEqual",
    "NotIn",
    "Selector",
    "render_field_selector",
    "render_label_selector",
]

_FORBIDDEN_IN_VALUES = set(",()=! ")


class Requirement:
    """One selector requirement applied to a key."""

    def render(self, key: str) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Equal(Requirement):
    value: str

    def render(self, key: str) -> str:
        return f"{key}={_value(self.value)}"


@dataclass(frozen=True)
class NotEqual(Requirement):
    value: str

    def render(self, key: str) -> str:
        return f"{key}!={_value(self.value)}"


class In(Requirement):
    """``key in (v1,v2)``: the label has one of the values."""

    def __init__(self, *values: str) -> None:
        if not values:
            raise ValueError("In() needs at least one value")
        self.values = tuple(values)

    def render(self, key: str) -> str:
        return f"{key} in ({','.join(_value(v) for v in self.values)})"

    def __repr__(self) -> str:
        return f"In{self.values!r}"


class NotIn(In):
    """``key notin (v1,v2)``: the label is absent or has none of the values."""

    def render(self, key: str) -> str:
        return f"{key} notin ({','.join(_value(v) for v in self.values)})"

    def __repr__(self) -> str:
        return f"NotIn{self.values!r}"


@dataclass(frozen=True)
class Exists(Requirement):
    """``key``: the label is set (to any value)."""

    def render(self, key: str) -> str:
        return key


@dataclass(frozen=True)
class DoesNotExist(Requirement):
    """``!key``: the label is not set."""

    def render(self, key: str) -> str:
        return f"!{key}"


Selector = str | Mapping[str, "str | Requirement"]
"""What ``label_selector=`` and ``field_selector=`` accept."""


def _value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"selector value {value!r} must be a str, not {type(value).__name__}")
    bad = _FORBIDDEN_IN_VALUES.intersection(value)
    if bad:
        raise ValueError(f"selector value {value!r} may not contain {''.join(sorted(bad))!r}")
    return value


def _key(key: object, argument: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{argument}: every key must be a non-empty str, got {key!r}")
    bad = _FORBIDDEN_IN_VALUES.intersection(key)
    if bad:
        raise ValueError(f"{argument}: key {key!r} may not contain {''.join(sorted(bad))!r}")
    return key


def _render(selector: object, argument: str, allowed: tuple[type[Requirement], ...]) -> str:
    if isinstance(selector, str):
        return selector
    if not isinstance(selector, Mapping):
        raise ValueError(
            f"{argument} must be a str or a mapping of key to value, not {type(selector).__name__}"
        )
    parts = []
    for key, requirement in selector.items():
        key = _key(key, argument)
        if isinstance(requirement, str):
            requirement = Equal(requirement)
        if not isinstance(requirement, allowed):
            names = ", ".join(cls.__name__ for cls in allowed)
            raise ValueError(
                f"{argument}: the value for {key!r} must be a str or one of {names},"
                f" not {requirement!r}"
            )
        parts.append(requirement.render(key))
    return ",".join(parts)


def render_label_selector(selector: object, argument: str = "label_selector") -> str:
    """The query-string form of a label selector given as a str or a mapping."""
    return _render(selector, argument, (Equal, NotEqual, In, Exists, DoesNotExist))


def render_field_selector(selector: object, argument: str = "field_selector") -> str:
    """The query-string form of a field selector given as a str or a mapping."""
    return _render(selector, argument, (Equal, NotEqual))
