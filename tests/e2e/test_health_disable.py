"""`paycenter health disable|enable` on the real monitor and router: a disabled channel-bank gets no
payment at all, not even as the last resort that a demoted one still is, until it is enabled."""
from __future__ import annotations

import uuid

from paycenter.cli import main
from paycenter.supervisor import wait_for
from processors.health.model import HealthEvent, HealthReason, HealthState
from schemas.records import HealthAction, OutcomeStatus
from tests.support.health_stack import run_commands


def test_a_disabled_channel_bank_is_skipped_even_as_last_resort_until_enabled(hstack, monkeypatch, capsys):
    st, run = hstack, uuid.uuid4().hex[:6]
    monkeypatch.setenv("PAYCENTER_TOPIC_PREFIX", st.settings.topic_prefix)
    monkeypatch.setenv("PAYCENTER_ROUTING_CONFIG", str(st.config_path))
    events = st.reader("channel.health", HealthEvent.decode)
    try:
        # beta is the cheapest for ICBC; alpha and gamma demoted leave it the only NORMAL one, then disabled
        for channel in ("alpha", "gamma"):
            st.command(HealthAction.DEMOTE, channel, "ICBC", reason="e2e: last resort only")
        assert main(["health", "disable", "--channel", "beta", "--bank", "ICBC", "--reason", "e2e contract",
                     "--wait", "30"]) == 0
        disabled = st.await_event(events, "beta:ICBC disabled", lambda e: e.key == "beta:ICBC"
                                  and e.reason_code == HealthReason.OPERATOR_DISABLE)
        assert disabled.to_state == HealthState.DEMOTED and disabled.demoted_until_ms is None
        for channel in ("alpha", "beta", "gamma"):
            wait_for(lambda channel=channel: st.router_demotes(channel, "ICBC"), 30, f"the router avoiding {channel}:ICBC")
        assert main(["health", "status", "--timeout", "5"]) == 0
        assert any(line.startswith("beta:ICBC") and "DISABLED" in line for line in capsys.readouterr().out.splitlines())

        off = run_commands(run, "dis1", 10, "ICBC")
        st.publish(off)
        for [out, *_] in st.await_outcomes({c.order_id for c in off}).values():
            # a demoted channel-bank as the last resort: alpha, the cheaper of the two; never beta
            assert out.status == OutcomeStatus.SUCCEEDED and [p.channel_id for p in out.parts] == ["alpha"], out

        assert main(["health", "enable", "--channel", "beta", "--bank", "ICBC", "--wait", "30"]) == 0
        wait_for(lambda: not st.router_demotes("beta", "ICBC"), 30, "the router using beta:ICBC again")
        on = run_commands(run, "dis2", 5, "ICBC")
        st.publish(on)
        for [out, *_] in st.await_outcomes({c.order_id for c in on}).values():
            assert [p.channel_id for p in out.parts] == ["beta"], out
    finally:
        for channel in ("alpha", "beta", "gamma"):
            st.command(HealthAction.RESTORE, channel, "ICBC", reason="e2e cleanup")
        events.close()
