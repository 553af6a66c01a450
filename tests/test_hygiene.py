"""The suite's own guard: a test that leaves a client session open fails.

pyproject.toml turns ResourceWarning and unraisable exceptions into errors; this checks that
aiohttp's "Unclosed client session" really makes a test fail, and that closing the client
releases everything.
"""

from __future__ import annotations

import pytest

LEAKY = '''
import gc
import kubeasync

async def test_leaks_a_session():
    kube = kubeasync.Client(kubeasync.ClusterConfig(server="http://127.0.0.1:9"))
    kube.session.http  # opens the aiohttp session
    del kube
    gc.collect()

async def test_closes_its_session():
    async with kubeasync.Client(kubeasync.ClusterConfig(server="http://127.0.0.1:9")) as kube:
        kube.session.http
'''


def test_an_unclosed_session_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings =\n"
        "    error::ResourceWarning\n"
        "    error::pytest.PytestUnraisableExceptionWarning\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Unclosed client session*"])
