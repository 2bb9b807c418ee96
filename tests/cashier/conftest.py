"""The cashier's tests run on the e2e stack (real broker, ClickHouse, simulators and workers)."""
from tests.e2e.conftest import stack  # noqa: F401  (the session's stack fixture)
