"""Label and field selectors as the API server parses and applies them.

Label selectors use the client's one grammar (:mod:`kubeasync.core.selectors`), whose
errors are already the server's words. Field selectors: ``=``, ``==`` and ``!=`` over the
field labels each kind supports (see ``_kinds.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.selectors import LabelSelector, SelectorSyntaxError, parse_requirements
from ._status import bad_request


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector string; a syntax error is the server's 400 BadRequest."""
    try:
        return LabelSelector(text, parse_requirements(text))
    except SelectorSyntaxError as exc:
        raise bad_request(str(exc)) from None


def labels_match(selector: LabelSelector, obj: Mapping[str, Any]) -> bool:
    return selector.matches((obj.get("metadata") or {}).get("labels"))


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
