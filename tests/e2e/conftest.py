"""Fixtures of the e2e tests; the session's `stack` is in tests/conftest.py."""
from __future__ import annotations

from typing import Iterator

import pytest

from infra.settings import Settings
from tests.support.health_stack import DETERMINISTIC, HealthStack, health_stack


@pytest.fixture(scope="module")
def hstack(services: Settings, tmp_path_factory) -> Iterator[HealthStack]:
    with health_stack(services, tmp_path_factory.mktemp("health-stack"), DETERMINISTIC) as st:
        yield st
