"""A two-sided Bernoulli CUSUM (Page's test) on one channel-bank's results: has its success rate
moved away from the current estimate?

Each result x (success or failure) is scored against the estimate p0 (probability of success
before this result) by the log-likelihood ratio of two alternatives, the failure odds multiplied by
`ratio` (down) or divided by it (up):
    down: q1 = min(q0 * ratio, 0.99),  up: q1 = q0 / ratio,   q0 = 1 - p0
    llr = ln(q1 / q0) on a failure, ln((1 - q1) / (1 - q0)) on a success
Each side keeps g = max(0, g + llr); g reaching `threshold` is a shift. The results since g last
was 0 are the estimate of what came after the change point (Page's change-point estimate), and are
handed back in `since_change` so the caller can restart its estimate from them.

Why CUSUM: it is the quickest detector for a given false-alarm rate (Lorden/Moustakides), needs
O(1) state per channel-bank, and its threshold reads directly as the false-alarm budget: under the
null the expected number of results between false alarms grows like e^threshold.
"""
from __future__ import annotations

import math

_MAX_Q = 0.99


class ChangeTest:
    __slots__ = ("ratio", "threshold", "_ln_ratio", "g_down", "g_up", "down_ok", "down_fail", "up_ok", "up_fail", "_since")

    def __init__(self, ratio: float = 3.0, threshold: float = 15.0):
        if ratio <= 1.0 or threshold <= 0:
            raise ValueError("change ratio must be > 1 and threshold > 0")
        self.ratio, self.threshold = ratio, threshold
        self._ln_ratio = math.log(ratio)
        self._since = (0.0, 0.0)
        self.reset()

    def reset(self) -> None:
        self.g_down = self.g_up = 0.0
        self.down_ok = self.down_fail = self.up_ok = self.up_fail = 0.0

    def update(self, success: bool, p0: float, weight: float = 1.0) -> str | None:
        """Score one result (its evidence scaled by `weight`) against the estimate p0; returns "down"
        or "up" on a shift, else None."""
        q0 = min(max(1.0 - p0, 1e-6), _MAX_Q)
        q_down = min(q0 * self.ratio, _MAX_Q)
        q_up = q0 / self.ratio
        if success:
            self.g_down += weight * math.log((1.0 - q_down) / (1.0 - q0))
            self.g_up += weight * math.log((1.0 - q_up) / (1.0 - q0))
        else:
            self.g_down += weight * math.log(q_down / q0)
            self.g_up -= weight * self._ln_ratio
        if self.g_down <= 0.0:
            self.g_down, self.down_ok, self.down_fail = 0.0, 0.0, 0.0
        elif success:
            self.down_ok += weight
        else:
            self.down_fail += weight
        if self.g_up <= 0.0:
            self.g_up, self.up_ok, self.up_fail = 0.0, 0.0, 0.0
        elif success:
            self.up_ok += weight
        else:
            self.up_fail += weight
        if self.g_down >= self.threshold:
            self._since = (float(self.down_ok), float(self.down_fail))
            return "down"
        if self.g_up >= self.threshold:
            self._since = (float(self.up_ok), float(self.up_fail))
            return "up"
        return None

    @property
    def since_change(self) -> tuple[float, float]:
        """(successes, failures) since the estimated change point of the last shift."""
        return self._since

    def to_list(self) -> list:
        return [self.g_down, self.g_up, self.down_ok, self.down_fail, self.up_ok, self.up_fail]

    def load(self, data: list) -> None:
        self.g_down, self.g_up = float(data[0]), float(data[1])
        self.down_ok, self.down_fail, self.up_ok, self.up_fail = (float(x) for x in data[2:6])
