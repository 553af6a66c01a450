"""Impersonation: the kubeconfig's as / as-uid / as-groups / as-user-extra, the
programmatic Impersonation, and the Impersonate-* headers they give."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubeasync import ClusterConfig, ConfigError
from kubeasync.config import Impersonation
from kubeasync.config.impersonation import escape_extra_key
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)

pytestmark = pytest.mark.usefixtures("isolated_env")

SERVER = "https://k.example:6443"
TOKEN = "tok-SECRET-impersonator"
# RFC 7230's token characters: what a header name may contain.
HEADER_NAME_CHARACTERS = set(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def load(tmp_path: Path, **user: Any) -> ClusterConfig:
    path = write_kubeconfig(tmp_path / "config",
                            one_context_kubeconfig(SERVER, user={"token": TOKEN, **user}))
    return ClusterConfig.from_kubeconfig(path)


def test_kubeconfig_impersonation_fields(tmp_path: Path) -> None:
    config = load(tmp_path, **{
        "as": "jane",
        "as-uid": "a1b2-c3",
        "as-groups": ["developers", "system:authenticated"],
        "as-user-extra": {"scopes": ["view", "edit"], "example.com/team": ["blue"]},
    })
    assert config.impersonate == Impersonation(
        "jane",
        groups=("developers", "system:authenticated"),
        uid="a1b2-c3",
        extra={"scopes": ("view", "edit"), "example.com/team": ("blue",)},
    )
    assert config.impersonation_headers() == (
        ("Impersonate-User", "jane"),
        ("Impersonate-Uid", "a1b2-c3"),
        ("Impersonate-Group", "developers"),
        ("Impersonate-Group", "system:authenticated"),
        ("Impersonate-Extra-scopes", "view"),
        ("Impersonate-Extra-scopes", "edit"),
        ("Impersonate-Extra-example.com%2Fteam", "blue"),
    )
    # The credential is still the user's own: impersonation is on top of it.
    assert repr(config.auth) == "BearerToken(<hidden>)"


def test_only_as_gives_only_the_user_header(tmp_path: Path) -> None:
    config = load(tmp_path, **{"as": "system:serviceaccount:ci:deployer"})
    assert config.impersonation_headers() == (
        ("Impersonate-User", "system:serviceaccount:ci:deployer"),
    )


def test_no_impersonation_no_headers(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.impersonate is None
    assert config.impersonation_headers() == ()
    assert ClusterConfig(server=SERVER).impersonation_headers() == ()


def test_impersonation_in_code() -> None:
    config = ClusterConfig.from_token(
        SERVER, TOKEN, impersonate=Impersonation("jane", groups=["dev", "ops"])
    )
    assert config.impersonation_headers() == (
        ("Impersonate-User", "jane"),
        ("Impersonate-Group", "dev"),
        ("Impersonate-Group", "ops"),
    )
    direct = ClusterConfig(server=SERVER, impersonate=Impersonation("bob", uid="42"))
    assert direct.impersonation_headers() == (("Impersonate-User", "bob"),
                                              ("Impersonate-Uid", "42"))
    direct.impersonate = None
    assert direct.impersonation_headers() == ()


def test_the_repr_shows_who_is_impersonated_but_no_secret() -> None:
    config = ClusterConfig.from_token(
        SERVER, TOKEN, impersonate=Impersonation("jane", groups=["dev"], extra={"k": ["v"]})
    )
    shown = repr(config)
    assert "impersonate=Impersonation(user='jane', groups=('dev',), extra={'k': ('v',)})" in shown
    assert TOKEN not in shown and TOKEN not in str(config)


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("scopes", "scopes"),
        ("example.com/team", "example.com%2Fteam"),
        ("100%", "100%25"),  # "%" itself, so that the server's PathUnescape cannot fail
        ("a b", "a%20b"),
        ("a:b=c", "a%3Ab%3Dc"),
        ("ключ", "%D0%BA%D0%BB%D1%8E%D1%87"),  # UTF-8 bytes, upper-case hex
        ("!#$&'*+-.^_`|~", "!#$&'*+-.^_`|~"),  # header-name characters stay
    ],
)
def test_extra_keys_are_escaped_as_client_go_does(key: str, escaped: str) -> None:
    assert escape_extra_key(key) == escaped
    assert Impersonation("u", extra={key: ["v"]}).headers()[-1] == (
        f"Impersonate-Extra-{escaped}", "v"
    )


def test_every_escaped_key_is_a_header_name_and_unescapes_to_the_key() -> None:
    keys = ["".join(map(chr, range(1, 128))), "é/ü%20x", "日本", "\U0001f600 smile"]
    for key in keys:
        escaped = escape_extra_key(key)
        assert set(escaped) <= HEADER_NAME_CHARACTERS
        # The API server lowercases the name, then url.PathUnescape()s it.
        assert urllib.parse.unquote(escaped.lower(), errors="strict") == key.lower()


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Impersonation(""), "Impersonation: user: is empty"),
        (lambda: Impersonation("jane\r\nX-Evil: 1"), "user: contains control characters"),
        (lambda: Impersonation(" jane"), "user: starts or ends with whitespace"),
        (lambda: Impersonation("jane", groups="dev"), "groups: must be a list of strings"),
        (lambda: Impersonation("jane", groups=["dev", ""]), "groups[1]: is empty"),
        (lambda: Impersonation("jane", groups=["dev", 7]), "groups[1]: must be a string"),
        (lambda: Impersonation("jane", uid="\x00"), "uid: contains control characters"),
        (lambda: Impersonation("jane", extra={"scopes": "view"}),
         "extra['scopes']: must be a list of strings"),
        (lambda: Impersonation("jane", extra={"": ["v"]}), "every key must be a non-empty"),
        (lambda: Impersonation("jane", extra={"Scopes": ["a"], "scopes": ["b"]}),
         "differ only in case"),
        (lambda: Impersonation("jane", extra=[("k", ["v"])]), "extra: must be a mapping"),
    ],
)
def test_bad_impersonation_in_code(build: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert fragment in str(info.value)


def test_impersonate_must_be_an_impersonation() -> None:
    with pytest.raises(ConfigError, match="impersonate: must be an Impersonation or None"):
        ClusterConfig(server=SERVER, impersonate="jane")  # type: ignore[arg-type]
    config = ClusterConfig(server=SERVER)
    with pytest.raises(ConfigError, match="impersonate: must be an Impersonation or None"):
        config.impersonate = "jane"  # type: ignore[assignment]
    assert config.impersonate is None


@pytest.mark.parametrize(
    ("user", "fragment"),
    [
        ({"as-uid": "42"}, "as-uid: needs as, the user to impersonate"),
        ({"as-user-extra": {"k": ["v"]}}, "as-user-extra: needs as"),
        ({"as": 5}, "as: must be a string, not a number"),
        ({"as": "jane", "as-groups": ["a", None]}, "as-groups[1]: must be a string"),
        ({"as": "jane", "as-groups": {"a": 1}}, "as-groups: must be a list, not a mapping"),
        ({"as": "jane", "as-user-extra": ["k"]}, "as-user-extra: must be a mapping"),
        ({"as": "jane", "as-user-extra": {"k": ["v", "\x1b[31m"]}},
         "as-user-extra['k'][1]: contains control characters"),
        ({"as": "jane", "as-uid": "42 "}, "as-uid: starts or ends with whitespace"),
    ],
)
def test_bad_impersonation_in_a_kubeconfig(
    tmp_path: Path, user: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **user)
    message = str(info.value)
    assert str(tmp_path / "config") in message and "context 'test', user 'test'" in message
    assert fragment in message
    assert TOKEN not in message


@pytest.fixture
async def header_echo() -> AsyncIterator[tuple[str, list[tuple[str, str]]]]:
    """An HTTP server that records the headers of the request it gets."""
    received: list[tuple[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        received.extend(request.headers.items())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/", received
    finally:
        await runner.cleanup()


async def test_the_header_pairs_reach_a_server_as_repeated_headers(
    header_echo: tuple[str, list[tuple[str, str]]],
) -> None:
    """What the transport does with them: send every pair (aiohttp takes a list of
    pairs), so that repeated names arrive as separate headers."""
    url, received = header_echo
    impersonation = Impersonation(
        "jané", groups=["dev", "ops,qa"], extra={"example.com/Team": ["blue", "green"]}
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=list(impersonation.headers())) as response,
    ):
        assert response.status == 200
    got = [(name.lower(), value) for name, value in received if name.startswith("Impersonate")]
    assert got == [
        ("impersonate-user", "jané"),
        ("impersonate-group", "dev"),
        ("impersonate-group", "ops,qa"),  # one group with a comma, not two
        ("impersonate-extra-example.com%2fteam", "blue"),
        ("impersonate-extra-example.com%2fteam", "green"),
    ]
    extra_key = got[-1][0].removeprefix("impersonate-extra-")
    assert urllib.parse.unquote(extra_key) == "example.com/team"  # the server lowercases
