"""Routing on the real broker, simulators and workers: a split over two channels' daily limits,
failover, the protocol-payment restriction (with binding), the capability query, and configuration hot reload.

Its own stack (topic prefix "rt."), beside the session's shared one: channels shaped for these
rules (a 50,000/day + 10,000/day pair, a protocol-payment channel that enforces
agreements), deterministic simulators (every payment succeeds unless a test says otherwise).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from infra import _proc, kafka, topics
from infra._proc import wait_until
from infra.settings import REPO_ROOT, Settings
from paycenter.supervisor import Supervisor, wait_for
from schemas.records import Attempt, OutcomeStatus, PaymentCommand
from tests.support.stack import Stack, TopicReader

CNY = 100
PREFIX = "rt."
CONFIG = {
    "version": 1, "timezone": "Asia/Shanghai",
    "business_lines": {"card_repayment": {"allow_split": True, "max_attempts": 3, "deadline_ms": 60_000},
                       "wealth": {"allow_split": False, "max_attempts": 2, "deadline_ms": 30_000}},
    "channels": {
        # channel 1 allows 50,000 a day, channel 2 10,000
        "one": {"operations": ["PAY_IN", "PAYOUT"], "priority": 100, "banks": {
            "ICBC": {"per_payment_limit_fen": 50_000 * CNY, "daily_limit_fen": 50_000 * CNY, "fee": {"rate_ppm": 1000}},
            "BOC": {"per_payment_limit_fen": 50_000 * CNY, "daily_limit_fen": 50_000 * CNY, "fee": {"rate_ppm": 1000}}}},
        "two": {"operations": ["PAY_IN", "PAYOUT"], "priority": 90, "banks": {
            "ICBC": {"per_payment_limit_fen": 10_000 * CNY, "daily_limit_fen": 10_000 * CNY, "fee": {"rate_ppm": 2000}},
            "BOC": {"per_payment_limit_fen": 10_000 * CNY, "daily_limit_fen": 10_000 * CNY, "fee": {"rate_ppm": 2000}}}},
        # protocol payment: debits only for cards that signed; AUTHENTICATE there is signing
        "proto": {"operations": ["PAY_IN", "AUTHENTICATE"], "requires_agreement": True, "banks": {
            "CCB": {"per_payment_limit_fen": 20_000 * CNY, "daily_limit_fen": 20_000 * CNY, "fee": {"rate_ppm": 500}}}},
        "plain": {"operations": ["PAY_IN", "AUTHENTICATE"], "banks": {
            "CCB": {"per_payment_limit_fen": 1_000 * CNY, "daily_limit_fen": 1_000 * CNY, "fee": {"rate_ppm": 3000}}}},
    },
    # These tests check availability, limits and failover, so every decision is the best score: an
    # exploring draw (3 % of decisions by default, seeded by the attempt id) could send a payment
    # to "two" where a test expects "one" (seen in a clean-clone run: the hot-reload probe).
    "scoring": {"exploration_share": 0.0},
}


def profile(limits: dict[str, dict], **default) -> dict:
    """The simulator enforces the same limits as the routing config (a router bug would show)."""
    return {"seed": 5, "default": {"success_rate": 1.0, **default},
            "banks": {bank: {"per_payment_limit_fen": b["per_payment_limit_fen"], "daily_limit_fen": b["daily_limit_fen"],
                             "rate_ppm": b["fee"]["rate_ppm"]} for bank, b in limits.items()}}


@dataclasses.dataclass
class RoutingStack(Stack):
    capability_port: int = 0
    env: dict = dataclasses.field(default_factory=dict)

    def capability(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.capability_port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "paycenter.cli", *args], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)

    def attempts(self, order_ids: set[str]) -> dict[str, list[Attempt]]:
        reader = TopicReader(self.settings, "pay.attempts", 6, Attempt.decode)
        try:
            def got():
                by = {}
                for _m, a in reader.poll():
                    if a.order_id in order_ids:
                        by.setdefault(a.order_id, {})[a.attempt_id] = a
                return by if len(by) == len(order_ids) else None
            return {o: sorted(v.values(), key=lambda a: a.attempt_no) for o, v in wait_for(got, 30, "attempts").items()}
        finally:
            reader.close()


@pytest.fixture(scope="module")
def rstack(services: Settings, tmp_path_factory) -> Iterator[RoutingStack]:
    tmp = tmp_path_factory.mktemp("routing-stack")
    settings = dataclasses.replace(services, topic_prefix=PREFIX)
    topics.provision(settings)
    ports = {cid: _proc.free_port() for cid in CONFIG["channels"]}
    config = json.loads(json.dumps(CONFIG))
    for cid, ch in config["channels"].items():
        ch.update(base_url=f"http://127.0.0.1:{ports[cid]}", secret_env=f"PAYCENTER_SECRET_RT_{cid.upper()}")
    config_path = tmp / "routing.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cap_port = _proc.free_port()
    env = {**os.environ, "PAYCENTER_TOPIC_PREFIX": PREFIX, "PAYCENTER_ROUTING_CONFIG": str(config_path),
           "PAYCENTER_ALLOW_DEV_SECRETS": "1", "PAYCENTER_CAPABILITY_PORT": str(cap_port),
           "PAYCENTER_PENDING_POLL_DEADLINE_S": "5"}
    sup = Supervisor(settings, env=env)
    for cid, ch in config["channels"].items():
        prof = tmp / f"profile-{cid}.yaml"
        prof.write_text(yaml.safe_dump(profile(ch["banks"], requires_agreement=ch.get("requires_agreement", False))))
        sup.spawn(f"rt-simulator-{cid}", [sys.executable, "-m", "connectors.simulator", "--channel", cid,
                                          "--port", str(ports[cid]), "--secret-env", ch["secret_env"],
                                          "--profile", str(prof), "--zero-latency"])
    for role in ("router", "executor", "signer"):
        sup.start_worker(role, name=f"rt-{role}")
    producer = kafka.producer(settings)
    st = RoutingStack(settings, sup, config_path, ports, producer, capability_port=cap_port, env=env)
    try:
        t0 = time.monotonic()
        warm = cmd(f"warm-{uuid.uuid4().hex[:6]}", 100, card="tok_rt_warm")
        st.publish([warm])
        st.await_outcomes({warm.order_id}, timeout_s=120)
        print(f"[routing stack] ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        yield st
    finally:
        sup.stop_all()


def cmd(order_id: str, amount: int, bank: str = "ICBC", card: str = "tok_rt", line: str = "card_repayment",
        op: str = "PAY_IN", **kw) -> PaymentCommand:
    return PaymentCommand(order_id=order_id, business_line=line, operation=op, amount_fen=amount, card_token=card,
                          bank_code=bank, card_type=kw.pop("card_type", "DEBIT"),
                          requested_at_ms=time.time_ns() // 1_000_000, **kw)


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def one(outs: dict, order_id: str):
    [first] = [o for o in outs[order_id] if not o.duplicate]
    return first


def test_talk_split_example_40000_paid_then_20000_goes_as_10000_plus_10000(rstack):
    r, card = run_id(), f"tok_talk_{run_id()}"
    first, second = cmd(f"talk-{r}-1", 40_000 * CNY, card=card), cmd(f"talk-{r}-2", 20_000 * CNY, card=card)
    rstack.publish([first, second])
    outs = rstack.await_outcomes({first.order_id, second.order_id})
    paid = one(outs, first.order_id)
    assert paid.status == OutcomeStatus.SUCCEEDED and [p.channel_id for p in paid.parts] == ["one"]
    split = one(outs, second.order_id)
    assert split.status == OutcomeStatus.SUCCEEDED and split.succeeded_amount_fen == 20_000 * CNY
    assert sorted((p.channel_id, p.amount_fen) for p in split.parts) == [("one", 10_000 * CNY), ("two", 10_000 * CNY)]
    # the channels' books agree: 50,000 on channel 1 and 10,000 on channel 2 today, nothing twice
    ledger = [e for e in rstack.ledger() if e["card_token"] == card and e["status"] == "SUCCESS"]
    assert sorted((e["channel_id"], e["amount_fen"]) for e in ledger) == [
        ("one", 10_000 * CNY), ("one", 40_000 * CNY), ("two", 10_000 * CNY)]
    decision = json.loads(rstack.attempts({second.order_id})[second.order_id][0].decision)
    assert decision["mode"] == "split" and {e[1] for e in decision["excl"]} == {"OVER_DAILY_LIMIT", "OVER_PAYMENT_LIMIT"}
    # the capability query sees the card's day from the router's live state: nothing left
    cap = rstack.capability(f"/v1/capability?business_line=card_repayment&bank=ICBC&card_token={card}")
    assert cap["card"]["state"] == "local" and cap["daily_limit_fen"] == 0 and not cap["card_usable_now"]
    fresh = rstack.capability("/v1/capability?business_line=card_repayment&bank=ICBC")
    assert fresh["single_payment_max_fen"] == 50_000 * CNY and fresh["daily_limit_fen"] == 60_000 * CNY


def test_channel_failure_fails_over_and_customer_failure_ends_the_order(rstack):
    r = run_id()
    rstack.admin("one", "/admin/banks/BOC", {"outage": True})
    try:
        cmds = [cmd(f"fo-{r}-{i}", 1_000 * CNY, bank="BOC", card=f"tok_fo_{r}_{i}") for i in range(5)]
        rstack.publish(cmds)
        outs = rstack.await_outcomes({c.order_id for c in cmds})
    finally:
        rstack.admin("one", "/admin/banks/BOC", {"outage": False})
    attempts = rstack.attempts({c.order_id for c in cmds})
    for c in cmds:
        out = one(outs, c.order_id)
        assert out.status == OutcomeStatus.SUCCEEDED and out.attempts == 2 and out.parts[0].channel_id == "two"
        first, retry = attempts[c.order_id]
        assert first.channel_id == "one" and retry.channel_id == "two"
        assert ["one", "ALREADY_TRIED"] in [e[:2] for e in json.loads(retry.decision)["excl"]]
    assert not [e for e in rstack.ledger() if e["channel_id"] == "one" and e["order_id"].startswith(f"fo-{r}")]

    # (after those failures the scores may prefer "two" for BOC: make the card fail on both)
    for ch in ("one", "two"):
        rstack.admin(ch, "/admin/banks/BOC", {"success_rate": 0.0, "customer_failure_rate": 1.0})
    try:
        broke = cmd(f"cust-{r}", 1_000 * CNY, bank="BOC", card=f"tok_cust_{r}")
        rstack.publish([broke])
        out = one(rstack.await_outcomes({broke.order_id}), broke.order_id)
    finally:
        for ch in ("one", "two"):
            rstack.admin(ch, "/admin/banks/BOC", {"success_rate": 1.0})
    assert out.status == OutcomeStatus.FAILED and out.reason_code == "CUSTOMER" and out.attempts == 1


def test_protocol_payment_debits_only_signed_channels_bind_and_confirm_sign_one(rstack):
    r = run_id()
    card, big = f"tok_proto_{r}", 5_000 * CNY  # over plain's per-payment limit: only proto could take it
    before = cmd(f"pp-{r}-0", big, bank="CCB", card=card)
    rstack.publish([before])
    out = one(rstack.await_outcomes({before.order_id}), before.order_id)
    assert out.status == OutcomeStatus.REJECTED and out.reason_code == "NO_ROUTE"

    bind = cmd(f"pp-{r}-bind", 0, bank="CCB", card=card, op="AUTHENTICATE", auth_step="BIND")
    rstack.publish([bind])
    out = one(rstack.await_outcomes({bind.order_id}), bind.order_id)
    assert out.status == OutcomeStatus.SUCCEEDED and out.reason_code == "SMS_SENT" and out.parts[0].channel_id == "proto"
    [sms] = rstack.admin("proto", f"/admin/sms/{card}")  # the customer reads the code on the phone
    wrong = "000000" if sms["code"] != "000000" else "111111"
    bad = cmd(f"pp-{r}-c1", 0, bank="CCB", card=card, op="AUTHENTICATE", auth_step="CONFIRM",
              sign_order_id=bind.order_id, sms_code=wrong)
    good = cmd(f"pp-{r}-c2", 0, bank="CCB", card=card, op="AUTHENTICATE", auth_step="CONFIRM",
               sign_order_id=bind.order_id, sms_code=sms["code"])
    rstack.publish([bad, good])
    outs = rstack.await_outcomes({bad.order_id, good.order_id})
    assert one(outs, bad.order_id).status == OutcomeStatus.FAILED
    assert one(outs, good.order_id).reason_code == "SIGNED"
    after = cmd(f"pp-{r}-1", big, bank="CCB", card=card)  # (a debit racing the confirmation would not see it)
    rstack.publish([after])
    paid = one(rstack.await_outcomes({after.order_id}), after.order_id)
    assert paid.status == OutcomeStatus.SUCCEEDED and paid.parts[0].channel_id == "proto"
    assert list(rstack.admin("proto", f"/admin/agreements/{card}"))  # the channel holds the agreement too
    cap = rstack.capability(f"/v1/capability?business_line=card_repayment&bank=CCB&card_token={card}")
    assert {c["channel_id"]: c["has_agreement"] for c in cap["channels"]}["proto"] is True

    # a user-present debit of an unsigned card signs proto on the way: proto sends a code and holds
    # the debit until a CONFIRM naming the payment brings it; later debits need no SMS
    other = f"tok_proto_way_{r}"
    present = cmd(f"pp-{r}-way", big, bank="CCB", card=other, user_present=True)
    rstack.publish([present])
    assert wait_until(lambda: rstack.admin("proto", f"/admin/sms/{other}"), 30), "proto sent no code"
    [held] = rstack.admin("proto", f"/admin/sms/{other}")
    code = cmd(f"pp-{r}-way-c", 0, bank="CCB", card=other, op="AUTHENTICATE", auth_step="CONFIRM",
               sign_order_id=present.order_id, sms_code=held["code"])
    rstack.publish([code])
    way = one(rstack.await_outcomes({present.order_id}), present.order_id)
    assert way.status == OutcomeStatus.SUCCEEDED and way.parts[0].channel_id == "proto" and "on the way" in way.reason
    later = cmd(f"pp-{r}-later", big, bank="CCB", card=other)
    rstack.publish([later])
    assert one(rstack.await_outcomes({later.order_id}), later.order_id).parts[0].channel_id == "proto"
    ledger = [e for e in rstack.ledger() if e["channel_id"] == "proto" and e["order_id"].startswith(f"pp-{r}")]
    assert sorted(e["order_id"] for e in ledger) == sorted([after.order_id, present.order_id, later.order_id])


def test_verification_asks_the_channel_for_the_elements_the_business_line_wants(rstack):
    """VERIFY: a debit card may be asked for 6 elements; the channel is told (it books what it checked)."""
    r = run_id()
    six = cmd(f"ve-{r}-6", 0, bank="CCB", card=f"tok_ve6_{r}", op="AUTHENTICATE", auth_elements=6)
    default = cmd(f"ve-{r}-0", 0, bank="CCB", card=f"tok_ve0_{r}", op="AUTHENTICATE")
    rstack.publish([six, default])
    outs = rstack.await_outcomes({six.order_id, default.order_id})
    assert {one(outs, c.order_id).status for c in (six, default)} == {OutcomeStatus.SUCCEEDED}
    booked = {e["order_id"]: e["auth_elements"] for e in rstack.ledger() if e["order_id"].startswith(f"ve-{r}")}
    assert booked == {six.order_id: 6, default.order_id: 4}


def test_config_hot_reload_removes_a_channel_and_invalid_configs_are_rejected(rstack, tmp_path: Path):
    r = run_id()
    original = rstack.capability("/v1/config")
    probe = cmd(f"hr-{r}-0", 100 * CNY, card=f"tok_hr_{r}_0")
    rstack.publish([probe])
    assert one(rstack.await_outcomes({probe.order_id}), probe.order_id).parts[0].channel_id == "one"

    changes = TopicReader(rstack.settings, "capability.changes", 3, json.loads)
    try:
        data = yaml.safe_load(rstack.config_path.read_text())
        del data["channels"]["one"]
        smaller = tmp_path / "without-one.yaml"
        smaller.write_text(yaml.safe_dump(data))
        t0 = time.monotonic()
        applied = rstack.cli("config", "apply", str(smaller))
        assert applied.returncode == 0, applied.stderr
        new_digest = applied.stdout.split("digest ")[1].split()[0]
        wait_for(lambda: rstack.capability("/v1/config")["digest"] == new_digest, 30, "routers on the new config")
        reload_s = time.monotonic() - t0
        cmds = [cmd(f"hr-{r}-{i}", 100 * CNY, card=f"tok_hr_{r}_{i}") for i in range(1, 6)]
        rstack.publish(cmds)
        outs = rstack.await_outcomes({c.order_id for c in cmds})
        assert {one(outs, c.order_id).parts[0].channel_id for c in cmds} == {"two"}
        # the announcer publishes one event per (channel, bank, operation): wait for the one we check
        def removed():
            got = {(m["channel_id"], m["bank_code"], m["operation"]) for _k, m in changes.poll()
                   if "REMOVED" in m["causes"] and m["config_digest"] == new_digest}
            return got if ("one", "ICBC", "PAY_IN") in got else None
        wait_for(removed, 30, "the capability.changes REMOVED event of one/ICBC/PAY_IN")
        shown = rstack.cli("config", "show")
        assert shown.returncode == 0 and f"# digest: {new_digest}" in shown.stdout
        assert "\n  two:" in shown.stdout and "\n  one:" not in shown.stdout

        # an invalid document (bypassing `config apply`'s validation) is rejected; the config stays
        p = kafka.producer(rstack.settings)
        p.produce(rstack.settings.topic("pay.config"), key=b"routing", value=b"channels: {broken: {}}\n")
        p.flush(10)
        status = wait_for(lambda: (lambda s: s if s["rejected"] else None)(rstack.capability("/v1/config")), 30,
                          "the invalid document rejected")
        assert status["digest"] == new_digest and "business_lines" in status["rejected"][-1]["error"]
        refused = rstack.cli("config", "apply", str(tmp_path / "missing.yaml"))
        assert refused.returncode == 1 and "nothing was applied" in refused.stderr
    finally:
        changes.close()
        back = rstack.cli("config", "apply", str(rstack.config_path))
        assert back.returncode == 0, back.stderr
        wait_for(lambda: rstack.capability("/v1/config")["digest"] == original["digest"], 30, "config restored")
    print(f"[hot reload] apply -> router on new config in {reload_s:.2f} s", file=sys.stderr)


def test_channels_added_through_pay_config_are_called_without_restarting_executor_or_signer(rstack, tmp_path: Path):
    """`paycenter config apply` with two new channels: the routers route to them, the running
    executor pays through the plain one and the running signer asks the protocol one to sign
    (before, each answered NO_CONNECTOR until restarted)."""
    r = run_id()
    original = rstack.capability("/v1/config")
    data = yaml.safe_load(rstack.config_path.read_text())
    ports, sims = {}, []
    for cid, extra in (("fresh", {"priority": 200}),
                       ("freshsign", {"operations": ["PAY_IN", "AUTHENTICATE"], "requires_agreement": True})):
        ports[cid] = _proc.free_port()
        added = json.loads(json.dumps(data["channels"]["one"]))
        added.update(base_url=f"http://127.0.0.1:{ports[cid]}", secret_env=f"PAYCENTER_SECRET_RT_{cid.upper()}", **extra)
        added["banks"] = {"CMB": added["banks"]["ICBC"]}  # a bank only the new channels serve
        data["channels"][cid] = added
        prof = tmp_path / f"profile-{cid}.yaml"
        prof.write_text(yaml.safe_dump(profile(added["banks"], requires_agreement=added.get("requires_agreement", False))))
        sims.append(rstack.sup.spawn(f"rt-simulator-{cid}-{r}", [
            sys.executable, "-m", "connectors.simulator", "--channel", cid, "--port", str(ports[cid]),
            "--secret-env", added["secret_env"], "--profile", str(prof), "--zero-latency"]))
    bigger = tmp_path / "with-fresh.yaml"
    bigger.write_text(yaml.safe_dump(data))
    try:
        for port in ports.values():
            wait_for(lambda port=port: _proc.port_open("127.0.0.1", port), 30, "the new channels' simulators")
        applied = rstack.cli("config", "apply", str(bigger))
        assert applied.returncode == 0, applied.stderr
        digest_ = applied.stdout.split("digest ")[1].split()[0]
        wait_for(lambda: rstack.capability("/v1/config")["digest"] == digest_, 30, "routers on the new config")
        card = f"tok_fresh_{r}"
        payment = cmd(f"fresh-{r}", 100 * CNY, bank="CMB", card=card)  # freshsign needs an agreement first
        bind = cmd(f"fresh-{r}-bind", 0, bank="CMB", card=card, op="AUTHENTICATE", auth_step="BIND")
        rstack.publish([payment, bind])
        outs = rstack.await_outcomes({payment.order_id, bind.order_id})
        out = one(outs, payment.order_id)
        assert out.status == OutcomeStatus.SUCCEEDED, (out.reason_code, out.reason)
        assert out.parts[0].channel_id == "fresh" and out.attempts == 1, out
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['fresh']}/admin/ledger", timeout=10) as resp:
            assert [e["order_id"] for e in json.loads(resp.read())] == [payment.order_id]
        signed = one(outs, bind.order_id)
        assert signed.reason_code == "SMS_SENT" and signed.parts[0].channel_id == "freshsign", signed
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['freshsign']}/admin/sms/{card}", timeout=10) as resp:
            assert len(json.loads(resp.read())) == 1  # the new channel sent the customer a code
    finally:
        back = rstack.cli("config", "apply", str(rstack.config_path))
        assert back.returncode == 0, back.stderr
        wait_for(lambda: rstack.capability("/v1/config")["digest"] == original["digest"], 30, "config restored")
        for sim in sims:
            rstack.sup.retire(sim)


def test_capability_cli_asks_a_router(rstack):
    out = subprocess.run([sys.executable, "-m", "paycenter.cli", "capability", "--business-line", "card_repayment",
                          "--bank", "CCB", "--url", f"http://127.0.0.1:{rstack.capability_port}"],
                         cwd=REPO_ROOT, env=rstack.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["bank_code"] == "CCB" and {c["channel_id"] for c in body["channels"]} == {"proto", "plain"}
    bad = subprocess.run([sys.executable, "-m", "paycenter.cli", "capability", "--business-line", "casino",
                          "--bank", "CCB", "--url", f"http://127.0.0.1:{rstack.capability_port}"],
                         cwd=REPO_ROOT, env=rstack.env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "unknown business_line" in bad.stderr


def test_decision_cost_inside_the_stream_is_measured_and_served(rstack):
    r = run_id()
    before = rstack.capability("/v1/stats")["command"]["count"]
    cmds = [cmd(f"load-{r}-{i}", 100 + i, bank=("ICBC", "BOC")[i % 2], card=f"tok_load_{r}_{i % 50}")
            for i in range(300)]
    t0 = time.monotonic()
    rstack.publish(cmds)
    outs = rstack.await_outcomes({c.order_id for c in cmds})
    elapsed = time.monotonic() - t0
    assert all(one(outs, c.order_id).status == OutcomeStatus.SUCCEEDED for c in cmds)
    stats = rstack.capability("/v1/stats")
    assert stats["command"]["count"] >= before + 300 and stats["result"]["count"] >= 300
    print(f"[router] 300 commands -> outcomes in {elapsed:.2f} s; per event inside the stream: "
          f"command {stats['command']}, result {stats['result']}", file=sys.stderr)
    # offsets are committed after each batch's effects left: the router's group reaches the end of pay.commands
    from confluent_kafka import Consumer, TopicPartition
    topic = rstack.settings.topic("pay.commands")
    probe = Consumer({"bootstrap.servers": rstack.settings.kafka_bootstrap, "group.id": PREFIX + "paycenter",
                      "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(6)]
        ends = sum(probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
        wait_for(lambda: sum(max(tp.offset, 0) for tp in probe.committed(tps, timeout=10)) >= ends, 30,
                 "the router's committed offsets at the end of pay.commands")
    finally:
        probe.close()
