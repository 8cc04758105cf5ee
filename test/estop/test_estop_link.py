"""Host link against the emulator over a real pty with pyserial."""

from __future__ import annotations

import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import serial
from ros_harness import wait_until

from nc_safety.estop.board import BoardConfig
from nc_safety.estop.emulator import BoardEmulator
from nc_safety.estop.errors import EstopError
from nc_safety.estop.link import EstopLink, LinkConfig, LinkState
from nc_safety.estop.protocol import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    SYNC,
    Heartbeat,
    HostState,
    MessageType,
    StopCause,
    TripReason,
    encode,
)

TIMEOUT = 5.0
LinkFactory = Callable[..., tuple[EstopLink, object]]


def wait_up(link: EstopLink) -> None:
    wait_until(lambda: link.snapshot().up, TIMEOUT)


def reset_and_close(link: EstopLink, emulator: BoardEmulator) -> None:
    wait_up(link)
    link.request_reset()
    emulator.wait_for(lambda status: not status.relay_open, TIMEOUT)


def test_link_comes_up_and_reports_power_on(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, recorder = make_link()
    wait_up(link)
    status = link.snapshot().status
    assert status is not None
    assert status.cause is StopCause.POWER_ON
    assert recorder.states()[-1] is LinkState.UP


def test_heartbeats_keep_relay_closed(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    closed_at = time.monotonic()
    # Observe for 10 s: heartbeats at 50 Hz must keep the 100 ms watchdog fed throughout.
    time.sleep(10.0)
    openings = [t for t in emulator.transitions() if t.relay_open and t.time >= closed_at]
    assert openings == []
    assert emulator.status().watchdog_expirations == 0
    assert link.snapshot().up


def test_button_reported_and_release_keeps_stop(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    emulator.press_button()
    wait_until(lambda: (s := link.snapshot().status) is not None and s.button_pressed, TIMEOUT)
    emulator.release_button()
    wait_until(lambda: (s := link.snapshot().status) is not None and not s.button_pressed, TIMEOUT)
    status = link.snapshot().status
    assert status is not None
    assert status.relay_open
    assert status.latched
    assert status.cause is StopCause.BUTTON


def test_reset_after_release_closes_relay(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    emulator.press_button()
    emulator.release_button()
    wait_until(lambda: (s := link.snapshot().status) is not None and s.relay_open, TIMEOUT)
    link.request_reset()
    emulator.wait_for(lambda status: not status.relay_open, TIMEOUT)


def test_reset_while_pressed_keeps_relay_open(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    emulator.press_button()
    wait_until(lambda: (s := link.snapshot().status) is not None and s.button_pressed, TIMEOUT)
    link.request_reset()
    wait_until(lambda: emulator.rejected_resets == 1, TIMEOUT)
    assert emulator.status().relay_open


def test_trip_opens_relay_with_reason(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    assert link.trip(TripReason.DECISION)
    status = emulator.wait_for(lambda s: s.relay_open, TIMEOUT)
    assert status.cause is StopCause.TRIP
    assert status.trip_reason == TripReason.DECISION
    assert link.snapshot().trip_reason is TripReason.DECISION


def test_tripped_link_sends_stop_heartbeats(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    link.trip(TripReason.DECISION)
    emulator.wait_for(lambda s: s.relay_open, TIMEOUT)
    # The board gets stop heartbeats now, so the relay stays open until request_reset().
    time.sleep(0.1)
    assert emulator.status().relay_open
    link.request_reset()
    emulator.wait_for(lambda s: not s.relay_open, TIMEOUT)


def test_close_trips_board(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    link.close()
    status = emulator.wait_for(lambda s: s.relay_open, TIMEOUT)
    assert status.cause is StopCause.TRIP
    assert status.trip_reason == TripReason.SHUTDOWN
    assert link.snapshot().state is LinkState.CLOSED


def test_reset_refused_while_link_down(tmp_path: Path) -> None:
    link = EstopLink(LinkConfig(port=str(tmp_path / "missing"), reconnect_min_s=0.02, reconnect_max_s=0.05))
    link.start()
    try:
        wait_until(lambda: link.snapshot().state is LinkState.LOST, TIMEOUT)
        with pytest.raises(EstopError, match=r"cannot send a reset: the e-stop link on .*missing is lost"):
            link.request_reset()
    finally:
        link.close()


def test_missing_port_then_board_appears(tmp_path: Path) -> None:
    port = tmp_path / "late-board"
    link = EstopLink(LinkConfig(port=str(port), reconnect_min_s=0.02, reconnect_max_s=0.1))
    link.start()
    try:
        wait_until(lambda: link.snapshot().state is LinkState.LOST, TIMEOUT)
        assert "cannot open" in link.snapshot().lost_reason
        with BoardEmulator(link_path=port):
            wait_up(link)
    finally:
        link.close()


def test_pty_closed_link_lost_then_reconnects(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, recorder = make_link()
    reset_and_close(link, emulator)
    closed_at = time.monotonic()
    emulator.close_port()
    wait_until(lambda: link.snapshot().state is LinkState.LOST, TIMEOUT)
    opening = emulator.wait_relay_open(closed_at, TIMEOUT)
    assert opening.cause is StopCause.WATCHDOG
    emulator.open_port()
    wait_up(link)
    # The board stays latched after the reconnect: only a reset closes the relay.
    status = link.snapshot().status
    assert status is not None
    assert status.relay_open
    assert status.latched
    assert LinkState.LOST in recorder.states()
    assert link.snapshot().lost_count == 1


def test_status_timeout_marks_link_lost(tmp_path: Path) -> None:
    # STATUS every 5 s: the board replies to HELLO once, then stays silent past the timeout.
    with BoardEmulator(BoardConfig(status_period_s=5.0), link_path=tmp_path / "slow-board") as board:
        link = EstopLink(
            LinkConfig(port=board.port, status_timeout_s=0.2, reconnect_min_s=0.5, reconnect_max_s=1.0)
        )
        link.start()
        try:
            wait_up(link)
            wait_until(lambda: link.snapshot().state is LinkState.LOST, TIMEOUT)
            assert link.snapshot().lost_reason == "no valid STATUS within 0.2 s"
        finally:
            link.close()


def test_stalled_executor_trips_board(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link(executor_timeout_s=0.3)
    wait_up(link)
    link.feed_executor()
    reset_and_close(link, emulator)
    status = emulator.wait_for(lambda s: s.relay_open, TIMEOUT)
    assert status.trip_reason == TripReason.EXECUTOR_STALLED
    assert link.snapshot().trip_reason is TripReason.EXECUTOR_STALLED


def test_executor_check_starts_with_first_feed(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    """A node that takes long to start spinning is not taken for a stalled executor."""
    link, _ = make_link(executor_timeout_s=0.3)
    wait_up(link)
    reset_and_close(link, emulator)
    time.sleep(0.6)  # twice the executor timeout, with no feed yet
    assert not emulator.status().relay_open
    assert link.snapshot().trip_reason is None


def test_second_host_cannot_open_port(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    first, _ = make_link()
    wait_up(first)
    second, _ = make_link()
    wait_until(lambda: second.snapshot().state is LinkState.LOST, TIMEOUT)
    assert "cannot open" in second.snapshot().lost_reason
    assert first.snapshot().up


def test_host_survives_damaged_frames(emulator: BoardEmulator, make_link: LinkFactory) -> None:
    link, _ = make_link()
    reset_and_close(link, emulator)
    generator = random.Random(7)
    bad_crc = bytearray(encode(emulator.status(), 1))
    bad_crc[-2] ^= 0x55
    truncated = encode(emulator.status(), 2)[:9]
    oversized = bytes([SYNC, PROTOCOL_VERSION, MessageType.STATUS, 3, 0, 200])
    garbage = bytes(generator.randrange(256) for _ in range(500))
    before = link.snapshot()
    for chunk in (garbage, bytes(bad_crc), truncated, oversized, garbage):
        emulator.inject(chunk)
    wait_until(lambda: link.snapshot().statuses_received > before.statuses_received + 10, TIMEOUT)
    after = link.snapshot()
    assert after.up
    assert after.decoder.bad_crc > before.decoder.bad_crc
    assert after.decoder.oversized > before.decoder.oversized
    assert after.decoder.garbage_bytes > before.decoder.garbage_bytes
    assert not emulator.status().relay_open


def test_board_counts_damaged_frames(emulator: BoardEmulator) -> None:
    with serial.Serial(emulator.port, 115200, timeout=0) as port:
        damaged = bytearray(encode(Heartbeat(HostState.RUN), 1))
        damaged[-1] ^= 0x01
        oversized = bytes([SYNC, PROTOCOL_VERSION, MessageType.HEARTBEAT, 2, 0, 99])
        port.write(bytes(damaged) + encode(Heartbeat(HostState.RUN), 3)[:5] + oversized + b"\x00" * 50)
        port.write(encode(Heartbeat(HostState.RUN), 4))
        status = emulator.wait_for(lambda s: s.bad_frames >= 3, TIMEOUT)
    assert status.heartbeat_seq == 4


def test_heartbeat_storm_keeps_memory_flat(emulator: BoardEmulator) -> None:
    frames = b"".join(encode(Heartbeat(HostState.RUN), seq % 65536) for seq in range(20_000))
    tracemalloc.start()
    try:
        with serial.Serial(emulator.port, 115200, timeout=0, write_timeout=TIMEOUT) as port:
            port.write(frames[: len(frames) // 4])
            wait_until(lambda: emulator.frames_received >= 5_000, TIMEOUT)
            baseline, _ = tracemalloc.get_traced_memory()
            port.write(frames[len(frames) // 4 :])
            wait_until(lambda: emulator.frames_received >= 20_000, 3 * TIMEOUT)
            grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown - baseline < 256 * 1024


def test_status_flood_keeps_memory_flat(tmp_path: Path) -> None:
    flood = BoardConfig(status_period_s=0.001)
    with BoardEmulator(flood, link_path=tmp_path / "flood-board") as board:
        link = EstopLink(LinkConfig(port=board.port))
        link.start()
        tracemalloc.start()
        try:
            wait_until(lambda: link.snapshot().statuses_received >= 500, TIMEOUT)
            baseline, _ = tracemalloc.get_traced_memory()
            burst = encode(board.status(), 0) * 2000
            board.inject(burst)
            wait_until(lambda: link.snapshot().statuses_received >= 4500, 3 * TIMEOUT)
            grown, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            link.close()
    assert grown - baseline < 256 * 1024
    assert link._decoder.buffered < MAX_FRAME


def test_config_lists_every_problem() -> None:
    with pytest.raises(EstopError, match=r"port is empty.*baudrate 10 is outside.*status_timeout_s nan s"):
        LinkConfig(port="", baudrate=10, status_timeout_s=float("nan"))


def test_config_rejects_inverted_backoff() -> None:
    with pytest.raises(EstopError, match=r"reconnect_max_s 0\.1 s is below reconnect_min_s 1\.0 s"):
        LinkConfig(port="/dev/null", reconnect_min_s=1.0, reconnect_max_s=0.1)
