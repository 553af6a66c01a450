"""Label and field selectors as the API server parses and applies them.

Label selectors: ``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` (exists), ``!key``
(does not exist), and ``>``/``<`` on integer values. Field selectors: ``=``, ``==`` and
``!=`` over the field labels each kind supports (see ``_kinds.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._status import StatusError, bad_request

_SPECIAL = set("=!(),<>")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        # gt / lt: the label must hold an integer
        try:
            number = int(value) if value is not None else None
        except ValueError:
            return False
        if number is None:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


LabelSelector = tuple[Requirement, ...]


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
            if two in ("==", "!="):
                tokens.append(two)
                i += 2
            else:
                tokens.append(ch)
                i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in ("(", ")", ",", "=", "==", "!=", "!", "<", ">")


def _error(found: str | None, expected: str) -> StatusError:
    return bad_request(f"unable to parse requirement: found '{found or ''}', expected: {expected}")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector string; an empty string selects everything."""
    tokens = _tokens(text)
    pos = 0
    requirements: list[Requirement] = []

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    while pos < len(tokens):
        negate = peek() == "!"
        if negate:
            pos += 1
        key = peek()
        if not _is_identifier(key):
            raise _error(key, "identifier")
        assert key is not None
        pos += 1
        nxt = peek()
        if nxt is None or nxt == ",":
            requirements.append(Requirement(key, "!exists" if negate else "exists"))
        elif negate:
            raise _error(nxt, "',' or 'end of string'")
        elif nxt in ("=", "==", "!="):
            pos += 1
            value = peek()
            if _is_identifier(value):
                assert value is not None
                pos += 1
            else:
                value = ""  # `a=` selects an empty value
            requirements.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
        elif nxt in ("in", "notin"):
            pos += 1
            if peek() != "(":
                raise bad_request(
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
                if not _is_identifier(token):
                    raise _error(token, "',', ')' or identifier")
                assert token is not None
                values.append(token)
                pos += 1
            if not values:
                raise bad_request(
                    f"unable to parse requirement: values[0][{key}]: Invalid value: \"\":"
                    " for 'in', 'notin' operators, values set can't be empty"
                )
            requirements.append(Requirement(key, nxt, tuple(values)))
        elif nxt in ("<", ">"):
            pos += 1
            value = peek()
            if not _is_identifier(value) or value is None or not value.lstrip("-").isdigit():
                raise bad_request(
                    f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be"
                    f" an integer, got {value!r}"
                )
            pos += 1
            requirements.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
        else:
            raise _error(nxt, "in, notin, =, ==, !=, gt, lt")
        if peek() == ",":
            pos += 1
            if peek() is None:
                raise _error(None, "identifier")
        elif peek() is not None:
            raise _error(peek(), "',' or 'end of string'")
    return tuple(requirements)


def labels_match(selector: LabelSelector, obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in selector)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # = or !=
    value: str


FieldSelector = tuple[FieldRequirement, ...]


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def parse_field_selector(
    text: str,
    supported: Mapping[str, str],
    unsupported_message: Callable[[str], str],
) -> FieldSelector:
    """Parse a field selector; every field must be one of ``supported`` (label -> path)."""
    requirements: list[FieldRequirement] = []
    if not text.strip():
        return ()
    for term in _split_unescaped(text, ","):
        for op in ("!=", "==", "="):
            index = term.find(op)
            if index > 0:
                field, value = term[:index].strip(), _unescape(term[index + len(op) :])
                requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=", value))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
    for requirement in requirements:
        if requirement.field not in supported:
            raise bad_request(unsupported_message(requirement.field))
    return tuple(requirements)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(
    selector: FieldSelector, supported: Mapping[str, str], obj: Mapping[str, Any]
) -> bool:
    for requirement in selector:
        value = field_value(obj, supported[requirement.field])
        if (value == requirement.value) != (requirement.op == "="):
            return False
    return True
