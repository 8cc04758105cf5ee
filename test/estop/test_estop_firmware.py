"""The AVR e-stop firmware in firmware/estop_avr: its portable C code built with the host gcc.

The C harness checks CRC, frame encoding, message decoding and the resynchronising decoder
against vectors computed with nc_safety.estop.protocol. The C simulator runs the firmware
logic (estop_app) on a simulated millisecond clock. The same scenario drives the Python
Board, and every STATUS payload must match. The AVR cross build runs when avr-gcc is
installed (Debian: gcc-avr avr-libc binutils-avr).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nc_safety.estop.board import Board, BoardConfig
from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import (
    FrameDecoder,
    Heartbeat,
    Hello,
    HostState,
    MessageType,
    ResetRequest,
    Status,
    StopCause,
    Trip,
    decode_message,
    encode,
    encode_frame,
    encode_payload,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = REPO_ROOT / "firmware" / "estop_avr"
COMMAND_TIMEOUT_S = 120.0
"""Bound on each make or harness run; a build takes a few seconds on 2 cores."""

MISSING_HOST_TOOLS = [tool for tool in ("gcc", "make") if shutil.which(tool) is None]
needs_host_gcc = pytest.mark.skipif(
    bool(MISSING_HOST_TOOLS),
    reason=f"{' and '.join(MISSING_HOST_TOOLS)} not on PATH: the firmware's host harness needs them",
)


def run(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the harness and the simulator with sanitizers; return the directory of both."""
    build = tmp_path_factory.mktemp("estop_firmware")
    result = run(["make", "-C", str(FIRMWARE), "host", f"BUILD={build}", "SANITIZE=1", "HOST_CC=gcc"])
    assert result.returncode == 0, f"host build failed:\n{result.stdout}\n{result.stderr}"
    return build / "host"


@needs_host_gcc
def test_firmware_harness_matches_protocol_py(host_build: Path, tmp_path: Path) -> None:
    vectors = tmp_path / "vectors.txt"
    generated = run([sys.executable, str(FIRMWARE / "test" / "gen_vectors.py")])
    assert generated.returncode == 0, generated.stderr
    vectors.write_text(generated.stdout)

    result = run([str(host_build / "estop_host_tests"), str(vectors)])

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(" passed, 0 failed"), result.stdout


# ---- the simulator ----


@dataclass
class SimOutput:
    sent: list[tuple[int, bytes]]
    """STATUS frames the firmware sent: (instant in ms, frame bytes)."""
    states: list[tuple[int, bytes]]
    """STATUS payloads printed by `status` commands: (instant in ms, payload bytes)."""


def run_sim(host_build: Path, script: str, *options: str) -> SimOutput:
    result = run([str(host_build / "estop_sim"), *options], stdin=script)
    assert result.returncode == 0, f"estop_sim failed: {result.stderr}"
    sent: list[tuple[int, bytes]] = []
    states: list[tuple[int, bytes]] = []
    for line in result.stdout.splitlines():
        kind, instant, data = line.split()
        target = sent if kind == "tx" else states
        target.append((int(instant), bytes.fromhex(data)))
    return SimOutput(sent, states)


def decode_statuses(frames: list[tuple[int, bytes]]) -> list[tuple[int, int, Status]]:
    """Decode the simulator's STATUS frames with protocol.py: (instant, seq, status)."""
    decoded = []
    for instant, data in frames:
        decoder = FrameDecoder()
        [frame] = decoder.feed(data)
        message = decode_message(frame)
        assert isinstance(message, Status)
        decoded.append((instant, frame.seq, message))
    return decoded


