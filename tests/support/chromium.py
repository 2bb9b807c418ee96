"""Debian's chromium, headless, for the pages' tests (the dashboard's, the cashier's)."""
from __future__ import annotations

import shutil

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_exe() -> str:
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is missing: `make deps` installs it"
    return exe
