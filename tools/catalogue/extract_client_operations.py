#!/usr/bin/env python3
"""Extract the REST operations of the official ``kubernetes`` Python client's wheel as data.

Usage::

    python tools/catalogue/extract_client_operations.py                 # pip-downloads the wheel
    python tools/catalogue/extract_client_operations.py --wheel FILE.whl

The ``kubernetes`` client is generated from the OpenAPI of one Kubernetes release
(``kubernetes==37.0.2``: Kubernetes 1.37) and holds every path of it: one method per
operation. This script reads the wheel as a zip file and parses the sources of
``kubernetes/client/api/*_api.py`` with :mod:`ast`; it executes nothing of it. For each
operation it records the HTTP method, the path template, the query parameters it accepts
and the model names of its successful answers, and writes them, sorted, to
``tools/catalogue/k8s-client-<version>-operations.json``. gen_catalogue derives each
resource's plural, scope, verbs and subresources from these paths.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = "kubernetes"
VERSION = "37.0.2"
API_FILE = re.compile(r"kubernetes/client/api/[a-z0-9_]+_api\.py")


class ExtractError(Exception):
    """The wheel's sources do not have the shape this script knows (fail loudly)."""


def download(target: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            f"{PACKAGE}=={VERSION}",
            "-d",
            str(target),
        ],
        check=True,
    )
    wheels = sorted(target.glob(f"{PACKAGE}-{VERSION}-*.whl"))
    if len(wheels) != 1:
        raise ExtractError(f"expected one {PACKAGE} {VERSION} wheel in {target}, got {wheels}")
    return wheels[0]


def _constant(node: ast.AST, where: str) -> Any:
    if not isinstance(node, ast.Constant):
        raise ExtractError(f"{where}: expected a constant, got {ast.dump(node)[:80]}")
    return node.value


def _serialize_call(func: ast.FunctionDef) -> dict[str, Any]:
    """method, path and query parameters of one ``_<operation>_serialize`` method."""
    method = path = None
    query: list[str] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "param_serialize":
            keywords = {k.arg: k.value for k in node.keywords}
            method = _constant(keywords["method"], func.name)
            path = _constant(keywords["resource_path"], func.name)
        elif (
            node.func.attr == "append"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "_query_params"
        ):
            pair = node.args[0]
            if not isinstance(pair, ast.Tuple):
                raise ExtractError(f"{func.name}: unexpected query parameter {ast.dump(pair)[:80]}")
            query.append(_constant(pair.elts[0], func.name))
    if method is None or path is None:
        raise ExtractError(f"{func.name}: no param_serialize call")
    return {"method": method, "path": path, "query": sorted(query)}


def _responses(func: ast.FunctionDef) -> dict[str, str]:
    """The successful answers' model names of one public operation method."""
    for node in ast.walk(func):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "_response_types_map"
            and isinstance(node.value, ast.Dict)
        ):
            answers = {}
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                code = _constant(key, func.name) if key is not None else None
                model = _constant(value, func.name)
                if isinstance(code, str) and code.startswith("2") and model is not None:
                    answers[code] = model
            return dict(sorted(answers.items()))
    raise ExtractError(f"{func.name}: no _response_types_map")


def operations(wheel: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not API_FILE.fullmatch(name):
                continue
            tree = ast.parse(archive.read(name).decode("utf-8"), filename=name)
            for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
                methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
                for method_name, func in sorted(methods.items()):
                    match = re.fullmatch(r"_(\w+)_serialize", method_name)
                    if not match:
                        continue
                    operation = match.group(1)
                    if operation not in methods:
                        raise ExtractError(f"{name}: {method_name} without {operation}")
                    found.append(
                        {
                            "operation": operation,
                            **_serialize_call(func),
                            "responses": _responses(methods[operation]),
                        }
                    )
    if not found:
        raise ExtractError(f"no operations found in {wheel}")
    return sorted(found, key=lambda op: (op["path"], op["method"], op["operation"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--wheel", type=Path, help=f"a {PACKAGE}=={VERSION} wheel (default: download it)"
    )
    parser.add_argument("--out", type=Path, default=HERE / f"k8s-client-{VERSION}-operations.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(Path(tmp))
        if f"{PACKAGE}-{VERSION}-" not in wheel.name:
            raise ExtractError(f"{wheel.name} is not a {PACKAGE} {VERSION} wheel")
        found = operations(wheel)
    # One operation per line: small, and a new Kubernetes release reads as a diff of paths.
    lines = ",\n".join(f"  {json.dumps(op)}" for op in found)
    text = f'{{"source": "{PACKAGE}=={VERSION} ({wheel.name})",\n "operations": [\n{lines}\n]}}\n'
    args.out.write_text(text, encoding="utf-8")
    print(
        f"extract_client_operations: wrote {len(found)} operations to {args.out}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
