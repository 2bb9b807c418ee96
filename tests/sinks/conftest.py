"""Fixtures of the sink tests."""
from __future__ import annotations

import pytest

from infra import migrate
from tests.support.chdb import ChdbRunner


@pytest.fixture(scope="module")
def chdb(tmp_path_factory):
    runner = ChdbRunner(tmp_path_factory.mktemp("chdb-reports") / "db", "paycenter")
    migrate.apply(runner, progress=lambda _m: None)
    return runner
