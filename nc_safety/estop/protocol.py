"""Binary frames exchanged with the e-stop board over a serial line.

A frame is::

    sync(0xA5) version type seq(u16 LE) length(u8) payload[length] crc(u16 BE)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection)
over every byte from `version` to the end of the payload. docs/estop_protocol.md gives
the payload layout of each message type. Nothing here does I/O or reads a clock, so the
board state machine, the emulator, the host link and the firmware tests share it.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

from nc_safety.estop.errors import EstopError

SYNC = 0xA5
PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBBHB")
"""Sync, version, message type, sequence number, payload length."""
CRC_SIZE = 2
MAX_PAYLOAD = 32
"""Largest payload in bytes; a frame whose length field is larger is rejected unread."""
MAX_FRAME = HEADER.size + MAX_PAYLOAD + CRC_SIZE
SEQ_MODULO = 1 << 16


class MessageType(IntEnum):
    """Message type byte. Host-to-board types are below 0x80, board-to-host types above."""

    HELLO = 0x01
    HEARTBEAT = 0x02
    TRIP = 0x03
    RESET_REQUEST = 0x04
    STATUS = 0x81


class HostState(IntEnum):
    """Host state carried by every heartbeat: a stop heartbeat opens the relay."""

    STOP = 0
    RUN = 1


class TripReason(IntEnum):
    """Reason code carried by TRIP. The board stores the code and reports it in STATUS."""

    UNSPECIFIED = 0
    DECISION = 1
    """A decision met a configured trip condition (a `fault` verdict, a non-finite command)."""
    SHUTDOWN = 2
    """The safety node is shutting down."""
    EXCEPTION = 3
    """An uncaught exception in the safety node."""
    SIGNAL = 4
    """The safety node received a termination signal."""
    EXECUTOR_STALLED = 5
    """The node's executor stopped calling the link within the executor timeout."""


class StopCause(IntEnum):
    """Cause of the most recent relay opening. STATUS reports it until the relay closes again."""

    NONE = 0
    POWER_ON = 1
    WATCHDOG = 2
    TRIP = 3
    HOST_STOP = 4
    BUTTON = 5
    BOARD_FAULT = 6


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame whose version and CRC checked out; its payload is not yet interpreted."""

    msg_type: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Hello:
    """Host to board, sent after the port opens: the protocol version the host speaks."""

    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Host to board: feeds the watchdog. The frame's sequence number must change each time."""

    state: HostState


@dataclass(frozen=True, slots=True)
class Trip:
    """Host to board: open the relay and latch, recording `reason` (a TripReason code)."""

    reason: int


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """Host to board: release the latch once the button is up and run heartbeats flow."""


@dataclass(frozen=True, slots=True)
class Status:
    """Board to host, sent at a fixed rate and after every HELLO."""

    relay_open: bool
    button_pressed: bool
    latched: bool
    board_fault: bool
    cause: StopCause
    trip_reason: int
    """TripReason code of the last TRIP, or 0."""
    watchdog_expirations: int
    """Times heartbeats stopped arriving within the watchdog period since power-on (wraps at 2^16)."""
    bad_frames: int
    """Frames the board dropped for a bad CRC, version, length or payload (wraps at 2^16)."""
    heartbeat_seq: int
    """Sequence number of the last heartbeat that fed the watchdog."""
    firmware_major: int
    firmware_minor: int
    watchdog_ms: int
    """The board's watchdog period, in milliseconds."""

    @property
    def stopped(self) -> bool:
        """Whether the board cuts motor power now or will keep it cut until a reset."""
        return self.relay_open or self.latched or self.button_pressed or self.board_fault


Message = Hello | Heartbeat | Trip | ResetRequest | Status

_STATUS = struct.Struct("<BBBHHHBBH")
_FLAG_RELAY_OPEN = 0x01
_FLAG_BUTTON = 0x02
_FLAG_LATCHED = 0x04
_FLAG_FAULT = 0x08
_PAYLOAD_SIZES = {
    MessageType.HELLO: 1,
    MessageType.HEARTBEAT: 1,
    MessageType.TRIP: 1,
    MessageType.RESET_REQUEST: 0,
    MessageType.STATUS: _STATUS.size,
}


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/CCITT-FALSE of `data` (check value 0x29B1 for b"123456789")."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Build one frame. Raises EstopError for a type, sequence number or payload out of range."""
    if not 0 <= msg_type <= 0xFF:
        raise EstopError(f"message type {msg_type} is outside 0..255")
    if not 0 <= seq < SEQ_MODULO:
        raise EstopError(f"sequence number {seq} is outside 0..65535; wrap it with `% SEQ_MODULO`")
    if len(payload) > MAX_PAYLOAD:
        raise EstopError(f"payload of {len(payload)} bytes is longer than the maximum of {MAX_PAYLOAD}")
    body = HEADER.pack(SYNC, PROTOCOL_VERSION, msg_type, seq, len(payload)) + payload
    return body + crc16(body[1:]).to_bytes(CRC_SIZE, "big")


