"""The same scenario against the real API server and the embedded one, side by side.

The scenario, the runner and the known differences are in ``tests/helpers/fidelity.py``;
``tests/test_fake_fidelity.py`` holds the fake to a recorded run of this test's server.
"""

from __future__ import annotations

from tests.helpers import fidelity
from tests.helpers.fidelity import KNOWN_STEPS, SCENARIO, Target


async def test_fake_and_real_server_agree_on_the_scenario(real_kubeconfig: str) -> None:
    real = await fidelity.run_scenario(Target.from_kubeconfig(real_kubeconfig))
    fake = await fidelity.run_fake()
    text, unexpected = fidelity.table(real, fake)
    print()
    print(text)
    same = sum(1 for step in SCENARIO if not fidelity.compare(real[step.id], fake[step.id]))
    print(f"{len(SCENARIO)} steps: {same} same, {len(SCENARIO) - same} differ (known)")
    assert set(real) == set(fake) == {step.id for step in SCENARIO}
    assert unexpected == [], "\n".join(unexpected)
    # The scenario really exercised the server: errors, lists, pages and watches came back.
    assert real["cm-replace-stale"]["reason"] == "Conflict"
    assert real["pod-create-no-containers"]["causes"] == ["spec.containers"]
    assert "metadata.remainingItemCount" in real["pvc-list-page-1"]["shape"]
    assert [e[0] for e in real["cm-watch-from-rv"]["events"]][-2:] == ["DELETED", "ADDED"]
    # The real controller-manager made a ReplicaSet named <deployment>-<pod-template-hash>
    # and its pods, and concluded what the fake concludes.
    assert real["deploy-replica-sets"]["names"] == ["web-d-<hash>"]
    assert real["deploy-pods"]["names"] == ["web-d-<hash>-*"] * 2
    assert real["deploy-status"]["conditions"] == [
        ["Available", "False", "MinimumReplicasUnavailable"],
        ["Progressing", "True", "ReplicaSetUpdated"]]
    for step_id in KNOWN_STEPS:
        assert fidelity.compare(real[step_id], fake[step_id]), (
            f"{step_id} now agrees: drop it from KNOWN_STEPS")
