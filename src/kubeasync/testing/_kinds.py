"""What differs between kinds on a real API server, as data the generic handlers consult.

The REST handlers never branch on a kind: they look up a :class:`KindStrategy` here (the
analogue of kube-apiserver's per-kind REST strategies) for name rules, validation,
defaulting, field labels and deletion behaviour. A kind missing from :data:`STRATEGIES`
(a custom resource, say) gets :data:`GENERIC`: DNS-1123 subdomain names, ``metadata.name``
and ``metadata.namespace`` field labels, no validation, background deletion.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.descriptor import ResourceDescriptor
from ..kinds import BY_GROUP_VERSION_KIND
from ._status import Cause, duplicate, invalid, not_supported, required

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
    " '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex"
    " used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and"
    " must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex"
    " used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an"
    " alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or"
    " 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

NAME_RULES: dict[str, tuple[re.Pattern[str], int, str]] = {
    "subdomain": (_SUBDOMAIN, 253, _SUBDOMAIN_MSG),
    "label": (_LABEL, 63, _LABEL_MSG),
    "dns1035": (_DNS1035, 63, _DNS1035_MSG),
}


def name_causes(rule: str, name: str, field_path: str = "metadata.name") -> list[Cause]:
    pattern, limit, message = NAME_RULES[rule]
    causes = []
    if len(name) > limit:
        causes.append(invalid(field_path, name, f"must be no more than {limit} characters"))
    if not pattern.fullmatch(name):
        causes.append(invalid(field_path, name, message))
    return causes


_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and"
    " end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex"
    " used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
#: The finalizers a core kind may carry without a ``domain/`` prefix (kube's
#: IsStandardFinalizerName).
_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def finalizer_causes(obj: Mapping[str, Any], core: bool) -> list[Cause]:
    """``metadata.finalizers`` as ValidateObjectMeta checks them: qualified names and, for
    the core group's kinds, either a standard finalizer or a ``domain/name``. A pod
    template's finalizers are not checked (kube validates only a template's labels and
    annotations): the pods made from it are."""
    finalizers = _get(obj, "metadata", "finalizers")
    causes: list[Cause] = []
    for i, value in enumerate(finalizers if isinstance(finalizers, list) else []):
        where = f"metadata.finalizers[{i}]"
        text = str(value)
        prefix, _, name = text.rpartition("/")
        if prefix and not (len(prefix) <= 253 and _SUBDOMAIN.fullmatch(prefix)):
            causes.append(invalid(where, text, "prefix part " + _SUBDOMAIN_MSG))
        if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
            causes.append(invalid(where, text, _QUALIFIED_NAME_MSG if len(name) <= 63
                                  else "name part must be no more than 63 characters"))
        elif core and not prefix and text not in _STANDARD_FINALIZERS:
            causes.append(invalid(where, text, "name is neither a standard finalizer name"
                                               " nor is it fully qualified"))
    return causes


class Writer(Protocol):
    """What a kind's follow-up writes (a controller's work done at once) may do."""

    def create_object(self, group: str, kind: str, namespace: str | None,
                      body: Obj) -> Obj | None: ...

    def change_object(self, group: str, kind: str, namespace: str | None, name: str,
                      change: Callable[[Obj], None]) -> Obj | None: ...


@dataclass
class Context:
    """What defaulting may need besides the object: its uid and allocators."""

    uid: str
    allocate_ip: Callable[[], str]
    now: Callable[[], str] = lambda: ""  # the write's time, as the API formats it
    peers: Callable[[], list[Obj]] = list  # the stored objects of the same resource


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _dict(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


# ------------------------------------------------------------------ validation


def _validate_pod_spec(
    spec: Any, path: str, restart_policies: tuple[str, ...], restart_required: bool
) -> list[Cause]:
    spec = spec if isinstance(spec, Mapping) else {}
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(required(f"{path}.containers"))
        containers = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{path}.containers[{i}]"
        container = container if isinstance(container, Mapping) else {}
        name = container.get("name")
        if not name:
            causes.append(required(f"{where}.name"))
        elif not isinstance(name, str) or not _LABEL.fullmatch(name) or len(name) > 63:
            causes.append(invalid(f"{where}.name", name, _LABEL_MSG))
        elif name in seen:
            causes.append(duplicate(f"{where}.name", name))
        else:
            seen.add(name)
        if not container.get("image"):
            causes.append(required(f"{where}.image"))
    policy = spec.get("restartPolicy")
    if policy is None and restart_required:
        valid = ", ".join(f'"{p}"' for p in restart_policies)
        causes.append(required(f"{path}.restartPolicy", f"valid values: {valid}"))
    elif policy is not None and policy not in restart_policies:
        causes.append(not_supported(f"{path}.restartPolicy", policy, restart_policies))
    return causes


def _validate_pod(obj: Obj) -> list[Cause]:
    return _validate_pod_spec(obj.get("spec"), "spec", ("Always", "OnFailure", "Never"), False)


def _validate_job(obj: Obj) -> list[Cause]:
    template_spec = _get(obj, "spec", "template", "spec")
    return _validate_pod_spec(
        template_spec, "spec.template.spec", ("OnFailure", "Never"), True
    )


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _validate_service(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    causes: list[Cause] = []
    ports = spec.get("ports")
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and spec.get("type") != "ExternalName":
        causes.append(required("spec.ports"))
    for i, port in enumerate(ports if isinstance(ports, list) else []):
        port = port if isinstance(port, Mapping) else {}
        number = port.get("port", 0)
        if not _valid_port(number):
            causes.append(invalid(f"spec.ports[{i}].port", number,
                                  "must be between 1 and 65535, inclusive"))
        target = port.get("targetPort", number)
        if isinstance(target, int) and not _valid_port(target):
            causes.append(invalid(f"spec.ports[{i}].targetPort", target,
                                  "must be between 1 and 65535, inclusive"))
    return causes


def _validate_pvc(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    if not _get(obj, "spec", "accessModes"):
        causes.append(required("spec.accessModes", "at least 1 access mode is required"))
    if _get(obj, "spec", "resources", "requests", "storage") is None:
        causes.append(required("spec.resources[storage]"))
    return causes


# ------------------------------------------------------------------ defaulting


def _default_pod_spec(spec: Obj, restart_policy: str | None) -> None:
    if restart_policy is not None:
        spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image") or "")
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        container.setdefault("imagePullPolicy", "IfNotPresent" if tagged else "Always")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


#: What the DefaultTolerationSeconds admission plugin adds to every new pod.
_DEFAULT_TOLERATIONS = tuple(
    {"key": f"node.kubernetes.io/{condition}", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300}
    for condition in ("not-ready", "unreachable")
)


def _prepare_pod(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    _default_pod_spec(spec, "Always")
    spec.setdefault("enableServiceLinks", True)
    if old is None:
        # The admission plugins every cluster runs: ServiceAccount (without the token
        # volume: no namespace gets a default account here, as no service-account
        # controller runs), Priority and DefaultTolerationSeconds.
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = spec["serviceAccount"] = account
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.get("tolerations")
        if not isinstance(tolerations, list):
            tolerations = spec["tolerations"] = []
        keys = {t.get("key") for t in tolerations if isinstance(t, dict)}
        tolerations.extend(dict(t) for t in _DEFAULT_TOLERATIONS if t["key"] not in keys)


def _prepare_job(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    name = _get(obj, "metadata", "name") or ""
    generated = {"controller-uid": ctx.uid, "job-name": name}
    spec.setdefault("selector", {"matchLabels": {"controller-uid": ctx.uid}})
    template = _dict(spec, "template")
    template_meta = _dict(template, "metadata")
    template_meta.setdefault("creationTimestamp", None)
    template_meta["labels"] = {**generated, **(template_meta.get("labels") or {})}
    metadata = _dict(obj, "metadata")
    if not metadata.get("labels"):
        metadata["labels"] = dict(template_meta["labels"])
    # No restartPolicy default here: a Job must choose OnFailure or Never itself.
    _default_pod_spec(_dict(template, "spec"), None)


def _prepare_service(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
        previous = _get(old or {}, "spec", "clusterIP")
        spec["clusterIP"] = previous or ctx.allocate_ip()
    if spec.get("clusterIP") and "clusterIPs" not in spec:
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def _prepare_pvc(obj: Obj, old: Obj | None, ctx: Context) -> None:
    _dict(obj, "spec").setdefault("volumeMode", "Filesystem")
    if old is None:
        # The PVC-protection admission plugin: deletion waits for the controller.
        finalizers = _dict(obj, "metadata").setdefault("finalizers", [])
        if PVC_PROTECTION not in finalizers:
            finalizers.append(PVC_PROTECTION)


def _prepare_namespace(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    if old is None:
        spec.setdefault("finalizers", ["kubernetes"])
    elif "finalizers" not in spec:
        spec["finalizers"] = list(_get(old, "spec", "finalizers") or [])


def _prepare_secret(obj: Obj, old: Obj | None, ctx: Context) -> None:
    # stringData is write-only: merged into data (base64), over data's own keys.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    obj.setdefault("type", "Opaque")


def _validate_secret(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    data = obj.get("data")
    for key, value in (data if isinstance(data, dict) else {}).items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            causes.append(invalid(f"data[{key}]", "<value omitted>",
                                  "must be base64-encoded data"))
    return causes


def _default_template(spec: Obj, restart_policy: str | None = "Always") -> None:
    """A pod template's defaults, as in a Deployment, StatefulSet, ReplicaSet or Job."""
    template = _dict(spec, "template")
    _dict(template, "metadata").setdefault("creationTimestamp", None)
    pod_spec = _dict(template, "spec")
    _default_pod_spec(pod_spec, restart_policy)
    for container in pod_spec.get("containers") or []:
        for port in (container.get("ports") or []) if isinstance(container, dict) else []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _prepare_deployment(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if isinstance(strategy, dict) and strategy.setdefault("type", "RollingUpdate") == \
            "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _prepare_replica_set(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    _default_template(spec)


def _prepare_stateful_set(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if isinstance(update, dict) and update.setdefault("type", "RollingUpdate") == \
            "RollingUpdate":
        _dict(update, "rollingUpdate").setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            _dict(claim, "metadata").setdefault("creationTimestamp", None)
            _dict(claim, "spec").setdefault("volumeMode", "Filesystem")
            _dict(claim, "status").setdefault("phase", "Pending")


def _prepare_daemon_set(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if isinstance(update, dict) and update.setdefault("type", "RollingUpdate") == \
            "RollingUpdate":
        _dict(update, "rollingUpdate").setdefault("maxUnavailable", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _prepare_cron_job(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = _dict(spec, "jobTemplate")
    _dict(job_template, "metadata").setdefault("creationTimestamp", None)
    # No restartPolicy default: a Job's pods must choose OnFailure or Never.
    _default_template(_dict(job_template, "spec"), None)


def _validate_cron_job(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    if not _get(obj, "spec", "schedule"):
        causes.append(required("spec.schedule"))
    template_spec = _get(obj, "spec", "jobTemplate", "spec", "template", "spec")
    causes += _validate_pod_spec(template_spec, "spec.jobTemplate.spec.template.spec",
                                 ("OnFailure", "Never"), True)
    return causes


def _prepare_ingress(obj: Obj, old: Obj | None, ctx: Context) -> None:
    for rule in _get(obj, "spec", "rules") or []:
        for path in _get(rule, "http", "paths") or [] if isinstance(rule, dict) else []:
            if isinstance(path, dict) and not path.get("path") and \
                    path.get("pathType") in ("Prefix", "Exact"):
                path["path"] = "/"


def _validate_template(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    selector = _get(obj, "spec", "selector")
    if selector is None:
        causes.append(required("spec.selector"))
    wanted = _get(obj, "spec", "selector", "matchLabels")
    labels = _get(obj, "spec", "template", "metadata", "labels")
    if isinstance(wanted, Mapping) and not (isinstance(labels, Mapping) and all(
            labels.get(k) == v for k, v in wanted.items())):
        causes.append(invalid("spec.template.metadata.labels", labels or {},
                              "`selector` does not match template `labels`"))
    causes += _validate_pod_spec(_get(obj, "spec", "template", "spec"), "spec.template.spec",
                                 ("Always",), False)
    return causes


def _prepare_crd(obj: Obj, old: Obj | None, ctx: Context) -> None:
    spec = _dict(obj, "spec")
    names = _dict(spec, "names")
    kind = str(names.get("kind") or "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec.get("versions") or []:
        if isinstance(version, dict):
            version.setdefault("served", True)
            version.setdefault("storage", False)
    status = _dict(obj, "status")
    stored = list(status.get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if isinstance(version, dict) and version.get("storage") and \
                version.get("name") not in stored:
            stored.append(version.get("name"))
    status["storedVersions"] = stored
    previous = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    taken = _names_taken(obj, ctx.peers())
    accepted = not taken
    if accepted:
        status["acceptedNames"] = {k: names[k] for k in (
            "plural", "singular", "shortNames", "kind", "listKind", "categories") if k in names}
    else:
        status.setdefault("acceptedNames", {"plural": "", "kind": ""})

    def condition(kind: str, ok: bool, reason: str, message: str) -> Obj:
        value = "True" if ok else "False"
        before = previous.get(kind)
        if before is not None and before.get("status") == value and \
                before.get("reason") == reason:
            return dict(before)
        return {"type": kind, "status": value, "lastTransitionTime": ctx.now(),
                "reason": reason, "message": message}

    # What kube-apiserver's naming and establishing controllers write: names no other CRD
    # of the group has accepted are accepted, and the resource is then served.
    status["conditions"] = [
        condition("NamesAccepted", accepted, "NoConflicts" if accepted else "MultipleNameConflicts"
                  if len(taken) > 1 else "NameConflict",
                  "no conflicts found" if accepted else "; ".join(taken)),
        condition("Established", accepted, "InitialNamesAccepted" if accepted else "NotAccepted",
                  "the initial names have been accepted" if accepted
                  else "not all names are accepted"),
    ]


def _names_taken(crd: Obj, peers: list[Obj]) -> list[str]:
    """The names of ``crd`` that another CRD of its group has accepted."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    mine = {"plural": names.get("plural"), "singular": names.get("singular"),
            "kind": names.get("kind"), "listKind": names.get("listKind")}
    short = set(names.get("shortNames") or [])
    taken: list[str] = []
    for peer in peers:
        if _get(peer, "metadata", "name") == _get(crd, "metadata", "name") or \
                _get(peer, "spec", "group") != spec.get("group"):
            continue
        theirs = _get(peer, "status", "acceptedNames") or {}
        for field_name, value in mine.items():
            if (value and value in (theirs.get("plural"), theirs.get("singular")) and \
                    field_name in ("plural", "singular")) or (value and field_name in ("kind", "listKind") and \
                    value in (theirs.get("kind"), theirs.get("listKind"))):
                taken.append(f'"{value}" is already in use')
        taken += [f'"{s}" is already in use' for s in sorted(short & set(
            theirs.get("shortNames") or []))]
    return taken


def _validate_crd(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    group = _get(obj, "spec", "group")
    plural = _get(obj, "spec", "names", "plural")
    for path, value in (("spec.group", group), ("spec.names.plural", plural),
                        ("spec.names.kind", _get(obj, "spec", "names", "kind"))):
        if not value:
            causes.append(required(path))
    scope = _get(obj, "spec", "scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    name = _get(obj, "metadata", "name")
    if group and plural and name != f"{plural}.{group}":
        causes.append(invalid("metadata.name", name,
                              'must be spec.names.plural+"."+spec.group'))
    if group and not (isinstance(group, str) and _SUBDOMAIN.fullmatch(group)):
        causes.append(invalid("spec.group", group, _SUBDOMAIN_MSG))
    if plural and not (isinstance(plural, str) and _LABEL.fullmatch(plural)):
        causes.append(invalid("spec.names.plural", plural, _LABEL_MSG))
    versions = _get(obj, "spec", "versions")
    for i, version in enumerate(versions if isinstance(versions, list) else []):
        version_name = version.get("name") if isinstance(version, Mapping) else None
        if not version_name:
            causes.append(required(f"spec.versions[{i}].name"))
        elif not isinstance(version_name, str) or not _LABEL.fullmatch(version_name):
            causes.append(invalid(f"spec.versions[{i}].name", version_name, _LABEL_MSG))
    if not isinstance(versions, list) or not versions:
        causes.append(required("spec.versions", "must have exactly one version marked as"
                               " storage version"))
    elif sum(1 for v in versions if isinstance(v, Mapping) and v.get("storage")) != 1:
        causes.append(invalid("spec.versions", versions,
                              "must have exactly one version marked as storage version"))
    return causes


def _service_account_token(writer: Writer, account: Obj) -> None:
    """The token controller of 1.20: a new ServiceAccount gets a token Secret, named in
    its ``secrets``."""
    metadata = account.get("metadata") or {}
    name, namespace = str(metadata.get("name")), metadata.get("namespace")
    if account.get("secrets"):
        return
    suffix = "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    token = "kubeasync-fake." + secrets.token_urlsafe(32)
    secret = writer.create_object("", "Secret", namespace, {
        "metadata": {"name": f"{name}-token-{suffix}", "annotations": {
            "kubernetes.io/service-account.name": name,
            "kubernetes.io/service-account.uid": str(metadata.get("uid"))}},
        "type": "kubernetes.io/service-account-token",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in (
            ("ca.crt", ""), ("namespace", str(namespace)), ("token", token))},
    })
    if secret is None:
        return
    secret_name = secret["metadata"]["name"]

    def reference(obj: Obj) -> None:
        obj["secrets"] = [*(obj.get("secrets") or []), {"name": secret_name}]

    writer.change_object("", "ServiceAccount", namespace, name, reference)


CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
"""The finalizer a CRD's deletion adds; it goes once the CRD's custom resources are gone."""


def _crd_holds(obj: Obj) -> list[str]:
    # What starts a CRD's deletion holds it; from then on its finalizer does.
    return [] if _get(obj, "metadata", "deletionTimestamp") else [CRD_CLEANUP]


def _crd_terminating(obj: Obj) -> None:
    metadata = _dict(obj, "metadata")
    # Like a namespace's, a CRD's delete sets only the timestamp (kube-apiserver 1.20).
    metadata.pop("deletionGracePeriodSeconds", None)
    finalizers = metadata.setdefault("finalizers", [])
    if CRD_CLEANUP not in finalizers:
        finalizers.append(CRD_CLEANUP)
    status = _dict(obj, "status")
    conditions = [c for c in status.get("conditions") or []
                  if isinstance(c, dict) and c.get("type") != "Terminating"]
    conditions.append({"type": "Terminating", "status": "True",
                       "lastTransitionTime": metadata.get("deletionTimestamp"),
                       "reason": "InstanceDeletionInProgress",
                       "message": "CustomResource deletion is in progress"})
    status["conditions"] = conditions


def _no_prepare(obj: Obj, old: Obj | None, ctx: Context) -> None:
    return None


def _no_causes(obj: Obj) -> list[Cause]:
    return []


# ------------------------------------------------------------------ deletion


def _pod_grace(obj: Obj, requested: int | None) -> int:
    # Like the pod strategy: an unscheduled or finished pod has nothing to stop.
    if not _get(obj, "spec", "nodeName") or _get(obj, "status", "phase") in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return requested
    grace = _get(obj, "spec", "terminationGracePeriodSeconds")
    return grace if isinstance(grace, int) else 30


def _no_grace(obj: Obj, requested: int | None) -> int:
    return 0


def _namespace_holds(obj: Obj) -> list[str]:
    return list(_get(obj, "spec", "finalizers") or [])


def _no_holds(obj: Obj) -> list[str]:
    return []


def _namespace_terminating(obj: Obj) -> None:
    # The namespace's own delete sets only the timestamp (no grace period).
    _dict(obj, "metadata").pop("deletionGracePeriodSeconds", None)
    _dict(obj, "status")["phase"] = "Terminating"


def _nothing(obj: Obj) -> None:
    return None


# ------------------------------------------------------------------ field selectors

_META_FIELDS = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}


def _generic_field_error(label: str) -> str:
    return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def _conversion_field_error(label: str) -> str:
    return f"field label not supported: {label}"


def _job_field_error(label: str) -> str:
    return f'field label "{label}" not supported for batchv1.Job'


PVC_PROTECTION = "kubernetes.io/pvc-protection"
"""Finalizers the fake's own controllers remove once deletion starts (as the real ones do)."""
CONTROLLER_FINALIZERS = frozenset({PVC_PROTECTION})


@dataclass(frozen=True)
class KindStrategy:
    """How one kind behaves; every field has the generic behaviour as its default."""

    name_rule: str = "subdomain"
    validate: Callable[[Obj], list[Cause]] = _no_causes
    prepare: Callable[[Obj, Obj | None, Context], None] = _no_prepare
    initial_status: Mapping[str, Any] = field(default_factory=dict)
    field_labels: Mapping[str, str] = field(default_factory=lambda: dict(_META_FIELDS))
    field_label_error: Callable[[str], str] = _generic_field_error
    default_propagation: str = "Background"
    returns_deleted_object: bool = False
    grace_period: Callable[[Obj, int | None], int] = _no_grace
    deletion_holds: Callable[[Obj], list[str]] = _no_holds
    on_deletion_started: Callable[[Obj], None] = _nothing
    has_generation: bool = True
    #: Top-level fields that Go's ``omitempty`` drops when empty (``data: {}``); the
    #: optional maps and lists of metadata are always dropped so.
    omit_empty: tuple[str, ...] = ()
    graceful: bool = False
    undeletable: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()
    bookmark_body: Mapping[str, Any] = field(default_factory=dict)
    # Built-in kinds' status strategies reset only the spec: a write to /status also
    # changes labels and annotations (kube-apiserver 1.20, and later). Custom resources'
    # /status keeps the old metadata.
    status_writes_metadata: bool = False
    #: What a controller of a real cluster writes soon after a create (here: right after
    #: it, through the same registry methods a client's request goes through).
    after_create: Callable[[Writer, Obj], None] | None = None


GENERIC = KindStrategy()

STRATEGIES: dict[tuple[str, str], KindStrategy] = {
    ("", "Pod"): KindStrategy(
        status_writes_metadata=True,
        validate=_validate_pod,
        prepare=_prepare_pod,
        initial_status={"phase": "Pending", "qosClass": "BestEffort"},
        field_labels={
            **_META_FIELDS,
            **{f: f for f in (
                "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                "spec.serviceAccountName", "status.phase", "status.podIP",
                "status.nominatedNodeName",
            )},
        },
        field_label_error=_conversion_field_error,
        returns_deleted_object=True,
        grace_period=_pod_grace,
        graceful=True,
        categories=("all",),
        # Go serializes an empty Pod with these: decoders must cope with the nulls.
        bookmark_body={"spec": {"containers": None}, "status": {}},
    ),
    ("batch", "Job"): KindStrategy(
        status_writes_metadata=True,
        validate=_validate_job,
        prepare=_prepare_job,
        field_labels={**_META_FIELDS, "status.successful": "status.succeeded"},
        field_label_error=_job_field_error,
        # batch/v1 Jobs orphan their pods unless told otherwise.
        default_propagation="Orphan",
        categories=("all",),
        bookmark_body={
            "spec": {"template": {"metadata": {"creationTimestamp": None},
                                  "spec": {"containers": None}}},
            "status": {},
        },
    ),
    ("", "Service"): KindStrategy(
        status_writes_metadata=True,
        name_rule="dns1035",
        validate=_validate_service,
        prepare=_prepare_service,
        initial_status={"loadBalancer": {}},
        has_generation=False,
        categories=("all",),
    ),
    ("", "PersistentVolumeClaim"): KindStrategy(
        status_writes_metadata=True,
        validate=_validate_pvc,
        prepare=_prepare_pvc,
        initial_status={"phase": "Pending"},
        returns_deleted_object=True,
        has_generation=False,
    ),
    ("", "Namespace"): KindStrategy(
        status_writes_metadata=True,
        name_rule="label",
        prepare=_prepare_namespace,
        initial_status={"phase": "Active"},
        field_labels={"metadata.name": "metadata.name", "status.phase": "status.phase"},
        field_label_error=_conversion_field_error,
        returns_deleted_object=True,
        deletion_holds=_namespace_holds,
        on_deletion_started=_namespace_terminating,
        has_generation=False,
        # The NamespaceLifecycle admission plugin protects these.
        undeletable=frozenset({"default", "kube-system", "kube-public"}),
    ),
    ("", "ConfigMap"): KindStrategy(has_generation=False, omit_empty=("data", "binaryData")),
    ("", "Node"): KindStrategy(
        status_writes_metadata=True,
        has_generation=False,
        field_labels={**_META_FIELDS, "spec.unschedulable": "spec.unschedulable"},
        field_label_error=_conversion_field_error,
    ),
    ("coordination.k8s.io", "Lease"): KindStrategy(has_generation=False),
    ("", "Secret"): KindStrategy(
        has_generation=False, prepare=_prepare_secret, validate=_validate_secret,
        omit_empty=("data",),
        field_labels={**_META_FIELDS, "type": "type"},
        field_label_error=_conversion_field_error,
    ),
    ("", "ServiceAccount"): KindStrategy(has_generation=False,
                                         after_create=_service_account_token),
    ("", "Event"): KindStrategy(has_generation=False),
    ("", "Endpoints"): KindStrategy(has_generation=False),
    ("apps", "Deployment"): KindStrategy(
        status_writes_metadata=True, prepare=_prepare_deployment, validate=_validate_template,
        categories=("all",)),
    ("apps", "ReplicaSet"): KindStrategy(
        status_writes_metadata=True, prepare=_prepare_replica_set, validate=_validate_template,
        initial_status={"replicas": 0}, categories=("all",)),
    ("apps", "StatefulSet"): KindStrategy(
        status_writes_metadata=True, prepare=_prepare_stateful_set, validate=_validate_template,
        initial_status={"replicas": 0}, categories=("all",)),
    ("apps", "DaemonSet"): KindStrategy(
        status_writes_metadata=True, prepare=_prepare_daemon_set, validate=_validate_template,
        initial_status={"currentNumberScheduled": 0, "numberMisscheduled": 0,
                        "desiredNumberScheduled": 0, "numberReady": 0},
        categories=("all",)),
    ("batch", "CronJob"): KindStrategy(
        status_writes_metadata=True, prepare=_prepare_cron_job, validate=_validate_cron_job,
        categories=("all",)),
    ("networking.k8s.io", "Ingress"): KindStrategy(
        status_writes_metadata=True, prepare=_prepare_ingress,
        initial_status={"loadBalancer": {}}),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): KindStrategy(
        prepare=_prepare_crd, validate=_validate_crd, has_generation=True,
        returns_deleted_object=True, deletion_holds=_crd_holds,
        on_deletion_started=_crd_terminating),
    ("autoscaling", "HorizontalPodAutoscaler"): KindStrategy(
        status_writes_metadata=True, categories=("all",)),
}


#: ObjectMeta's optional maps and lists: a real server never returns them empty.
_OMITTED_META = ("labels", "annotations", "finalizers", "ownerReferences")


def omit_empty(obj: Obj, strategy: KindStrategy) -> None:
    """Drop what a real server's typed round trip would drop: empty maps and lists
    under ``omitempty`` fields (``metadata.labels: {}``, a ConfigMap's ``data: {}``)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        for key in _OMITTED_META:
            if metadata.get(key) in ({}, []):
                del metadata[key]
    for key in strategy.omit_empty:
        if obj.get(key) in ({}, []):
            del obj[key]


#: A custom resource (a kind the catalogue does not have): as GENERIC, but an empty status
#: is dropped (a custom resource has no Go struct whose status would be written as ``{}``).
CUSTOM = KindStrategy(omit_empty=("status",))


def strategy_for(descriptor: ResourceDescriptor[Any, Any]) -> KindStrategy:
    strategy = STRATEGIES.get((descriptor.group, descriptor.kind))
    if strategy is not None:
        return strategy
    key = (descriptor.group, descriptor.version, descriptor.kind)
    return GENERIC if key in BY_GROUP_VERSION_KIND else CUSTOM
