"""Decoding answers: one decoder per type, built once, and one way to pause the GC.

Decoding a large list allocates millions of objects; with the cyclic garbage collector
running, most of the time goes to GC passes over objects that cannot be garbage (10k pods:
~1.9 s with it, ~0.6 s without). Every decode of a body or a line at least
:data:`GC_PAUSE_THRESHOLD` bytes long therefore runs with the collector paused.

An answer is what was asked for, or a :class:`~kubeasync.DecodeError`
---------------------------------------------------------------------
A 200 answer is not proof that the API server answered: a gateway's JSON
(``{"error": "upstream request timeout"}``), an empty object, or another kind's object
decode into any model whose fields are all optional, and a relist that "succeeded" with
no items would make a watcher report every object deleted. So the answers of a resource
are decoded by its :class:`KindDecoder`, which checks, after the ordinary decode and at
the cost of two attribute reads, that the answer names the expected ``kind`` (the API
server always does, for objects and lists alike) and, when it names one, the expected
``apiVersion``. A wrong answer is a :class:`~kubeasync.DecodeError` whose ``retryable`` is
True (something other than the API server answered; asking again may reach it: the
watcher does, after its backoff); an answer of the right kind that does not fit the model
is one with ``retryable`` False (asking again cannot help).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any, Generic, TypeVar, Union

import msgspec

from .errors import DecodeError
from .metadata import METADATA_API_VERSION, PARTIAL_KINDS
from .request import Request

__all__ = [
    "GC_PAUSE_THRESHOLD",
    "AnyDecoder",
    "KindDecoder",
    "answer_kind",
    "check_continue",
    "decode",
    "decoder_for",
    "gc_paused",
    "kind_decoder",
]

T = TypeVar("T")

GC_PAUSE_THRESHOLD = 256 * 1024
"""Bodies (and stream lines) at least this long are decoded with the GC paused."""


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block; restore it on every path.

    Only the enabled/disabled flag is touched, and only if it was enabled: a program that
    disabled the GC itself keeps it disabled. Pausing never frees less memory: objects are
    collected by the next GC pass after the block.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(model: type[T]) -> msgspec.json.Decoder[T]:
    """The shared decoder for a model type (built once, reused; ``dict`` means JSON objects)."""
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = msgspec.json.Decoder(dict[str, Any] if model is dict else model)
        _DECODERS[model] = decoder
    return decoder


class KindDecoder(Generic[T]):
    """Decodes the answers of one kind (``Pod``, ``PodList``, a CRD's ``WidgetList``) and
    checks that they are of that kind (see the module docstring). Built once per kind by
    :func:`kind_decoder`; use it wherever a msgspec decoder goes in :func:`decode`."""

    __slots__ = ("api_version", "decoder", "kind", "model_keeps_kind", "partial_kind", "type")

    def __init__(self, model: type[T], kind: str, api_version: str) -> None:
        self.decoder: msgspec.json.Decoder[T] = decoder_for(model)
        self.type = self.decoder.type
        self.kind = kind
        self.api_version = api_version
        # A user's own Struct may leave out kind and apiVersion: then they are read from
        # the body itself.
        fields = getattr(model, "__struct_fields__", None)
        self.model_keeps_kind = fields is None or {"kind", "api_version"} <= set(fields)
        # Metadata-only reads: the server answers PartialObjectMetadata(List), or the
        # resource's own kind when it cannot (see kubeasync.core.metadata).
        self.partial_kind = PARTIAL_KINDS.get(model)

    def check(self, answer: Any, request: Request | None, body: bytes = b"") -> None:
        """Raise :class:`DecodeError` unless ``answer`` is of this decoder's kind."""
        if type(answer) is dict:
            kind, api_version = answer.get("kind"), answer.get("apiVersion")
        elif self.model_keeps_kind:
            kind = getattr(answer, "kind", None)
            api_version = getattr(answer, "api_version", None)
        else:
            envelope = _ENVELOPE.decode(body)
            kind, api_version = envelope.kind, envelope.apiVersion
        if kind == self.kind and (api_version is None or api_version == self.api_version):
            return
        if (self.partial_kind is not None and kind == self.partial_kind
                and api_version in (None, METADATA_API_VERSION)):
            return
        if not isinstance(kind, str) or not kind:
            found = "names no kind"
        elif kind != self.kind:
            found = f"is a {_printable(kind)}"
        else:
            found = f"is a {_printable(kind)} of apiVersion {_printable(api_version)}"
        # Never a snippet of the body: a wrong answer can hold anything (a Secret's data).
        raise DecodeError(
            f"{_where(request)}the answer {found}, not a {self.api_version} {self.kind}:"
            " something other than the API server answered (a proxy or gateway?)",
            retryable=True,
        )

    def __repr__(self) -> str:
        return f"<KindDecoder {self.api_version} {self.kind}>"


AnyDecoder = Union["msgspec.json.Decoder[T]", KindDecoder[T]]
"""What :func:`decode` takes: a plain msgspec decoder, or a :class:`KindDecoder`."""


_KIND_DECODERS: dict[tuple[Any, str, str], KindDecoder[Any]] = {}


def kind_decoder(model: type[T], kind: str, api_version: str) -> KindDecoder[T]:
    """The shared :class:`KindDecoder` for answers of ``kind`` decoded into ``model``."""
    key = (model, kind, api_version)
    decoder = _KIND_DECODERS.get(key)
    if decoder is None:
        decoder = _KIND_DECODERS[key] = KindDecoder(model, kind, api_version)
    return decoder


class _Envelope(msgspec.Struct):
    kind: Any = None
    apiVersion: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def answer_kind(body: bytes, request: Request | None = None) -> str | None:
    """The ``kind`` an answer names (``None`` when it names none), for answers that may be
    of two kinds (a DELETE answers the object or a ``Status``). A body that is not a JSON
    object is a :class:`DecodeError`."""
    try:
        kind = _ENVELOPE.decode(body).kind
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"{_where(request)}the answer is not a JSON object: {exc}",
                          retryable=True) from None
    return kind if isinstance(kind, str) else None


