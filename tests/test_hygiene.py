"""The suite's own guard: a test that leaves a client session open fails.

pyproject.toml turns ResourceWarning and unraisable exceptions into errors; this checks that
a client never closed really makes a test fail (with kubeasync's own warning, which says
what to do, not aiohttp's), and that closing the client releases everything.
"""

from __future__ import annotations

import pytest

LEAKY = '''
import gc
import kubeasync

import pytest

def refused_client():
    return kubeasync.Client(kubeasync.ClusterConfig(server="http://127.0.0.1:9"),
                            retry=kubeasync.RetryPolicy(max_retries=0))

async def test_leaks_a_session():
    kube = refused_client()
    with pytest.raises(kubeasync.TransportError):
        await kube.version()  # opens the connection pool
    del kube
    gc.collect()

async def test_closes_its_session():
    async with refused_client() as kube:
        with pytest.raises(kubeasync.TransportError):
            await kube.version()
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
    # kubeasync's own warning, naming the client and the fix, instead of aiohttp's
    result.stdout.fnmatch_lines(
        ["*ResourceWarning: <kubeasync.Client http://127.0.0.1:9 namespace='default'> was never"
         " closed: use `async with kubeasync.Client(...) as kube:` or `await kube.close()`*"]
    )
    assert "Unclosed client session" not in result.stdout.str()
    assert "Unclosed connector" not in result.stdout.str()
