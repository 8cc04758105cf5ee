"""The MuJoCo world without ROS: contacts, laser, drive limits, people, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nc_safety.sim.errors import SimError
from nc_safety.sim.scene import SCENE_DIR, Person, load_scene, scene_from_mapping
from nc_safety.sim.world import LaserSpec, RobotSpec, World


def drive(world: World, linear: float, angular: float, seconds: float) -> None:
    world.set_command(linear, angular)
    while world.time < seconds - 1e-9:
        world.step(0.01)


def test_bundled_scenes_load() -> None:
    names = sorted(path.stem for path in SCENE_DIR.glob("*.yaml"))
    assert names == ["furniture", "office", "people_room", "room"]
    for name in names:
        world = World(load_scene(name))
        assert world.clearance().obstacle > 0.1, name


def test_scene_errors_list_every_key() -> None:
    data = {
        "walls": [{"from": [0, 0], "to": [0, 0]}],
        "furniture": [{"shape": "cone", "center": [1, 1]}],
        "people": [{"path": "nowhere", "mode": "sideways"}],
    }
    with pytest.raises(SimError, match="5 problems") as caught:
        scene_from_mapping(data)
    text = str(caught.value)
    assert "walls[0] has length 0" in text
    assert "furniture[0].shape = 'cone'" in text
    assert "people[0] needs `position: [x, y]`" in text
    assert "people[0].mode = 'sideways'" in text
    assert "furniture[0].size = None must be two positive lengths" in text


def test_unknown_scene_names_bundled_ones() -> None:
    with pytest.raises(SimError, match=r"scene 'moon' not found .*bundled: furniture, office"):
        load_scene("moon")


def test_wall_run_makes_mujoco_contact() -> None:
    world = World(load_scene("room"), seed=1)
    drive(world, 0.22, 0.0, 16.0)
    contacts = world.contacts()
    assert {contact.other for contact in contacts} == {"wall_east"}
    assert world.clearance().obstacle <= 0.0
    # The wall stops the base: it is pressed against it, not through it.
    assert world.pose()[0] < 3.0


def test_speed_limits_and_acceleration() -> None:
    world = World(load_scene("room"), seed=1)
    world.set_command(1.0, 0.0)
    world.step(0.05)
    assert world.setpoint()[0] == pytest.approx(2.5 * 0.05, abs=0.01)
    world.step(0.5)
    assert world.velocity()[0] == pytest.approx(0.22, abs=0.005)
    world.set_command(0.0, 10.0)
    world.step(2.0)
    assert world.velocity()[1] == pytest.approx(2.84, abs=0.02)


def test_wheel_saturation_keeps_curvature() -> None:
    world = World(load_scene("room"), seed=1)
    world.set_command(0.22, 2.84)
    world.step(2.0)
    linear, angular = world.setpoint()
    wheel = abs(linear) + abs(angular) * 0.08
    assert wheel == pytest.approx(2.84 * 0.08, rel=1e-3)
    assert angular / linear == pytest.approx(2.84 / 0.22, rel=1e-3)


def test_motor_power_off_coasts_to_stop() -> None:
    world = World(load_scene("room"), seed=1)
    drive(world, 0.22, 0.0, 1.0)
    world.set_motor_power(False)
    world.step(0.1)
    assert 0.0 < world.velocity()[0] < 0.22
    world.step(0.5)
    assert world.velocity()[0] == pytest.approx(0.0, abs=1e-3)


def test_command_timeout_stops_base() -> None:
    world = World(load_scene("room"), seed=1, command_timeout=0.5)
    world.set_command(0.2, 0.0)
    world.step(0.4)
    assert world.setpoint()[0] == pytest.approx(0.2)
    world.step(0.5)
    assert world.setpoint()[0] == 0.0


def test_non_finite_command_stops() -> None:
    world = World(load_scene("room"), seed=1)
    drive(world, 0.2, 0.0, 1.0)
    world.set_command(math.nan, 0.0)
    world.step(0.5)
    assert world.setpoint() == (0.0, 0.0)


def test_scan_ranges_follow_rep117() -> None:
    world = World(load_scene("room"), laser=LaserSpec(dropout_rate=0.0), seed=3)
    ranges = world.scan()
    assert ranges.shape == (360,)
    finite = ranges[np.isfinite(ranges)]
    assert finite.min() >= 0.12
    assert finite.max() <= 3.5
    # Straight ahead the east wall's face is 2.95 m from base_footprint; the laser sits 0.032 m behind.
    assert ranges[0] == pytest.approx(2.982, abs=0.06)
    # Straight behind, the west wall is 0.918 m from the laser.
    assert ranges[180] == pytest.approx(0.918, abs=0.04)
    world.set_command(0.22, 0.0)
    world.step(16.0)
    assert ranges[0] != world.scan()[0]
    assert world.scan()[0] == -math.inf


def test_scan_noise_and_dropouts() -> None:
    laser = LaserSpec(noise_std=0.02, noise_fraction=0.0, dropout_rate=0.1)
    world = World(load_scene("room"), laser=laser, seed=5)
    scans = np.array([world.scan() for _ in range(200)])
    dropout_fraction = float(np.isnan(scans).mean())
    assert 0.08 < dropout_fraction < 0.12
    behind = scans[:, 180]
    behind = behind[np.isfinite(behind)]
    assert float(np.std(behind)) == pytest.approx(0.02, rel=0.25)


def test_same_seed_is_deterministic() -> None:
    def run(seed: int) -> tuple[np.ndarray, tuple[float, float, float]]:
        world = World(load_scene("people_room"), seed=seed)
        scans = []
        for step in range(100):
            world.set_command(0.22, 0.5 if step % 30 < 10 else 0.0)
            world.step(0.05)
            if step % 10 == 0:
                scans.append(world.scan())
        return np.array(scans), world.pose()

    first_scans, first_pose = run(11)
    second_scans, second_pose = run(11)
    other_scans, _ = run(12)
    assert np.array_equal(first_scans, second_scans, equal_nan=True)
    assert first_pose == second_pose
    assert not np.array_equal(first_scans, other_scans, equal_nan=True)


def test_person_path_modes() -> None:
    base = {"path": ((0.0, 0.0), (2.0, 0.0)), "speed": 1.0, "start_time": 1.0, "radius": 0.2, "height": 1.7}
    once = Person(name="a", mode="once", **base)
    pingpong = Person(name="b", mode="pingpong", **base)
    loop = Person(name="c", mode="loop", **base)
    assert once.pose_at(0.5)[:2] == (0.0, 0.0)
    assert once.pose_at(2.0)[:2] == pytest.approx((1.0, 0.0))
    assert once.pose_at(10.0)[:2] == pytest.approx((2.0, 0.0))
    assert pingpong.pose_at(4.0)[:2] == pytest.approx((1.0, 0.0))
    assert pingpong.pose_at(4.0)[2] == pytest.approx(math.pi)
    assert loop.pose_at(4.0)[:2] == pytest.approx((1.0, 0.0))


def test_yielding_person_waits_for_robot() -> None:
    data = {
        "robot": {"start": [0.0, 0.0, 0.0]},
        "people": [
            {"name": "walker", "path": [[0.0, -2.0], [0.0, 2.0]], "speed": 1.0, "mode": "once"},
            {
                "name": "pusher",
                "path": [[0.5, -2.0], [0.5, 2.0]],
                "speed": 1.0,
                "mode": "once",
                "yields": False,
            },
        ],
    }
    world = World(scene_from_mapping(data), seed=1)
    world.step(6.0)
    positions = {name: (x, y) for name, x, y, _ in world.people_poses()}
    assert positions["walker"][1] < -0.089 - 0.2
    assert positions["pusher"][1] == pytest.approx(2.0)
    assert world.contacts() == []


def test_projected_clearance_sees_table_behind() -> None:
    world = World(load_scene("furniture"), seed=1)
    assert world.projected_clearance(-0.2, 0.0, 1.0).obstacle < 0.0
    assert world.projected_clearance(0.0, 1.5, 1.0).obstacle > 0.1


def test_invalid_robot_and_laser_settings() -> None:
    with pytest.raises(SimError, match=r"robot.mass = -1.0 must be a finite number greater than 0"):
        World(load_scene("room"), robot=RobotSpec(mass=-1.0))
    with pytest.raises(SimError, match=r"laser.dropout_rate = 1.5 must be within 0..1"):
        World(load_scene("room"), laser=LaserSpec(dropout_rate=1.5))
    with pytest.raises(SimError, match=r"timestep = 0.1 s must be within"):
        World(load_scene("room"), timestep=0.1)
