"""No credential in a ConfigError, a repr or a traceback, whatever is wrong with the input.

Issue 18, defect 3: (b) a server URL with user:password@ showed the password in reprs and
errors; (c) a password that YAML reads as a tag (`password: !Hunter2`) was echoed in the
ConfigError. Every credential field of a kubeconfig is walked here with malformed values
that carry a marker, and the marker may appear nowhere in what the error shows.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

import kubeasync
from kubeasync import ClusterConfig, ConfigError
from kubeasync.config import kubeconfig as kubeconfig_module
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    b64,
    ca_fixture,
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)

pytestmark = pytest.mark.usefixtures("isolated_env")

MARKER = "Hunter2SECRET"
LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


def everything_shown(error: BaseException) -> str:
    """What any handler, logger or error tracker could show of an error: str and repr of
    it, its args, and of every exception chained to it (cause and context, suppressed or
    not), and the formatted traceback."""
    texts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args)]
        texts += traceback.format_exception(type(current), current, current.__traceback__)
        todo += [current.__cause__, current.__context__]
    return "\n".join(texts)


def assert_hidden(error: BaseException, *secrets: str) -> None:
    shown = everything_shown(error).lower()  # some YAML converters lowercase the value
    for secret in secrets:
        assert secret.lower() not in shown, f"{secret!r} shows in: {error}"


@pytest.fixture(params=LOADERS, ids=lambda loader: loader.__name__)
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Both of PyYAML's safe loaders: libyaml's words differ from the pure Python ones."""
    monkeypatch.setattr(kubeconfig_module, "_YamlLoader", request.param)
    yield request.param


# ---------------------------------------------------------------- server URLs


SERVERS_WITH_CREDENTIALS = [
    f"https://admin:{MARKER}@k.example:6443",
    f"https://{MARKER}@k.example",
    f"https://admin:{MARKER}/x@k.example",  # a "/" in the password moves the authority
    f"admin:{MARKER}@k.example:6443",  # no scheme: urlsplit reads "admin" as the scheme
    f"https://admin:{MARKER}@[::1]:6443/prefix",
]


@pytest.mark.parametrize("server", SERVERS_WITH_CREDENTIALS)
def test_a_server_url_with_credentials_is_refused_without_echoing_them(server: str) -> None:
    with pytest.raises(ConfigError, match="credentials in the server URL") as info:
        ClusterConfig(server=server)
    assert_hidden(info.value, MARKER)
    with pytest.raises(ConfigError, match="credentials in the server URL") as info:
        ClusterConfig.from_token(server, "some-token")  # was aiohttp's raw ValueError
    assert_hidden(info.value, MARKER)


@pytest.mark.parametrize("server", SERVERS_WITH_CREDENTIALS)
def test_a_kubeconfig_server_with_credentials_is_refused(tmp_path: Path, server: str) -> None:
    path = write_kubeconfig(tmp_path / "config", one_context_kubeconfig(server))
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig(path)
    message = str(info.value)
    assert "context 'test', cluster 'test': server: credentials in the server URL" in message
    assert "username/password" in message  # where they belong instead
    assert_hidden(info.value, MARKER)


def test_a_server_url_set_later_is_checked_too() -> None:
    config = ClusterConfig(server="https://k.example/")
    assert config.server == "https://k.example"
    with pytest.raises(ConfigError) as info:
        config.server = f"https://admin:{MARKER}@k.example"
    assert_hidden(info.value, MARKER)
    assert config.server == "https://k.example"
    assert MARKER not in repr(config)


