"""Typed capabilities: an API has exactly the methods of its resource's subresources, at
run time and for mypy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kubeasync
from kubeasync.api.capabilities import CAPABILITIES, api_class
from kubeasync.core.descriptor import Wire

CONFIG = kubeasync.ClusterConfig(server="http://127.0.0.1:1")


def test_methods_follow_the_subresources() -> None:
    kube = kubeasync.Client(CONFIG)
    assert isinstance(kube.pods, kubeasync.PodApi)
    for method in ("logs", "stream_logs", "evict", "get_status", "replace_status",
                   "patch_status", "exec", "exec_stream", "attach", "port_forward", "open_port"):
        assert hasattr(kube.pods, method), method
    assert hasattr(kube.jobs, "get_status") and not hasattr(kube.jobs, "logs")
    for method in ("get_status", "replace_status", "patch_status", "logs", "evict", "exec",
                   "port_forward"):
        assert not hasattr(kube.config_maps, method), method
    assert "get_status" not in dir(kube.config_maps)
    assert kube.pods.capabilities == {"status", "log", "eviction", "exec", "attach",
                                      "portforward"}
    assert kube.config_maps.capabilities == frozenset()


def test_a_custom_resource_gets_the_capabilities_of_its_subresources() -> None:
    kube = kubeasync.Client(CONFIG)
    plain = kube.resource(kubeasync.custom_resource(
        group="example.com", version="v1", kind="Widget", plural="widgets", subresources=()))
    assert not hasattr(plain, "get_status")
    with_status = kube.resource(kubeasync.custom_resource(
        group="example.com", version="v1", kind="Gadget", plural="gadgets"))
    assert isinstance(with_status, kubeasync.StatusApi)
    # A subresource no module knows adds nothing (and is not an error).
    proxied = kubeasync.custom_resource(group="example.com", version="v1", kind="Thing",
                                        plural="things", subresources=("status", "proxy"))
    assert api_class(proxied) is kubeasync.StatusApi


def test_an_unusual_combination_is_composed_once() -> None:
    descriptor = kubeasync.custom_resource(group="example.com", version="v1", kind="Odd",
                                           plural="odds", subresources=("log", "eviction"))
    cls = api_class(descriptor)
    assert issubclass(cls, kubeasync.LogApi) and issubclass(cls, kubeasync.EvictionApi)
    assert not issubclass(cls, kubeasync.StatusApi)
    assert api_class(descriptor) is cls


def test_each_capability_describes_its_wire() -> None:
    assert CAPABILITIES["status"].wire is Wire.JSON
    assert CAPABILITIES["log"].wire is Wire.TEXT_STREAM
    assert CAPABILITIES["eviction"].methods == ("evict",)
    for name in ("exec", "attach", "portforward"):
        assert CAPABILITIES[name].wire is Wire.WEBSOCKET


def test_the_same_resource_gives_the_same_api() -> None:
    kube = kubeasync.Client(CONFIG)
    assert kube.pods is kube.pods
    assert kube.resource(kubeasync.PODS) is kube.pods
    from kubeasync.models import ConfigMap

    assert kube.resource(ConfigMap) is kube.config_maps
    with pytest.raises(ValueError, match="not the model of a built-in resource"):
        kube.resource(int)


def test_mypy_sees_the_same_methods(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent("""
        import kubeasync

        async def main(kube: kubeasync.Client) -> None:
            await kube.pods.get_status("p")
            await kube.pods.evict("p")
            text: str = await kube.pods.logs("p")
            result = await kube.pods.exec("p", ["true"])
            code: int = result.exit_code
            async with kube.pods.port_forward("p", 80) as forward:
                port: int = forward.local_port
            await kube.config_maps.get_status("c")
            await kube.jobs.logs("j")
    """))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True, text=True, check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, result.stdout
    assert '"ResourceApi[ConfigMap, ConfigMapList]" has no attribute "get_status"' in errors[0]
    assert '"StatusApi[Job, JobList]" has no attribute "logs"' in errors[1]


