#!/usr/bin/env python3
"""Record a real API server's discovery documents as one JSON file (an input of gen_catalogue).

Usage::

    python tools/catalogue/extract_discovery.py KUBECONFIG [--out FILE]

Reads ``/version``, ``/api``, ``/api/v1``, ``/apis`` and every ``/apis/{group}/{version}``
the server lists, and writes them, sorted and with nothing else, to ``--out`` (default
``tools/catalogue/discovery-<gitVersion>.json``). The committed file was taken from the real
kube-apiserver 1.20 that ``shared/tools/real-apiserver`` builds; gen_catalogue uses it for
what only discovery has, the kubectl short names. Only the standard library and PyYAML are
used: the tool must not depend on the client it helps to generate. The kubeconfig's token or
client certificate is used for the requests and never printed or written.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import ssl
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def _named(entries: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for entry in entries:
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise SystemExit(f"extract_discovery: no {what} named {name!r} in the kubeconfig")


def _file_or_data(section: dict[str, Any], key: str, tmp: Path) -> str | None:
    data = section.get(f"{key}-data")
    if data:
        path = tmp / key
        path.write_bytes(base64.b64decode(data))
        return str(path)
    value = section.get(key)
    return str(value) if value else None


def opener(kubeconfig: Path, tmp: Path) -> tuple[str, urllib.request.OpenerDirector]:
    """The server URL and an opener that authenticates as the kubeconfig's current context."""
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    context = _named(config["contexts"], config["current-context"], "context")
    cluster = _named(config["clusters"], context["cluster"], "cluster")
    user = _named(config["users"], context["user"], "user")
    ssl_context = ssl.create_default_context(
        cafile=_file_or_data(cluster, "certificate-authority", tmp)
    )
    cert = _file_or_data(user, "client-certificate", tmp)
    if cert:
        ssl_context.load_cert_chain(cert, _file_or_data(user, "client-key", tmp))
    handler = urllib.request.HTTPSHandler(context=ssl_context)
    director = urllib.request.build_opener(handler)
    director.addheaders = [("Accept", "application/json")]
    if user.get("token"):
        director.addheaders.append(("Authorization", f"Bearer {user['token']}"))
    return str(cluster["server"]).rstrip("/"), director


def discovery(server: str, director: urllib.request.OpenerDirector) -> dict[str, Any]:
    def get(path: str) -> Any:
        with director.open(server + path, timeout=30) as answer:
            return json.loads(answer.read())

    documents: dict[str, Any] = {"/version": get("/version"), "/api": get("/api")}
    for version in documents["/api"]["versions"]:
        documents[f"/api/{version}"] = get(f"/api/{version}")
    documents["/apis"] = get("/apis")
    for group in documents["/apis"]["groups"]:
        for version in group["versions"]:
            path = f"/apis/{version['groupVersion']}"
            documents[path] = get(path)
    return dict(sorted(documents.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("kubeconfig", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server, director = opener(args.kubeconfig, Path(tmp))
        documents = discovery(server, director)
    version = str(documents["/version"]["gitVersion"])
    if not re.fullmatch(r"v[0-9A-Za-z.+-]+", version):
        raise SystemExit(f"extract_discovery: unexpected gitVersion {version!r}")
    out: Path = args.out or HERE / f"discovery-{version.split('+')[0]}.json"
    out.write_text(json.dumps(documents, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"extract_discovery: wrote {len(documents)} documents to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