@pytest.mark.parametrize(
    ("server", "fragment"),
    [
        ("https://k.example:64x3", "the port of 'https://k.example:64x3' is not a number"),
        ("https://k.example:99999", "is not a number from 0 to 65535"),
        ("https://k.example/?token=abc", "has a query or fragment"),
        ("https://k.example/#top", "has a query or fragment"),
        ("https://k.example/api?", "has a query or fragment"),
        ("https://k.exam\nple", "contains whitespace or control characters"),
        ("ftp://k.example", "must be an http(s) URL with a host"),
        ("https:///path", "must be an http(s) URL with a host"),
    ],
)
def test_server_urls_that_cannot_be_used(server: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterConfig(server=server)
    assert fragment in str(info.value)


async def test_proxy_credentials_never_show(ca: trustme.CA) -> None:
    config = ClusterConfig(server="https://k.example", proxy_url=f"http://me:{MARKER}@proxy:3128",
                           auth=kubeasync.BasicAuth("admin", MARKER))
    async with kubeasync.Client(config) as kube:
        shown = [repr(config), str(config), repr(kube), str(kube), repr(config.auth)]
    assert all(MARKER not in text for text in shown), shown


@pytest.mark.parametrize(
    "proxy",
    [f"socks5://me:{MARKER}@proxy:1080", f"me:{MARKER}@proxy:3128", f"{MARKER}@proxy:3128"],
)
def test_a_bad_proxy_url_is_refused_without_echoing_it(proxy: str) -> None:
    with pytest.raises(ConfigError, match="proxies are not supported") as info:
        ClusterConfig(server="https://k.example", proxy_url=proxy)
    assert_hidden(info.value, MARKER, "me:")


# ---------------------------------------------------------------- kubeconfig credential fields


def kubeconfig_text(user: str = "", cluster: str = "") -> str:
    """A kubeconfig with raw YAML lines (already indented) in its user and cluster, so
    that a value can be malformed YAML and not only a wrong type."""
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        "clusters:\n- name: test\n  cluster:\n    server: https://k.example:6443\n"
        f"{cluster}"
        "contexts:\n- name: test\n  context: {cluster: test, user: test}\n"
        f"users:\n- name: test\n  user:\n{user}"
    )


def user_field(field: str) -> Any:
    return lambda value: kubeconfig_text(user=f"    {field}: {value}\n")


def exec_env_value(value: str) -> str:
    return kubeconfig_text(user=(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: get-token\n"
        f"      env:\n      - name: AWS_SECRET_ACCESS_KEY\n        value: {value}\n"
    ))


def exec_arg(value: str) -> str:
    return kubeconfig_text(user=(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: get-token\n"
        f"      args:\n      - --token\n      - {value}\n"
    ))


def oidc_field(field: str) -> Any:
    id_token = "" if field == "id-token" else "        id-token: a-good-id-token\n"
    return lambda value: kubeconfig_text(user=(
        "    auth-provider:\n      name: oidc\n      config:\n"
        f"        client-id: k\n{id_token}        {field}: {value}\n"
    ))


def client_key_data(value: str) -> str:
    return kubeconfig_text(user=(
        f"    client-certificate-data: {b64(b'-----BEGIN CERTIFICATE-----')}\n"
        f"    client-key-data: {value}\n"
    ))


def proxy_url(value: str) -> str:
    return kubeconfig_text(cluster=f"    proxy-url: {value}\n")


CREDENTIAL_FIELDS = {
    "token": user_field("token"),
    "password": lambda value: kubeconfig_text(user=f"    username: admin\n    password: {value}\n"),
    "username": lambda value: kubeconfig_text(user=f"    username: {value}\n    password: pw\n"),
    "client-key-data": client_key_data,
    "exec.env.value": exec_env_value,
    "exec.args": exec_arg,
    "oidc.id-token": oidc_field("id-token"),
    "oidc.refresh-token": oidc_field("refresh-token"),
    "oidc.client-secret": oidc_field("client-secret"),
    "proxy-url": proxy_url,
}

