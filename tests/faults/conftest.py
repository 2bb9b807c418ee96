"""A whole paycenter of its own for the fault tests: a fresh broker + ClickHouse on free ports, the
channel simulators and one worker of every role (streams/roles.py) started by the supervisor,
exactly like tests/e2e's `stack` but private, because these tests kill workers, stop ClickHouse
and hang channels, which would disturb the session's shared stack.

Package-scoped (tests/faults is a package for that reason): started once for the fault tests,
stopped right after them. Every test leaves it healthy (one live worker per role, ClickHouse up,
channels un-hung) and uses its own order-id prefix.

Markers (registered in pyproject.toml): `faults` on every test here (`-m faults` runs them,
`-m "not faults"` skips them), `slow` on the long ones (`-m "faults and not slow"` for a quick pass).
The stack itself is tests/support/stack.py's `running_stack`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.stack import FaultStack, running_stack


def pytest_collection_modifyitems(items) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="package")
def fstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    # memory storage: these tests kill workers, ClickHouse and channels, never the broker
    # (tests/faults/test_broker_crash.py runs its own stack on durable storage)
    with running_stack(tmp_path_factory.mktemp("faults")) as st:
        yield st


