"""The channel protocols of exec, attach and port-forward (kubeasync.streams.channel),
without a server: frames, half-close, resize, exit statuses, port-forward headers."""

from __future__ import annotations

import json
import struct

import pytest

import kubeasync
from kubeasync.streams import channel
from kubeasync.streams.channel import (
    V4,
    V5,
    Channel,
    Frame,
    PortData,
    PortError,
    PortForwardDecoder,
    ResizeDecoder,
    TerminalSize,
)

# What a 1.20 kubelet writes on the error channel (pkg/kubelet/cri/streaming/remotecommand),
# encoding/json with Go's field order.
GO_NON_ZERO = (
    b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code:'
    b' error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",'
    b'"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}'
)
GO_SUCCESS = b'{"metadata":{},"status":"Success"}'
GO_INTERNAL = (
    b'{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing'
    b' command in container: failed to exec in container: OCI runtime exec failed","reason":'
    b'"InternalError","details":{"causes":[{"message":"error executing command in container:'
    b' failed to exec in container: OCI runtime exec failed"}]},"code":500}'
)


def test_frames_are_a_channel_byte_and_a_payload() -> None:
    assert channel.encode_frame(Channel.STDIN, b"hi") == b"\x00hi"
    assert channel.encode_frame(Channel.ERROR) == b"\x03"
    assert channel.decode_frame(b"\x01out") == Frame(1, b"out")
    assert channel.decode_frame(b"\x02") == Frame(2, b"")
    assert channel.decode_frame(b"") is None  # servers skip empty messages


@pytest.mark.parametrize("bad", [-1, 256, True, "1", 1.0])
def test_a_channel_is_a_byte(bad: object) -> None:
    with pytest.raises(ValueError, match="channel must be an int from 0 to 255"):
        channel.encode_frame(bad, b"")  # type: ignore[arg-type]


def test_a_payload_must_be_bytes() -> None:
    with pytest.raises(ValueError, match="payload must be bytes, not str"):
        channel.encode_frame(0, "text")  # type: ignore[arg-type]


def test_only_v5_can_half_close() -> None:
    assert channel.close_frame(Channel.STDIN, V5) == b"\xff\x00"
    assert channel.supports_close(V5) and not channel.supports_close(V4)
    with pytest.raises(ValueError, match=r"v4\.channel\.k8s\.io cannot close a single stream"):
        channel.close_frame(Channel.STDIN, V4)
    with pytest.raises(ValueError, match="this protocol cannot close"):
        channel.close_frame(Channel.STDIN, None)


def test_the_offer_prefers_v5() -> None:
    assert channel.EXEC_PROTOCOLS == ("v5.channel.k8s.io", "v4.channel.k8s.io")
    assert channel.PORT_FORWARD_PROTOCOLS == ("v4.channel.k8s.io",)


def test_resize_frames() -> None:
    frame = channel.resize_frame(120, 40)
    assert frame[0] == Channel.RESIZE
    assert json.loads(frame[1:]) == {"Width": 120, "Height": 40}
    for width, height in ((0, 1), (1, 0), (70000, 1), (True, 5)):
        with pytest.raises(ValueError, match=r"(width|height) must be an int from 1 to 65535"):
            channel.resize_frame(width, height)


def test_the_resize_decoder_reads_a_stream_of_objects() -> None:
    decoder = ResizeDecoder()
    # two objects in one message, then one split over two messages, then junk that is skipped
    assert decoder.feed(b'{"Width":80,"Height":24}{"Width":100,"Height":30}') == [
        TerminalSize(80, 24), TerminalSize(100, 30)]
    assert decoder.feed(b'{"Width":1') == []
    assert decoder.feed(b'20,"Height":40} ') == [TerminalSize(120, 40)]
    assert decoder.feed(b'{"Width":"wide"}') == []


