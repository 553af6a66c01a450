"""Label and field selectors: the Kubernetes string syntax, a mapping, or small helpers.

    label_selector="app=web,tier!=db"                      # passed through as is
    label_selector={"app": "web"}                           # app=web
    label_selector={"env": In("prod", "staging"),           # env in (prod,staging)
                    "canary": DoesNotExist(),               # !canary
                    "tier": NotEqual("db")}                 # tier!=db

Field selectors support only ``=``, ``==`` and ``!=`` on the server, so the mapping form
accepts plain values and :class:`NotEqual`.

:func:`parse_label_selector` evaluates a label selector locally, as the server does (the
informer's ``list(label_selector=...)`` uses it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "DoesNotExist",
    "Equal",
    "Exists",
    "In",
    "LabelSelector",
    "NotEqual",
    "NotIn",
    "Selector",
    "parse_label_selector",
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


# --------------------------------------------------------------------------- local matching

# The API server's lexer: these symbols, and identifiers made of anything else but spaces.
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")
_SYMBOLS = frozenset({"!=", "==", "=", "!", "(", ")", ",", "<", ">"})

_LabelTest = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: ``selector.matches(labels)`` answers as the API server
    would. Build it with :func:`parse_label_selector`."""

    text: str
    _tests: tuple[_LabelTest, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels (``None``: no labels) is selected."""
        present = labels or {}
        return all(test(present) for test in self._tests)


def parse_label_selector(selector: object, argument: str = "label_selector") -> LabelSelector:
    """Parse a label selector given as a str or a mapping (as ``list()`` takes them).

    The whole syntax of the server: ``a=b``, ``a==b``, ``a!=b`` (true when ``a`` is absent
    too), ``a in (x,y)``, ``a notin (x,y)`` (true when absent too), ``a`` (present),
    ``!a`` (absent), ``a>1`` and ``a<1`` (integer values); ``,`` is "and"; an empty
    selector selects everything. A syntax error raises ``ValueError`` naming ``argument``.
    """
    text = render_label_selector(selector, argument)
    tokens = _tokenize(text, argument)
    tests: list[_LabelTest] = []
    pos = 0

    def fail(expected: str) -> ValueError:
        found = tokens[pos] if pos < len(tokens) else "end of selector"
        return ValueError(f"{argument}: cannot parse {text!r}: expected {expected}, found {found!r}")

    def take_identifier(what: str) -> str:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] in _SYMBOLS:
            raise fail(what)
        pos += 1
        return tokens[pos - 1]

    while pos < len(tokens):
        if tokens[pos] == "!":
            pos += 1
            key = take_identifier("a label key after '!'")
            tests.append(_absent(key))
        else:
            key = take_identifier("a label key")
            op = tokens[pos] if pos < len(tokens) else ","
            if op == ",":
                tests.append(_present(key))
            elif op in ("=", "==", "!="):
                pos += 1
                value = ""  # `a=` selects the empty value
                if pos < len(tokens) and tokens[pos] not in _SYMBOLS:
                    value = tokens[pos]
                    pos += 1
                tests.append(_one_of(key, {value}, negate=op == "!="))
            elif op in ("in", "notin"):
                pos += 1
                if pos >= len(tokens) or tokens[pos] != "(":
                    raise fail(f"'(' after {op!r}")
                pos += 1
                values = {take_identifier("a value")}
                while pos < len(tokens) and tokens[pos] == ",":
                    pos += 1
                    values.add(take_identifier("a value"))
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise fail("',' or ')'")
                pos += 1
                tests.append(_one_of(key, values, negate=op == "notin"))
            elif op in ("<", ">"):
                pos += 1
                bound = take_identifier("an integer")
                try:
                    number = int(bound)
                except ValueError:
                    pos -= 1
                    raise fail(f"an integer after {op!r}") from None
                tests.append(_compare(key, number, greater=op == ">"))
            else:
                raise fail("'=', '==', '!=', 'in', 'notin', '<', '>' or ','")
        if pos < len(tokens):
            if tokens[pos] != ",":
                raise fail("','")
            pos += 1
            if pos == len(tokens):
                raise fail("a requirement after ','")
    return LabelSelector(text, tuple(tests))


def _tokenize(text: str, argument: str) -> list[str]:
    tokens = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - every character belongs to some token
            raise ValueError(f"{argument}: cannot parse {text!r} at position {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _present(key: str) -> _LabelTest:
    return lambda labels: key in labels


def _absent(key: str) -> _LabelTest:
    return lambda labels: key not in labels


def _one_of(key: str, values: set[str], *, negate: bool) -> _LabelTest:
    frozen = frozenset(values)
    if negate:
        return lambda labels: labels.get(key) not in frozen
    return lambda labels: key in labels and labels[key] in frozen


def _compare(key: str, bound: int, *, greater: bool) -> _LabelTest:
    def test(labels: Mapping[str, str]) -> bool:
        try:
            value = int(labels[key])
        except (KeyError, ValueError):
            return False
        return value > bound if greater else value < bound

    return test