# Values that break any field, each as raw YAML: YAML syntax that swallows the value
# (a tag, an alias, a reserved first character, a bad escape...), an explicit type tag
# whose converter quotes the value, and values of the wrong type.
MALFORMED_ANYWHERE = {
    "tag": f"!{MARKER}",
    "verbatim-tag": f"!<tag:{MARKER}> x",
    "alias": f"*{MARKER}",
    "int-tag": f"!!int {MARKER}",
    "bool-tag": f"!!bool {MARKER}",
    "float-tag": f"!!float {MARKER}",
    "timestamp-tag": f"!!timestamp {MARKER}",
    "reserved-at": f"@{MARKER}",
    "reserved-backtick": f"`{MARKER}",
    "reserved-percent": f"%{MARKER}",
    "bad-escape": f'"{MARKER}\\q"',
    "bad-hex-escape": f'"\\x{MARKER}"',
    "unterminated-quote": f'"{MARKER}',
    "unterminated-flow": f"[{MARKER}",
    "colon-inside": f"{MARKER}: x",
    "mapping": f"{{{MARKER}: {MARKER}}}",
    "list": f"[{MARKER}]",
}
# Values that are only wrong for some fields.
MALFORMED_FOR = {
    "token": {"space": f'"{MARKER} more"', "newline": f'"{MARKER}\\nX-Injected: 1"',
              "bell": f'"{MARKER}\\a"'},
    "oidc.id-token": {"space": f'"{MARKER} more"'},
    "client-key-data": {"not-base64": f"{MARKER}%%", "bad-padding": f"{MARKER}x",
                        "not-a-key": b64(f"not a key {MARKER}".encode())},
    "proxy-url": {"socks": f"socks5://u:{MARKER}@proxy:1080",
                  "no-scheme": f"u:{MARKER}@proxy:3128"},
}
CASES = [
    pytest.param(field, value, id=f"{field}-{name}")
    for field in CREDENTIAL_FIELDS
    for name, value in {**MALFORMED_ANYWHERE, **MALFORMED_FOR.get(field, {})}.items()
    # refresh-token and client-secret are not read: only YAML syntax breaks them
    if not (field in ("oidc.refresh-token", "oidc.client-secret")
            and name in ("mapping", "list"))
]


@pytest.mark.parametrize(("field", "value"), CASES)
def test_no_credential_value_in_any_config_error(
    tmp_path: Path, yaml_loader: Any, field: str, value: str
) -> None:
    path = tmp_path / "config"
    path.write_text(CREDENTIAL_FIELDS[field](value))
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig(path)
    assert str(path) in str(info.value)
    assert_hidden(info.value, MARKER)


def test_the_fields_are_fine_with_the_marker_as_a_plain_value(tmp_path: Path) -> None:
    """The walk above is honest: the same documents load when the value is well formed."""
    for field, document in CREDENTIAL_FIELDS.items():
        if field in ("client-key-data", "proxy-url"):
            continue  # a plain marker is not base64 PEM, nor a URL
        path = tmp_path / f"{field}.yaml"
        path.write_text(document(MARKER))
        config = ClusterConfig.from_kubeconfig(path)
        if field != "username":  # who we are is shown, as kubectl shows it; not secrets
            assert MARKER not in repr(config) and MARKER not in repr(config.auth)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("password: !Hunter2", "a value that starts with ! is read as a YAML tag: quote it"),
        ("password: *Hunter2", "a value that starts with * is read as a YAML alias"),
        ("password: @Hunter2", "a value that starts with @, ` or % must be quoted"),
        ('password: "Hunter2\\q"', "use single quotes"),
    ],
)
def test_a_yaml_error_says_how_to_fix_it(
    tmp_path: Path, yaml_loader: Any, text: str, fragment: str
) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text(user=f"    username: admin\n    {text}\n"))
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig(path)
    message = str(info.value)
    assert f"{path}: not valid YAML at line 15, column" in message
    assert fragment in message
    assert_hidden(info.value, "Hunter2")


def test_a_syntax_error_next_to_a_secret_does_not_quote_the_line(
    tmp_path: Path, yaml_loader: Any
) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text(user=f"    token: {MARKER}\n    x: [\n   bad: {{\n"))
    with pytest.raises(ConfigError, match="not valid YAML at line") as info:
        ClusterConfig.from_kubeconfig(path)
    assert_hidden(info.value, MARKER)


def test_a_control_character_in_the_file(tmp_path: Path, yaml_loader: Any) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text(user=f"    token: '{MARKER}\x00'\n"))
    with pytest.raises(ConfigError, match="a control character, or text that is not UTF-8") as info:
        ClusterConfig.from_kubeconfig(path)
    assert_hidden(info.value, MARKER)
