"""Credentials and TLS against a REAL kube-apiserver (issue 6, item 4).

The kubeconfig's bearer token and CA work; a wrong token is a typed 401; a CA that did not
sign the server's certificate, or a server name the certificate does not carry, fails the
handshake with a :class:`kubeasync.TransportError` that says so and names the server; and
the token never shows up in a message or a repr.
"""

from __future__ import annotations

import dataclasses

import pytest
import trustme

import kubeasync
from kubeasync.config.auth import BearerToken


async def bearer_token(config: kubeasync.ClusterConfig) -> str:
    authorization = (await config.auth.headers()).get("Authorization", "")
    assert authorization.startswith("Bearer "), "the integration kubeconfig uses a bearer token"
    return authorization.removeprefix("Bearer ")


async def test_the_kubeconfig_token_works_over_tls_with_its_ca(
    real_config: kubeasync.ClusterConfig,
) -> None:
    assert real_config.server.startswith("https://")
    assert real_config.verify_tls and real_config.ca_data, "TLS verified with the given CA"
    async with kubeasync.Client(real_config) as kube:
        version = await kube.version()
        assert version.major == "1" and version.git_version.startswith("v1.")
        namespaces = await kube.namespaces.list()
        assert {"default", "kube-system"} <= {n.metadata.name for n in namespaces.items}
        services = await kube.services.list(namespace="default",
                                            field_selector="metadata.name=kubernetes")
        assert [s.metadata.name for s in services.items] == ["kubernetes"]


async def test_a_wrong_token_is_unauthorized(real_config: kubeasync.ClusterConfig) -> None:
    wrong = dataclasses.replace(real_config, auth=BearerToken("not-the-right-token-42"))
    async with kubeasync.Client(wrong) as kube:
        with pytest.raises(kubeasync.Unauthorized) as listing:
            await kube.pods.list(namespace="default")
        with pytest.raises(kubeasync.Unauthorized) as version:
            await kube.version()
    for error in (listing.value, version.value):
        assert type(error) is kubeasync.Unauthorized
        assert error.code == 401 and error.reason == "Unauthorized"
        assert "not-the-right-token-42" not in str(error) + repr(error)
        assert "not-the-right-token-42" not in repr(error.status)
    assert str(listing.value) == "401 Unauthorized: Unauthorized (GET /api/v1/namespaces/default/pods)"


async def test_a_wrong_ca_fails_tls_verification_clearly(
    real_config: kubeasync.ClusterConfig,
) -> None:
    other_ca = trustme.CA()
    wrong = dataclasses.replace(real_config, ca_data=other_ca.cert_pem.bytes())
    async with kubeasync.Client(wrong) as kube:
        with pytest.raises(kubeasync.TransportError) as info:
            await kube.version()
        with pytest.raises(kubeasync.TransportError) as streamed:
            async for _ in kube.pods.watch_stream(namespace="default", timeout_seconds=1):
                pass
    for error in (info.value, streamed.value):
        assert not isinstance(error, kubeasync.ApiError)
        text = str(error)
        assert "TLS verification of the server failed" in text
        assert "certificate verify failed" in text
        assert real_config.server in text  # names the server
        # No aiohttp exception rides along: its request info carries the headers.
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
        assert "Traceback" not in text
    assert str(info.value).startswith(f"GET {real_config.server}/version: ")


async def test_a_server_name_the_certificate_lacks_fails_tls_verification(
    real_config: kubeasync.ClusterConfig,
) -> None:
    elsewhere = dataclasses.replace(real_config, tls_server_name="not-this-server.example")
    async with kubeasync.Client(elsewhere) as kube:
        with pytest.raises(kubeasync.TransportError) as info:
            await kube.namespaces.list()
    text = str(info.value)
    assert "TLS verification of the server failed" in text
    assert "not-this-server.example" in text
    assert real_config.server in text


async def test_no_token_in_any_message_or_repr(real_config: kubeasync.ClusterConfig) -> None:
    token = await bearer_token(real_config)
    assert len(token) >= 16
    seen: list[str] = [repr(real_config), str(real_config), repr(real_config.auth)]

    async with kubeasync.Client(real_config) as kube:
        seen += [repr(kube), repr(kube.pods), repr(kube.session.config)]
        with pytest.raises(kubeasync.NotFound) as missing:
            await kube.pods.get("nope", namespace="default")
        with pytest.raises(kubeasync.Forbidden) as forbidden:  # NamespaceLifecycle/RBAC refusal
            await kube.namespaces.delete("kube-system")
        errors: list[BaseException] = [missing.value, forbidden.value]

    wrong_ca = dataclasses.replace(real_config, ca_data=trustme.CA().cert_pem.bytes())
    async with kubeasync.Client(wrong_ca) as kube:
        with pytest.raises(kubeasync.TransportError) as tls:
            await kube.version()
        errors.append(tls.value)
    # a token that is wrong by one character: a message must not echo it either
    near = token[:-1] + ("x" if token[-1] != "x" else "y")
    async with kubeasync.Client(dataclasses.replace(real_config, auth=BearerToken(near))) as kube:
        with pytest.raises(kubeasync.Unauthorized) as unauthorized:
            await kube.version()
        errors.append(unauthorized.value)
        seen.append(repr(kube.config))

    for error in errors:
        seen += [str(error), repr(error), repr(getattr(error, "status", None))]
    for text in seen:
        assert token not in text and near not in text
        assert token[:12] not in text
    assert "hidden" in repr(real_config.auth)
