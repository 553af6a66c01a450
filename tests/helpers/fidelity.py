"""One scenario, run against the embedded API server and a real one, to compare them.

The scenario is data (:data:`SCENARIO`): a list of requests with their bodies. The runner
(:func:`run_scenario`) sends it over raw HTTP to a target and records, per step, what can
be compared between two servers: the status code, the ``Status`` reason (and the fields
of ``details.causes`` for 422), the kind of the answer, the names of listed items or
watched objects, and the **shape** of the answer: the set of JSON key paths it holds
(list items merged; the values of uids, timestamps, resourceVersions and generated names
never matter, and ``managedFields`` counts as one path).

``tests/data/fidelity_real_1.20.json`` is the record of a real kube-apiserver 1.20;
``tests/test_fake_fidelity.py`` holds the fake to it and
``tests/integration/test_fidelity.py`` runs both side by side. To re-record::

    KUBEASYNC_TEST_KUBECONFIG=/tmp/kubeconfig python -m tests.helpers.fidelity --record

(``--record PATH`` writes elsewhere; without ``--record`` the table of differences
between that server and the fake is printed.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import ssl
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

RECORD = Path(__file__).parent.parent / "data" / "fidelity_real_1.20.json"

CM = "/api/v1/namespaces/{ns}/configmaps"
PODS = "/api/v1/namespaces/{ns}/pods"
SVCS = "/api/v1/namespaces/{ns}/services"
PVCS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
DEPLOYS = "/apis/apps/v1/namespaces/{ns}/deployments"
RSS = "/apis/apps/v1/namespaces/{ns}/replicasets"
SECRETS = "/api/v1/namespaces/{ns}/secrets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRD_NAME = "fidwidgets.fidelity.kubeasync.dev"
WIDGETS = "/apis/fidelity.kubeasync.dev/v1/namespaces/{ns}/fidwidgets"

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Step:
    """One request. ``path`` may hold ``{ns}`` (the scenario's namespace) and
    ``{rv:NAME}`` (a resourceVersion captured by an earlier step as NAME)."""

    id: str
    method: str
    path: str
    body: Any = None
    content_type: str = "application/json"
    #: Store the answer's metadata.resourceVersion under this name.
    capture: str | None = None
    #: A watch: read this many events, then hang up.
    events: int = 0
    #: Repeat the request while it answers one of these codes (a real namespace
    #: admits pods only once its default ServiceAccount has a token).
    until_not: tuple[int, ...] = ()
    #: Repeat the request until its answer satisfies this (a controller's work takes a
    #: moment on any server).
    until: Callable[[Any], bool] | None = None


def _pod(name: str, labels: Mapping[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels or {"app": "web"}), **meta},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}],
                 "terminationGracePeriodSeconds": 5},
    }


def _cm(name: str, labels: Mapping[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": dict(labels or {})}, "data": dict(data)}


def _pvc(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": dict(labels or {"tier": "data"})},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}


def _job(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"kind": "batch"}},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": {"job": name}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "busybox:1.36",
                                         "command": ["true"]}]}}}}


def _svc(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": f"fid-{name}"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}],
                                           "terminationGracePeriodSeconds": 5}}}}


def _items(count: int) -> Callable[[Any], bool]:
    def check(answer: Any) -> bool:
        return isinstance(answer, dict) and len(answer.get("items") or []) == count
    return check


def _replica_set_counted(answer: Any) -> bool:
    """The ReplicaSet exists and its controller has counted its two pods."""
    if not _items(1)(answer):
        return False
    status = answer["items"][0].get("status") or {}
    return (status.get("replicas") == 2 and status.get("fullyLabeledReplicas") == 2
            and status.get("observedGeneration") == 1)


def _established(answer: Any) -> bool:
    """The CRD's names are accepted and it is served."""
    conditions = ((answer or {}).get("status") or {}).get("conditions") or []
    return {c.get("type"): c.get("status") for c in conditions}.get("Established") == "True"


def _widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": "fidelity.kubeasync.dev", "scope": "Namespaced",
            "names": {"plural": "fidwidgets", "singular": "fidwidget", "kind": "FidWidget",
                      "listKind": "FidWidgetList"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


def _widget(name: str) -> dict[str, Any]:
    return {"apiVersion": "fidelity.kubeasync.dev/v1", "kind": "FidWidget",
            "metadata": {"name": name}, "spec": {"size": 3}}


def _rolled_out(answer: Any) -> bool:
    """The deployment controller's pass is done: its status counts every pod (all
    Pending: neither server has a kubelet in the scenario) and says so in conditions."""
    status = (answer or {}).get("status") or {}
    reasons = {c.get("type"): c.get("reason") for c in status.get("conditions") or []}
    return (status.get("observedGeneration") == 1 and status.get("updatedReplicas") == 2
            and status.get("unavailableReplicas") == 2
            and reasons == {"Available": "MinimumReplicasUnavailable",
                            "Progressing": "ReplicaSetUpdated"})


def _delete_options(**options: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "DeleteOptions", **options}


SCENARIO: tuple[Step, ...] = (
    # --- discovery
    Step("discovery-core", "GET", "/api/v1"),
    Step("discovery-batch", "GET", "/apis/batch/v1"),
    Step("version", "GET", "/version"),
    # --- the namespace
    Step("ns-create", "POST", "/api/v1/namespaces",
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "{ns}"}}),
    Step("ns-create-again", "POST", "/api/v1/namespaces",
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "{ns}"}}),
    Step("ns-get", "GET", "/api/v1/namespaces/{ns}"),
    Step("pod-admitted", "POST", PODS + "?dryRun=All", _pod("probe"), until_not=(403, 500)),
    # --- config maps: create, conflicts, invalid, patches
    Step("cm-create", "POST", CM, _cm("cm1", {"w": "1"}, a="1"), capture="cm1"),
    Step("cm-create-exists", "POST", CM, _cm("cm1", {"w": "1"}, a="1")),
    Step("cm-create-dry-run", "POST", CM + "?dryRun=All", _cm("cm-dry")),
    Step("cm-get-dry-run", "GET", CM + "/cm-dry"),
    Step("cm-create-generate-name", "POST", CM,
         {"metadata": {"generateName": "gen-", "labels": {"g": "1"}}, "data": {}}),
    Step("cm-create-bad-name", "POST", CM, _cm("Bad_Name")),
    Step("cm-create-no-name", "POST", CM, {"metadata": {}, "data": {}}),
    Step("cm-create-ns-mismatch", "POST", CM,
         {"metadata": {"name": "cm-x", "namespace": "elsewhere"}}),
    Step("cm-create-missing-ns", "POST", "/api/v1/namespaces/no-such-ns-fid/configmaps",
         _cm("cm1")),
    Step("cm-create-bad-json", "POST", CM, b"{not json"),
    Step("cm-get-missing", "GET", CM + "/nope"),
    Step("cm-get-missing-ns", "GET", "/api/v1/namespaces/no-such-ns-fid/configmaps/cm1"),
    Step("cm-status-no-subresource", "GET", CM + "/cm1/status"),
    Step("cm-patch-merge", "PATCH", CM + "/cm1", {"data": {"b": "2"}}, MERGE),
    Step("cm-patch-json", "PATCH", CM + "/cm1",
         [{"op": "add", "path": "/data/c", "value": "3"}], JSON_PATCH),
    Step("cm-patch-json-test-fails", "PATCH", CM + "/cm1",
         [{"op": "test", "path": "/data/a", "value": "no"}], JSON_PATCH),
    Step("cm-patch-strategic", "PATCH", CM + "/cm1",
         {"metadata": {"labels": {"s": "1"}}}, STRATEGIC),
    Step("cm-patch-apply", "PATCH", CM + "/cm1?fieldManager=fidelity",
         b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\ndata:\n  d: '4'\n", APPLY),
    Step("cm-patch-apply-no-manager", "PATCH", CM + "/cm1",
         b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\n", APPLY),
    Step("cm-patch-unsupported-type", "PATCH", CM + "/cm1", {"data": {}}, "text/plain"),
    Step("cm-patch-missing", "PATCH", CM + "/nope", {"data": {}}, MERGE),
    Step("cm-replace-stale", "PUT", CM + "/cm1",
         {**_cm("cm1", {"w": "1"}), "metadata": {"name": "cm1",
                                                 "resourceVersion": "{rv:cm1}"}}),
    Step("cm-replace-name-mismatch", "PUT", CM + "/cm1", _cm("cm2")),
    Step("cm-replace-missing", "PUT", CM + "/nope", _cm("nope")),
    # --- a watch from a resourceVersion
    Step("cm-delete-cm1", "DELETE", CM + "/cm1"),
    Step("cm-create-cm2", "POST", CM, _cm("cm2", {"w": "1"})),
    Step("cm-watch-from-rv", "GET",
         CM + "?watch=1&labelSelector=w%3D1&resourceVersion={rv:cm1}&timeoutSeconds=10",
         events=6),
    Step("cm-watch-initial-events", "GET",
         CM + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
         "&allowWatchBookmarks=true&timeoutSeconds=10", events=1),
    # --- delete collection
    Step("cm-delete-collection", "DELETE", CM + "?labelSelector=w%3D1"),
    Step("cm-list-after-delete-collection", "GET", CM + "?labelSelector=w%3D1"),
    # --- pods: invalid, selectors, status, deletes
    Step("pod-create", "POST", PODS, _pod("web-0"), capture="web0"),
    Step("pod-create-db", "POST", PODS, _pod("db-0", {"app": "db", "tier": "data"})),
    Step("pod-create-no-containers", "POST", PODS,
         {"metadata": {"name": "empty"}, "spec": {"containers": []}}),
    Step("pod-create-bad-container", "POST", PODS,
         {"metadata": {"name": "badc"},
          "spec": {"containers": [{"name": "Bad_Name"}]}}),
    Step("pod-get", "GET", PODS + "/web-0"),
    Step("pod-get-status", "GET", PODS + "/web-0/status"),
    Step("pod-patch-status", "PATCH", PODS + "/web-0/status",
         {"status": {"message": "checked"}}, MERGE),
    Step("pod-patch-strategic", "PATCH", PODS + "/web-0",
         {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}, STRATEGIC),
    Step("pod-list-label", "GET", PODS + "?labelSelector=app%3Dweb"),
    Step("pod-list-label-set", "GET", PODS + "?labelSelector=app+in+%28web%2Cdb%29"),
    Step("pod-list-label-not", "GET", PODS + "?labelSelector=app%2C%21tier"),
    Step("pod-list-label-bad", "GET", PODS + "?labelSelector=app%3D%3D%3D"),
    Step("pod-list-field-name", "GET",
         PODS + "?fieldSelector=metadata.name%3Ddb-0&labelSelector=app"),
    Step("pod-list-field-phase", "GET",
         PODS + "?fieldSelector=status.phase%3DPending&labelSelector=app"),
    Step("pod-list-field-unsupported", "GET", PODS + "?fieldSelector=spec.foo%3Dbar"),
    Step("pod-watch-from-rv", "GET",
         PODS + "?watch=1&labelSelector=app&resourceVersion={rv:web0}&timeoutSeconds=10",
         events=3),
    Step("pod-delete-precondition-fails", "DELETE", PODS + "/web-0",
         _delete_options(preconditions={"uid": "00000000-0000-0000-0000-000000000000"})),
    Step("pod-delete-dry-run", "DELETE", PODS + "/web-0?dryRun=All"),
    Step("pod-get-after-dry-run", "GET", PODS + "/web-0"),
    Step("pod-delete-grace-0", "DELETE", PODS + "/web-0",
         _delete_options(gracePeriodSeconds=0)),
    Step("pod-delete-missing", "DELETE", PODS + "/web-0"),
    Step("pod-delete-collection", "DELETE", PODS + "?labelSelector=app%3Ddb"),
    # --- services
    Step("svc-create", "POST", SVCS, _svc("web")),
    Step("svc-create-no-ports", "POST", SVCS,
         {"metadata": {"name": "noports"}, "spec": {"selector": {"app": "web"}}}),
    Step("svc-create-bad-name", "POST", SVCS, {**_svc("web"), "metadata": {"name": "1web"}}),
    Step("svc-list", "GET", SVCS),
    Step("svc-delete-collection", "DELETE", SVCS),
    Step("svc-delete", "DELETE", SVCS + "/web"),
    # --- persistent volume claims: pages
    Step("pvc-create-a", "POST", PVCS, _pvc("a")),
    Step("pvc-create-b", "POST", PVCS, _pvc("b")),
    Step("pvc-create-c", "POST", PVCS, _pvc("c", {"tier": "other"})),
    Step("pvc-create-no-access-modes", "POST", PVCS,
         {"metadata": {"name": "bad"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}),
    Step("pvc-list-page-1", "GET", PVCS + "?limit=2", capture="continue"),
    Step("pvc-list-page-2", "GET", PVCS + "?limit=2&continue={continue:continue}"),
    Step("pvc-list-selector-page", "GET", PVCS + "?limit=1&labelSelector=tier%3Ddata"),
    Step("pvc-list-bad-continue", "GET", PVCS + "?limit=2&continue=not-a-token"),
    Step("pvc-patch-status", "PATCH", PVCS + "/a/status",
         {"status": {"phase": "Lost"}}, MERGE),
    Step("pvc-delete", "DELETE", PVCS + "/c"),
    # --- jobs
    Step("job-create", "POST", JOBS, _job("j1")),
    Step("job-create-foreground", "POST", JOBS, _job("j2")),
    Step("job-create-no-template", "POST", JOBS,
         {"metadata": {"name": "jx"}, "spec": {"template": {"spec": {"containers": []}}}}),
    Step("job-get-status", "GET", JOBS + "/j1/status"),
    Step("job-list-label", "GET", JOBS + "?labelSelector=kind%3Dbatch"),
    Step("job-list-field-unsupported", "GET", JOBS + "?fieldSelector=status.succeeded%3D1"),
    Step("job-delete-background", "DELETE", JOBS + "/j1",
         _delete_options(propagationPolicy="Background")),
    Step("job-delete-foreground", "DELETE", JOBS + "/j2?propagationPolicy=Foreground"),
    Step("job-delete-bad-policy", "DELETE", JOBS + "/nope?propagationPolicy=Sideways"),
    Step("job-delete-collection-bad-policy", "DELETE",
         JOBS + "?labelSelector=none&propagationPolicy=Sideways"),
    # --- a deployment: its ReplicaSet and pods from the controllers (no kubelet: Pending)
    Step("deploy-create", "POST", DEPLOYS, _deployment("web-d", 2)),
    Step("deploy-replica-sets", "GET", RSS + "?labelSelector=app%3Dfid-web-d",
         until=_replica_set_counted),
    Step("deploy-pods", "GET", PODS + "?labelSelector=app%3Dfid-web-d", until=_items(2)),
    Step("deploy-status", "GET", DEPLOYS + "/web-d/status", until=_rolled_out),
    Step("deploy-delete", "DELETE", DEPLOYS + "/web-d"),
    Step("deploy-replica-sets-collected", "GET", RSS + "?labelSelector=app%3Dfid-web-d",
         until=_items(0)),
    Step("deploy-pods-collected", "GET", PODS + "?labelSelector=app%3Dfid-web-d",
         until=_items(0)),
    # --- a secret: stringData is folded into base64 data
    Step("secret-create", "POST", SECRETS,
         {"metadata": {"name": "s1"}, "stringData": {"password": "s3cret"}}),
    Step("secret-get", "GET", SECRETS + "/s1"),
    Step("secret-patch-string-data", "PATCH", SECRETS + "/s1",
         {"stringData": {"user": "me"}}, MERGE),
    Step("secret-list", "GET", SECRETS + "?fieldSelector=metadata.name%3Ds1"),
    Step("secret-delete", "DELETE", SECRETS + "/s1"),
    # --- a CRD and a custom resource of it
    Step("crd-create", "POST", CRDS, _widget_crd()),
    Step("crd-established", "GET", CRDS + "/" + CRD_NAME, until=_established),
    Step("cr-create", "POST", WIDGETS, _widget("w1"), until_not=(404,)),
    Step("cr-get", "GET", WIDGETS + "/w1"),
    Step("cr-get-status", "GET", WIDGETS + "/w1/status"),
    Step("cr-list", "GET", WIDGETS),
    Step("cr-patch-merge", "PATCH", WIDGETS + "/w1", {"spec": {"size": 4}}, MERGE),
    Step("crd-delete", "DELETE", CRDS + "/" + CRD_NAME),
    Step("crd-gone", "GET", CRDS + "/" + CRD_NAME, until_not=(200,)),
    # --- methods and paths that do not exist
    Step("unknown-resource", "GET", "/api/v1/namespaces/{ns}/widgets"),
    Step("ns-delete-collection", "DELETE", "/api/v1/namespaces"),
    # --- the namespace goes
    Step("ns-delete", "DELETE", "/api/v1/namespaces/{ns}"),
    Step("ns-create-terminating-cm", "POST", CM, _cm("late")),
)


@dataclass
class Target:
    """Where to send the scenario: a base URL, headers, and how to trust TLS."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    ssl: ssl.SSLContext | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str]) -> Target:
        config = yaml.safe_load(Path(path).read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"]
                       if c["name"] == context["cluster"])
        user = next((u["user"] for u in config.get("users", [])
                     if u["name"] == context.get("user")), {})
        context_ssl = None
        if "certificate-authority-data" in cluster:
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            context_ssl = ssl.create_default_context(cadata=ca)
        headers = {"Authorization": f"Bearer {user['token']}"} if "token" in user else {}
        return cls(cluster["server"].rstrip("/"), headers, context_ssl)


def shape(value: Any, prefix: str = "") -> set[str]:
    """Every key path in a JSON value; list items are merged (``spec.containers.name``);
    ``metadata.managedFields`` is one path, its content being the server's bookkeeping."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            if path.endswith("managedFields") or path.endswith("fieldsV1"):
                continue
            # Map keys that are data, not schema: labels, annotations, config map data.
            if key in ("labels", "annotations", "data", "selector", "matchLabels",
                       "requests", "limits", "nodeSelector", "capacity"):
                continue
            paths |= shape(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= shape(item, prefix)
    return paths


_TEMPLATE_HASH = "[bcdfghjklmnpqrstvwxz2456789]{6,10}"  # rand.SafeEncodeString of a hash


def _name(obj: Any) -> str:
    """A name, with what differs between servers legitimately replaced: generated
    suffixes (``gen-*``, a pod's ``-*``) and a ReplicaSet's pod-template-hash."""
    name = str(((obj or {}).get("metadata") or {}).get("name", ""))
    if name.startswith("gen-"):
        return "gen-*"
    name, hashed = re.subn(rf"^(web-d)-{_TEMPLATE_HASH}(?=$|-)", r"\1-<hash>", name)
    if hashed:
        name = re.sub(r"^(web-d-<hash>)-[a-z0-9]{5}$", r"\1-*", name)
    return name


def summarize(code: int, body: Any, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What one answer is compared on."""
    out: dict[str, Any] = {"code": code}
    if events is not None:
        out["events"] = [[e.get("type"), (e.get("object") or {}).get("kind"),
                          _name(e.get("object"))] for e in events]
        paths: set[str] = set()
        for event in events:
            paths |= shape(event)
        out["shape"] = sorted(paths)
        return out
    if not isinstance(body, dict):
        out["body"] = "text" if body else "empty"
        return out
    kind = body.get("kind")
    out["kind"] = kind
    if kind == "Status":
        out["reason"] = body.get("reason", "")
        causes = (body.get("details") or {}).get("causes") or []
        if code == 422:
            out["causes"] = sorted({c.get("field", "") for c in causes})
    if isinstance(body.get("items"), list) and kind != "APIResourceList":
        out["names"] = sorted(_name(item) for item in body["items"])
    if kind in _WORKLOAD_KINDS:
        # What the controllers concluded, not only the shape of it.
        out["conditions"] = [[c.get("type"), c.get("status"), c.get("reason")]
                             for c in (body.get("status") or {}).get("conditions") or []]
    out["shape"] = sorted(shape(body))
    return out


_WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet")


async def _read_events(response: aiohttp.ClientResponse, n: int,
                       timeout: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    buffer = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(events) < n:
        while b"\n" not in buffer:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return events
            try:
                chunk = await asyncio.wait_for(response.content.readany(), remaining)
            except asyncio.TimeoutError:
                return events
            if not chunk:
                return events
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        if line.strip():
            events.append(json.loads(line))
    return events


def _fill(text: str, ns: str, captured: Mapping[str, str]) -> str:
    text = text.replace("{ns}", ns)
    return re.sub(r"\{(?:rv|continue):([a-z0-9]+)\}",
                  lambda m: captured.get(m.group(1), "missing"), text)


def _body_bytes(body: Any, ns: str) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


async def run_scenario(target: Target, *, namespace: str | None = None,
                       watch_timeout: float = 5.0,
                       steps: tuple[Step, ...] = SCENARIO) -> dict[str, dict[str, Any]]:
    """Run ``steps`` against ``target``; the summary of each answer, by step id."""
    ns = namespace or f"fidelity-{uuid.uuid4().hex[:6]}"
    captured: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    connector = aiohttp.TCPConnector(ssl=target.ssl if target.ssl is not None else False)
    headers = {"Accept": "application/json", "User-Agent": "kubeasync-fidelity/1",
               **target.headers}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        try:
            for step in steps:
                results[step.id] = await _run_step(session, target, step, ns, captured,
                                                   watch_timeout)
        finally:
            # On a failure half-way, do not leave the namespace behind.
            if "ns-delete" not in results:
                async with session.delete(f"{target.url}/api/v1/namespaces/{ns}"):
                    pass
    return results


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


async def _run_step(session: aiohttp.ClientSession, target: Target, step: Step, ns: str,
                    captured: dict[str, str], watch_timeout: float) -> dict[str, Any]:
    path = _fill(step.path, ns, captured)
    body = step.body
    if isinstance(body, (dict, list)):
        body = json.loads(_fill(json.dumps(body), ns, captured))
    data = _body_bytes(body, ns)
    headers = {"Content-Type": step.content_type} if data is not None else {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        async with session.request(step.method, target.url + path, data=data,
                                   headers=headers) as response:
            if step.events and response.status == 200:
                events = await _read_events(response, step.events, watch_timeout)
                return summarize(response.status, None, events)
            raw = await response.read()
            code = response.status
        if code in step.until_not and loop.time() < deadline:
            await asyncio.sleep(0.25)
            continue
        if step.until is not None and loop.time() < deadline and not step.until(
                _json(raw)):
            await asyncio.sleep(0.25)
            continue
        break
    answer = _json(raw)
    if step.capture and isinstance(answer, dict):
        meta = answer.get("metadata") or {}
        value = meta.get("continue") if step.capture == "continue" else meta.get(
            "resourceVersion")
        if value:
            captured[step.capture] = value
    return summarize(code, answer)


# ----------------------------------------------------------------- comparing

#: Steps whose answers differ on purpose: what only newer servers do, or what the fake
#: does not model. Step id -> reason.
KNOWN_STEPS: dict[str, str] = {
    "cm-watch-initial-events":
        "sendInitialEvents (streaming lists) is Kubernetes >= 1.27; 1.20 answers 422 "
        "(FakeApiServer(watch_list=False) does too)",
    "ns-create-terminating-cm":
        "the fake's namespace controller empties and removes a namespace at once (403 "
        "while a real one is Terminating, 404 once it is gone)",
}

#: Key paths that differ on purpose: (kinds, path, reason). A path matches its sub-paths,
#: in objects, list items (``items.``) and watch events (``object.``) of those kinds.
KNOWN_PATHS: tuple[tuple[frozenset[str], str, str], ...] = (
    (frozenset({"Pod"}), "metadata.generation",
     "pods have metadata.generation from Kubernetes 1.33 (1.20 sets none)"),
    (frozenset({"Job"}), "metadata.generation",
     "jobs have metadata.generation from Kubernetes 1.21 (1.20 sets none)"),
    (frozenset({"Pod"}), "spec.volumes",
     "the service-account token volume (a secret on 1.20, projected from 1.21): the fake "
     "serves ServiceAccounts and Secrets but no namespace gets a default account, and its "
     "admission mounts no token"),
    (frozenset({"Pod"}), "spec.containers.volumeMounts", "the token volume's mount (above)"),
    (frozenset({"Job"}), "status.startTime",
     "the job controller's writes: the fake runs it only with simulate=True"),
    (frozenset({"Job"}), "status.active", "the job controller's writes (above)"),
    (frozenset({"APIResourceList"}), "resources.group",
     "subresources of another group (pods/eviction is policy/v1beta1, */scale autoscaling/v1):"
     " the fake serves them but its discovery names no group or version for them"),
    (frozenset({"APIResourceList"}), "resources.version", "the same subresources (above)"),
    (frozenset({"CustomResourceDefinition"}), "status.acceptedNames.listKind",
     "a CRD's create answer: kube-apiserver's naming controller accepts the names and sets "
     "the conditions a moment after the create, the fake in the create itself"),
    (frozenset({"CustomResourceDefinition"}), "status.acceptedNames.singular",
     "the names accepted at once (above)"),
    (frozenset({"CustomResourceDefinition"}), "status.conditions",
     "the conditions set at once (above)"),
    (frozenset({"APIResourceList"}), "resources.shortNames",
     "the fake serves the catalogue of 1.37, whose batch/v1 has CronJobs (short name cj); "
     "1.20's batch/v1 has only Jobs (CronJobs are batch/v1beta1 there)"),
)


def _kinds(summary: Mapping[str, Any]) -> set[str]:
    kinds = {str(e[1]) for e in summary.get("events") or ()}
    kind = summary.get("kind")
    if isinstance(kind, str):
        kinds.add(kind[:-4] if kind.endswith("List") and kind != "APIResourceList" else kind)
    return kinds


def _known_path(path: str, kinds: set[str]) -> bool:
    for prefix in ("items.", "object."):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    return any(kinds & known_kinds and (path == p or path.startswith(p + "."))
               for known_kinds, p, _reason in KNOWN_PATHS)


def compare(real: Mapping[str, Any], fake: Mapping[str, Any]) -> list[str]:
    """The differences between two summaries of one step (empty when they agree)."""
    problems = []
    kinds = _kinds(real) | _kinds(fake)
    for key in sorted(set(real) | set(fake)):
        a, b = real.get(key), fake.get(key)
        if key == "shape":
            a = {p for p in a or () if not _known_path(p, kinds)}
            b = {p for p in b or () if not _known_path(p, kinds)}
            if a != b:
                problems.append(f"shape: only real {sorted(a - b)}, only fake {sorted(b - a)}")
        elif a != b:
            problems.append(f"{key}: real {a!r}, fake {b!r}")
    return problems


def brief(summary: Mapping[str, Any] | None) -> str:
    if summary is None:
        return "-"
    text = str(summary.get("code"))
    if summary.get("reason"):
        text += f" {summary['reason']}"
    elif summary.get("kind"):
        text += f" {summary['kind']}"
    return text


def table(real: Mapping[str, Mapping[str, Any]],
          fake: Mapping[str, Mapping[str, Any]]) -> tuple[str, list[str]]:
    """A printable table (step, real, fake, verdict) and the unexpected differences."""
    rows = [("step", "real", "fake", "verdict")]
    unexpected = []
    for step in SCENARIO:
        a, b = real.get(step.id), fake.get(step.id)
        problems = compare(a or {}, b or {}) if a is not None and b is not None else ["missing"]
        if not problems:
            verdict = "same"
        elif step.id in KNOWN_STEPS:
            verdict = "differs (known)"
        else:
            verdict = "DIFFERS: " + "; ".join(problems)
            unexpected.append(f"{step.id}: " + "; ".join(problems))
        rows.append((step.id, brief(a), brief(b), verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
             for r in rows]
    return "\n".join(lines), unexpected


async def run_fake(**options: Any) -> dict[str, dict[str, Any]]:
    from kubeasync.testing import FakeApiServer

    async with FakeApiServer(**options) as server:
        return await run_scenario(Target(server.url), watch_timeout=1.0)


async def _run_both(kubeconfig: str, with_fake: bool
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]] | None]:
    real = await run_scenario(Target.from_kubeconfig(kubeconfig))
    return real, (await run_fake() if with_fake else None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBEASYNC_TEST_KUBECONFIG"))
    parser.add_argument("--record", nargs="?", const=str(RECORD), default=None,
                        help=f"write the real server's summaries there (default {RECORD})")
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error("give --kubeconfig or set KUBEASYNC_TEST_KUBECONFIG")
    real, fake = asyncio.run(_run_both(args.kubeconfig, with_fake=not args.record))
    if fake is None:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(json.dumps(real, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(real)} steps in {args.record}")
        return 0
    text, unexpected = table(real, fake)
    print(text)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