def test_exit_statuses_as_a_kubelet_writes_them() -> None:
    assert channel.parse_exit_status(GO_SUCCESS).exit_code == 0
    ended = channel.parse_exit_status(GO_NON_ZERO)
    assert ended.exit_code == 3
    assert ended.status.reason == "NonZeroExitCode"


def test_a_failure_to_run_is_a_typed_error() -> None:
    ended = channel.parse_exit_status(GO_INTERNAL)
    assert ended.exit_code is None
    error = ended.error()
    assert isinstance(error, kubeasync.ServerError)
    assert error.code == 500 and error.reason == "InternalError"
    assert "OCI runtime exec failed" in error.message


def test_a_text_error_from_an_old_protocol() -> None:
    ended = channel.parse_exit_status(b"container not running")
    assert ended.exit_code is None
    assert ended.error().message == "container not running"
    assert ended.error().code == 500


def test_a_non_zero_exit_without_a_code_is_a_protocol_error() -> None:
    broken = b'{"status":"Failure","reason":"NonZeroExitCode","message":"?"}'
    with pytest.raises(kubeasync.StreamError, match="without a readable exit code"):
        channel.parse_exit_status(broken)


def test_server_side_statuses_round_trip() -> None:
    assert json.loads(channel.success_status()) == json.loads(GO_SUCCESS)
    written = channel.exit_code_status(3, ["sh", "-c", "exit 3"])
    assert json.loads(written) == json.loads(GO_NON_ZERO)
    assert channel.parse_exit_status(written).exit_code == 3
    assert channel.exit_code_status(0) == channel.success_status()
    failed = channel.parse_exit_status(channel.failure_status("no such container"))
    assert failed.exit_code is None
    assert failed.error().message == "Internal error occurred: no such container"
    with pytest.raises(ValueError, match="exit_code must be an int"):
        channel.exit_code_status("3")  # type: ignore[arg-type]


def test_port_channels_and_headers() -> None:
    assert channel.port_channels(0) == (0, 1)
    assert channel.port_channels(3) == (6, 7)
    assert channel.port_header(8080) == struct.pack("<H", 8080) == b"\x90\x1f"
    assert channel.port_header_frames([80, 443]) == [
        b"\x00P\x00", b"\x01P\x00", b"\x02\xbb\x01", b"\x03\xbb\x01"]
    assert channel.port_data_frame(1, b"x") == b"\x02x"
    for bad in (0, 65536, "80", True):
        with pytest.raises(ValueError, match="port must be an int from 1 to 65535"):
            channel.port_header(bad)  # type: ignore[arg-type]


def test_the_port_forward_decoder_strips_and_checks_headers() -> None:
    decoder = PortForwardDecoder([80, 443])
    assert not decoder.headers_received()
    for frame in channel.port_header_frames([80, 443]):
        assert decoder.feed(frame) == []
    assert decoder.headers_received()
    assert decoder.feed(b"\x00hello") == [PortData(80, b"hello")]
    assert decoder.feed(b"\x02tls") == [PortData(443, b"tls")]
    assert decoder.feed(b"\x03refused") == [PortError(443, "refused")]
    assert decoder.feed(b"") == []


def test_a_header_may_arrive_in_pieces_and_with_data() -> None:
    decoder = PortForwardDecoder([8080])
    assert decoder.feed(b"\x00\x90") == []
    assert decoder.feed(b"\x00\x1fdata") == [PortData(8080, b"data")]
    assert decoder.feed(b"\x01\x90\x1f") == []
    assert decoder.headers_received()


def test_the_port_forward_decoder_rejects_what_no_port_uses() -> None:
    decoder = PortForwardDecoder([80])
    with pytest.raises(kubeasync.StreamError, match="channel 2, which no requested port uses"):
        decoder.feed(b"\x02x")
    with pytest.raises(kubeasync.StreamError, match=r"announced port 81 .* port 80 was expected"):
        decoder.feed(b"\x00" + channel.port_header(81))
    with pytest.raises(ValueError, match="at least one port"):
        PortForwardDecoder([])
