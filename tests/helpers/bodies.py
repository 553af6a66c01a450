"""Minimal valid bodies of the four seed resources, shared by the embedded-server tests
and the integration tier, so both run the same requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


def job(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "app", "image": "busybox"}],
                }
            }
        },
    }


def service(name: str, **labels: str) -> dict[str, Any]:
    # "protocol" is the default, but 1.20's server-side apply needs it spelled out: without
    # it an apply answers 500 "associative list with keys has an element that omits key
    # field \"protocol\"" (a known 1.20 bug, fixed in 1.21)
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}]},
    }


def pvc(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


Builder = Callable[..., dict[str, Any]]
SEED: dict[str, Builder] = {
    "pods": pod,
    "jobs": job,
    "services": service,
    "persistent_volume_claims": pvc,
}
"""The four seed resources: the Client attribute and a body builder for each."""

seed = pytest.mark.parametrize("attribute", list(SEED))
"""Runs a test once per seed resource, with ``attribute`` the Client attribute."""
