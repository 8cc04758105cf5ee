"""`nc-safety estop-emulator`: the e-stop board on a pseudo terminal.

The emulator applies the rules of `nc_safety.estop.board` to the frames a host writes to
the pty's device file and replies with STATUS frames at the board's rate, plus one right
after each change of relay, button or fault state. Tests and benchmarks use
`BoardEmulator` directly: it records the `time.monotonic()` instant of every relay
transition, which is the same clock in every process on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from nc_safety.estop.board import Board, BoardConfig, RelayTransition
from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import SEQ_MODULO, FrameDecoder, Hello, Status, decode_message, encode

READ_SIZE = 4096
MAX_IDLE_WAIT_S = 0.01
"""Maximum sleep of the emulator loop, in seconds, so button and fault changes are prompt."""


class BoardEmulator:
    """A board on a pty, run by its own thread. Every public method is thread-safe."""

    def __init__(self, config: BoardConfig | None = None, link_path: Path | None = None) -> None:
        self.config = config or BoardConfig()
        self.link_path = link_path
        """Optional symbolic link kept pointing at the current pty, like /dev/serial/by-id/."""
        self._lock = threading.Lock()
        self._board = Board(self.config, time.monotonic())
        self._decoder = FrameDecoder()
        self._decoder_bad_seen = 0
        self._master_fd: int | None = None
        self._slave_fd: int | None = None
        self._path: str | None = None
        self._seq = 0
        self._status_now = False
        self._next_status = 0.0
        self.frames_received = 0
        self.statuses_sent = 0
        self.statuses_dropped = 0
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="estop-emulator", daemon=True)

    def __enter__(self) -> BoardEmulator:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def path(self) -> str | None:
        """Device file of the current pty, or None while the port is closed."""
        with self._lock:
            return self._path

    @property
    def port(self) -> str:
        """What a host should open: the symbolic link when one is configured, else the pty."""
        if self.link_path is not None:
            return str(self.link_path)
        path = self.path
        if path is None:
            raise EstopError("the emulator's port is closed; call open_port() first")
        return path

    def start(self) -> str:
        """Open the pty and start the board thread; return the pty's device file."""
        path = self.open_port()
        self._thread.start()
        return path

    def stop(self) -> None:
        """Stop the thread and close the pty. Safe to call twice."""
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.close_port()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1

    def open_port(self) -> str:
        """Open a new pty (the board reappears) and point the symbolic link at it."""
        master, slave = os.openpty()
        # Raw mode before any host opens it: with the default line discipline the pty
        # would echo STATUS frames back to the emulator and mangle 0x0D and 0x11 bytes.
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(master, False)
        path = os.ttyname(slave)
        with self._lock:
            if self._master_fd is not None:
                os.close(master)
                os.close(slave)
                raise EstopError(f"the emulator's port {self._path} is already open; close_port() first")
            self._master_fd, self._slave_fd, self._path = master, slave, path
            self._status_now = True
        if self.link_path is not None:
            temporary = self.link_path.with_name(self.link_path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            temporary.symlink_to(path)
            temporary.replace(self.link_path)
        self._wake()
        return path

    def close_port(self) -> None:
        """Close the pty as if the cable were pulled: hosts get an I/O error, the board runs on."""
        with self._lock:
            fds = [fd for fd in (self._master_fd, self._slave_fd) if fd is not None]
            self._master_fd = self._slave_fd = None
            self._path = None
            self._decoder.reset()
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake()

    def press_button(self) -> float:
        """Press the e-stop button; return the instant (time.monotonic()) it was pressed."""
        with self._lock:
            now = time.monotonic()
            self._board.press_button(now)
            self._status_now = True
        self._wake()
        return now

    def release_button(self) -> float:
        with self._lock:
            now = time.monotonic()
            self._board.release_button(now)
            self._status_now = True
        self._wake()
        return now

    def set_fault(self, fault: bool) -> None:
        with self._lock:
            self._board.set_fault(fault, time.monotonic())
            self._status_now = True
        self._wake()

    def inject(self, data: bytes) -> None:
        """Write raw bytes to the host, for example garbage or a damaged frame in a test."""
        with self._lock:
            if self._master_fd is None:
                raise EstopError("cannot inject bytes: the emulator's port is closed; call open_port() first")
            os.write(self._master_fd, data)

    def status(self) -> Status:
        with self._lock:
            return self._board.status()

    @property
    def duplicate_heartbeats(self) -> int:
        with self._lock:
            return self._board.duplicate_heartbeats

    @property
    def rejected_resets(self) -> int:
        with self._lock:
            return self._board.rejected_resets

    def transitions(self) -> list[RelayTransition]:
        """Relay transitions so far, oldest first, stamped with time.monotonic()."""
        with self._lock:
            return list(self._board.transitions)

    def wait_for(self, predicate: Callable[[Status], bool], timeout: float) -> Status:
        """Poll the board status until `predicate` holds. Raises TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"board status did not reach the expected state within {timeout:.2f} s; "
                    f"it is: {describe(status)}"
                )
            time.sleep(0.002)

    def wait_relay_open(self, after: float, timeout: float) -> RelayTransition:
        """Wait for the first relay opening at or after `after`; return that transition."""
        return self._wait_transition(True, after, timeout)

    def wait_relay_closed(self, after: float, timeout: float) -> RelayTransition:
        return self._wait_transition(False, after, timeout)

    def _wait_transition(self, relay_open: bool, after: float, timeout: float) -> RelayTransition:
        deadline = time.monotonic() + timeout
        while True:
            for transition in self.transitions():
                if transition.relay_open is relay_open and transition.time >= after:
                    return transition
            if time.monotonic() > deadline:
                state = "open" if relay_open else "close"
                raise TimeoutError(f"relay did not {state} within {timeout:.2f} s")
            time.sleep(0.002)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def _run(self) -> None:
        while not self._stopping.is_set():
            master = self._wait()
            data = self._read(master) if master is not None else b""
            with self._lock:
                now = time.monotonic()
                if data:
                    self._apply(data, now)
                self._board.tick(now)
                if self._master_fd is not None and (self._status_now or now >= self._next_status):
                    self._send_status(now)

    def _wait(self) -> int | None:
        """Sleep until input, a wake-up, the next STATUS or the watchdog deadline."""
        with self._lock:
            master = self._master_fd
            now = time.monotonic()
            wait = min(self._next_status - now, MAX_IDLE_WAIT_S)
            deadline = self._board.watchdog_deadline()
            if deadline is not None:
                wait = min(wait, deadline - now + 0.0005)
            if self._status_now:
                wait = 0.0
        sources = [self._wake_read] if master is None else [self._wake_read, master]
        try:
            readable, _, _ = select.select(sources, [], [], max(wait, 0.0))
        except (OSError, ValueError):
            # The port was closed by another thread between reading the fd and selecting.
            return None
        if self._wake_read in readable:
            with contextlib.suppress(OSError):
                os.read(self._wake_read, READ_SIZE)
        return master if master is not None and master in readable else None

    def _read(self, master: int) -> bytes:
        try:
            return os.read(master, READ_SIZE)
        except BlockingIOError:
            return b""
        except OSError as error:
            # EIO: no process has the slave side open, or close_port() ran meanwhile.
            if error.errno in (errno.EIO, errno.EBADF):
                return b""
            raise

    def _apply(self, data: bytes, now: float) -> None:
        frames = self._decoder.feed(data)
        bad = self._decoder.stats.bad_frames
        for _ in range(bad - self._decoder_bad_seen):
            self._board.count_bad_frame()
        self._decoder_bad_seen = bad
        for frame in frames:
            self.frames_received += 1
            try:
                message = decode_message(frame)
            except EstopError:
                self._board.count_bad_frame()
                continue
            was_open, was_button = self._board.relay_open, self._board.button_pressed
            self._board.handle(message, frame.seq, now)
            changed = was_open != self._board.relay_open or was_button != self._board.button_pressed
            if isinstance(message, Hello) or changed:
                self._status_now = True

    def _send_status(self, now: float) -> None:
        master = self._master_fd
        if master is None:
            return
        frame = encode(self._board.status(), self._seq)
        self._seq = (self._seq + 1) % SEQ_MODULO
        self._status_now = False
        period = self.config.status_period_s
        self._next_status = self._next_status + period if now - self._next_status < period else now + period
        try:
            written = os.write(master, frame)
        except (BlockingIOError, OSError):
            # No process reads the pty and its buffer is full: a real UART drops bytes as well.
            self.statuses_dropped += 1
            return
        if written < len(frame):
            self.statuses_dropped += 1
        else:
            self.statuses_sent += 1


KEYS_HELP = "keys: p press button, r release button, f toggle board fault, s show status, q quit"


def describe(status: Status) -> str:
    """Summarise a STATUS in one line for the console."""
    relay = "OPEN" if status.relay_open else "closed"
    button = "pressed" if status.button_pressed else "up"
    return (
        f"relay {relay}, cause {status.cause.name.lower()}, button {button}, latched {status.latched}, "
        f"fault {status.board_fault}, watchdog expirations {status.watchdog_expirations}, "
        f"bad frames {status.bad_frames}"
    )


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nc-safety estop-emulator",
        description="Emulate the e-stop board on a pseudo terminal and print the device file to connect to.",
        epilog=KEYS_HELP,
    )
    parser.add_argument("--watchdog-ms", type=int, default=100, help="watchdog period in ms (default 100)")
    parser.add_argument("--status-hz", type=float, default=50.0, help="STATUS frames per second (default 50)")
    parser.add_argument(
        "--link",
        type=Path,
        help="also create this symbolic link to the pty, for a stable estop.port across restarts",
    )
    parser.add_argument("--no-keys", action="store_true", help="do not read keys from stdin")
    return parser.parse_args(list(argv))


def _read_keys(emulator: BoardEmulator, quit_event: threading.Event) -> None:
    while not quit_event.is_set():
        key = sys.stdin.read(1)
        if not key or key == "q":
            quit_event.set()
            return
        if key == "p":
            emulator.press_button()
            print("button pressed", flush=True)
        elif key == "r":
            emulator.release_button()
            print("button released (the relay stays open until the host sends a reset)", flush=True)
        elif key == "f":
            fault = not emulator.status().board_fault
            emulator.set_fault(fault)
            print(f"board fault {'raised' if fault else 'cleared'}", flush=True)
        elif key == "s":
            print(describe(emulator.status()), flush=True)
        elif not key.isspace():
            print(KEYS_HELP, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.status_hz <= 0 or args.status_hz != args.status_hz:
        print(f"estop-emulator: --status-hz {args.status_hz} must be a positive number", file=sys.stderr)
        return 2
    try:
        config = BoardConfig(watchdog_s=args.watchdog_ms / 1000.0, status_period_s=1.0 / args.status_hz)
    except EstopError as error:
        print(f"estop-emulator: {error}", file=sys.stderr)
        return 2

    emulator = BoardEmulator(config, link_path=args.link)
    path = emulator.start()
    print(f"e-stop board emulator on {path}", flush=True)
    if args.link is not None:
        print(f"symbolic link {args.link} -> {path}", flush=True)
    print(
        f"watchdog {args.watchdog_ms} ms, STATUS at {args.status_hz:g} Hz; {describe(emulator.status())}",
        flush=True,
    )

    quit_event = threading.Event()

    def request_quit(_signum: int, _frame: FrameType | None) -> None:
        quit_event.set()

    signal.signal(signal.SIGTERM, request_quit)
    signal.signal(signal.SIGINT, request_quit)
    saved_tty = None
    if not args.no_keys:
        if sys.stdin.isatty():
            saved_tty = termios.tcgetattr(sys.stdin.fileno())
            tty.setcbreak(sys.stdin.fileno())
        print(KEYS_HELP, flush=True)
        threading.Thread(target=_read_keys, args=(emulator, quit_event), daemon=True).start()

    last_printed = -1.0
    try:
        while not quit_event.wait(0.02):
            for transition in emulator.transitions():
                if transition.time <= last_printed:
                    continue
                last_printed = transition.time
                if transition.relay_open:
                    print(f"{transition.time:.3f} relay OPEN ({transition.cause.name.lower()})", flush=True)
                else:
                    print(f"{transition.time:.3f} relay closed", flush=True)
    finally:
        if saved_tty is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved_tty)
        emulator.stop()
        print("e-stop board emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
