"""The commands a simulated container knows, for ``exec``.

``echo``, ``cat`` (stdin to stdout until stdin closes), ``true``, ``false``, ``env``,
``printenv``, ``hostname``, ``sleep N``, ``seq``, ``wc -c``/``wc -l``, ``sha256sum``,
``stty size`` and ``sh``: ``sh -c 'script'`` runs a small shell language (``;``, ``&&``,
``||``, ``|`` pipelines, ``exit N``, ``$VAR`` and ``$?``, ``>&2``, ``2>&1``, ``>/dev/null``,
quotes), and ``sh`` alone reads commands from stdin (with a ``$`` prompt and line editing on
a terminal). Anything else exits 127 with ``<cmd>: command not found`` on stderr.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .process import CommandHandler, Output, Process, Sink, discard

__all__ = ["BUILTIN_COMMANDS", "NOT_FOUND", "Shell", "run_command"]

NOT_FOUND = 127
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


async def _echo(p: Process) -> int:
    args = p.argv[1:]
    newline = True
    if args[:1] == ["-n"]:
        newline, args = False, args[1:]
    await p.stdout.write((" ".join(args) + ("\n" if newline else "")).encode())
    return 0


async def _copy_stdin(p: Process) -> None:
    while chunk := await p.stdin.read(65536):
        await p.stdout.write(chunk)


async def _cat(p: Process) -> int:
    status = 0
    for name in p.argv[1:] or ["-"]:
        if name == "-":
            await _copy_stdin(p)
        else:
            await p.stderr.write(f"cat: {name}: No such file or directory\n".encode())
            status = 1
    return status


async def _true(p: Process) -> int:
    return 0


async def _false(p: Process) -> int:
    return 1


async def _env(p: Process) -> int:
    await p.stdout.write("".join(f"{k}={v}\n" for k, v in p.env.items()).encode())
    return 0


async def _printenv(p: Process) -> int:
    if len(p.argv) == 1:
        return await _env(p)
    status = 0
    for name in p.argv[1:]:
        if name in p.env:
            await p.stdout.write(f"{p.env[name]}\n".encode())
        else:
            status = 1
    return status


async def _hostname(p: Process) -> int:
    await p.stdout.write(f"{p.env.get('HOSTNAME', p.pod_name)}\n".encode())
    return 0


async def _sleep(p: Process) -> int:
    if len(p.argv) != 2:
        await p.stderr.write(b"sleep: missing operand\n")
        return 1
    text = p.argv[1]
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
    try:
        seconds = float(text[:-1]) * scale if scale is not None else float(text)
    except ValueError:
        seconds = -1
    if seconds < 0:
        await p.stderr.write(f"sleep: invalid time interval '{text}'\n".encode())
        return 1
    await asyncio.sleep(seconds)
    return 0


async def _seq(p: Process) -> int:
    try:
        numbers = [int(a) for a in p.argv[1:]]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2):
        await p.stderr.write(b"seq: usage: seq [FIRST] LAST\n")
        return 1
    first, last = (1, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    batch: list[str] = []
    for value in range(first, last + 1):
        batch.append(f"{value}\n")
        if len(batch) == 4096:
            await p.stdout.write("".join(batch).encode())
            batch = []
    await p.stdout.write("".join(batch).encode())
    return 0


async def _wc(p: Process) -> int:
    flags = [a for a in p.argv[1:] if a.startswith("-")]
    if [a for a in p.argv[1:] if not a.startswith("-")] or not set(flags) <= {"-c", "-l"}:
        await p.stderr.write(b"wc: only wc -c and wc -l of stdin are simulated\n")
        return 1
    size = lines = 0
    while chunk := await p.stdin.read(65536):
        size += len(chunk)
        lines += chunk.count(b"\n")
    counts = [str(lines)] if "-l" in flags else []
    counts += [str(size)] if "-c" in flags or not flags else []
    await p.stdout.write((" ".join(counts) + "\n").encode())
    return 0


async def _sha256sum(p: Process) -> int:
    if p.argv[1:] not in ([], ["-"]):
        await p.stderr.write(b"sha256sum: only stdin is simulated\n")
        return 1
    digest = hashlib.sha256()
    while chunk := await p.stdin.read(65536):
        digest.update(chunk)
    await p.stdout.write(f"{digest.hexdigest()}  -\n".encode())
    return 0


async def _stty(p: Process) -> int:
    if p.argv[1:] != ["size"]:
        await p.stderr.write(b"stty: only 'stty size' is simulated\n")
        return 1
    if not p.tty:
        await p.stderr.write(b"stty: 'standard input': Inappropriate ioctl for device\n")
        return 1
    size = p.terminal.size
    rows, columns = (size.height, size.width) if size is not None else (0, 0)
    await p.stdout.write(f"{rows} {columns}\n".encode())
    return 0


async def _sh(p: Process) -> int:
    return await Shell(p).dispatch()


BUILTIN_COMMANDS: Mapping[str, CommandHandler] = {
    "echo": _echo,
    "cat": _cat,
    "true": _true,
    "false": _false,
    "env": _env,
    "printenv": _printenv,
    "hostname": _hostname,
    "sleep": _sleep,
    "seq": _seq,
    "wc": _wc,
    "sha256sum": _sha256sum,
    "stty": _stty,
    "sh": _sh,
    "bash": _sh,
}
"""The default command set of a simulated container."""


async def run_command(process: Process, commands: Mapping[str, CommandHandler]) -> int:
    """Run ``process.argv`` with ``commands`` (by name, or by a path ending in one:
    ``/bin/sh``)."""
    if not process.argv:
        await process.stderr.write(b"exec: no command given\n")
        return NOT_FOUND
    name = process.argv[0]
    handler = commands.get(name) or commands.get(name.rsplit("/", 1)[-1])
    if handler is None:
        await process.stderr.write(f"{name}: command not found\n".encode())
        return NOT_FOUND
    return await handler(process)


# ------------------------------------------------------------------ the shell


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@dataclass
class _Command:
    words: list[Word] = field(default_factory=list)
    # file descriptor -> target: 1 or 2 (another stream) or None (/dev/null)
    redirects: dict[int, int | None] = field(default_factory=dict)


_OPERATORS = ("&&", "||", ";", "|", "\n")


class _SyntaxError(Exception):
    pass


Word = tuple[tuple[bool, str], ...]
"""A word as parts: ``(False, text)`` literal, ``(True, name)`` a variable to expand when
the command runs (so ``false; echo $?`` sees the status of ``false``)."""


def _expand(word: Word, variables: Mapping[str, str]) -> str:
    return "".join(variables.get(text, "") if is_variable else text for is_variable, text in word)


class _Operator(str):
    """``;``, ``&&``, ``||``, ``|``, a newline, or a redirection (``1>&2``, ``2>null``)."""


def _tokenize(script: str) -> list[Word | _Operator]:
    """The words and operators of a script."""
    tokens: list[Word | _Operator] = []
    i, n = 0, len(script)
    word: list[tuple[bool, str]] | None = None

    def end_word() -> None:
        nonlocal word
        if word is not None:
            tokens.append(tuple(word))
            word = None

    def variable(at: int) -> tuple[tuple[bool, str], int]:
        if at + 1 < n and script[at + 1] == "?":
            return (True, "?"), at + 2
        if at + 1 < n and script[at + 1] == "{":
            close = script.find("}", at)
            if close < 0:
                raise _SyntaxError("bad substitution")
            return (True, script[at + 2:close]), close + 1
        match = _NAME.match(script, at + 1)
        if match is None:
            return (False, "$"), at + 1
        return (True, match.group()), match.end()

    while i < n:
        c = script[i]
        if c == "#" and word is None:
            while i < n and script[i] != "\n":
                i += 1
            continue
        if c in " \t":
            end_word()
            i += 1
            continue
        two = script[i:i + 2]
        if two in ("&&", "||"):
            end_word()
            tokens.append(_Operator(two))
            i += 2
            continue
        if c in ";|\n":
            end_word()
            tokens.append(_Operator(c))
            i += 1
            continue
        if c == ">" or (c.isdigit() and script[i + 1:i + 2] == ">" and word is None):
            source = 1
            if c.isdigit():
                source, i = int(c), i + 1
            end_word()
            i += 1
            if script[i:i + 1] == ">":
                i += 1
            if script[i:i + 1] == "&":
                if not script[i + 1:i + 2].isdigit():
                    raise _SyntaxError("bad fd number")
                tokens.append(_Operator(f"{source}>&{script[i + 1]}"))
                i += 2
                continue
            while i < n and script[i] in " \t":
                i += 1
            start = i
            while i < n and script[i] not in " \t;|&\n":
                i += 1
            target = script[start:i]
            if target != "/dev/null":
                raise _SyntaxError(f"cannot create {target or 'nothing'}: read-only file system")
            tokens.append(_Operator(f"{source}>null"))
            continue
        if word is None:
            word = []
        if c == "'":
            close = script.find("'", i + 1)
            if close < 0:
                raise _SyntaxError("unterminated quoted string")
            word.append((False, script[i + 1:close]))
            i = close + 1
        elif c == '"':
            i += 1
            while i < n and script[i] != '"':
                if script[i] == "\\" and i + 1 < n and script[i + 1] in '"\\$':
                    word.append((False, script[i + 1]))
                    i += 2
                elif script[i] == "$":
                    part, i = variable(i)
                    word.append(part)
                else:
                    word.append((False, script[i]))
                    i += 1
            if i >= n:
                raise _SyntaxError("unterminated quoted string")
            i += 1
        elif c == "\\" and i + 1 < n:
            word.append((False, script[i + 1]))
            i += 2
        elif c == "$":
            part, i = variable(i)
            word.append(part)
        else:
            word.append((False, c))
            i += 1
    end_word()
    return tokens


class Shell:
    """A small POSIX-like ``sh`` over the container's commands."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.commands = process.commands or BUILTIN_COMMANDS
        self.variables: dict[str, str] = dict(process.env)
        self.status = 0

    async def dispatch(self) -> int:
        args = self.process.argv[1:]
        if args[:1] == ["-c"]:
            if len(args) < 2:
                await self.process.stderr.write(b"sh: -c: option requires an argument\n")
                return 2
            return await self.run(args[1])
        if args:
            await self.process.stderr.write(
                f"sh: 0: cannot open {args[0]}: No such file\n".encode())
            return 2
        return await self.interactive()

    async def run(self, script: str) -> int:
        try:
            await self._execute(script)
        except _Exit as done:
            return done.code
        return self.status

    async def interactive(self) -> int:
        """Commands from stdin, one line at a time (a prompt and echo on a terminal)."""
        try:
            while True:
                if self.process.tty:
                    await self.process.stdout.write(b"$ ")
                    line = await self._edit_line()
                else:
                    raw = await self.process.stdin.readline()
                    line = raw.decode("utf-8", errors="replace") if raw else None
                if line is None:
                    return self.status
                await self._execute(line)
        except _Exit as done:
            return done.code

    async def _edit_line(self) -> str | None:
        """A terminal's line discipline: echo, backspace, ^C and ^D."""
        out = self.process.stdout
        buffer = bytearray()
        while True:
            byte = await self.process.stdin.read(1)
            if not byte or (byte == b"\x04" and not buffer):
                if buffer:
                    return buffer.decode("utf-8", errors="replace")
                await out.write(b"exit\n")
                return None
            if byte in (b"\r", b"\n"):
                await out.write(b"\n")
                return buffer.decode("utf-8", errors="replace") + "\n"
            if byte in (b"\x7f", b"\x08"):
                if buffer:
                    del buffer[-1]
                    await out.write(b"\b \b")
            elif byte == b"\x03":
                buffer.clear()
                await out.write(b"^C\n$ ")
            elif byte >= b" ":
                buffer += byte
                await out.write(byte)

    async def _execute(self, script: str) -> None:
        try:
            tokens = _tokenize(script)
        except _SyntaxError as error:
            await self.process.stderr.write(f"sh: 1: Syntax error: {error}\n".encode())
            self.status = 2
            return
        pipeline: list[_Command] = [_Command()]
        skip = False
        for token in [*tokens, _Operator(";")]:
            if not isinstance(token, _Operator):
                pipeline[-1].words.append(token)
                continue
            operator = str(token)
            if operator[:1].isdigit():
                source, target = operator.split(">", 1)
                pipeline[-1].redirects[int(source)] = (
                    None if target == "null" else int(target.lstrip("&")))
                continue
            if operator == "|":
                pipeline.append(_Command())
                continue
            if any(c.words for c in pipeline) and not skip:
                self.status = await self._pipeline(pipeline)
            pipeline = [_Command()]
            # && runs the next only after success, || only after failure.
            skip = (operator == "&&" and self.status != 0) or (operator == "||"
                                                               and self.status == 0)

    async def _pipeline(self, commands: list[_Command]) -> int:
        if len(commands) == 1:
            return await self._simple(commands[0], self.process)
        tasks = []
        stdin = self.process.stdin
        for index, command in enumerate(commands):
            last = index == len(commands) - 1
            reader = asyncio.StreamReader() if not last else None
            stdout = self.process.stdout if reader is None else Output(_feeder(reader))
            child = self.process.with_streams([], stdin=stdin, stdout=stdout)
            tasks.append(asyncio.ensure_future(self._then_eof(command, child, reader)))
            if reader is not None:
                stdin = reader
        results = await asyncio.gather(*tasks)
        return results[-1]

    async def _then_eof(self, command: _Command, process: Process,
                        reader: asyncio.StreamReader | None) -> int:
        try:
            return await self._simple(command, process)
        finally:
            if reader is not None:
                reader.feed_eof()

    async def _simple(self, command: _Command, process: Process) -> int:
        streams = {1: process.stdout, 2: process.stderr}
        wired = dict(streams)
        for source, target in command.redirects.items():
            wired[source] = Output(discard) if target is None else streams.get(target,
                                                                               streams[1])
        self.variables["?"] = str(self.status)
        words = [_expand(word, self.variables) for word in command.words]
        if not words:
            return 0
        if words[0] == "exit":
            code = self.status
            if len(words) > 1:
                try:
                    code = int(words[1]) & 0xFF
                except ValueError:
                    await wired[2].write(f"sh: 1: exit: Illegal number: {words[1]}\n".encode())
                    code = 2
            raise _Exit(code)
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", words[0], re.DOTALL)
        if assignment is not None and len(words) == 1:
            self.variables[assignment.group(1)] = assignment.group(2)
            return 0
        child = process.with_streams(words, stdout=wired[1], stderr=wired[2])
        return await run_command(child, self.commands)


def _feeder(reader: asyncio.StreamReader) -> Sink:
    async def feed(data: bytes) -> None:
        reader.feed_data(data)

    return feed
