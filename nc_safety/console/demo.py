"""`nc-safety demo`: the safety node on a real TurtleBot3 recording, with an e-stop board.

Starts the e-stop board emulator on a pseudo terminal, starts the safety node with the
TurtleBot3 burger configuration and the board's port, replays the bundled real recording
through the node over DDS (printing each refusal as it arrives), presses the emulated
e-stop button part-way through to show a latched stop with its justification, then
prints what went in and what came out.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from nc_safety.ros.dds_env import apply_loopback_defaults

apply_loopback_defaults()

from nc_safety.estop.emulator import BoardEmulator, describe  # noqa: E402 - after the DDS defaults
from nc_safety.paths import config_file  # noqa: E402
from nc_safety.replay.bag import BagError, BagReplaySource  # noqa: E402
from nc_safety.replay.runner import DEFAULT_BAG, DEFAULT_MAP, run_replay  # noqa: E402

NODE_START_TIMEOUT_S = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nc-safety demo", description=__doc__.splitlines()[0])
    parser.add_argument("--bag", type=Path, default=DEFAULT_BAG, help="rosbag2 folder to replay")
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="node parameters (default: the shipped tb3_burger.yaml)",
    )
    parser.add_argument("--rate", type=float, default=2.0, help="playback speed factor (default 2.0)")
    parser.add_argument("--no-estop", action="store_true", help="run without the e-stop board emulator")
    parser.add_argument(
        "--press-at",
        type=float,
        default=0.75,
        help="fraction of the replay at which the e-stop button is pressed (default 0.75)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.press_at <= 1.0:
        print(f"nc-safety demo: --press-at {args.press_at} is outside [0, 1]", file=sys.stderr)
        return 2
    params_file = args.params_file or config_file("tb3_burger.yaml")
    if not params_file.is_file():
        print(
            f"nc-safety demo: params file {str(params_file)!r} not found; pass an existing YAML file",
            file=sys.stderr,
        )
        return 2
    log_dir = Path(tempfile.mkdtemp(prefix="nc_safety_demo_"))
    node_log = log_dir / "node.log"
    print(
        f"nc_safety demo: ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}, DDS on loopback, "
        f"node log in {node_log}"
    )

    emulator: BoardEmulator | None = None
    node_args = [sys.executable, "-m", "nc_safety.ros.node", "--ros-args", "--params-file", str(params_file)]
    if not args.no_estop:
        emulator = BoardEmulator()
        port = emulator.start()
        print(f"e-stop board emulator on {port} (watchdog {emulator.config.watchdog_s * 1000:.0f} ms)")
        node_args += [
            "-p",
            "estop.enabled:=true",
            "-p",
            f"estop.port:={port}",
            "-p",
            "estop.reset_on_startup:=true",
        ]

    with open(node_log, "wb") as log:
        node = subprocess.Popen(node_args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return _run(args, node, node_log, emulator)
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
            try:
                node.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=10.0)
        if emulator is not None:
            time.sleep(0.3)
            _print_board(emulator, final=True)
            emulator.stop()


def _run(
    args: argparse.Namespace, node: subprocess.Popen[bytes], node_log: Path, emulator: BoardEmulator | None
) -> int:
    try:
        duration = BagReplaySource(args.bag, DEFAULT_MAP).info.duration_s
    except BagError as error:
        print(f"nc-safety demo: {error}", file=sys.stderr)
        return 1
    timer = None
    if emulator is not None:
        delay = args.press_at * duration / args.rate

        def press() -> None:
            print(f"[demo] pressing the e-stop button {delay:.1f} s into the replay", flush=True)
            emulator.press_button()
            time.sleep(1.0)
            emulator.release_button()
            print("[demo] button released: the board stays latched until an operator resets it", flush=True)

        timer = threading.Timer(delay, press)
        timer.daemon = True
    try:
        summary = run_replay(
            args.bag,
            rate=args.rate,
            quiet=args.quiet,
            wait=NODE_START_TIMEOUT_S,
            on_start=timer.start if timer is not None else None,
        )
    except TimeoutError as error:
        print(f"nc-safety demo: {error}\nnode log ({node_log}):\n{_tail(node_log)}", file=sys.stderr)
        return 1
    finally:
        if timer is not None:
            timer.cancel()
    print(summary.render())
    if node.poll() is not None:
        print(
            f"nc-safety demo: the node exited with code {node.returncode}; log:\n{_tail(node_log)}",
            file=sys.stderr,
        )
        return 1
    if emulator is not None:
        _print_board(emulator, final=False)
    return 0


def _print_board(emulator: BoardEmulator, final: bool) -> None:
    status = emulator.status()
    label = "after the node stopped" if final else "at the end of the replay"
    print(f"e-stop board {label}: {describe(status)}")
    if final:
        transitions = emulator.transitions()
        print(f"  frames received from the host: {emulator.frames_received}; relay transitions:")
        start = transitions[0].time if transitions else 0.0
        for transition in transitions:
            state = "open" if transition.relay_open else "closed"
            print(
                f"    +{transition.time - start:7.3f} s  relay {state:<6} cause {transition.cause.name.lower()}"
            )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"


if __name__ == "__main__":
    sys.exit(main())
