"""The pytest plugin, as a user's test suite enables it (run in a separate pytest)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CONFTEST = """
import pytest

pytest_plugins = ["kubeasync.testing.pytest_plugin"]


@pytest.fixture
def fake_apiserver_options():
    return {"namespaces": ("default", "team-a")}
"""

TESTS = """
import pytest

import kubeasync
from kubeasync.testing import FakeApiServer

pytestmark = pytest.mark.asyncio  # strict mode: the plugin's fixtures still work


async def test_kube_is_connected(kube, fake_apiserver):
    assert isinstance(fake_apiserver, FakeApiServer)
    assert isinstance(kube, kubeasync.Client)
    names = [n.metadata.name for n in (await kube.namespaces.list()).items]
    assert names == ["default", "team-a"]  # from the overridden options fixture
    await kube.config_maps.create({"metadata": {"name": "mine"}})
    assert fake_apiserver.get_object("configmaps", "mine") is not None


async def test_each_test_gets_a_fresh_server(kube):
    assert (await kube.config_maps.list()).items == []


@pytest.mark.fake_apiserver(simulate=True, token="s3cret")
async def test_marker_options(fake_apiserver, kube):
    assert fake_apiserver.simulate and fake_apiserver.token == "s3cret"
    await kube.namespaces.list()
"""


def test_plugin_in_a_user_suite(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_user=TESTS)
    pytester.makeini("[pytest]\nasyncio_mode = strict\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
