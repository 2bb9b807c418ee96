"""The card-number scanner of the leak tests: every run of 13-19 digits that could be a card number,
handed to processors.pan.contains_pan (the Luhn check).

Not candidates, because one in ten of them passes the Luhn check by chance: runs that read as an
epoch timestamp of today's decade in ms/us/ns, the fraction digits of a decimal number (after a
'.': the health metrics' rates), and runs glued to letters (inside hex digests: card tokens,
channel transaction ids). A card number written glued to letters would be missed; everywhere it is
a field or a word of its own, it is found."""
from __future__ import annotations

import re
import time

from processors.pan import contains_pan

_RUN = re.compile(rb"(?<![0-9A-Za-z.])[0-9]{13,19}(?![0-9A-Za-z])")
_DECADE_S = (time.time() - 10 * 365 * 86400, time.time() + 365 * 86400)


def _epoch_like(digits: bytes) -> bool:
    v = int(digits)
    return any(_DECADE_S[0] <= v / scale <= _DECADE_S[1] for scale in (1e3, 1e6, 1e9))


def pans_in(data: bytes | str | None) -> list[str]:
    if not data:
        return []
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    return [m.group().decode() for m in _RUN.finditer(data) if not _epoch_like(m.group()) and contains_pan(m.group())]