@dataclass
class Scenario:
    """Drives the Python Board and writes the simulator script for the same events."""

    board: Board = field(default_factory=lambda: Board(BoardConfig(watchdog_s=0.1), now=0.0))
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    decoder_bad_seen: int = 0
    seq: int = 0
    now_ms: int = 0
    script: list[str] = field(default_factory=list)
    checkpoints: list[tuple[str, int, bytes, bool]] = field(default_factory=list)
    """(label, instant in ms, Python STATUS payload, expected relay_open)."""

    def at(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.script.append(f"at {now_ms}")

    def receive(self, data: bytes) -> None:
        """Apply bytes like BoardEmulator._apply does, and send them to the simulator."""
        now = self.now_ms / 1000.0
        frames = self.decoder.feed(data)
        bad = self.decoder.stats.bad_frames
        for _ in range(bad - self.decoder_bad_seen):
            self.board.count_bad_frame()
        self.decoder_bad_seen = bad
        for frame in frames:
            try:
                message = decode_message(frame)
            except EstopError:
                self.board.count_bad_frame()
                continue
            self.board.handle(message, frame.seq, now)
        self.script.append(f"rx {data.hex()}")

    def send(self, message: Heartbeat | Trip | ResetRequest | Hello, seq: int | None = None) -> None:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.receive(encode(message, seq))

    def heartbeats(self, start_ms: int, stop_ms: int, state: HostState = HostState.RUN) -> None:
        for instant in range(start_ms, stop_ms + 1, 20):
            self.at(instant)
            self.send(Heartbeat(state))

    def button(self, pressed: bool) -> None:
        now = self.now_ms / 1000.0
        if pressed:
            self.board.press_button(now)
        else:
            self.board.release_button(now)
        self.script.append(f"button {int(pressed)}")

    def fault(self, fault: bool) -> None:
        self.board.set_fault(fault, self.now_ms / 1000.0)
        self.script.append(f"fault {int(fault)}")

    def check(self, label: str, relay_open: bool) -> None:
        # The firmware checks its watchdog every millisecond, but the Python board only on demand.
        self.board.tick(self.now_ms / 1000.0)
        _msg_type, payload = encode_payload(self.board.status())
        self.checkpoints.append((label, self.now_ms, payload, relay_open))
        self.script.append("status")


def board_scenario() -> Scenario:
    """Heartbeats, watchdog, TRIP, stop heartbeat, button, fault, resets and bad frames."""
    scenario = Scenario()
    scenario.check("power-on", relay_open=True)

    scenario.heartbeats(10, 90)
    scenario.check("run heartbeats without a reset", relay_open=True)
    scenario.at(95)
    scenario.send(ResetRequest())
    scenario.check("reset with fresh run heartbeat", relay_open=False)
    scenario.heartbeats(110, 290)
    scenario.check("heartbeats keep the relay closed", relay_open=False)

    scenario.at(385)
    scenario.check("95 ms after the last heartbeat", relay_open=False)
    scenario.at(395)
    scenario.check("watchdog expired", relay_open=True)
    scenario.heartbeats(400, 400)
    scenario.check("heartbeat after expiry stays latched", relay_open=True)
    scenario.at(405)
    scenario.send(ResetRequest())
    scenario.check("reset after watchdog", relay_open=False)

    scenario.heartbeats(420, 500)
    scenario.at(505)
    scenario.send(Trip(4))
    scenario.check("trip latches", relay_open=True)
    scenario.heartbeats(520, 540)
    scenario.check("run heartbeats after trip", relay_open=True)
    scenario.at(545)
    scenario.send(ResetRequest())
    scenario.check("reset after trip", relay_open=False)

    repeated_seq = scenario.seq - 1
    for instant in range(560, 641, 20):
        scenario.at(instant)
        scenario.send(Heartbeat(HostState.RUN), seq=repeated_seq)
    scenario.at(641)
    scenario.check("repeated sequence numbers do not feed", relay_open=True)
    scenario.heartbeats(660, 660)
    scenario.at(665)
    scenario.send(ResetRequest())
    scenario.check("reset after duplicates", relay_open=False)

    scenario.heartbeats(680, 700)
    scenario.button(pressed=True)
    scenario.check("button pressed", relay_open=True)
    scenario.heartbeats(720, 720)
    scenario.send(ResetRequest())
    scenario.check("reset while pressed is rejected", relay_open=True)
    scenario.at(730)
    scenario.button(pressed=False)
    scenario.heartbeats(740, 760)
    scenario.check("release alone keeps the latch", relay_open=True)
    scenario.at(765)
    scenario.send(ResetRequest())
    scenario.check("reset after release", relay_open=False)

    scenario.heartbeats(780, 800)
    scenario.fault(fault=True)
    scenario.check("fault opens", relay_open=True)
    scenario.heartbeats(820, 820)
    scenario.send(ResetRequest())
    scenario.check("reset during fault is rejected", relay_open=True)
    scenario.fault(fault=False)
    scenario.heartbeats(840, 840)
    scenario.at(845)
    scenario.send(ResetRequest())
    scenario.check("reset after fault cleared", relay_open=False)

    scenario.heartbeats(860, 860, HostState.STOP)
    scenario.check("stop heartbeat", relay_open=True)
    scenario.heartbeats(880, 880)
    scenario.at(885)
    scenario.send(ResetRequest())
    scenario.check("reset after stop heartbeat", relay_open=False)

    scenario.heartbeats(900, 900)
    scenario.at(905)
    heartbeat = encode(Heartbeat(HostState.RUN), 60000)
    damaged = [
        b"\x00\x11\x22",
        heartbeat[:-1] + bytes([heartbeat[-1] ^ 0x01]),
        bytes([0xA5, 0x02]) + heartbeat[2:],
        bytes([0xA5, 0x01, 0x02, 0x00, 0x00, 40]),
        encode_frame(0x05, 60001, b"\x01"),
        encode_frame(MessageType.HEARTBEAT, 60002, b"\x07"),
        encode_frame(MessageType.TRIP, 60003, b""),
        encode(scenario.board.status(), 60004),
        encode(Trip(1), 60005)[:-4],
    ]
    scenario.receive(b"".join(damaged))
    scenario.send(Hello())
    scenario.check("bad frames counted, HELLO changes nothing", relay_open=False)
    scenario.heartbeats(920, 1000)
    scenario.check("still closed at the end", relay_open=False)
    return scenario


@needs_host_gcc
def test_firmware_board_matches_python_board(host_build: Path) -> None:
    scenario = board_scenario()

    output = run_sim(host_build, "\n".join(scenario.script) + "\n", "--debounce-ms", "0")

    assert len(output.states) == len(scenario.checkpoints)
    for (label, instant, expected, _relay_open), (sim_instant, payload) in zip(
        scenario.checkpoints, output.states, strict=True
    ):
        assert sim_instant == instant, label
        assert payload.hex() == expected.hex(), f"{label} at {instant} ms"


def test_board_scenario_relay_states() -> None:
    """The scenario's expected relay states hold for the Python board, so the comparison means something."""
    scenario = board_scenario()

    for label, _instant, payload, relay_open in scenario.checkpoints:
        assert bool(payload[0] & 0x01) is relay_open, label


@needs_host_gcc
def test_firmware_status_every_period(host_build: Path) -> None:
    output = run_sim(host_build, "at 1000\n")

    statuses = decode_statuses(output.sent)

    assert [instant for instant, _seq, _status in statuses] == list(range(0, 1001, 20))
    assert [seq for _instant, seq, _status in statuses] == list(range(len(statuses)))
    assert all(status.relay_open and status.latched for _i, _s, status in statuses)
    assert all(status.cause is StopCause.POWER_ON for _i, _s, status in statuses)
    assert all(status.watchdog_ms == 100 for _i, _s, status in statuses)


@needs_host_gcc
def test_firmware_status_after_hello(host_build: Path) -> None:
    output = run_sim(host_build, f"at 7\nrx {encode(Hello(), 0).hex()}\n")

    assert [instant for instant, _frame in output.sent] == [0, 7]


@needs_host_gcc
def test_firmware_status_on_watchdog_expiry(host_build: Path) -> None:
    script = "\n".join(
        [
            "at 3",
            f"rx {encode(Heartbeat(HostState.RUN), 1).hex()}",
            f"rx {encode(ResetRequest(), 2).hex()}",
            "at 200",
        ]
    )

    statuses = decode_statuses(run_sim(host_build, script + "\n").sent)

    openings = [instant for instant, _seq, status in statuses if status.cause is StopCause.WATCHDOG]
    assert openings[0] == 104


@needs_host_gcc
def test_firmware_button_debounce(host_build: Path) -> None:
    script = "\n".join(
        [
            "at 100",
            "button 1",
            "at 101",
            "button 0",
            "at 110",
            "button 1",
            "at 150",
            "button 0",
            "at 160",
            "button 1",
            "at 165",
            "button 0",
            "at 300",
        ]
    )

    statuses = decode_statuses(run_sim(host_build, script + "\n").sent)

    changes = []
    pressed = False
    for instant, _seq, status in statuses:
        if status.button_pressed is not pressed:
            pressed = status.button_pressed
            changes.append((instant, pressed))
    # A 1 ms blip is ignored, a press counts after 2 ms, and a release only after 20 ms
    # without bouncing back.
    assert changes == [(112, True), (185, False)]


@needs_host_gcc
def test_firmware_sim_rejects_unknown_command(host_build: Path) -> None:
    result = run([str(host_build / "estop_sim")], stdin="at 5\njump 3\n")

    assert result.returncode == 2
    assert "line 2: unknown command" in result.stderr


# ---- AVR cross build ----


@pytest.fixture
def avr_build(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("avr-gcc") is None:
        pytest.skip("avr-gcc not on PATH; install with: apt-get install -y gcc-avr avr-libc binutils-avr")
    if shutil.which("make") is None:
        pytest.skip("make not on PATH: the AVR build needs it")
    yield tmp_path


def test_firmware_avr_build(avr_build: Path) -> None:
    result = run(["make", "-C", str(FIRMWARE), f"BUILD={avr_build}"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert (avr_build / "avr" / "estop_avr.hex").stat().st_size > 0
    program = int(result.stdout.split("Program:")[1].split()[0])
    data = int(result.stdout.split("Data:")[1].split()[0])
    # Optiboot takes the last 512 bytes of the 32 KiB flash; keep at least 512 of the
    # 2 KiB of RAM for the stack.
    assert program <= 32 * 1024 - 512
    assert data <= 2048 - 512
