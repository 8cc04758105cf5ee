"""The MuJoCo world: a TurtleBot3 burger base, a 2D laser, obstacles and scripted people.

The base is a planar body (x, y, yaw joints) driven by velocity actuators, so walls and
people stop it through real MuJoCo contacts. The laser is a ring of rangefinder sensors.
People are mocap bodies moved along their paths every physics step; their geoms collide
with the robot like any other geom. Everything random (laser noise and dropouts) comes
from one generator seeded per world, so a run with the same seed and the same command
sequence is identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from nc_safety.sim.errors import SimError
from nc_safety.sim.scene import Box, Cylinder, Scene


@dataclass(frozen=True, slots=True)
class RobotSpec:
    """The differential-drive base. Defaults are the TurtleBot3 burger's published specification.

    Size 138 x 178 x 192 mm, about 1 kg, 0.22 m/s and 2.84 rad/s top speeds, wheel
    separation 0.160 m (ROBOTIS TurtleBot3 e-manual, burger specification). The body
    centre sits 0.032 m behind `base_footprint`, as in the turtlebot3_description URDF.
    """

    length: float = 0.138
    width: float = 0.178
    height: float = 0.192
    body_offset_x: float = -0.032
    mass: float = 1.0
    wheel_separation: float = 0.160
    max_linear: float = 0.22
    max_angular: float = 2.84
    linear_acceleration: float = 2.5
    """m/s², acceleration and braking limit of the motor controller."""
    angular_acceleration: float = 3.2
    """rad/s², for yaw rate."""
    power_off_deceleration: float = 1.0
    """m/s² while coasting with motor power off (relay open).

    NOTE: an estimate for the burger's rolling friction, not a measured value.
    """

    def validate(self) -> None:
        problems = [
            f"robot.{name} = {getattr(self, name)!r} must be a finite number greater than 0"
            for name in (
                "length",
                "width",
                "height",
                "mass",
                "wheel_separation",
                "max_linear",
                "max_angular",
                "linear_acceleration",
                "angular_acceleration",
                "power_off_deceleration",
            )
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0.0)
        ]
        if problems:
            raise SimError(problems, source="robot")


@dataclass(frozen=True, slots=True)
class LaserSpec:
    """A 2D laser like the burger's LDS-01: 360 rays, 0.12-3.5 m, 5 Hz.

    Ranges follow REP 117: +inf when nothing is within `range_max`, NaN for a dropout.
    Noise is Gaussian with a standard deviation of `noise_std + noise_fraction * range`.
    """

    rays: int = 360
    range_min: float = 0.12
    range_max: float = 3.5
    noise_std: float = 0.01
    """m; constant part of the range noise."""
    noise_fraction: float = 0.005
    """Part of the noise proportional to the range (0.005 = 0.5 %)."""
    dropout_rate: float = 0.01
    """Probability that one ray returns NaN in one scan, 0..1."""
    rate: float = 5.0
    """Hz; scans per simulated second."""
    offset: tuple[float, float, float] = (-0.032, 0.0, 0.172)
    """Laser origin relative to `base_footprint` in m (the burger's `base_scan` joint)."""

    def validate(self) -> None:
        problems = []
        if self.rays < 1:
            problems.append(f"laser.rays = {self.rays!r} must be at least 1")
        if not 0.0 <= self.range_min < self.range_max:
            problems.append(
                f"laser range {self.range_min!r}..{self.range_max!r} m needs 0 <= range_min < range_max"
            )
        if not (self.noise_std >= 0.0 and self.noise_fraction >= 0.0):
            problems.append(
                f"laser noise {self.noise_std!r} m + {self.noise_fraction!r} x range must be >= 0"
            )
        if not 0.0 <= self.dropout_rate <= 1.0:
            problems.append(f"laser.dropout_rate = {self.dropout_rate!r} must be within 0..1")
        if not (math.isfinite(self.rate) and self.rate > 0.0):
            problems.append(f"laser.rate = {self.rate!r} Hz must be greater than 0")
        if problems:
            raise SimError(problems, source="laser")

    @property
    def angle_increment(self) -> float:
        return 2.0 * math.pi / self.rays


@dataclass(frozen=True, slots=True)
class Contact:
    """The robot touching (or pressing into) another geom."""

    other: str
    """Name of the obstacle or person."""
    x: float
    y: float
    depth: float
    """Penetration in m (>= 0)."""


@dataclass(frozen=True, slots=True)
class Clearance:
    """Shortest distances from the robot's body to the nearest obstacle and the nearest person, in m.

    Negative values mean penetration; `math.inf` means there is no such thing in the scene.
    """

    obstacle: float
    obstacle_name: str
    person: float
    person_name: str


@dataclass(slots=True)
class _DriveState:
    """Velocity setpoint after the speed and acceleration limits, in the robot frame."""

    linear: float = 0.0
    angular: float = 0.0
    target_linear: float = 0.0
    target_angular: float = 0.0
    motor_power: bool = True
    command_time: float = field(default=-math.inf)


ROBOT_GEOM = "robot_body"
YIELD_GAP = 0.1
"""m; a yielding person waits rather than step closer than this to the robot's body."""
LINEAR_GAIN = 100.0
"""N·s/m of the x and y velocity actuators: with the 1 kg base a 10 ms time constant."""
ANGULAR_GAIN = 1.0
"""N·m·s/rad of the yaw velocity actuator."""


def build_mjcf(scene: Scene, robot: RobotSpec, laser: LaserSpec, timestep: float) -> str:
    """Write the MJCF model of `scene` with the robot at its start pose."""
    x0, y0, yaw0 = scene.start
    body_z = robot.height / 2.0 + 0.01
    laser_z = laser.offset[2] - body_z
    sites = []
    sensors = []
    for index in range(laser.rays):
        angle = index * laser.angle_increment
        sites.append(
            f'<site name="ray_{index}" pos="{laser.offset[0]} {laser.offset[1]} {laser_z}" '
            f'zaxis="{math.cos(angle):.9f} {math.sin(angle):.9f} 0" size="0.005"/>'
        )
        sensors.append(f'<rangefinder name="range_{index}" site="ray_{index}"/>')

    obstacles = []
    for obstacle in scene.obstacles:
        group = 1 if obstacle.kind == "wall" else 2
        if isinstance(obstacle, Box):
            obstacles.append(
                f'<geom name="{obstacle.name}" type="box" group="{group}" '
                f'pos="{obstacle.x} {obstacle.y} {obstacle.height / 2.0}" euler="0 0 {obstacle.yaw}" '
                f'size="{obstacle.length / 2.0} {obstacle.width / 2.0} {obstacle.height / 2.0}" '
                f'rgba="0.6 0.6 0.6 1"/>'
            )
        elif isinstance(obstacle, Cylinder):
            obstacles.append(
                f'<geom name="{obstacle.name}" type="cylinder" group="{group}" '
                f'pos="{obstacle.x} {obstacle.y} {obstacle.height / 2.0}" '
                f'size="{obstacle.radius} {obstacle.height / 2.0}" rgba="0.5 0.4 0.3 1"/>'
            )
    people = []
    for person in scene.people:
        px, py, _ = person.pose_at(0.0)
        people.append(
            f'<body name="{person.name}" mocap="true" pos="{px} {py} {person.height / 2.0}">'
            f'<geom name="{person.name}" type="cylinder" group="3" size="{person.radius} {person.height / 2.0}" '
            f'rgba="0.9 0.5 0.2 1"/></body>'
        )

    # The base: planar joints, a box collision geom offset behind base_footprint, the laser ring.
    return f"""<mujoco model="{scene.name}">
  <compiler angle="radian"/>
  <option timestep="{timestep}" integrator="implicitfast" gravity="0 0 -9.81"/>
  <worldbody>
    <geom name="floor" type="plane" size="50 50 0.1" contype="0" conaffinity="0" rgba="0.9 0.9 0.9 1"/>
    {"".join(obstacles)}
    {"".join(people)}
    <body name="base_footprint" pos="{x0} {y0} {body_z}" euler="0 0 {yaw0}">
      <joint name="base_x" type="slide" axis="1 0 0" damping="0"/>
      <joint name="base_y" type="slide" axis="0 1 0" damping="0"/>
      <joint name="base_yaw" type="hinge" axis="0 0 1" damping="0"/>
      <inertial pos="{robot.body_offset_x} 0 0" mass="{robot.mass}" diaginertia="0.01 0.01 0.01"/>
      <geom name="{ROBOT_GEOM}" type="box" pos="{robot.body_offset_x} 0 0" mass="0"
            size="{robot.length / 2.0} {robot.width / 2.0} {robot.height / 2.0}" rgba="0.2 0.2 0.8 1"/>
      {"".join(sites)}
    </body>
  </worldbody>
  <actuator>
    <velocity name="drive_x" joint="base_x" kv="{LINEAR_GAIN}" forcerange="-20 20" forcelimited="true"/>
    <velocity name="drive_y" joint="base_y" kv="{LINEAR_GAIN}" forcerange="-20 20" forcelimited="true"/>
    <velocity name="drive_yaw" joint="base_yaw" kv="{ANGULAR_GAIN}" forcerange="-5 5" forcelimited="true"/>
  </actuator>
  <sensor>
    {"".join(sensors)}
  </sensor>
</mujoco>
"""


def _approach(current: float, target: float, max_step: float) -> float:
    if target > current:
        return min(target, current + max_step)
    return max(target, current - max_step)


class World:
    """One simulated world, stepped by its owner. Not thread-safe: use it from one thread."""

    def __init__(
        self,
        scene: Scene,
        robot: RobotSpec | None = None,
        laser: LaserSpec | None = None,
        seed: int = 0,
        timestep: float = 0.005,
        command_timeout: float = 0.0,
    ) -> None:
        self.scene = scene
        self.robot = robot or RobotSpec()
        self.laser = laser or LaserSpec()
        self.robot.validate()
        self.laser.validate()
        if not (math.isfinite(timestep) and 0.0 < timestep <= 0.02):
            raise SimError(f"timestep = {timestep!r} s must be within (0, 0.02]", source="world")
        if not (math.isfinite(command_timeout) and command_timeout >= 0.0):
            raise SimError(
                f"command_timeout = {command_timeout!r} s must be >= 0 (0 disables it)", source="world"
            )
        self.seed = seed
        self.command_timeout = command_timeout

        try:
            self.model = mujoco.MjModel.from_xml_string(build_mjcf(scene, self.robot, self.laser, timestep))
        except ValueError as error:
            raise SimError(
                f"MuJoCo rejected the model of scene {scene.name!r}: {error}", source="world"
            ) from error
        self.data = mujoco.MjData(self.model)
        self._probe = mujoco.MjData(self.model)
        """Scratch data for `projected_clearance`, so probing never touches the simulation state."""
        self._rng = np.random.default_rng(seed)
        self._drive = _DriveState()

        self._robot_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, ROBOT_GEOM)
        self._obstacle_geoms = [
            (mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, o.name), o.name) for o in scene.obstacles
        ]
        self._people = [
            (
                person,
                mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, person.name),
                mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, person.name),
            )
            for person in scene.people
        ]

        self._walked = {person.name: 0.0 for person in scene.people}
        """Metres of its path each person has walked; yielding people fall behind their schedule."""
        self._qpos_x = self.model.joint("base_x").qposadr[0]
        self._start = scene.start
        self._geom_names = {
            index: mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, index) or f"geom_{index}"
            for index in range(self.model.ngeom)
        }

        # Rangefinders run only when a scan is taken: 360 rays every physics step would
        # cost more than the rest of the simulation together.
        self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
        self._place_people(self.data)
        mujoco.mj_forward(self.model, self.data)

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def motor_power(self) -> bool:
        return self._drive.motor_power

    def set_motor_power(self, on: bool) -> None:
        """Switch motor power, as the e-stop relay does; with power off the base coasts to a stop."""
        self._drive.motor_power = on

    def set_command(self, linear: float, angular: float) -> None:
        """Set the requested body velocity (m/s, rad/s). Non-finite values request a stop."""
        if not (math.isfinite(linear) and math.isfinite(angular)):
            linear, angular = 0.0, 0.0
        self._drive.target_linear = float(linear)
        self._drive.target_angular = float(angular)
        self._drive.command_time = self.time

    def pose(self) -> tuple[float, float, float]:
        """Robot `base_footprint` pose in the world: x (m), y (m), yaw (rad, within -pi..pi)."""
        x0, y0, yaw0 = self._start
        q = self.data.qpos
        yaw = math.atan2(math.sin(yaw0 + q[self._qpos_x + 2]), math.cos(yaw0 + q[self._qpos_x + 2]))
        return x0 + float(q[self._qpos_x]), y0 + float(q[self._qpos_x + 1]), yaw

    def velocity(self) -> tuple[float, float]:
        """Measured body velocity: forward speed (m/s) and yaw rate (rad/s)."""
        _, _, yaw = self.pose()
        v = self.data.qvel
        forward = math.cos(yaw) * v[self._qpos_x] + math.sin(yaw) * v[self._qpos_x + 1]
        return float(forward), float(v[self._qpos_x + 2])

    def setpoint(self) -> tuple[float, float]:
        """Velocity the motor controller is tracking now, after limits (m/s, rad/s)."""
        return self._drive.linear, self._drive.angular

    def people_poses(self) -> list[tuple[str, float, float, float]]:
        """Name, x (m), y (m) and walking direction (rad) of each person at the current time."""
        return [(person.name, *person.pose_after(self._walked[person.name])) for person, _, _ in self._people]

    def step(self, duration: float) -> None:
        """Advance the simulation by `duration` seconds (rounded to whole physics steps)."""
        steps = max(1, round(duration / self.model.opt.timestep))
        for _ in range(steps):
            self._update_drive()
            self._walk_people()
            self._place_people(self.data)
            mujoco.mj_step(self.model, self.data)

    def _limited_target(self) -> tuple[float, float]:
        drive = self._drive
        if not drive.motor_power:
            return 0.0, 0.0
        if self.command_timeout > 0.0 and self.time - drive.command_time > self.command_timeout:
            return 0.0, 0.0
        linear = max(-self.robot.max_linear, min(self.robot.max_linear, drive.target_linear))
        angular = max(-self.robot.max_angular, min(self.robot.max_angular, drive.target_angular))
        # Each wheel saturates at the speed that gives max_angular when turning in place; a
        # faster combined request is scaled down, keeping the path curvature.
        wheel_max = self.robot.max_angular * self.robot.wheel_separation / 2.0
        wheel = abs(linear) + abs(angular) * self.robot.wheel_separation / 2.0
        if wheel > wheel_max:
            scale = wheel_max / wheel
            linear, angular = linear * scale, angular * scale
        return linear, angular

    def _update_drive(self) -> None:
        drive = self._drive
        dt = self.model.opt.timestep
        target_linear, target_angular = self._limited_target()
        linear_rate = (
            self.robot.linear_acceleration if drive.motor_power else self.robot.power_off_deceleration
        )
        angular_rate = (
            self.robot.angular_acceleration if drive.motor_power else self.robot.angular_acceleration / 2
        )
        drive.linear = _approach(drive.linear, target_linear, linear_rate * dt)
        drive.angular = _approach(drive.angular, target_angular, angular_rate * dt)
        _, _, yaw = self.pose()
        self.data.ctrl[0] = drive.linear * math.cos(yaw)
        self.data.ctrl[1] = drive.linear * math.sin(yaw)
        self.data.ctrl[2] = drive.angular

    def _walk_people(self) -> None:
        dt = self.model.opt.timestep
        for person, _, _ in self._people:
            if self.time + dt <= person.start_time or person.speed <= 0.0:
                continue
            walked = self._walked[person.name] + person.speed * dt
            if person.yields:
                x, y, _ = person.pose_after(walked)
                gap = self._body_distance(x, y) - person.radius
                if (
                    gap < YIELD_GAP
                    and gap
                    < self._body_distance(*person.pose_after(self._walked[person.name])[:2]) - person.radius
                ):
                    continue
            self._walked[person.name] = walked

    def _body_distance(self, x: float, y: float) -> float:
        """Distance (m) from the point (x, y) to the robot's rectangular body in the plane."""
        rx, ry, yaw = self.pose()
        dx, dy = x - rx, y - ry
        local_x = math.cos(yaw) * dx + math.sin(yaw) * dy - self.robot.body_offset_x
        local_y = -math.sin(yaw) * dx + math.cos(yaw) * dy
        outside_x = max(0.0, abs(local_x) - self.robot.length / 2.0)
        outside_y = max(0.0, abs(local_y) - self.robot.width / 2.0)
        return math.hypot(outside_x, outside_y)

    def _place_people(self, data: mujoco.MjData, ahead: float = 0.0) -> None:
        """Move the people's mocap bodies to where they are, or `ahead` seconds later if none waits."""
        for person, body, _ in self._people:
            walked = self._walked[person.name]
            if ahead > 0.0 and self.time + ahead > person.start_time:
                walked += person.speed * (self.time + ahead - max(self.time, person.start_time))
            x, y, _ = person.pose_after(walked)
            mocap = self.model.body_mocapid[body]
            data.mocap_pos[mocap] = (x, y, person.height / 2.0)

    def contacts(self) -> list[Contact]:
        """Geoms the robot touches now, from MuJoCo's contact list (distance <= 0)."""
        found = []
        for contact in self.data.contact[: self.data.ncon]:
            if self._robot_geom not in (contact.geom1, contact.geom2) or contact.dist > 0.0:
                continue
            other = contact.geom2 if contact.geom1 == self._robot_geom else contact.geom1
            found.append(
                Contact(
                    self._geom_names[int(other)],
                    float(contact.pos[0]),
                    float(contact.pos[1]),
                    float(-contact.dist),
                )
            )
        return found

    def clearance(self) -> Clearance:
        """Shortest robot-to-obstacle and robot-to-person distances now, from MuJoCo's geometry."""
        return self._clearance(self.data)

    def _clearance(self, data: mujoco.MjData) -> Clearance:
        fromto = np.zeros(6)
        reach = 10.0
        obstacle, obstacle_name = math.inf, ""
        for geom, name in self._obstacle_geoms:
            distance = mujoco.mj_geomDistance(self.model, data, self._robot_geom, geom, reach, fromto)
            if distance < obstacle:
                obstacle, obstacle_name = float(distance), name
        person_distance, person_name = math.inf, ""
        for person, _, geom in self._people:
            distance = mujoco.mj_geomDistance(self.model, data, self._robot_geom, geom, reach, fromto)
            if distance < person_distance:
                person_distance, person_name = float(distance), person.name
        return Clearance(obstacle, obstacle_name, person_distance, person_name)

    def projected_clearance(
        self, linear: float, angular: float, horizon: float, step: float = 0.05
    ) -> Clearance:
        """Smallest clearance if the robot moved at (linear, angular) for `horizon` s from now.

        People move along their scripted paths meanwhile. Used to tell a needed stop (the
        requested motion would have come too close) from a false one.
        """
        x, y, yaw = self.pose()
        x0, y0, yaw0 = self._start
        worst = Clearance(math.inf, "", math.inf, "")
        elapsed = 0.0
        while elapsed <= horizon + 1e-9:
            self._probe.qpos[:] = self.data.qpos
            self._probe.qpos[self._qpos_x] = x - x0
            self._probe.qpos[self._qpos_x + 1] = y - y0
            self._probe.qpos[self._qpos_x + 2] = yaw - yaw0
            self._place_people(self._probe, ahead=elapsed)
            mujoco.mj_kinematics(self.model, self._probe)
            sample = self._clearance(self._probe)
            worst = Clearance(
                *(min((worst.obstacle, worst.obstacle_name), (sample.obstacle, sample.obstacle_name))),
                *(min((worst.person, worst.person_name), (sample.person, sample.person_name))),
            )
            x += linear * math.cos(yaw) * step
            y += linear * math.sin(yaw) * step
            yaw += angular * step
            elapsed += step
        return worst

    def scan(self) -> np.ndarray:
        """Take one laser scan: `rays` ranges in m, counter-clockwise from the robot's x axis.

        Applies the range limits (REP 117: +inf beyond `range_max`, -inf closer than
        `range_min`), then Gaussian noise and NaN dropouts from the world's generator.
        """
        self.model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
        try:
            mujoco.mj_forward(self.model, self.data)
            raw = np.array(self.data.sensordata[: self.laser.rays], dtype=np.float64)
        finally:
            self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
        noise = self._rng.normal(0.0, 1.0, raw.shape) * (
            self.laser.noise_std + self.laser.noise_fraction * raw
        )
        dropout = self._rng.random(raw.shape) < self.laser.dropout_rate
        ranges = raw + noise
        ranges[(raw < 0.0) | (ranges > self.laser.range_max)] = math.inf
        ranges[(raw >= 0.0) & (ranges < self.laser.range_min)] = -math.inf
        ranges[dropout] = math.nan
        return ranges
