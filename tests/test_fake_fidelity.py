"""The embedded API server against the recorded answers of a real kube-apiserver 1.20.

The scenario and the runner live in ``tests/helpers/fidelity.py``; the record is
``tests/data/fidelity_real_1.20.json``. Re-record it against a real server with::

    KUBEASYNC_TEST_KUBECONFIG=/tmp/kubeconfig python -m tests.helpers.fidelity --record

Steps and key paths where the fake knowingly differs are listed, with their reasons, in
``KNOWN_STEPS`` and ``KNOWN_PATHS`` there (and in docs/testing.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubeasync.testing import FakeApiServer
from tests.helpers import fidelity
from tests.helpers.fidelity import KNOWN_STEPS, RECORD, SCENARIO, Target


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(RECORD.read_text())
    return data


def test_the_record_covers_the_scenario(recorded: dict[str, dict[str, Any]]) -> None:
    ids = [step.id for step in SCENARIO]
    assert len(ids) == len(set(ids)), "step ids must be unique"
    assert set(recorded) == set(ids), (
        "the scenario changed: re-record tests/data/fidelity_real_1.20.json "
        "(python -m tests.helpers.fidelity --record)"
    )
    assert set(KNOWN_STEPS) <= set(ids)


async def test_fake_answers_as_the_recorded_real_server(
    fake_apiserver: FakeApiServer, recorded: dict[str, dict[str, Any]]
) -> None:
    fake = await fidelity.run_scenario(Target(fake_apiserver.url), watch_timeout=1.0)
    text, unexpected = fidelity.table(recorded, fake)
    print(text)
    assert unexpected == [], "\n".join(unexpected)
    # A known difference that went away must leave the list.
    for step_id in KNOWN_STEPS:
        assert fidelity.compare(recorded[step_id], fake[step_id]), (
            f"{step_id} now agrees with the real server: drop it from KNOWN_STEPS")


@pytest.mark.fake_apiserver(watch_list=False)
async def test_without_watch_list_the_fake_refuses_streaming_lists_as_1_20(
    fake_apiserver: FakeApiServer, recorded: dict[str, dict[str, Any]]
) -> None:
    steps = tuple(s for s in SCENARIO if s.id in ("ns-create", "cm-watch-initial-events"))
    fake = await fidelity.run_scenario(Target(fake_apiserver.url), steps=steps,
                                       watch_timeout=1.0)
    assert fake["cm-watch-initial-events"] == recorded["cm-watch-initial-events"]
    assert fake["cm-watch-initial-events"]["code"] == 422


def test_shape_merges_list_items_and_skips_bookkeeping() -> None:
    body = {"metadata": {"name": "x", "labels": {"a": "1"},
                         "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {}}}]},
            "items": [{"a": 1}, {"b": {"c": 2}}]}
    assert fidelity.shape(body) == {
        "metadata", "metadata.name", "metadata.labels", "metadata.managedFields",
        "items", "items.a", "items.b", "items.b.c",
    }


def test_compare_ignores_known_paths_only_for_their_kinds() -> None:
    pod = {"code": 200, "kind": "Pod", "shape": ["metadata", "metadata.generation"]}
    assert fidelity.compare({**pod, "shape": ["metadata"]}, pod) == []
    service = {**pod, "kind": "Service"}
    assert fidelity.compare({**service, "shape": ["metadata"]}, service) != []
