"""`nc-safety estop-emulator` as a user runs it: device path on stdout, keys on stdin."""

from __future__ import annotations

import subprocess
import sys

import serial
from ros_harness import wait_until

from nc_safety.estop.protocol import FrameDecoder, Status, decode_message

TIMEOUT = 10.0


def read_status(port: serial.Serial, decoder: FrameDecoder) -> Status | None:
    for frame in decoder.feed(port.read(4096)):
        message = decode_message(frame)
        if isinstance(message, Status):
            return message
    return None


def test_emulator_cli_button_key() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "nc_safety.estop.emulator", "--watchdog-ms", "200"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        first_line = process.stdout.readline()
        assert first_line.startswith("e-stop board emulator on /dev/pts/")
        path = first_line.rsplit(" ", 1)[1].strip()
        with serial.Serial(path, 115200, timeout=0.05) as port:
            decoder = FrameDecoder()
            status = wait_until(lambda: read_status(port, decoder), TIMEOUT)
            assert status.watchdog_ms == 200
            assert not status.button_pressed
            process.stdin.write("p")
            process.stdin.flush()
            pressed = wait_until(
                lambda: (s := read_status(port, decoder)) is not None and s.button_pressed and s, TIMEOUT
            )
            assert pressed.relay_open
        process.stdin.write("q")
        process.stdin.flush()
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
