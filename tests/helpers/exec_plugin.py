"""A client.authentication.k8s.io exec credential plugin for the tests.

Driven by environment variables (set through the kubeconfig's exec.env, which also tests
that env reaches the plugin):

- PLUGIN_STATE: a folder; run number N creates ``run-N`` and saves the exec info it got
  in ``info-N.json`` and its pid in ``pid-N``.
- PLUGIN_MODE: token (default) | cert | fail | garbage | sleep | wrong-version | empty
- PLUGIN_TOKEN: the token prefix; the token printed is ``<prefix>-<N>``.
- PLUGIN_FIXED_TOKEN: if set, the token printed is exactly this, on every run.
- PLUGIN_EXPIRES_IN: seconds until expirationTimestamp (none if unset; negative for a
  credential that has already expired).
- PLUGIN_DELAY: seconds to wait before answering.
- PLUGIN_ECHO_ENV: in fail mode, also print the value of this variable on stderr.
- PLUGIN_CERT / PLUGIN_KEY: PEM files printed in cert mode.
"""

import datetime
import json
import os
import sys
import time


def next_run(state: str) -> int:
    number = 1
    while True:
        try:
            fd = os.open(os.path.join(state, f"run-{number}"), os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            number += 1
            continue
        os.close(fd)
        return number


def main() -> int:
    state = os.environ["PLUGIN_STATE"]
    run = next_run(state)
    info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
    with open(os.path.join(state, f"info-{run}.json"), "w") as f:
        json.dump({"info": info, "stdin": sys.stdin.read()}, f)
    with open(os.path.join(state, f"pid-{run}"), "w") as f:
        f.write(str(os.getpid()))
    mode = os.environ.get("PLUGIN_MODE", "token")
    time.sleep(float(os.environ.get("PLUGIN_DELAY", "0")))
    token = os.environ.get("PLUGIN_FIXED_TOKEN") or f"{os.environ.get('PLUGIN_TOKEN', 'exec')}-{run}"
    if mode == "fail":
        print(f"error: the identity provider refused us (run {run})", file=sys.stderr)
        if "PLUGIN_ECHO_ENV" in os.environ:
            name = os.environ["PLUGIN_ECHO_ENV"]
            print(f"debug: {name}={os.environ.get(name)}", file=sys.stderr)
        return 3
    if mode == "sleep":
        time.sleep(60)
        return 0
    if mode == "garbage":
        print(f"Welcome! your token is {token} {{not json")
        return 0
    status = {}
    if mode == "cert":
        with open(os.environ["PLUGIN_CERT"]) as f:
            status["clientCertificateData"] = f.read()
        with open(os.environ["PLUGIN_KEY"]) as f:
            status["clientKeyData"] = f.read()
    elif mode != "empty":
        status["token"] = token
    expires_in = os.environ.get("PLUGIN_EXPIRES_IN")
    if expires_in is not None:
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=float(expires_in)
        )
        status["expirationTimestamp"] = expiry.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
    api_version = info["apiVersion"]
    if mode == "wrong-version":
        api_version = "client.authentication.k8s.io/v1alpha1"
    print(json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "status": status}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
