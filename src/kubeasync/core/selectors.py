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

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DoesNotExist",
    "Equal",
    "Exists",
    "In",
    "LabelRequirement",
    "LabelSelector",
    "NotEqual",
    "NotIn",
    "Selector",
    "SelectorSyntaxError",
    "label_selector_from_api",
    "parse_label_selector",
    "parse_requirements",
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
# The one label-selector grammar: the client's own checks (the informer's local
# ``list(label_selector=)``) and the embedded API server both parse with it, and its
# errors are the API server's words, which the embedded server sends back as they are.

_SYMBOLS = frozenset({"(", ")", ",", "=", "==", "!=", "!", "<", ">"})
_SPECIAL = frozenset("=!(),<>")


class SelectorSyntaxError(ValueError):
    """A label selector that does not parse; the message is the API server's."""


@dataclass(frozen=True)
class LabelRequirement:
    """One parsed requirement: ``op`` is one of ``exists``, ``!exists``, ``=``, ``!=``,
    ``in``, ``notin``, ``gt``, ``lt``."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        op = self.op
        if op == "exists":
            return present
        if op == "!exists":
            return not present
        if op in ("=", "in"):
            return present and value in self.values
        if op in ("!=", "notin"):
            return not present or value not in self.values
        try:  # gt / lt: the label must hold an integer
            number = int(value) if value is not None else None
        except ValueError:
            return False
        if number is None:
            return False
        bound = int(self.values[0])
        return number > bound if op == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: ``selector.matches(labels)`` answers as the API server
    would. Build it with :func:`parse_label_selector` or :func:`label_selector_from_api`."""

    text: str
    requirements: tuple[LabelRequirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels (``None``: no labels) is selected."""
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),<>":
            tokens.append(ch)
            i += 1
        elif ch in "=!":
            two = text[i : i + 2]
            tokens.append(two if two in ("==", "!=") else ch)
            i += len(tokens[-1])
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


def _identifier(token: str | None) -> bool:
    return token is not None and token not in _SYMBOLS


def _unparsable(found: str | None, expected: str) -> SelectorSyntaxError:
    return SelectorSyntaxError(
        f"unable to parse requirement: found '{found or ''}', expected: {expected}"
    )


def parse_requirements(text: str) -> tuple[LabelRequirement, ...]:
    """Parse a label selector string as the API server does; an empty one selects all.

    The whole syntax: ``a=b``, ``a==b``, ``a!=b`` (true when ``a`` is absent too),
    ``a in (x,y)``, ``a notin (x,y)`` (true when absent too), ``a`` (present), ``!a``
    (absent), ``a>1`` and ``a<1`` (integer values); ``,`` is "and". Raises
    :class:`SelectorSyntaxError` with the server's message.
    """
    tokens = _tokens(text)
    pos = 0
    requirements: list[LabelRequirement] = []

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    while pos < len(tokens):
        negate = peek() == "!"
        if negate:
            pos += 1
        key = peek()
        if key is None or not _identifier(key):
            raise _unparsable(key, "identifier")
        pos += 1
        nxt = peek()
        if nxt is None or nxt == ",":
            requirements.append(LabelRequirement(key, "!exists" if negate else "exists"))
        elif negate:
            raise _unparsable(nxt, "',' or 'end of string'")
        elif nxt in ("=", "==", "!="):
            pos += 1
            value = peek()
            if value is not None and _identifier(value):
                pos += 1
            else:
                value = ""  # `a=` selects the empty value
            requirements.append(LabelRequirement(key, "!=" if nxt == "!=" else "=", (value,)))
        elif nxt in ("in", "notin"):
            pos += 1
            if peek() != "(":
                raise SelectorSyntaxError(
                    f"unable to parse requirement: found '{peek() or ''}' expected: '('"
                )
            pos += 1
            values: list[str] = []
            while True:
                token = peek()
                if token == ")":
                    pos += 1
                    break
                if token == ",":
                    pos += 1
                    continue
                if token is None or not _identifier(token):
                    raise _unparsable(token, "',', ')' or identifier")
                values.append(token)
                pos += 1
            if not values:
                raise SelectorSyntaxError(
                    f"unable to parse requirement: values[0][{key}]: Invalid value: \"\":"
                    " for 'in', 'notin' operators, values set can't be empty"
                )
            requirements.append(LabelRequirement(key, nxt, tuple(values)))
        elif nxt in ("<", ">"):
            pos += 1
            value = peek()
            if value is None or not _identifier(value) or not value.lstrip("-").isdigit():
                raise SelectorSyntaxError(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be"
                    f" an integer, got {value!r}"
                )
            pos += 1
            requirements.append(LabelRequirement(key, "gt" if nxt == ">" else "lt", (value,)))
        else:
            raise _unparsable(nxt, "in, notin, =, ==, !=, gt, lt")
        if peek() == ",":
            pos += 1
            if peek() is None:
                raise _unparsable(None, "identifier")
        elif peek() is not None:
            raise _unparsable(peek(), "',' or 'end of string'")
    return tuple(requirements)


def parse_label_selector(selector: object, argument: str = "label_selector") -> LabelSelector:
    """Parse a label selector given as a str or a mapping (as ``list()`` takes them); a
    syntax error raises ``ValueError`` naming ``argument`` (see :func:`parse_requirements`
    for the syntax)."""
    text = render_label_selector(selector, argument)
    try:
        return LabelSelector(text, parse_requirements(text))
    except SelectorSyntaxError as exc:
        raise ValueError(f"{argument}: cannot parse {text!r}: {exc}") from None


_API_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists",
                  "DoesNotExist": "!exists"}


def label_selector_from_api(selector: object, argument: str = "selector") -> LabelSelector:
    """A ``metav1.LabelSelector`` (``matchLabels`` and ``matchExpressions``, a dict or a
    model) as a :class:`LabelSelector`. ``None`` selects nothing, an empty one everything,
    as for the selectors of PodDisruptionBudgets and workloads."""
    if selector is None:
        return LabelSelector("<none>", (LabelRequirement("", "in", ()),))
    if not isinstance(selector, Mapping):
        to_builtins = getattr(selector, "__struct_fields__", None)
        if to_builtins is None:
            raise ValueError(f"{argument} must be a LabelSelector, got {selector!r}")
        import msgspec

        selector = msgspec.to_builtins(selector)
        assert isinstance(selector, Mapping)
    requirements = [LabelRequirement(str(k), "=", (str(v),))
                    for k, v in (selector.get("matchLabels") or {}).items()]
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        op = _API_OPERATORS.get(expression.get("operator"))
        if op is None:
            raise ValueError(
                f"{argument}.matchExpressions[{index}].operator must be one of"
                f" {', '.join(_API_OPERATORS)}, got {expression.get('operator')!r}"
            )
        values = tuple(expression.get("values") or ())
        requirements.append(LabelRequirement(str(expression.get("key")), op, values))
    text = ",".join(_render_requirement(r) for r in requirements)
    return LabelSelector(text, tuple(requirements))


def _render_requirement(requirement: LabelRequirement) -> str:
    key, op, values = requirement.key, requirement.op, requirement.values
    if op == "exists":
        return key
    if op == "!exists":
        return f"!{key}"
    if op in ("in", "notin"):
        return f"{key} {op} ({','.join(values)})"
    return f"{key}{op}{values[0]}"
