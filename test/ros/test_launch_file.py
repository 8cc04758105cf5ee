"""The launch file, checked without the launch package (not on PyPI): it parses and passes
only parameters that the node declares."""

from __future__ import annotations

import ast

from ros_harness import REPO_ROOT

from nc_safety.core.motion_config import parameter_specs

LAUNCH = REPO_ROOT / "launch" / "nc_safety.launch.py"


def test_launch_file_parses_and_names_node() -> None:
    tree = ast.parse(LAUNCH.read_text())
    strings = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert "nc_safety_node" in strings
    assert "nc_safety.yaml" in strings


def test_launch_parameters_are_declared() -> None:
    tree = ast.parse(LAUNCH.read_text())
    declared = {spec.name for spec in parameter_specs()} | {"use_sim_time"}
    passed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            passed |= {key.value for key in node.keys if isinstance(key, ast.Constant)}
    assert passed
    assert passed <= declared


def test_node_entry_point_installed_for_ros2_run() -> None:
    script = REPO_ROOT / "resource" / "nc_safety_node"
    assert script.stat().st_mode & 0o111
    assert "nc_safety.ros.node import main" in script.read_text()
