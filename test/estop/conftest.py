"""Fixtures for the e-stop tests: a board emulator on a real pty and host links to it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nc_safety.estop.board import BoardConfig
from nc_safety.estop.emulator import BoardEmulator
from nc_safety.estop.link import EstopLink, LinkConfig, LinkSnapshot, LinkState


class Recorder:
    """Collects the snapshots a link reports, for assertions from the test thread."""

    def __init__(self) -> None:
        self.snapshots: list[LinkSnapshot] = []
        self._lock = threading.Lock()

    def __call__(self, snapshot: LinkSnapshot) -> None:
        with self._lock:
            self.snapshots.append(snapshot)

    def states(self) -> list[LinkState]:
        with self._lock:
            return [snapshot.state for snapshot in self.snapshots]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[BoardEmulator]:
    board = BoardEmulator(
        BoardConfig(watchdog_s=0.1, status_period_s=0.02), link_path=tmp_path / "estop-board"
    )
    board.start()
    try:
        yield board
    finally:
        board.stop()


LinkFactory = Callable[..., tuple[EstopLink, Recorder]]


@pytest.fixture
def make_link(emulator: BoardEmulator) -> Iterator[LinkFactory]:
    links: list[EstopLink] = []

    def make(**settings: object) -> tuple[EstopLink, Recorder]:
        recorder = Recorder()
        options: dict[str, object] = {"port": emulator.port, "reconnect_min_s": 0.02, "reconnect_max_s": 0.2}
        options.update(settings)
        link = EstopLink(LinkConfig(**options), on_change=recorder)  # type: ignore[arg-type]
        links.append(link)
        link.start()
        return link, recorder

    yield make
    for link in links:
        link.close()
