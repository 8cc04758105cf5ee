"""Restricted motion zones: entering, hours, roles, leaving, and file validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nc_safety.core.errors import ConfigError
from nc_safety.core.verdict import ReasonKind, RefutableBy, Verdict
from nc_safety.core.zones import Pose2D, Zone, check_zones, load_zones, zones_from_mapping

SQUARE = ((0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0))
BEDROOM = Zone(
    "bedroom",
    SQUARE,
    active_hours=((22 * 60, 7 * 60),),
    allowed_roles=frozenset({"owner"}),
    refutable_by=RefutableBy.SUPERVISOR,
)
NIGHT = 23 * 60
NOON = 12 * 60


@pytest.mark.parametrize(
    ("case", "pose", "stop", "minute", "role", "refused"),
    [
        ("enters at night", Pose2D(-1.0, 1.0), Pose2D(0.5, 1.0), NIGHT, "user", True),
        ("enters at noon", Pose2D(-1.0, 1.0), Pose2D(0.5, 1.0), NOON, "user", False),
        ("owner enters", Pose2D(-1.0, 1.0), Pose2D(0.5, 1.0), NIGHT, "owner", False),
        ("stays outside", Pose2D(-1.0, 1.0), Pose2D(-0.5, 1.0), NIGHT, "user", False),
        ("passes through", Pose2D(-1.0, 1.0), Pose2D(3.0, 1.0), NIGHT, "user", True),
        ("leaves", Pose2D(1.0, 1.0), Pose2D(-1.0, 1.0), NIGHT, "user", False),
        ("goes deeper", Pose2D(0.2, 1.0), Pose2D(0.9, 1.0), NIGHT, "user", True),
        ("just after midnight", Pose2D(-1.0, 1.0), Pose2D(0.5, 1.0), 30, "user", True),
        ("end of hours", Pose2D(-1.0, 1.0), Pose2D(0.5, 1.0), 7 * 60, "user", False),
    ],
)
def test_zone_decision(case: str, pose: Pose2D, stop: Pose2D, minute: int, role: str, refused: bool) -> None:
    reason = check_zones([BEDROOM], pose, stop, minute, role)
    assert (reason is not None) is refused


def test_zone_reason_fields() -> None:
    reason = check_zones([BEDROOM], Pose2D(-1.0, 1.0), Pose2D(0.5, 1.0, 0.3), NIGHT, "user")
    assert reason is not None
    assert reason.rule_id == "motion.zone.bedroom"
    assert reason.kind is ReasonKind.NORMATIVE
    assert reason.verdict is Verdict.REFUSE
    assert reason.refutable_by is RefutableBy.SUPERVISOR
    assert reason.remedy == "Steer away from zone 'bedroom' until 07:00 or send the command as owner."
    assert reason.evidence[0].value == 0.5


def test_robot_radius_counts() -> None:
    near = Pose2D(-0.1, 1.0)
    assert check_zones([BEDROOM], Pose2D(-1.0, 1.0), near, NIGHT, "user") is None
    assert check_zones([BEDROOM], Pose2D(-1.0, 1.0), near, NIGHT, "user", robot_radius_m=0.2) is not None


def test_always_active_zone() -> None:
    lab = Zone("lab", SQUARE)
    assert check_zones([lab], Pose2D(-1.0, 1.0), Pose2D(1.0, 1.0), NOON, "user") is not None


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="must be finite, got nan"):
        check_zones([BEDROOM], Pose2D(float("nan"), 0.0), Pose2D(0.0, 0.0), NOON, "user")
    with pytest.raises(ValueError, match=r"local_minutes must be in 0\.\.1439, got 1440"):
        check_zones([BEDROOM], Pose2D(0.0, 0.0), Pose2D(0.0, 0.0), 1440, "user")


def test_example_file_loads() -> None:
    zones = load_zones(Path(__file__).resolve().parents[2] / "config" / "zones.example.yaml")
    assert [zone.name for zone in zones] == ["bedroom", "server_room"]
    assert zones[1].refutable_by is RefutableBy.TWO_SUPERVISORS


def test_zone_file_lists_every_problem() -> None:
    data = {
        "zones": [
            {"name": "Bad Name", "polygon": [[0, 0], [1, 0], [1, 1]]},
            {"name": "bowtie", "polygon": [[0, 0], [2, 2], [2, 0], [0, 1]]},
            {"name": "flat", "polygon": [[0, 0], [1, 0], [2, 0]]},
            {"name": "late", "polygon": [[0, 0], [1, 0], [1, 1]], "active_hours": ["25:00-07:00"]},
            {"name": "late", "polygon": [[0, 0], [1, 0], [1, 1]], "colour": "red"},
        ]
    }
    with pytest.raises(ConfigError) as caught:
        zones_from_mapping(data)
    text = str(caught.value)
    assert "name must be lowercase" in text
    assert "polygon edges cross each other" in text
    assert "polygon has zero area" in text
    assert "active_hours entry '25:00-07:00'" in text
    assert "unknown key(s) ['colour']" in text
