"""Write test vectors for the firmware's host harness, computed with nc_safety/estop/protocol.py.

Output is one vector per line, fields separated by spaces, byte strings in hex and `-` for
an empty one:

    crc DATA CRC16
    frame TYPE SEQ PAYLOAD FRAME
    status RELAY BUTTON LATCHED FAULT CAUSE TRIP EXPIRATIONS BAD HBSEQ MAJOR MINOR WDMS SEQ FRAME
    message TYPE SEQ PAYLOAD ok|error VALUE
    stream BYTES FRAMES BAD_CRC BAD_VERSION OVERSIZED GARBAGE [TYPE:SEQ:PAYLOAD ...]

Numbers are decimal. A `message` VALUE is the HELLO protocol version, the HEARTBEAT state
or the TRIP reason, and 0 for other types or errors. A `stream` gives the frames and
counters of one FrameDecoder fed all of BYTES.

Usage: PYTHONPATH=<repository root> python gen_vectors.py [--seed N] > vectors.txt
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator

from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import (
    MAX_PAYLOAD,
    FrameDecoder,
    Heartbeat,
    HostState,
    MessageType,
    Status,
    StopCause,
    Trip,
    crc16,
    decode_message,
    encode,
    encode_frame,
)
from nc_safety.estop.protocol import Frame as ProtocolFrame

RANDOM_STREAMS = 300
"""Random streams of frames mixed with damage. Each stream is at most a few hundred bytes."""


def hex_or_dash(data: bytes) -> str:
    return data.hex() if data else "-"


def crc_vectors(rng: random.Random) -> Iterator[str]:
    fixed = [b"", b"123456789", b"\x00", b"\xff" * 40, bytes(range(256))]
    randoms = [rng.randbytes(rng.randint(1, 64)) for _ in range(50)]
    for data in fixed + randoms:
        yield f"crc {hex_or_dash(data)} {crc16(data)}"


def frame_vectors(rng: random.Random) -> Iterator[str]:
    cases = [
        (MessageType.HELLO, 0, b"\x01"),
        (MessageType.HEARTBEAT, 1, b"\x01"),
        (MessageType.HEARTBEAT, 0xFFFF, b"\x00"),
        (MessageType.TRIP, 0x1234, b"\x05"),
        (MessageType.RESET_REQUEST, 0xA5A5, b""),
        (0x7F, 300, bytes(range(MAX_PAYLOAD))),
    ]
    for _ in range(50):
        cases.append(
            (rng.randint(0, 255), rng.randint(0, 0xFFFF), rng.randbytes(rng.randint(0, MAX_PAYLOAD)))
        )
    for msg_type, seq, payload in cases:
        frame = encode_frame(msg_type, seq, payload)
        yield f"frame {int(msg_type)} {seq} {hex_or_dash(payload)} {frame.hex()}"


def random_status(rng: random.Random) -> Status:
    return Status(
        relay_open=rng.random() < 0.5,
        button_pressed=rng.random() < 0.5,
        latched=rng.random() < 0.5,
        board_fault=rng.random() < 0.5,
        cause=rng.choice(list(StopCause)),
        trip_reason=rng.randint(0, 255),
        watchdog_expirations=rng.randint(0, 0xFFFF),
        bad_frames=rng.randint(0, 0xFFFF),
        heartbeat_seq=rng.randint(0, 0xFFFF),
        firmware_major=rng.randint(0, 255),
        firmware_minor=rng.randint(0, 255),
        watchdog_ms=rng.randint(5, 60000),
    )


def status_vectors(rng: random.Random) -> Iterator[str]:
    for _ in range(50):
        status = random_status(rng)
        seq = rng.randint(0, 0xFFFF)
        fields = [
            int(status.relay_open),
            int(status.button_pressed),
            int(status.latched),
            int(status.board_fault),
            int(status.cause),
            status.trip_reason,
            status.watchdog_expirations,
            status.bad_frames,
            status.heartbeat_seq,
            status.firmware_major,
            status.firmware_minor,
            status.watchdog_ms,
            seq,
        ]
        yield "status " + " ".join(str(field) for field in fields) + f" {encode(status, seq).hex()}"


def message_value(message: object) -> int:
    if isinstance(message, Heartbeat):
        return int(message.state)
    if isinstance(message, Trip):
        return message.reason
    protocol_version = getattr(message, "protocol_version", None)
    return protocol_version if isinstance(protocol_version, int) else 0


def message_vectors(rng: random.Random) -> Iterator[str]:
    status_payload = encode(random_status(rng), 0)[6:-2]
    cases: list[tuple[int, bytes]] = [
        (MessageType.HELLO, b"\x01"),
        (MessageType.HELLO, b"\x07"),
        (MessageType.HELLO, b""),
        (MessageType.HEARTBEAT, b"\x00"),
        (MessageType.HEARTBEAT, b"\x01"),
        (MessageType.HEARTBEAT, b"\x02"),
        (MessageType.HEARTBEAT, b"\x01\x01"),
        (MessageType.TRIP, b"\x04"),
        (MessageType.TRIP, b"\xff"),
        (MessageType.TRIP, b""),
        (MessageType.RESET_REQUEST, b""),
        (MessageType.RESET_REQUEST, b"\x00"),
        (MessageType.STATUS, status_payload),
        (MessageType.STATUS, status_payload[:1] + b"\x07" + status_payload[2:]),
        (MessageType.STATUS, status_payload[:-1]),
        (0x00, b""),
        (0x05, b"\x01"),
        (0x80, b""),
        (0xFF, b"\x01"),
    ]
    for msg_type, payload in cases:
        seq = rng.randint(0, 0xFFFF)
        try:
            message = decode_message(ProtocolFrame(int(msg_type), seq, payload))
        except EstopError:
            yield f"message {int(msg_type)} {seq} {hex_or_dash(payload)} error 0"
            continue
        yield f"message {int(msg_type)} {seq} {hex_or_dash(payload)} ok {message_value(message)}"


def damaged_frame(rng: random.Random) -> bytes:
    """Return one frame, possibly damaged: truncated, bit-flipped, wrong version or length."""
    frame = bytearray(
        encode_frame(rng.choice(list(MessageType)), rng.randint(0, 0xFFFF), rng.randbytes(rng.randint(0, 16)))
    )
    damage = rng.randint(0, 9)
    if damage == 0:
        del frame[rng.randint(1, len(frame) - 1) :]
    elif damage == 1:
        index = rng.randrange(len(frame))
        frame[index] ^= 1 << rng.randrange(8)
    elif damage == 2:
        frame[1] = rng.choice([0, 2, 0xA5])
    elif damage == 3:
        frame[5] = rng.randint(MAX_PAYLOAD + 1, 255)
    elif damage == 4:
        frame[5] = rng.randint(0, MAX_PAYLOAD)
    return bytes(frame)


def random_stream(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.2:
            parts.append(rng.randbytes(rng.randint(1, 20)))
        elif rng.random() < 0.1:
            parts.append(bytes([0xA5, 0x01]) * rng.randint(1, 5))
        else:
            parts.append(damaged_frame(rng))
    return b"".join(parts)


def stream_vectors(rng: random.Random) -> Iterator[str]:
    valid = encode(Heartbeat(HostState.RUN), 7)
    truncated = encode(Trip(1), 8)[:-3]
    oversized = bytes([0xA5, 0x01, 0x02, 0x00, 0x00, 33])
    bad_version = bytes([0xA5, 0x02]) + valid[2:]
    fixed = [
        valid,
        b"\x00\x11\x22" + valid,
        truncated + valid,
        oversized + valid,
        bad_version + valid,
        valid[:-1] + bytes([valid[-1] ^ 0xFF]) + valid,
        b"\xa5" * 50 + valid,
        valid + valid[:4],
        rng.randbytes(200),
    ]
    streams = fixed + [random_stream(rng) for _ in range(RANDOM_STREAMS)]
    for data in streams:
        decoder = FrameDecoder()
        frames = decoder.feed(data)
        stats = decoder.stats
        listed = " ".join(f"{frame.msg_type}:{frame.seq}:{hex_or_dash(frame.payload)}" for frame in frames)
        line = (
            f"stream {hex_or_dash(data)} {stats.frames} {stats.bad_crc} {stats.bad_version} "
            f"{stats.oversized} {stats.garbage_bytes}"
        )
        yield f"{line} {listed}".rstrip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write firmware test vectors computed with protocol.py.")
    parser.add_argument("--seed", type=int, default=13850, help="seed of the random cases (default 13850)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    for generate in (crc_vectors, frame_vectors, status_vectors, message_vectors, stream_vectors):
        for line in generate(rng):
            sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
