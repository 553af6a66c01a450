"""Not a test: measures how long a quiet watch on a dead connection takes to fail with the
default settings (the suite runs the same mechanisms with short settings).

    python -m tests.helpers.dead_connection_timing probe
        a forwarder black-holes the traffic (connections stay open, the kernel still ACKs,
        so TCP keepalive cannot see it): the session's probe must notice (~45-55 s).
    unshare -rn sh -c 'ip link set lo up; python -m tests.helpers.dead_connection_timing keepalive'
        in a network namespace of its own, the loopback goes down: the kernel drops the
        packets; with the probe off, TCP keepalive must notice (~60 s).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import kubeasync
from kubeasync.testing import FakeApiServer
from tests.helpers.partition import partition_proxy


async def main(mode: str) -> None:
    async with FakeApiServer() as server:
        port = int(server.url.rsplit(":", 1)[1])
        async with partition_proxy("127.0.0.1", port, scheme="http") as net:
            url = net.url if mode == "probe" else server.url
            async with kubeasync.Client(kubeasync.ClusterConfig(server=url)) as kube:
                if mode == "keepalive":
                    kube.session.probe_after = None
                stream = kube.pods.watch_stream(timeout_seconds=None)
                task = asyncio.create_task(stream.__anext__())
                while stream.last_activity is None:  # noqa: ASYNC110 - a one-off script
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                last_byte = stream.last_activity
                started = time.monotonic()
                if mode == "probe":
                    net.black_hole()
                else:
                    subprocess.run(["ip", "link", "set", "lo", "down"], check=True)  # noqa: ASYNC221
                try:
                    await asyncio.wait_for(task, 600)
                    print(f"{mode}: the stream ended without an error")
                except Exception as exc:
                    now = time.monotonic()
                    print(f"{mode}: failed {now - started:.1f} s after the black hole,"
                          f" {now - last_byte:.1f} s after the last byte:"
                          f" {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "probe"))