def encode_payload(message: Message) -> tuple[MessageType, bytes]:
    """Return the message type and payload bytes of `message`."""
    if isinstance(message, Hello):
        return MessageType.HELLO, bytes([_byte(message.protocol_version, "protocol version")])
    if isinstance(message, Heartbeat):
        return MessageType.HEARTBEAT, bytes([int(message.state)])
    if isinstance(message, Trip):
        return MessageType.TRIP, bytes([_byte(message.reason, "trip reason")])
    if isinstance(message, ResetRequest):
        return MessageType.RESET_REQUEST, b""
    flags = (
        (_FLAG_RELAY_OPEN if message.relay_open else 0)
        | (_FLAG_BUTTON if message.button_pressed else 0)
        | (_FLAG_LATCHED if message.latched else 0)
        | (_FLAG_FAULT if message.board_fault else 0)
    )
    payload = _STATUS.pack(
        flags,
        int(message.cause),
        _byte(message.trip_reason, "trip reason"),
        message.watchdog_expirations % SEQ_MODULO,
        message.bad_frames % SEQ_MODULO,
        message.heartbeat_seq % SEQ_MODULO,
        _byte(message.firmware_major, "firmware major version"),
        _byte(message.firmware_minor, "firmware minor version"),
        min(message.watchdog_ms, 0xFFFF),
    )
    return MessageType.STATUS, payload


def encode(message: Message, seq: int) -> bytes:
    """Build the frame that carries `message` with sequence number `seq`."""
    msg_type, payload = encode_payload(message)
    return encode_frame(msg_type, seq, payload)


def decode_message(frame: Frame) -> Message:
    """Interpret a frame's payload. Raises EstopError for an unknown type or a wrong payload size."""
    try:
        msg_type = MessageType(frame.msg_type)
    except ValueError:
        raise EstopError(f"unknown message type 0x{frame.msg_type:02X} (seq {frame.seq})") from None
    expected = _PAYLOAD_SIZES[msg_type]
    if len(frame.payload) != expected:
        raise EstopError(
            f"{msg_type.name} payload has {len(frame.payload)} bytes, expected {expected} (seq {frame.seq})"
        )
    payload = frame.payload
    if msg_type is MessageType.HELLO:
        return Hello(payload[0])
    if msg_type is MessageType.HEARTBEAT:
        if payload[0] not in (HostState.STOP, HostState.RUN):
            raise EstopError(
                f"HEARTBEAT state {payload[0]} is neither 0 (stop) nor 1 (run) (seq {frame.seq})"
            )
        return Heartbeat(HostState(payload[0]))
    if msg_type is MessageType.TRIP:
        return Trip(payload[0])
    if msg_type is MessageType.RESET_REQUEST:
        return ResetRequest()
    flags, cause, trip_reason, expirations, bad_frames, hb_seq, major, minor, watchdog_ms = _STATUS.unpack(
        payload
    )
    try:
        stop_cause = StopCause(cause)
    except ValueError:
        raise EstopError(f"STATUS stop cause {cause} is unknown (seq {frame.seq})") from None
    return Status(
        relay_open=bool(flags & _FLAG_RELAY_OPEN),
        button_pressed=bool(flags & _FLAG_BUTTON),
        latched=bool(flags & _FLAG_LATCHED),
        board_fault=bool(flags & _FLAG_FAULT),
        cause=stop_cause,
        trip_reason=trip_reason,
        watchdog_expirations=expirations,
        bad_frames=bad_frames,
        heartbeat_seq=hb_seq,
        firmware_major=major,
        firmware_minor=minor,
        watchdog_ms=watchdog_ms,
    )


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EstopError(f"{what} {value} does not fit in one byte (0..255)")
    return value


@dataclass(frozen=True, slots=True)
class DecoderStats:
    """Counters of a FrameDecoder since it was created."""

    frames: int = 0
    """Frames with a valid version, length and CRC."""
    bad_crc: int = 0
    bad_version: int = 0
    oversized: int = 0
    """Headers whose length field exceeds MAX_PAYLOAD."""
    garbage_bytes: int = 0
    """Bytes skipped while searching for a sync byte."""

    @property
    def bad_frames(self) -> int:
        return self.bad_crc + self.bad_version + self.oversized


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get complete valid frames back.

    After a bad CRC, an unknown version or an oversized length field, it skips one byte and
    searches for the next sync byte, so a valid frame right after garbage or a truncated
    frame is still found. Its buffer never holds more than one partial frame, which is at
    most MAX_FRAME - 1 bytes, however much data arrives.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frames = 0
        self._bad_crc = 0
        self._bad_version = 0
        self._oversized = 0
        self._garbage = 0

    @property
    def stats(self) -> DecoderStats:
        return DecoderStats(self._frames, self._bad_crc, self._bad_version, self._oversized, self._garbage)

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame waiting for the rest."""
        return len(self._buffer)

    def reset(self) -> None:
        """Drop a partial frame, for example after the port was reopened. Counters stay."""
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they complete, in order."""
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        size = len(buffer)
        position = 0
        while True:
            start = buffer.find(SYNC, position)
            if start < 0:
                self._garbage += size - position
                position = size
                break
            self._garbage += start - position
            position = start
            if size - position < HEADER.size:
                break
            _sync, version, msg_type, seq, length = HEADER.unpack_from(buffer, position)
            if version != PROTOCOL_VERSION:
                self._bad_version += 1
                position += 1
                continue
            if length > MAX_PAYLOAD:
                self._oversized += 1
                position += 1
                continue
            end = position + HEADER.size + length + CRC_SIZE
            if end > size:
                break
            received_crc = int.from_bytes(buffer[end - CRC_SIZE : end], "big")
            if crc16(buffer[position + 1 : end - CRC_SIZE]) != received_crc:
                self._bad_crc += 1
                position += 1
                continue
            payload = bytes(buffer[position + HEADER.size : end - CRC_SIZE])
            frames.append(Frame(msg_type, seq, payload))
            self._frames += 1
            position = end
        del buffer[:position]
        return frames
