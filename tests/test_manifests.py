"""Manifests (sans-IO): ``load_all_yaml`` and ``dump_all_yaml``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import pytest

import kubeasync
from kubeasync import ManifestError, dump_all_yaml, load_all_yaml
from kubeasync.models import ConfigMap, ObjectMeta, Pod
from kubeasync.models.apps_v1 import Deployment, DeploymentSpec
from kubeasync.models.coordination_v1 import Lease
from kubeasync.models.core_v1 import Secret, Service
from kubeasync.models.networking_v1 import Ingress

DATA = Path(__file__).resolve().parent / "data"
EVERY_KIND = DATA / "manifests" / "every-kind.yaml"

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
# a comment, then the Deployment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    released: 2024-05-01T10:00:00Z
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        env:
        - {name: MODE, value: "on"}
---
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gear
spec:
  size: 3
  enabled: yes
"""


def test_objects_are_typed_for_built_in_kinds_and_dicts_otherwise() -> None:
    objs = load_all_yaml(APP)
    assert [type(o).__name__ for o in objs] == ["Namespace", "Deployment", "dict"]
    deployment = objs[1]
    assert isinstance(deployment, Deployment)
    assert deployment.spec is not None and deployment.spec.replicas == 2
    container = deployment.spec.template.spec.containers[0]  # type: ignore[union-attr]
    assert container.env is not None and container.env[0].value == "on"
    # a timestamp-looking value stays the string it is (kubectl's YAML does the same)
    assert deployment.metadata.annotations == {"released": "2024-05-01T10:00:00Z"}
    widget = objs[2]
    assert widget == {"apiVersion": "example.com/v1", "kind": "Widget",
                      "metadata": {"name": "gear"}, "spec": {"size": 3, "enabled": True}}
    # where each came from: (document, line); the empty document is counted, not returned
    assert [objs.where(i) for i in range(3)] == [(1, 1), (2, 7), (4, 29)]
    assert objs.where(3) is None


def test_the_issue_manifest_loads_every_kind() -> None:
    objs = load_all_yaml(EVERY_KIND)
    kinds = [(type(o).__name__, o["kind"] if isinstance(o, dict) else None) for o in objs]
    assert kinds == [
        ("Namespace", None), ("Deployment", None), ("StatefulSet", None), ("Service", None),
        ("ConfigMap", None), ("Secret", None),
        ("dict", "CronJob"),  # batch/v1beta1: 1.37 has no model of it
        ("Ingress", None), ("Lease", None), ("dict", "Widget"),
        ("CustomResourceDefinition", None),
    ]
    assert objs.source == str(EVERY_KIND)
    secret, lease, ingress = objs[5], objs[8], objs[7]
    assert isinstance(secret, Secret) and secret.string_data == {"password": "s3cret"}
    assert isinstance(lease, Lease) and lease.spec is not None
    assert lease.spec.lease_duration_seconds == 15
    assert isinstance(ingress, Ingress)


