"""Framing: a chunked body split into lines.

Lines are split on ``b"\\n"`` with ``bytes.find``, across chunk boundaries, with a bound on
the line length. Never aiohttp's ``readline()`` (it fails on long lines; objects of several
MiB exist) and never ``str.splitlines()`` (it also splits on U+0085 and friends, which Go's
JSON encoder leaves raw inside strings).
"""

from __future__ import annotations

from ..core.errors import StreamError
from ..core.params import DEFAULT_MAX_LINE_BYTES

__all__ = ["LineFramer"]


class LineFramer:
    """Splits a stream of byte chunks into lines on ``b"\\n"``.

    Feed a chunk only after :meth:`next_line` returned ``None`` (it has consumed the one
    before). Lines come back as immutable ``bytes`` (a ``msgspec.Raw`` decoded from one
    keeps a view of it, so it must never be a reused buffer), without the newline, except
    that a chunk holding exactly one whole line is returned as it is, newline included, to
    save a copy (JSON decoders ignore the trailing whitespace; text callers strip it).
    Only a line split across chunks is copied into a reused ``bytearray``.
    """

    __slots__ = ("_chunk", "_partial", "_pos", "max_line_bytes")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = _positive_int(max_line_bytes, "max_line_bytes")
        self._chunk = b""
        self._pos = 0
        self._partial = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._chunk = chunk
        self._pos = 0

    def next_line(self) -> bytes | None:
        """The next complete line, or ``None`` when more data is needed."""
        chunk = self._chunk
        pos = self._pos
        nl = chunk.find(b"\n", pos)
        partial = self._partial
        if nl < 0:
            if pos < len(chunk):
                self._check(len(partial) + len(chunk) - pos)
                partial += memoryview(chunk)[pos:]
            self._chunk = b""
            self._pos = 0
            return None
        self._pos = nl + 1
        if partial:
            self._check(len(partial) + nl - pos)
            partial += memoryview(chunk)[pos:nl]
            line = bytes(partial)
            partial.clear()
            return line
        if nl - pos > self.max_line_bytes:
            self._check(nl - pos)
        if pos == 0 and nl == len(chunk) - 1:
            return chunk
        return chunk[pos:nl]

    def tail(self) -> bytes:
        """What is left after the last newline (call at the end of the stream)."""
        rest = bytes(self._partial) + self._chunk[self._pos :]
        self._partial.clear()
        self._chunk = b""
        self._pos = 0
        return rest

    def _check(self, size: int) -> None:
        if size > self.max_line_bytes:
            raise StreamError(
                f"a line of the stream is longer than max_line_bytes={self.max_line_bytes}"
                f" bytes (at least {size} bytes); raise max_line_bytes to accept it"
            )


def _positive_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be an int >= 1, got {value!r}")
    return value
