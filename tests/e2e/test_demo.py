"""`paycenter demo --duration` ends when every command it sent has its outcome."""
from __future__ import annotations

import io

from paycenter import demo


def test_demo_with_a_duration_reads_the_outcome_of_every_command_it_sent(stack):
    out = io.StringIO()
    summary = demo.run(stack.settings, rate=40, duration_s=2, out=out)
    assert summary.sent >= 40
    assert summary.outcomes == summary.sent, out.getvalue()
    assert "outcomes unread" not in out.getvalue()
