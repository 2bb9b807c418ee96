"""The cashier's tests run on the e2e stack (real broker, ClickHouse, simulators and workers)."""
from typing import Iterator  # noqa: E402

import pytest  # noqa: E402

from infra.settings import REPO_ROOT  # noqa: E402
from tests.cashier.stack import CashierStack, start  # noqa: E402

SHOTS = REPO_ROOT / "build" / "cashier-screens"


@pytest.fixture(scope="session")
def cashier(services, tmp_path_factory) -> Iterator[CashierStack]:
    st = start(services, tmp_path_factory.mktemp("cashier-stack"))
    try:
        yield st
    finally:
        st.sup.stop_all()


@pytest.fixture
def shots(request):
    """Screenshots of each step, build/cashier-screens/<test>/NN-<step>.png (git-ignored build dir)."""
    path = SHOTS / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path
