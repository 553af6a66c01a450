"""examples/widgets.py is what ``python -m kubeasync models`` writes today (docs/kinds.md's
blocks, which import it, are type-checked with every other docs block in test_typed_docs)."""

from __future__ import annotations

from pathlib import Path

from kubeasync.crd_models import generate_models
from kubeasync.manifests import load_all_yaml
from kubeasync.models import to_dict

CHECKOUT = Path(__file__).resolve().parent.parent


def test_the_committed_widget_models_are_current() -> None:
    crds = [to_dict(o) if not isinstance(o, dict) else o
            for o in load_all_yaml(CHECKOUT / "examples" / "manifests" / "widgets-crd.yaml")]
    expected = generate_models(crds, source="widgets-crd.yaml")
    assert (CHECKOUT / "examples" / "widgets.py").read_text() == expected, (
        "run: python -m kubeasync models examples/manifests/widgets-crd.yaml -o examples/widgets.py")
