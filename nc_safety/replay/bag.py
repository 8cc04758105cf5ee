"""Reading rosbag2 recordings for replay: which messages, when, and with which stamps.

Each message is deserialized once from its recorded CDR bytes by rclpy itself, so no field
is converted by hand. Recordings made under sim time have header stamps far from the bag's
own clock. The stamp offset is therefore measured once per recording, so that rebased stamps
keep the small real delays between a measurement and its recording.
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader

# Offsets between header stamps and recording times beyond this mean a sim-time recording.
SIM_TIME_OFFSET_S = 10.0
OFFSET_SAMPLE = 50


class BagError(Exception):
    """Raised when a recording cannot be opened or contains nothing to replay."""


@dataclass(frozen=True, slots=True)
class BagMessage:
    topic: str
    """Topic the message is published on (after mapping)."""
    message: Any
    """The deserialized rclpy message."""
    offset_s: float
    """Recording time relative to the first replayed message, in seconds."""
    stamp_lag_s: float | None
    """Header stamp minus recording time, corrected for sim-time recordings; None without a header."""


@dataclass(frozen=True, slots=True)
class BagInfo:
    path: Path
    duration_s: float
    topics: dict[str, tuple[str, int]]
    """Recorded topic -> (type, message count)."""
    skipped: dict[str, str]
    """Recorded topic -> why it is not replayed."""
    sim_time: bool


def message_class(msgtype: str) -> Any | None:
    """The rclpy message class for `pkg/msg/Name`, or None when that package is not installed."""
    package, _, name = msgtype.partition("/msg/")
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError:
        return None
    return getattr(module, name, None)


def _stamp_of(message: Any) -> float | None:
    header = getattr(message, "header", None)
    if header is None:
        return None
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


class BagReplaySource:
    """Iterates the messages of a recording that can be replayed, in recording order."""

    def __init__(self, path: Path, topic_map: Mapping[str, str]) -> None:
        if not path.exists():
            raise BagError(f"recording {path} not found; pass the folder of a rosbag2 recording")
        if not (path / "metadata.yaml").is_file():
            raise BagError(
                f"{path} is not a rosbag2 folder (no metadata.yaml); pass the folder of the recording"
            )
        self.path = path
        self.topic_map = dict(topic_map)
        with Reader(path) as reader:
            topics = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
            duration = reader.duration * 1e-9
        self.classes: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for topic, (msgtype, _count) in topics.items():
            if topic not in self.topic_map:
                skipped[topic] = "not mapped to a node input"
                continue
            cls = message_class(msgtype)
            if cls is None:
                skipped[topic] = f"message type {msgtype} is not installed"
                continue
            self.classes[topic] = cls
        if not self.classes:
            raise BagError(
                f"{path} has no topic to replay: recorded {sorted(topics)}, mapped {sorted(self.topic_map)}"
            )
        self.stamp_offset = self._measure_offset()
        self.info = BagInfo(path, duration, topics, skipped, abs(self.stamp_offset) > SIM_TIME_OFFSET_S)

    def _measure_offset(self) -> float:
        samples: list[float] = []
        with Reader(self.path) as reader:
            connections = [c for c in reader.connections if c.topic in self.classes]
            for connection, timestamp, raw in reader.messages(connections=connections):
                stamp = _stamp_of(deserialize_message(bytes(raw), self.classes[connection.topic]))
                if stamp is not None and stamp > 0.0:
                    samples.append(stamp - timestamp * 1e-9)
                if len(samples) >= OFFSET_SAMPLE:
                    break
        if not samples:
            return 0.0
        median = statistics.median(samples)
        # Wall-clock recordings keep their real measurement-to-record lag; sim-time ones
        # lose the clock offset but keep the spread around it.
        return median if abs(median) > SIM_TIME_OFFSET_S else 0.0

    def messages(self) -> Iterator[BagMessage]:
        with Reader(self.path) as reader:
            connections = [c for c in reader.connections if c.topic in self.classes]
            first: int | None = None
            for connection, timestamp, raw in reader.messages(connections=connections):
                if first is None:
                    first = timestamp
                message = deserialize_message(bytes(raw), self.classes[connection.topic])
                stamp = _stamp_of(message)
                lag = None
                if stamp is not None and stamp > 0.0:
                    lag = stamp - timestamp * 1e-9 - self.stamp_offset
                yield BagMessage(
                    topic=self.topic_map[connection.topic],
                    message=message,
                    offset_s=(timestamp - first) * 1e-9,
                    stamp_lag_s=lag,
                )