def decode(decoder: AnyDecoder[T], body: bytes, request: Request | None = None) -> T:
    """Decode a body (the GC paused for large ones); failures are :class:`DecodeError`.

    With a :class:`KindDecoder`, the answer must also be of its kind."""
    if type(decoder) is KindDecoder:
        answer = _decode(decoder.decoder, body, request, decoder)
        decoder.check(answer, request, body)
        return answer
    return _decode(decoder, body, request, None)  # type: ignore[arg-type]


def _decode(decoder: msgspec.json.Decoder[T], body: bytes, request: Request | None,
            expected: KindDecoder[T] | None) -> T:
    try:
        if len(body) >= GC_PAUSE_THRESHOLD:
            with gc_paused():
                return decoder.decode(body)
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        name = getattr(decoder.type, "__name__", str(decoder.type))
        if expected is None:
            raise DecodeError(f"{_where(request)}the answer is not a valid {name}: {exc}"
                              ) from None
        try:
            envelope = _ENVELOPE.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            envelope = None
        if envelope is not None and envelope.kind == expected.kind:
            # The right kind, that the model cannot read: asking again will not help.
            raise DecodeError(
                f"{_where(request)}the {expected.kind} does not fit the model {name}: {exc}"
            ) from None
        if envelope is not None:
            expected.check(envelope, request)  # raises: the wrong kind, or none
        raise DecodeError(
            f"{_where(request)}the answer is not a {expected.kind}: not a JSON object ({exc})",
            retryable=True,
        ) from None


def check_continue(token: str | None, sent: set[str], request: Request | None = None) -> None:
    """Raise :class:`DecodeError` when a list page hands back a continue token that was
    already sent (the same one, or one of a cycle): following it would loop forever."""
    if token is not None and token in sent:
        raise DecodeError(
            f"{_where(request)}the server answered a continue token that was already sent:"
            " following it would list the same pages forever",
            retryable=True,
        )


def _where(request: Request | None) -> str:
    return f"{request.method} {request.path}: " if request is not None else ""


def _printable(value: object, limit: int = 64) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"
