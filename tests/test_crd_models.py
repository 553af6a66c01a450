"""``python -m kubeasync models CRD.yaml``: typed models written from a CRD's schema."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import kubeasync
from kubeasync.crd_models import CRDModelError, generate_models, snake_case
from kubeasync.models import to_dict
from kubeasync.testing import FakeApiServer

REPO = Path(__file__).resolve().parent.parent
CRD = Path(__file__).resolve().parent / "data" / "crd" / "widgets.yaml"

WIDGET = {
    "apiVersion": "example.com/v1", "kind": "Widget",
    "metadata": {"name": "gear", "namespace": "shop", "labels": {"a": "b"}},
    "spec": {
        "size": 3, "replicas": 2, "color": "red", "port": "http", "ratio": 0.5,
        "enabled": True, "class": "big", "x-legacy-name": "old", "podIPs": ["10.0.0.1"],
        "parts": [{"name": "cog", "count": 4, "madeAt": "2024-05-01T10:00:00Z"}],
        "labels": {"tier": "gold"}, "limits": {"cpu": {"max": 2}},
        "config": {"known": "k", "unknown": {"nested": [1, "two", None]}},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
        "anything": [1, {"x": None}],
    },
    "status": {"replicas": 1, "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"}]},
}


def crds() -> list[dict[str, Any]]:
    return [to_dict(o) if not isinstance(o, dict) else o for o in kubeasync.load_all_yaml(CRD)]


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def widgets(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("crd") / "widgets_models.py"
    subprocess.run([sys.executable, "-m", "kubeasync", "models", str(CRD), "-o", str(out)],
                   check=True, capture_output=True, cwd=REPO)
    return load_module(out, "widgets_models")


def test_the_models_round_trip_a_custom_resource(widgets: ModuleType) -> None:
    widget = msgspec.json.decode(json.dumps(WIDGET), type=widgets.Widget)
    assert widget.spec.size == 3 and widget.spec.class_ == "big"
    assert widget.spec.x_legacy_name == "old" and widget.spec.pod_ips == ["10.0.0.1"]
    assert widget.spec.parts[0].made_at == "2024-05-01T10:00:00Z"
    assert widget.spec.limits["cpu"].max == 2
    # objects that keep unknown fields are dicts: nothing is lost
    assert widget.spec.config == {"known": "k", "unknown": {"nested": [1, "two", None]}}
    assert widget.status.conditions[0].type == "Ready"
    assert widget.metadata.labels == {"a": "b"}
    assert msgspec.json.decode(msgspec.json.encode(widget)) == WIDGET
    listing = msgspec.json.decode(
        json.dumps({"apiVersion": "example.com/v1", "kind": "WidgetList", "items": [WIDGET],
                    "metadata": {"resourceVersion": "5"}}), type=widgets.WidgetList)
    assert listing.items[0].spec.color == "red" and listing.metadata.resource_version == "5"
    # never None, as in the built-in models
    empty = msgspec.json.decode(b'{"metadata": null, "kind": "Widget"}', type=widgets.Widget)
    assert empty.metadata == kubeasync.models.ObjectMeta()
    assert msgspec.json.decode(b'{"items": null}', type=widgets.WidgetList).items == []


def test_the_descriptors_of_every_served_version(widgets: ModuleType) -> None:
    storage = widgets.WIDGETS
    assert (storage.group, storage.version, storage.kind, storage.plural) == (
        "example.com", "v1", "Widget", "widgets")
    assert storage.namespaced and storage.subresources == {"status", "scale"}
    assert storage.short_names == ("wd",)
    assert storage.model is widgets.Widget and storage.list_model is widgets.WidgetList
    other = widgets.WIDGETS_V1BETA1
    assert other.version == "v1beta1" and other.model is widgets.WidgetV1beta1
    assert widgets.WidgetV1beta1Spec.__struct_fields__ == ("size",)
    assert not hasattr(widgets, "WIDGETS_V1ALPHA1")  # not served
    kube = kubeasync.Client(kubeasync.ClusterConfig(server="http://127.0.0.1:1"))
    api = kube.resource(storage)
    assert isinstance(api, kubeasync.DeploymentApi)  # scale and status


def test_the_module_passes_mypy_strict(tmp_path: Path) -> None:
    module = tmp_path / "widgets_models.py"
    module.write_text(generate_models(crds(), source="widgets.yaml"))
    user = tmp_path / "user.py"
    user.write_text(
        "import kubeasync\n"
        "from widgets_models import WIDGETS, Widget, WidgetSpec, widgets_api\n\n"
        "async def main(kube: kubeasync.Client) -> None:\n"
        "    api = widgets_api(kube)\n"
        "    widget = await api.get('gear')\n"
        "    size: int | None = widget.spec.size if widget.spec else None\n"
        "    await api.create(Widget(spec=WidgetSpec(size=size)))\n"
        "    scale = await api.get_scale('gear')\n"
        "    await api.patch_status('gear', {'status': {'replicas': 1}})\n"
        "    plain = kube.resource(WIDGETS)\n"
        "    reveal_type(widget)\n"
        "    reveal_type(api)\n"
        "    reveal_type(plain)\n"
        "    print(scale)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module), str(user)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert 'Revealed type is "widgets_models.Widget"' in result.stdout, result.stdout
    assert ('Revealed type is "kubeasync.kinds._apis.DeploymentApi[widgets_models.Widget,'
            ' widgets_models.WidgetList]"') in result.stdout, result.stdout
    assert ('Revealed type is "kubeasync.api.resource.ResourceApi[widgets_models.Widget,'
            ' widgets_models.WidgetList]"') in result.stdout, result.stdout
    assert result.stdout.count("error:") == 0, result.stdout


@pytest.mark.fake_apiserver()
async def test_the_models_work_against_a_server(widgets: ModuleType) -> None:
    async with FakeApiServer(resources=[*kubeasync.kinds.SEED_RESOURCES, widgets.WIDGETS]) as server, \
            kubeasync.Client(server.config()) as kube:
        api = widgets.widgets_api(kube)
        assert api is kube.resource(widgets.Widget)
        mine = {**WIDGET, "metadata": {"name": "gear"}}
        created = await api.create(msgspec.json.decode(json.dumps(mine), type=widgets.Widget))
        assert isinstance(created, widgets.Widget) and created.metadata.uid
        assert created.spec.limits["cpu"].max == 2
        found = await kube.resource_for("wd")
        assert found is api
        applied = await kube.apply({**WIDGET, "metadata": {"name": "cog"}}, field_manager="me")
        assert isinstance(applied, widgets.Widget) and applied.spec.parts[0].count == 4
        loaded = kubeasync.load_all_yaml(kubeasync.dump_all_yaml([WIDGET]),
                                         resources=[widgets.WIDGETS])
        assert isinstance(loaded[0], widgets.Widget)


def test_the_command_writes_to_stdout_and_reads_stdin() -> None:
    text = CRD.read_text()
    result = subprocess.run([sys.executable, "-m", "kubeasync", "models", "-"], input=text,
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout == generate_models(crds())
    assert "class Widget(KubeModel, kw_only=True):" in result.stdout


@pytest.mark.parametrize("text,message", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
     "document 1 is not a CustomResourceDefinition"),
    ("", "no CustomResourceDefinition in the input"),
    ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
     "  name: w.example.com\nspec:\n  group: example.com\n  names: {kind: W, plural: ws}\n"
     "  versions: [{name: v1, served: false, storage: true}]\n", "no served version"),
    ("kind: [\n", "not valid YAML"),
])
def test_bad_input_is_a_clear_error(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "crd.yaml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "kubeasync", "models", str(path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("kubeasync models: error: ") and message in result.stderr
    missing = subprocess.run([sys.executable, "-m", "kubeasync", "models", str(tmp_path / "no")],
                             capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2 and "No such file" in missing.stderr


def test_two_crds_with_one_kind_are_refused() -> None:
    one = crds()[0]
    other = json.loads(json.dumps(one))
    other["metadata"]["name"] = "widgets.other.com"
    other["spec"]["group"] = "other.com"
    with pytest.raises(CRDModelError, match="separate files"):
        generate_models([one, other])


def test_attribute_names_follow_the_generated_models() -> None:
    spec = importlib.util.spec_from_file_location("gen_models", REPO / "tools" / "gen_models.py")
    assert spec is not None and spec.loader is not None
    gen_models = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_models", gen_models)
    spec.loader.exec_module(gen_models)
    defs = gen_models.load_definitions(gen_models.DEFAULT_DEFINITIONS)
    wires = {w for d in defs.values() for w in (d.get("properties") or {})}
    assert len(wires) > 900
    for wire in wires:
        assert snake_case(wire) == gen_models.snake_case(wire), wire
