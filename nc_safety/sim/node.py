"""The simulation node: steps a `World` and talks ROS like a TurtleBot3 burger would.

Publishes `/clock` (sim time), `scan` (LaserScan in `base_scan`), `odom` (Odometry,
`odom` -> `base_footprint`, starting at zero at the robot's start pose) and `people`
(PoseArray in the base frame). Drives the base from the latest Twist on `cmd_vel_out`
(the safety node's output). With a relay source, motor power follows the e-stop relay.

The simulation loop runs in the caller's thread and paces itself to `real_time_factor`
times real time; an executor thread handles subscriptions.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose, PoseArray, Twist
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from nc_safety.sim.errors import SimError
from nc_safety.sim.world import World


class RelaySource(Protocol):
    """Source of motor power: `motor_power()` is True while the e-stop relay is closed."""

    def motor_power(self) -> bool: ...


class EmulatorRelay:
    """Motor power from an in-process `nc_safety.estop.emulator.BoardEmulator`."""

    def __init__(self, emulator: object) -> None:
        self._emulator = emulator

    def motor_power(self) -> bool:
        status = self._emulator.status()  # type: ignore[attr-defined]
        return not bool(status.relay_open)


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Rates, topics and frames of the simulation node. Times are simulated seconds."""

    real_time_factor: float = 4.0
    """Simulated seconds per real second; 0 runs as fast as the machine allows."""
    control_period: float = 0.01
    """The loop's step: commands are applied and `/clock` is published this often."""
    odom_rate: float = 20.0
    people_rate: float = 10.0
    people_range: float = 3.5
    """People farther than this (m) from the robot are not published, like a detector's range."""
    cmd_topic: str = "cmd_vel_out"
    refusals_topic: str = "/nc_safety/refusals"
    odom_frame: str = "odom"
    base_frame: str = "base_footprint"
    scan_frame: str = "base_scan"

    def validate(self) -> None:
        problems = []
        if not (math.isfinite(self.real_time_factor) and self.real_time_factor >= 0.0):
            problems.append(f"real_time_factor = {self.real_time_factor!r} must be >= 0 (0 = unpaced)")
        if not (math.isfinite(self.control_period) and 0.001 <= self.control_period <= 0.05):
            problems.append(f"control_period = {self.control_period!r} s must be within 0.001..0.05")
        for name in ("odom_rate", "people_rate", "people_range"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                problems.append(f"{name} = {value!r} must be greater than 0")
        if problems:
            raise SimError(problems, source="simulation settings")


def stamp(seconds: float) -> TimeMsg:
    whole = math.floor(seconds)
    return TimeMsg(sec=int(whole), nanosec=min(999_999_999, round((seconds - whole) * 1e9)))


def _quaternion_z(yaw: float) -> tuple[float, float]:
    return math.sin(yaw / 2.0), math.cos(yaw / 2.0)


class SimNode:
    """A ROS node around one world. `run` blocks until the duration ends or `stop` is called."""

    def __init__(
        self,
        world: World,
        settings: SimSettings | None = None,
        *,
        context: Context | None = None,
        relay: RelaySource | None = None,
        node_name: str = "nc_safety_sim",
    ) -> None:
        self.world = world
        self.settings = settings or SimSettings()
        self.settings.validate()
        self.relay = relay
        self.node = rclpy.create_node(node_name, context=context)
        self.scan_enabled = True
        """Set False to make the laser fall silent (a scenario event)."""
        self.tick_callbacks: list[Callable[[World], None]] = []
        """Called after every control step from the simulation thread."""
        self.refusals: list[dict[str, object]] = []
        self.refusal_times: list[float] = []
        self._lock = threading.Lock()
        self._command = (0.0, 0.0)
        self._commands_received = 0
        self._stop = threading.Event()

        self.clock_pub = self.node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
        self.scan_pub = self.node.create_publisher(LaserScan, "scan", qos_profile_sensor_data)
        self.odom_pub = self.node.create_publisher(Odometry, "odom", QoSProfile(depth=10))
        self.people_pub = self.node.create_publisher(PoseArray, "people", QoSProfile(depth=10))
        self.node.create_subscription(Twist, self.settings.cmd_topic, self._on_command, QoSProfile(depth=10))
        self.node.create_subscription(
            String, self.settings.refusals_topic, self._on_refusal, QoSProfile(depth=50)
        )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._spin_thread = threading.Thread(target=self._spin, name="sim-executor", daemon=True)
        self._spin_thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                return
            except Exception as error:
                # Without the executor no command arrives any more, so the base must stop too.
                self.node.get_logger().error(f"executor failed, stopping the simulation: {error!r}")
                self._stop.set()
                return

    def _on_command(self, message: Twist) -> None:
        with self._lock:
            self._command = (float(message.linear.x), float(message.angular.z))
            self._commands_received += 1

    def _on_refusal(self, message: String) -> None:
        try:
            record = json.loads(message.data)
        except json.JSONDecodeError:
            record = {"unparsed": message.data}
        with self._lock:
            self.refusals.append(record if isinstance(record, dict) else {"value": record})
            self.refusal_times.append(self.world.time)

    @property
    def commands_received(self) -> int:
        with self._lock:
            return self._commands_received

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._spin_thread.join(timeout=2.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()

    def run(self, duration: float) -> float:
        """Simulate `duration` seconds (0 = until `stop`), publishing as a robot would.

        Returns the real seconds the run took.
        """
        world = self.world
        settings = self.settings
        end = world.time + duration if duration > 0.0 else math.inf
        next_scan = next_odom = next_people = world.time
        wall_start = time.monotonic()
        sim_start = world.time
        while not self._stop.is_set() and world.time < end - 1e-9:
            if self.relay is not None:
                world.set_motor_power(self.relay.motor_power())
            with self._lock:
                linear, angular = self._command
            world.set_command(linear, angular)
            world.step(settings.control_period)
            now = world.time
            self.clock_pub.publish(Clock(clock=stamp(now)))
            if now >= next_scan - 1e-9:
                next_scan += 1.0 / world.laser.rate
                if self.scan_enabled:
                    self.scan_pub.publish(self.scan_message())
            if now >= next_odom - 1e-9:
                next_odom += 1.0 / settings.odom_rate
                self.odom_pub.publish(self.odom_message())
            if now >= next_people - 1e-9:
                next_people += 1.0 / settings.people_rate
                self.people_pub.publish(self.people_message())
            for callback in self.tick_callbacks:
                callback(world)
            if settings.real_time_factor > 0.0:
                ahead = (now - sim_start) / settings.real_time_factor - (time.monotonic() - wall_start)
                if ahead > 0.0:
                    time.sleep(ahead)
        return time.monotonic() - wall_start

    def scan_message(self) -> LaserScan:
        laser = self.world.laser
        message = LaserScan()
        message.header.stamp = stamp(self.world.time)
        message.header.frame_id = self.settings.scan_frame
        message.angle_min = 0.0
        message.angle_increment = laser.angle_increment
        message.angle_max = (laser.rays - 1) * laser.angle_increment
        message.scan_time = 1.0 / laser.rate
        message.time_increment = message.scan_time / laser.rays
        message.range_min = laser.range_min
        message.range_max = laser.range_max
        message.ranges = self.world.scan().astype(np.float32).tolist()
        return message

    def odom_message(self) -> Odometry:
        world = self.world
        x, y, yaw = world.pose()
        x0, y0, yaw0 = world.scene.start
        # Odometry starts at zero where the robot starts, as wheel odometry does.
        dx, dy = x - x0, y - y0
        message = Odometry()
        message.header.stamp = stamp(world.time)
        message.header.frame_id = self.settings.odom_frame
        message.child_frame_id = self.settings.base_frame
        message.pose.pose.position.x = math.cos(yaw0) * dx + math.sin(yaw0) * dy
        message.pose.pose.position.y = -math.sin(yaw0) * dx + math.cos(yaw0) * dy
        qz, qw = _quaternion_z(yaw - yaw0)
        message.pose.pose.orientation.z = qz
        message.pose.pose.orientation.w = qw
        linear, angular = world.velocity()
        message.twist.twist.linear.x = linear
        message.twist.twist.angular.z = angular
        return message

    def people_message(self) -> PoseArray:
        world = self.world
        x, y, yaw = world.pose()
        message = PoseArray()
        message.header.stamp = stamp(world.time)
        message.header.frame_id = self.settings.base_frame
        for _name, px, py, heading in world.people_poses():
            dx, dy = px - x, py - y
            if math.hypot(dx, dy) > self.settings.people_range:
                continue
            pose = Pose()
            pose.position.x = math.cos(yaw) * dx + math.sin(yaw) * dy
            pose.position.y = -math.sin(yaw) * dx + math.cos(yaw) * dy
            qz, qw = _quaternion_z(heading - yaw)
            pose.orientation.z = qz
            pose.orientation.w = qw
            message.poses.append(pose)
        return message
