"""Fixtures of the order machine's tests."""
from __future__ import annotations

import pytest

from infra.routing_config import load
from infra.settings import REPO_ROOT
from processors.routing.planner import RoutingPlanner


@pytest.fixture(scope="module")
def planner() -> RoutingPlanner:
    return RoutingPlanner(load(REPO_ROOT / "infra" / "routing.demo.yaml"))
