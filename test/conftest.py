"""Fixtures shared by every test: a private ROS domain per test, clients and node processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ros_harness import RosClient, allocate_domain_id, ros_environment


@pytest.fixture
def ros_domain() -> Iterator[int]:
    with allocate_domain_id() as domain:
        yield domain


@pytest.fixture
def ros_env(ros_domain: int) -> dict[str, str]:
    return ros_environment(ros_domain)


@pytest.fixture
def ros_client(ros_domain: int) -> Iterator[RosClient]:
    client = RosClient(ros_domain)
    try:
        yield client
    finally:
        client.close()
