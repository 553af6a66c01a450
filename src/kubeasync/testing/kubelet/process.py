"""What a command run by ``exec`` sees: its arguments, stdin, stdout, stderr and terminal.

A test can register its own commands with :meth:`VirtualKubelet.register_command
<kubeasync.testing.VirtualKubelet.register_command>`: an ``async def handler(process) ->
int`` that reads ``process.stdin`` (an :class:`asyncio.StreamReader`), writes with ``await
process.stdout.write(b"...")`` and returns the exit code. An exception it raises is a
command that could not run: the client gets the server's Status as an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...streams.channel import TerminalSize

__all__ = ["CommandHandler", "Output", "Process", "Sink", "Terminal", "discard"]

Sink = Callable[[bytes], Awaitable[None]]


class Output:
    """A process's stdout or stderr: ``await write(data)``.

    On a terminal, ``\\n`` is written as ``\\r\\n`` (what a pty's ONLCR does), so output
    looks right in a client's raw-mode terminal.
    """

    def __init__(self, sink: Sink, *, terminal: bool = False) -> None:
        self._sink = sink
        self._terminal = terminal
        self.written = 0

    async def write(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if not data:
            return
        if self._terminal:
            data = bytes(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.written += len(data)
        await self._sink(bytes(data))


async def discard(data: bytes) -> None:
    """The sink of a stream nobody reads."""


class Terminal:
    """The size of a process's terminal, and its changes (resize messages)."""

    def __init__(self, size: TerminalSize | None = None) -> None:
        self.size = size
        self._changed = asyncio.Event()

    def resize(self, size: TerminalSize) -> None:
        self.size = size
        self._changed.set()
        self._changed = asyncio.Event()

    async def resized(self) -> TerminalSize:
        """Wait for the next resize; the new size."""
        await self._changed.wait()
        assert self.size is not None
        return self.size


@dataclass
class Process:
    """One command running in a container.

    Attributes:
        argv: the command and its arguments, as the client sent them.
        stdin: what the client writes (EOF when it closes stdin, or when it sent none).
        stdout: where output goes (``await process.stdout.write(b"...")``).
        stderr: where errors go (the same stream as stdout on a terminal).
        tty: whether the client asked for a terminal.
        terminal: the terminal's size and resizes (``terminal.size`` is ``None`` until
            the client sends one).
        pod: the pod the command runs in (as the API server last sent it, a JSON dict).
        container: the container's name.
        env: the environment: the container's ``env`` values, ``HOSTNAME``, ``PATH``...
        commands: the commands of this container (a shell runs its children with them).
    """

    argv: list[str]
    stdin: asyncio.StreamReader
    stdout: Output
    stderr: Output
    tty: bool = False
    terminal: Terminal = field(default_factory=Terminal)
    pod: Mapping[str, Any] = field(default_factory=dict)
    container: str = ""
    env: dict[str, str] = field(default_factory=dict)
    commands: Mapping[str, CommandHandler] = field(default_factory=dict)
    drop: Callable[[], None] | None = field(default=None, repr=False)

    def drop_connection(self) -> None:
        """Cut the client's connection now, with no exit status (as a kubelet that
        crashes, or a proxy that times out, does): a fault for tests."""
        if self.drop is not None:
            self.drop()

    @property
    def namespace(self) -> str:
        return str((self.pod.get("metadata") or {}).get("namespace") or "")

    @property
    def pod_name(self) -> str:
        return str((self.pod.get("metadata") or {}).get("name") or "")

    def with_streams(self, argv: list[str], *, stdin: asyncio.StreamReader | None = None,
                     stdout: Output | None = None, stderr: Output | None = None) -> Process:
        """The same process context for another command (a shell's child)."""
        return Process(argv, stdin or self.stdin, stdout or self.stdout, stderr or self.stderr,
                       self.tty, self.terminal, self.pod, self.container, self.env,
                       self.commands, self.drop)


CommandHandler = Callable[["Process"], Awaitable[int]]
"""A command: runs in a :class:`Process` and returns its exit code."""
