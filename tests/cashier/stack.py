"""A paycenter for the cashier's browser tests: its own topic prefix, two protocol-payment channels
(signing by SMS) and two debit channels whose daily limits make a split, simulators,
router/executor/signer workers and the cashier page, all real processes."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import yaml

from connectors.simulator.cardholders import CARDS
from infra import _proc, kafka, topics
from infra.settings import Settings
from paycenter.commands.cashier import create_link
from paycenter.supervisor import Supervisor, wait_for
from processors.pan import tokenize
from tests.support.stack import Stack

CNY = 100
PREFIX = "ca."
CONFIG = {
    "version": 1, "timezone": "Asia/Shanghai",
    "business_lines": {"card_repayment": {"allow_split": True, "max_attempts": 3, "deadline_ms": 60_000}},
    "channels": {
        # ICBC: one 50,000 a day and two 10,000: 55,000 only splits
        "one": {"operations": ["PAY_IN", "AUTHENTICATE"], "priority": 100, "banks": {
            "ICBC": {"per_payment_limit_fen": 50_000 * CNY, "daily_limit_fen": 50_000 * CNY, "fee": {"rate_ppm": 1000}}}},
        "two": {"operations": ["PAY_IN"], "priority": 90, "banks": {
            "ICBC": {"per_payment_limit_fen": 10_000 * CNY, "daily_limit_fen": 10_000 * CNY, "fee": {"rate_ppm": 2000}}}},
        # CCB: protocol payment only. "proto" is the best channel to authenticate (the only one) and
        # pays up to 20,000; "proto2" pays up to 50,000 and only debits: a payment over 20,000 signs
        # "proto2" on the way, never "proto"
        "proto": {"operations": ["PAY_IN", "AUTHENTICATE"], "requires_agreement": True, "priority": 100, "banks": {
            "CCB": {"per_payment_limit_fen": 20_000 * CNY, "daily_limit_fen": 20_000 * CNY, "fee": {"rate_ppm": 500}},
            # BOC: the same, for the HTTP tests' cards
            "BOC": {"per_payment_limit_fen": 20_000 * CNY, "daily_limit_fen": 20_000 * CNY, "fee": {"rate_ppm": 500}}}},
        "proto2": {"operations": ["PAY_IN"], "requires_agreement": True, "priority": 90, "banks": {
            "CCB": {"per_payment_limit_fen": 50_000 * CNY, "daily_limit_fen": 50_000 * CNY, "fee": {"rate_ppm": 800}}}},
    },
    "scoring": {"exploration_share": 0.0},
}


def profile(limits: dict, **default) -> dict:
    return {"seed": 5, "default": {"success_rate": 1.0, **default},
            "banks": {bank: {"per_payment_limit_fen": b["per_payment_limit_fen"], "daily_limit_fen": b["daily_limit_fen"],
                             "rate_ppm": b["fee"]["rate_ppm"]} for bank, b in limits.items()}}


def cards(bank: str):
    """Fresh debit test cards of a bank, one per call (a card's daily usage would carry over)."""
    return iter([c for c in CARDS if c.bank_code == bank and c.card_type == "DEBIT"])


@dataclasses.dataclass
class CashierStack(Stack):
    cashier_url: str = ""
    env: dict = dataclasses.field(default_factory=dict)

    def link(self, customer: str, amount_fen: int, expires_in_s: int = 900, order_id: str | None = None) -> tuple[str, str]:
        order_id = order_id or f"ca-{uuid.uuid4().hex[:10]}"
        answer = create_link(self.cashier_url, "card_repayment", {
            "order_id": order_id, "business_line": "card_repayment", "amount_fen": amount_fen,
            "customer_id": customer, "return_url": f"{self.cashier_url}/v1/return-check", "expires_in_s": expires_in_s})
        return order_id, answer["url"]

    def token_of(self, pan: str) -> str:
        return tokenize(pan, self.settings.card_token_key)

    def sms(self, channel: str, card_token: str) -> list[dict]:
        return self.admin(channel, f"/admin/sms/{card_token}")

    def sms_channels(self, pan: str) -> dict[str, list[dict]]:
        """The codes each channel sent the card's phone (channels that sent none left out)."""
        token = self.token_of(pan)
        return {cid: codes for cid in self.sim_ports if (codes := self.sms(cid, token))}

    def set_bank(self, channel: str, bank: str, **changes) -> dict:
        """Patch a bank's profile at one channel's simulator (e.g. outage=True)."""
        return self.admin(channel, f"/admin/banks/{bank}", changes)

    def restart_cashier(self) -> None:
        """Stop the cashier process and start it again (what it held in memory is gone)."""
        old = next(c for c in self.sup.children if c.name == "ca-cashier")
        self.sup.retire(old)
        self.sup.spawn("ca-cashier", old.argv, old.extra_env)
        wait_for(lambda: _answers(self.cashier_url, self.sup), 90, "the cashier to answer again")

    def bookings(self, order_id: str) -> list[dict]:
        return [e for e in self.ledger() if e.get("order_id") == order_id and e.get("status") == "SUCCESS"]

    def debits(self, pan: str) -> list[dict]:
        """Every successful debit of the card at any channel, whatever order it was for."""
        token = self.token_of(pan)
        return [e for e in self.ledger() if e.get("card_token") == token and e.get("operation") == "PAY_IN"
                and e.get("status") == "SUCCESS"]


def start(services: Settings, tmp: Path):
    os.environ.setdefault("PAYCENTER_ALLOW_DEV_SECRETS", "1")  # this process signs session requests too
    settings = dataclasses.replace(services, topic_prefix=PREFIX)
    topics.provision(settings)
    ports = {cid: _proc.free_port() for cid in CONFIG["channels"]}
    config = json.loads(json.dumps(CONFIG))
    for cid, ch in config["channels"].items():
        ch.update(base_url=f"http://127.0.0.1:{ports[cid]}", secret_env=f"PAYCENTER_SECRET_CA_{cid.upper()}")
    config_path = tmp / "routing.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cap_port, cashier_port = _proc.free_port(), _proc.free_port()
    env = {**os.environ, "PAYCENTER_TOPIC_PREFIX": PREFIX, "PAYCENTER_ROUTING_CONFIG": str(config_path),
           "PAYCENTER_ALLOW_DEV_SECRETS": "1", "PAYCENTER_CAPABILITY_PORT": str(cap_port),
           "PAYCENTER_PENDING_POLL_DEADLINE_S": "5", "PAYCENTER_CASHIER_PORT": str(cashier_port)}
    sup = Supervisor(settings, env=env)
    for cid, ch in config["channels"].items():
        prof = tmp / f"profile-{cid}.yaml"
        prof.write_text(yaml.safe_dump(profile(ch["banks"], requires_agreement=ch.get("requires_agreement", False))))
        sup.spawn(f"ca-simulator-{cid}", [sys.executable, "-m", "connectors.simulator", "--channel", cid,
                                          "--port", str(ports[cid]), "--secret-env", ch["secret_env"],
                                          "--profile", str(prof), "--zero-latency"])
    for role in ("router", "executor", "signer"):
        sup.start_worker(role, name=f"ca-{role}")
    sup.spawn("ca-cashier", [sys.executable, "-m", "paycenter.cli", "cashier", "serve"])
    url = f"http://127.0.0.1:{cashier_port}"
    st = CashierStack(settings, sup, config_path, ports, kafka.producer(settings), cashier_url=url, env=env)

    t0 = time.monotonic()
    wait_for(lambda: _answers(url, sup), 90, "the cashier to answer")
    print(f"[cashier stack] ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return st


def _answers(url: str, sup: Supervisor) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/c/not-a-token", timeout=5):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    except OSError:
        sup.check_alive()
        return False