def test_sources(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    from_path = load_all_yaml(path)
    assert from_path.source == str(path)
    assert load_all_yaml(APP.encode()) == from_path
    with path.open() as text_file:
        assert load_all_yaml(text_file) == from_path
    with path.open("rb") as binary_file:
        assert load_all_yaml(binary_file).source == str(path)
    assert load_all_yaml(io.StringIO(APP)) == from_path
    assert load_all_yaml("") == [] and load_all_yaml("---\n---\n") == []
    with pytest.raises(ValueError, match="source must be YAML text"):
        load_all_yaml(42)  # type: ignore[arg-type]


def test_a_path_given_as_str_is_text_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    with pytest.raises(ManifestError, match=r"give a pathlib\.Path"):
        load_all_yaml(str(path))


def test_a_list_gives_its_items() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
"""
    objs = load_all_yaml(text)
    assert [o.metadata.name for o in objs if isinstance(o, ConfigMap)] == ["a", "b"]
    assert [objs.where(i) for i in range(2)] == [(1, 4), (1, 7)]


@pytest.mark.parametrize("text,document,line,message", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [\n",
     2, 6, r"document 2: not valid YAML at line 6"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
     1, 5, r"a key is given twice"),
    ("- apiVersion: v1\n", 1, 1, r"document 1 \(line 1\): a Kubernetes object must be a mapping,"
                                 r" not a list"),
    ("apiVersion: v1\nmetadata: {name: x}\n", 1, 1, r"has no kind"),
    ("kind: ConfigMap\n", 1, 1, r"has no apiVersion"),
    ("apiVersion: 1\nkind: ConfigMap\n", 1, 1, r"must be strings"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  port: 8080\n",
     1, 6, r"v1 ConfigMap c: Expected `str`, got `int` - at `\$.data\[...\]`"),
    ("---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n"
     "    spec:\n      containers:\n      - name: a\n        ports:\n"
     "        - containerPort: http\n",
     1, 11, r"containerPort"),
    ("apiVersion: v1\nkind: List\nitems:\n- 3\n", 1, 4, r"items\[0\] of the List must be a mapping"),
])
def test_bad_input_names_the_document_and_line(
    text: str, document: int, line: int, message: str
) -> None:
    with pytest.raises(ManifestError, match=message) as info:
        load_all_yaml(text)
    assert (info.value.document, info.value.line) == (document, line)
    assert isinstance(info.value, ValueError)


def test_errors_never_quote_the_manifest(tmp_path: Path) -> None:
    # A Secret's value with a YAML tag: PyYAML's own message would quote it.
    text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  password: !Hunter2\n"
    path = tmp_path / "secret.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_all_yaml(path)
    assert "Hunter2" not in str(info.value) and info.value.__context__ is None
    assert str(info.value).startswith(f"{path}: document 1: not valid YAML at line 5")
    with pytest.raises(ManifestError) as typed:
        load_all_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: [hunter2]\n")
    assert "hunter2" not in str(typed.value)
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_all_yaml(b"apiVersion: v1\nkind: Secret\ndata: {a: \xff}\n")


def test_your_own_models_are_used_for_their_kinds() -> None:
    class Widget(kubeasync.models.KubeModel, kw_only=True):
        metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
        spec: dict[str, Any] | None = None

    widgets = kubeasync.ResourceDescriptor(group="example.com", version="v1", kind="Widget",
                                           plural="widgets", model=Widget, list_model=dict)
    objs = load_all_yaml(APP, resources=[widgets])
    assert isinstance(objs[2], Widget) and objs[2].spec == {"size": 3, "enabled": True}


# --------------------------------------------------------------------------------------------
# writing


def test_dump_writes_kubectl_style() -> None:
    # a model built in code has no apiVersion and kind: its row's are written
    deployment = Deployment(metadata=ObjectMeta(name="web", namespace="shop", labels={"a": "b"}),
                            spec=DeploymentSpec(replicas=2))
    config = {"data": {"motd": "hello\nworld\n", "empty": None}, "kind": "ConfigMap",
              "metadata": {"labels": {"x": "y"}, "name": "settings", "uid": None},
              "apiVersion": "v1", "status": {"ok": True}, "immutable": False}
    assert dump_all_yaml([deployment, config]) == """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    a: b
spec:
  replicas: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    x: y
data:
  motd: |
    hello
    world
immutable: false
status:
  ok: true
"""


def test_dump_orders_fields_and_drops_nulls() -> None:
    text = dump_all_yaml({"spec": {"a": None, "b": [1, None]}, "metadata": {"name": "x"},
                          "kind": "Thing", "apiVersion": "example.com/v1", "status": {}})
    assert text.splitlines() == [
        "apiVersion: example.com/v1", "kind: Thing", "metadata:", "  name: x", "spec:",
        "  b:", "  - 1", "  - null", "status: {}",
    ]


def test_dump_then_load_is_the_same_objects() -> None:
    objs = load_all_yaml(EVERY_KIND)
    again = load_all_yaml(dump_all_yaml(objs))
    assert list(again) == list(objs)
    # strings that YAML would read as something else stay strings
    tricky = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"},
              "data": {"a": "yes", "b": "0644", "c": "1.5", "d": "null", "e": "2024-05-01",
                       "f": "~", "g": "- x", "h": "a: b", "i": " lead", "j": "tail\n"}}
    (back,) = load_all_yaml(dump_all_yaml([tricky]))
    assert isinstance(back, ConfigMap) and back.data == tricky["data"]


def test_dump_checks_its_input() -> None:
    with pytest.raises(ValueError, match=r"objs\[1\] must be a Kubernetes object"):
        dump_all_yaml([Pod(), 3])
    assert dump_all_yaml([]) == ""
    assert dump_all_yaml(Service(metadata=ObjectMeta(name="s"))) == (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n")
