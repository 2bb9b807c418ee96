"""The funder share file of split settlement (format: docs/accounting.md, records: processors/settlement/records.py)."""
from __future__ import annotations

from pathlib import Path

import yaml

from processors.settlement.records import FunderConfig


def load_funders(path: str | Path | None) -> FunderConfig:
    """The funder share config; no path or a missing file: no funder has a split configured."""
    if path is None or not Path(path).exists():
        return FunderConfig()
    try:
        return FunderConfig.model_validate(yaml.safe_load(Path(path).read_text()) or {})
    except ValueError as exc:
        raise ValueError(f"funder config {path}: {exc}") from None
