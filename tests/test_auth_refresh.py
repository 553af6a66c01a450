"""The credential-provider seam: caching, one fetch at a time, refresh after a 401."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import trustme

import kubeasync
from kubeasync import ClusterConfig, Credential, RefreshingAuth, RetryPolicy
from tests.helpers.fixtures import ca_fixture  # noqa: F401 - pytest fixture
from tests.helpers.tls_apiserver import bearer, serve


class VaultToken(RefreshingAuth):
    """What a user who keeps credentials elsewhere writes: a fetch() and nothing else."""

    def __init__(self, *, lifetime: float | None = None, same_token: bool = False) -> None:
        super().__init__()
        self.fetches = 0
        self.lifetime = lifetime
        self.same_token = same_token

    async def fetch(self) -> Credential:
        self.fetches += 1
        await asyncio.sleep(0.05)  # a network round trip to the vault
        number = 1 if self.same_token else self.fetches
        expires = time.time() + self.lifetime if self.lifetime is not None else None
        return Credential(headers={"Authorization": bearer(f"vault-{number}")},
                          expires_at=expires)


def config_for(url: str, ca: trustme.CA, auth: kubeasync.Auth) -> ClusterConfig:
    return ClusterConfig(server=url, ca_data=ca.cert_pem.bytes(), auth=auth)


async def test_a_provider_of_your_own(ca: trustme.CA) -> None:
    auth = VaultToken()
    async with serve(ca) as server:
        server.accept_only(bearer("vault-1"))
        async with kubeasync.Client(config_for(server.url, ca, auth)) as kube:
            await asyncio.gather(*(kube.version() for _ in range(10)))
            server.accept_only(bearer("vault-2"))
            await asyncio.gather(*(kube.version() for _ in range(10)))
    assert auth.fetches == 2
    assert repr(auth) == "VaultToken()"


async def test_expired_credentials_are_fetched_again(ca: trustme.CA) -> None:
    auth = VaultToken(lifetime=0.2)
    async with serve(ca) as server:
        server.accept_only(bearer("vault-1"), bearer("vault-2"))
        async with kubeasync.Client(config_for(server.url, ca, auth)) as kube:
            await kube.version()
            await kube.version()
            await asyncio.sleep(0.25)
            await kube.version()
    assert auth.fetches == 2
    assert server.unauthorized_answers == 0


async def test_a_refresh_that_returns_the_same_credential_gives_up_at_once(
    ca: trustme.CA,
) -> None:
    auth = VaultToken(same_token=True)
    async with serve(ca) as server:  # accepts nothing
        kube = kubeasync.Client(config_for(server.url, ca, auth), retry=RetryPolicy(max_retries=0))
        async with kube:
            with pytest.raises(kubeasync.Unauthorized):
                await kube.version()
    assert auth.fetches == 2
    assert server.unauthorized_answers == 1  # not repeated with the refused credential


async def test_a_second_401_raises_unauthorized(ca: trustme.CA, tmp_path: Path) -> None:
    auth = VaultToken()
    async with serve(ca) as server:
        server.accept_only(bearer("vault-3"))  # only the third token would do
        async with kubeasync.Client(config_for(server.url, ca, auth)) as kube:
            with pytest.raises(kubeasync.Unauthorized) as info:
                await kube.pods.get("web-0", namespace="default")
    assert info.value.code == 401
    assert auth.fetches == 2 and server.unauthorized_answers == 2


async def test_a_fixed_token_is_not_repeated_after_a_401(ca: trustme.CA) -> None:
    async with serve(ca) as server:
        config = ClusterConfig.from_token(server.url, "fixed", ca_data=ca.cert_pem.bytes())
        async with kubeasync.Client(config) as kube:
            with pytest.raises(kubeasync.Unauthorized):
                await kube.version()
    assert server.unauthorized_answers == 1


async def test_refresh_called_directly_by_waiting_callers_runs_once() -> None:
    auth = VaultToken()
    await auth.headers()
    results = await asyncio.gather(*(auth.refresh() for _ in range(5)))
    assert results == [True] * 5
    assert auth.fetches == 2


def test_a_provider_survives_being_used_from_two_event_loops() -> None:
    auth = VaultToken(lifetime=0)

    async def contend() -> None:
        await asyncio.gather(*(auth.headers() for _ in range(3)))

    asyncio.run(contend())
    asyncio.run(contend())
    assert auth.fetches >= 2


async def test_a_credential_that_arrives_expired_serves_the_requests_that_waited(
    ca: trustme.CA,
) -> None:
    auth = VaultToken(lifetime=-1)
    async with serve(ca) as server:
        server.accept_only(bearer("vault-1"), bearer("vault-2"))
        async with kubeasync.Client(config_for(server.url, ca, auth)) as kube:
            await asyncio.gather(*(kube.version() for _ in range(10)))
            assert auth.fetches == 1
            await kube.version()  # the next request does not reuse it
            assert auth.fetches == 2
    assert server.seen_authorizations == [bearer("vault-1")] * 10 + [bearer("vault-2")]


class FailingAfterFirst(VaultToken):
    async def fetch(self) -> Credential:
        if self.fetches:
            self.fetches += 1
            # Long enough for all ten 401s to arrive while it runs, even on a busy machine
            # (each of the ten may open its own TLS connection): a 401 that came after the
            # failure would rightly try the vault again.
            await asyncio.sleep(1.0)
            raise kubeasync.ConfigError("the vault is sealed")
        return await super().fetch()


async def test_a_refresh_that_fails_fails_every_request_that_waited_for_it(
    ca: trustme.CA,
) -> None:
    auth = FailingAfterFirst()
    async with serve(ca) as server:
        server.accept_only(bearer("vault-1"))
        async with kubeasync.Client(config_for(server.url, ca, auth),
                                    retry=RetryPolicy(max_retries=0)) as kube:
            await kube.version()
            server.accept_only()  # revoked: every request gets a 401 and refreshes
            results = await asyncio.gather(*(kube.version() for _ in range(10)),
                                           return_exceptions=True)
    assert all(isinstance(r, kubeasync.ConfigError) for r in results), results
    assert auth.fetches == 2  # one refresh for the ten, and its failure shared


class CountingToken(kubeasync.BearerToken):
    """A user's variation on a fixed token: it computes its header, so it is not fixed."""

    def __init__(self) -> None:
        super().__init__("unused")
        self.calls = 0

    async def headers(self) -> dict[str, str]:
        self.calls += 1
        return {"Authorization": bearer(f"counted-{self.calls}")}


def test_only_providers_that_say_so_are_fixed() -> None:
    assert kubeasync.BearerToken("t").fixed and kubeasync.NoAuth().fixed
    assert not VaultToken().fixed and not CountingToken().fixed


async def test_fixed_credentials_are_asked_once_and_changed_ones_every_time(
    ca: trustme.CA,
) -> None:
    counting = CountingToken()
    async with serve(ca) as server:
        server.accept_only(*(bearer(f"counted-{n}") for n in range(1, 4)))
        async with kubeasync.Client(config_for(server.url, ca, counting)) as kube:
            for _ in range(3):
                await kube.version()
        assert counting.calls == 3  # a provider that computes is asked for every request

        fixed = kubeasync.BearerToken("static")
        config = config_for(server.url, ca, fixed)
        server.accept_only(bearer("static"))
        async with kubeasync.Client(config) as kube:
            await kube.version()
            # A new provider set on the config is used at once, not the remembered one.
            config.auth = kubeasync.BearerToken("rotated")
            server.accept_only(bearer("rotated"))
            await kube.version()
