"""The cashier in `paycenter run`: start the page and print a link for a demo customer, with a
test card of the simulators (connectors/simulator/cardholders.py) to enter in it."""
from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

from infra.settings import Settings
from paycenter.supervisor import wait_for

DEMO_BANK = "ICBC"


def start(sup, settings: Settings, say) -> None:
    from connectors.simulator.cardholders import CARDS
    from paycenter.commands.cashier import create_link

    port = settings.cashier_port  # free: `paycenter run` checked every port it listens on (paycenter/ports.py)
    sup.spawn("cashier", [sys.executable, "-m", "paycenter.cli", "cashier", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(f"{url}/c/-", timeout=2)
        except urllib.error.HTTPError:
            return True  # it answers (404: not a link)
        except OSError:
            sup.check_alive()
            return False
        return True
    wait_for(up, 60, "the cashier to answer")
    order_id = f"demo-cashier-{time.time_ns() // 1_000_000}"
    answer = create_link(url, "card_repayment", {
        "order_id": order_id, "business_line": "card_repayment", "amount_fen": 12_345,
        "customer_id": "demo-customer", "return_url": f"{url}/v1/return-check", "expires_in_s": 3600})
    card = next(c for c in CARDS if c.bank_code == DEMO_BANK and c.card_type == "DEBIT")
    say(f"cashier on {url}/ ; a payment link for a demo customer (¥123.45, valid 1 h):\n  {answer['url']}\n"
        f"  test debit card: {card.pan}  name {card.name}  ID {card.id_number}  phone {card.phone}\n"
        f"  more links: paycenter cashier link --order-id ID --amount-fen 10000 --customer-id demo-customer")
