"""The ``scale`` and ``token`` subresources: answers in another kind than their resource's.

- ``.../{name}/scale`` reads and writes an ``autoscaling/v1`` Scale: ``spec.replicas`` from
  the object's replica count, ``status.replicas`` and ``status.selector`` (the label
  selector as a string) from its status. Built-in kinds use ``.spec.replicas``,
  ``.status.replicas`` and ``.spec.selector``; a custom resource the paths its CRD's
  ``subresources.scale`` names. A write changes only the replica count (and bumps the
  generation, as any spec change does).
- ``serviceaccounts/{name}/token`` (TokenRequest) answers a bound token for the account: a
  JWT-shaped string with the claims kube-apiserver puts in one (not signed with any key
  the fake has: nothing verifies it), and its expiration.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import yaml

from ..core.descriptor import ResourceDescriptor
from ..models import format_time
from . import _status as st
from ._patch import PatchError, json_patch, merge_patch
from ._registry import Registry, meta
from ._store import Obj, clone

__all__ = ["BUILTIN_SCALE", "ScalePaths", "scale", "token_request"]

Descriptor = ResourceDescriptor[Any, Any]


@dataclass(frozen=True)
class ScalePaths:
    """Where a kind keeps what a Scale shows (JSON paths as in a CRD: ``.spec.replicas``)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = ".spec.selector"
    selector_is_string: bool = False  # a CRD's labelSelectorPath holds the string form


BUILTIN_SCALE = ScalePaths()


def _steps(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _read(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for step in _steps(path):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _write(obj: Obj, path: str, value: Any) -> None:
    steps = _steps(path)
    target = obj
    for step in steps[:-1]:
        child = target.get(step)
        if not isinstance(child, dict):
            child = target[step] = {}
        target = child
    target[steps[-1]] = value


def selector_string(selector: Any) -> str:
    """A LabelSelector as ``metav1.FormatLabelSelector`` writes it (``a=b,c in (d,e)``)."""
    if not isinstance(selector, Mapping):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _as_scale(obj: Obj, paths: ScalePaths) -> Obj:
    metadata = meta(obj)
    scale_meta = {k: metadata[k] for k in
                  ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                  if k in metadata}
    status: Obj = {"replicas": _read(obj, paths.status_replicas) or 0}
    if paths.label_selector:
        selector = _read(obj, paths.label_selector)
        text = selector if paths.selector_is_string else selector_string(selector)
        if text:
            status["selector"] = text
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": _read(obj, paths.spec_replicas) or 0}, "status": status}


def _decode(raw: bytes, content_type: str) -> Any:
    try:
        try:
            return msgspec.json.decode(raw or b"null")
        except msgspec.DecodeError:
            if content_type not in ("application/yaml", "application/apply-patch+yaml"):
                raise
            return yaml.safe_load(raw.decode("utf-8"))
    except (msgspec.DecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise st.bad_request(f"error decoding the request body: {exc}") from None


def scale(registry: Registry, d: Descriptor, namespace: str | None, name: str, method: str,
          raw: bytes, content_type: str, *, paths: ScalePaths, manager: str,
          dry_run: bool) -> Obj:
    """Answer a request to ``{name}/scale``: GET, PUT (a Scale) or PATCH (of the Scale)."""
    old = registry.get(d, namespace, name)
    current = _as_scale(old, paths)
    if method == "GET":
        return current
    content_type = content_type.split(";")[0].strip().lower()
    if method == "PUT":
        wanted = _decode(raw, content_type)
    elif method == "PATCH":
        patch = _decode(raw, content_type)
        try:
            if content_type == "application/json-patch+json":
                wanted = json_patch(current, patch)
            elif isinstance(patch, dict):  # merge, strategic (a Scale has no lists) or apply
                wanted = merge_patch(current, patch)
            else:
                raise PatchError("a merge patch must be a JSON object")
        except PatchError:
            raise st.StatusError(
                422, "Invalid", "the server rejected our request due to an error in our request",
                {}) from None
    else:
        raise st.method_not_allowed()
    if not isinstance(wanted, dict):
        raise st.bad_request("the object provided is unrecognized (must be of type Scale)")
    replicas = _read(wanted, ".spec.replicas")
    if replicas is None:
        replicas = 0
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise st.StatusError(
            422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid'
            f" value: {st.go_value(replicas)}: must be greater than or equal to 0",
            {"name": name, "group": "autoscaling", "kind": "Scale", "causes": [st.invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0").as_dict()]})
    expected = meta(wanted).get("resourceVersion")
    if method == "PUT" and expected and expected != meta(old).get("resourceVersion"):
        raise st.conflict(d, name)
    new = clone(old)
    _write(new, paths.spec_replicas, replicas)
    written = registry.write(d, old, new, manager=manager, dry_run=dry_run)
    return _as_scale(written, paths)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_request(registry: Registry, d: Descriptor, namespace: str, name: str,
                  body: Any) -> Obj:
    """Answer ``POST serviceaccounts/{name}/token`` (``body``: the decoded TokenRequest)
    with a TokenRequest and its token."""
    account = registry.get(d, namespace, name)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise st.bad_request("the object provided is unrecognized (must be of type TokenRequest)")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    seconds = spec.get("expirationSeconds", 3600)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 600:
        raise st.StatusError(
            422, "Invalid", "spec.expirationSeconds: Invalid value: "
            f"{st.go_value(seconds)}: may not specify a duration less than 10 minutes",
            {"kind": "TokenRequest", "group": "authentication.k8s.io", "causes": [st.invalid(
                "spec.expirationSeconds", seconds,
                "may not specify a duration less than 10 minutes").as_dict()]})
    audiences = spec.get("audiences") or ["https://kubernetes.default.svc"]
    issued = datetime.now(timezone.utc).replace(microsecond=0)
    expires = issued + timedelta(seconds=seconds)
    claims = {
        "aud": audiences, "exp": int(expires.timestamp()), "iat": int(issued.timestamp()),
        "iss": "https://kubernetes.default.svc", "nbf": int(issued.timestamp()),
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {
            "name": name, "uid": meta(account).get("uid")}},
    }
    header = {"alg": "RS256", "kid": "kubeasync-fake"}
    token = ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                      _b64(secrets.token_bytes(32))))
    return {
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": seconds,
                 "boundObjectRef": spec.get("boundObjectRef")},
        "status": {"token": token, "expirationTimestamp": format_time(expires)},
    }
