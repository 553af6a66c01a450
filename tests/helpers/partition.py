"""A TCP forwarder on 127.0.0.1 that can cut a client off from its server and let it back.

The integration tests put it between a client and the real API server to make a watch
miss changes deterministically: ``partition()`` closes every forwarded connection and
closes each new one at once (the client sees a cut, then refused attempts), while other
clients keep writing to the server directly; ``heal()`` forwards again. TLS passes through
untouched, so the client still verifies the server's certificate for 127.0.0.1.

``black_hole()`` is the silent failure instead: every connection stays open and new ones
are accepted, but nothing is forwarded either way (a hung proxy, a partition behind a
middlebox that keeps TCP alive): the client hears nothing, not even a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import kubeasync


@dataclass
class Partition:
    """The forwarder's controls; ``url`` is the address clients use instead of the server's."""

    url: str = ""
    partitioned: bool = False
    black_holed: bool = False
    connections: int = 0
    """Connections forwarded so far (refused ones are not counted)."""
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def partition(self) -> None:
        """Cut every forwarded connection now and refuse new ones until :meth:`heal`."""
        self.partitioned = True
        for writer in list(self._writers):
            writer.close()

    def black_hole(self) -> None:
        """Forward nothing from now on (connections stay open) until :meth:`heal`."""
        self.black_holed = True

    def heal(self) -> None:
        self.partitioned = False
        self.black_holed = False


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                state: Partition) -> None:
    try:
        while data := await reader.read(65536):
            if state.black_holed:
                continue  # swallowed
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def partition_proxy(host: str, port: int, *, scheme: str = "https"
                          ) -> AsyncIterator[Partition]:
    """Forward ``127.0.0.1:<some port>`` to ``host:port`` while the context is open
    (``url`` uses ``scheme``)."""
    state = Partition()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        if state.partitioned:
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()  # the server is down: the client sees a refusal
            return
        state.connections += 1
        state._writers.update((client_writer, server_writer))
        pipes = [asyncio.create_task(_pipe(client_reader, server_writer, state)),
                 asyncio.create_task(_pipe(server_reader, client_writer, state))]
        tasks.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            tasks.difference_update(pipes)
            state._writers.difference_update((client_writer, server_writer))
            client_writer.close()
            server_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        state.partition()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def partitioned_client(
    config: kubeasync.ClusterConfig,
) -> AsyncIterator[tuple[kubeasync.Client, Partition]]:
    """A client of the server of ``config`` that reaches it through a forwarder the test can
    cut (same credentials and CA; the certificate is still checked for the server's host)."""
    server = urlsplit(config.server)
    async with (
        partition_proxy(server.hostname or "127.0.0.1", server.port or 443) as net,
        kubeasync.Client(dataclasses.replace(config, server=net.url)) as kube,
    ):
        yield kube, net
