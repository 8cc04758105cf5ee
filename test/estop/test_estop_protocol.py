"""Frame encoding and the resynchronising decoder."""

from __future__ import annotations

import random

import pytest

from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import (
    MAX_FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    SYNC,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    HostState,
    MessageType,
    ResetRequest,
    Status,
    StopCause,
    Trip,
    crc16,
    decode_message,
    encode,
    encode_frame,
)

STATUS = Status(
    relay_open=True,
    button_pressed=False,
    latched=True,
    board_fault=False,
    cause=StopCause.WATCHDOG,
    trip_reason=0,
    watchdog_expirations=3,
    bad_frames=7,
    heartbeat_seq=65535,
    firmware_major=1,
    firmware_minor=2,
    watchdog_ms=100,
)


def test_crc16_check_value() -> None:
    # The catalogued check value of CRC-16/CCITT-FALSE.
    assert crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize(
    "message",
    [Hello(), Heartbeat(HostState.RUN), Heartbeat(HostState.STOP), Trip(3), ResetRequest(), STATUS],
)
def test_message_round_trip(message: object) -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(encode(message, 513))  # type: ignore[arg-type]
    assert len(frames) == 1
    assert frames[0].seq == 513
    assert decode_message(frames[0]) == message


def test_frame_layout() -> None:
    frame = encode(Heartbeat(HostState.RUN), 0x0102)
    assert frame[:6] == bytes([SYNC, PROTOCOL_VERSION, MessageType.HEARTBEAT, 0x02, 0x01, 1])
    assert frame[6] == 1
    assert int.from_bytes(frame[7:9], "big") == crc16(frame[1:7])


def test_encode_rejects_long_payload() -> None:
    with pytest.raises(EstopError, match="payload of 33 bytes is longer than the maximum of 32"):
        encode_frame(MessageType.HELLO, 0, bytes(MAX_PAYLOAD + 1))


def test_encode_rejects_sequence_out_of_range() -> None:
    with pytest.raises(EstopError, match="sequence number 65536 is outside"):
        encode_frame(MessageType.HELLO, 65536)


def test_decode_unknown_type() -> None:
    with pytest.raises(EstopError, match="unknown message type 0x7F"):
        decode_message(Frame(0x7F, 4, b""))


def test_decode_wrong_payload_size() -> None:
    with pytest.raises(EstopError, match="HEARTBEAT payload has 2 bytes, expected 1"):
        decode_message(Frame(MessageType.HEARTBEAT, 4, b"\x01\x01"))


def test_decode_invalid_heartbeat_state() -> None:
    with pytest.raises(EstopError, match="HEARTBEAT state 9 is neither 0"):
        decode_message(Frame(MessageType.HEARTBEAT, 4, b"\x09"))


def test_decoder_byte_by_byte() -> None:
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for byte in encode(STATUS, 1) + encode(Hello(), 2):
        frames += decoder.feed(bytes([byte]))
    assert [frame.seq for frame in frames] == [1, 2]
    assert decoder.buffered == 0


def test_decoder_skips_garbage() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x00\x13garbage\xff" + encode(Hello(), 9))
    assert [frame.seq for frame in frames] == [9]
    assert decoder.stats.garbage_bytes == 10


def test_decoder_counts_bad_crc() -> None:
    damaged = bytearray(encode(Heartbeat(HostState.RUN), 1))
    damaged[-1] ^= 0xFF
    decoder = FrameDecoder()
    frames = decoder.feed(bytes(damaged) + encode(Heartbeat(HostState.RUN), 2))
    assert [frame.seq for frame in frames] == [2]
    assert decoder.stats.bad_crc == 1


def test_decoder_recovers_after_truncated_frame() -> None:
    truncated = encode(STATUS, 1)[:-5]
    decoder = FrameDecoder()
    frames = decoder.feed(truncated + encode(STATUS, 2) + encode(STATUS, 3))
    assert [frame.seq for frame in frames] == [2, 3]
    assert decoder.stats.bad_crc >= 1


def test_decoder_rejects_oversized_length() -> None:
    header = bytes([SYNC, PROTOCOL_VERSION, MessageType.STATUS, 0, 0, 0xFF])
    decoder = FrameDecoder()
    frames = decoder.feed(header + encode(Hello(), 5))
    assert [frame.seq for frame in frames] == [5]
    assert decoder.stats.oversized == 1
    assert decoder.buffered == 0


def test_decoder_counts_unknown_version() -> None:
    frame = bytearray(encode(Hello(), 1))
    frame[1] = PROTOCOL_VERSION + 1
    decoder = FrameDecoder()
    assert decoder.feed(bytes(frame)) == []
    assert decoder.stats.bad_version == 1


def test_decoder_random_garbage_never_crashes() -> None:
    generator = random.Random(20240613)
    decoder = FrameDecoder()
    valid = 0
    for round_index in range(200):
        garbage = bytes(generator.randrange(256) for _ in range(generator.randrange(64)))
        frames = decoder.feed(garbage + encode(STATUS, round_index))
        valid += sum(
            1 for frame in frames if frame.seq == round_index and frame.payload == encode(STATUS, 0)[6:-2]
        )
        assert decoder.buffered < MAX_FRAME
    # A garbage tail swallows the start of the next valid frame only when it ends in a sync
    # byte followed by a plausible header. That is rare, so nearly every frame arrives.
    assert valid >= 190


def test_decoder_buffer_stays_bounded() -> None:
    decoder = FrameDecoder()
    chunk = encode(STATUS, 1) * 1000 + encode(STATUS, 2)[:10]
    frames = decoder.feed(chunk)
    assert len(frames) == 1000
    assert decoder.buffered == 10
