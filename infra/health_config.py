"""The health monitor's and the pending resolver's configuration file (format: processors/health/config.py).

Read from the file at the given path, else at $PAYCENTER_HEALTH_CONFIG; neither: the defaults.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from processors.health.config import HealthConfig

CONFIG_ENV = "PAYCENTER_HEALTH_CONFIG"


def load(path: str | Path | None = None) -> HealthConfig:
    """The file at `path`, else at $PAYCENTER_HEALTH_CONFIG, else the defaults."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return HealthConfig()
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return HealthConfig.model_validate(data)
