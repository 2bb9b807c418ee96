"""Attempts per session and per client address in a sliding window (pure: the caller gives the time)."""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field


@dataclass
class RateLimit:
    limit: int
    window_ms: int
    seen: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))

    def allow(self, key: str, now_ms: int) -> bool:
        q = self.seen[key]
        while q and q[0] <= now_ms - self.window_ms:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now_ms)
        return True
