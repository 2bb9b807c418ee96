"""An operator's hard stop: a disabled channel-bank gets no traffic at all, not even exploration
probes or last-resort payments, until it is enabled again (a demotion only lowers its priority)."""
from __future__ import annotations

from processors.health.model import Avoided, ChannelBankHealth, HealthEvent, HealthReason, HealthState
from processors.health.monitor import HealthMonitor
from processors.routing.selector import DEMOTED, DISABLED, Router
from schemas.records import HealthAction, HealthCommand
from tests.support.routing import NO_EXPLORE, NOON, req, stats_with, two

ALWAYS_EXPLORE = {"exploration_share": 1.0}
A = ("a", "ICBC")


def test_a_demoted_channel_bank_is_still_probed():
    r = Router(two({"probe_share": 0.5}, a_fee=100, b_fee=100))
    chosen = {r.route(req(order_id=f"o{i}", demoted=frozenset({A})), stats_with()).chosen.channel_id
              for i in range(100)}
    assert chosen == {"a", "b"}


def test_a_disabled_channel_bank_gets_no_exploration_probe():
    r = Router(two(ALWAYS_EXPLORE, a_fee=100, b_fee=100))
    off = Avoided(disabled={A})
    for i in range(100):
        d = r.route(req(order_id=f"o{i}", demoted=off), stats_with())
        assert d.chosen.channel_id == "b"
        assert ("a", DISABLED) in [(e.channel_id, e.reason_code) for e in d.excluded]


def test_a_disabled_channel_bank_is_no_last_resort_and_demoted_ones_still_are():
    r = Router(two(NO_EXPLORE))
    both_off = Avoided(disabled={A, ("b", "ICBC")})
    for stats in (stats_with(), None):  # v2 and v1
        d = r.route(req(demoted=both_off), stats)
        assert d.chosen is None and d.telling_exclusion.reason_code == DISABLED
        d = r.route(req(demoted=Avoided(demoted={("b", "ICBC")}, disabled={A})), stats)
        assert d.chosen.channel_id == "b" and d.chosen.demoted  # the demoted one, as a last resort
    d = r.route(req(demoted=Avoided(demoted={A})), stats_with())
    assert d.chosen.channel_id == "b" and [(e.channel_id, e.reason_code) for e in d.excluded] == [("a", DEMOTED)]


def test_the_monitor_disables_until_enabled_and_routers_follow_its_events():
    m, view = HealthMonitor(), ChannelBankHealth(*A)
    [event] = m.disable(*A, "contract suspended", NOW)
    assert (event.to_state, event.reason_code, event.demoted_until_ms) == (HealthState.DEMOTED,
                                                                           HealthReason.OPERATOR_DISABLE, None)
    assert view.apply_event(HealthEvent.decode(event.encode()))  # through the channel.health schema
    assert view.is_disabled and view.is_demoted(NOW + 30 * 86_400_000)
    assert m.tick(NOW + 30 * 86_400_000) == []  # no timer ends it
    assert m.state_of(*A).is_disabled
    [back] = m.restore(*A, "operator enable", NOW + 1)
    assert view.apply_event(back) and not view.is_disabled and not view.is_demoted(NOW + 1)


def test_a_demotion_is_not_a_disable():
    m = HealthMonitor()
    [event] = m.force_demote(*A, "flaky", NOW)
    view = ChannelBankHealth(*A)
    view.apply_event(event)
    assert view.is_demoted(NOW) and not view.is_disabled


def test_the_disable_command_survives_its_schema():
    cmd = HealthCommand(command_id="c1", action=HealthAction.DISABLE, channel_id="a", bank_code="ICBC",
                        reason="contract suspended", operator="ops", issued_at_ms=NOW)
    assert HealthCommand.decode(cmd.encode()) == cmd


NOW = NOON
