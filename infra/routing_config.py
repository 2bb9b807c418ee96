"""The routing configuration file: YAML on disk -> the typed, validated RoutingConfig.

The records and their validation are processors/routing/config.py; this reads the file.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from processors.routing.config import RoutingConfig, parse


def load(path: str | Path) -> RoutingConfig:
    return parse(yaml.safe_load(Path(path).read_text()))
