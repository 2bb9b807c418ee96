"""`paycenter cashier`: the hosted payment page.

    paycenter cashier serve [--port 18700] [--public-url http://127.0.0.1:18700]
    paycenter cashier link --order-id O --amount-fen 10000 --customer-id C [--business-line card_repayment]
                           [--return-url URL] [--expires-in-s 900] [--url http://127.0.0.1:18700]

`link` creates (or finds: same order_id, same session) a session the way a business line does, a
request signed with the line's key (PAYCENTER_CASHIER_KEY_<LINE>), and prints the page's link.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def cmd_serve(args) -> int:
    import logging

    from aiohttp import web

    from infra.settings import load
    from paycenter.cashier.app import make_app
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load()
    port = args.port or settings.cashier_port
    public = args.public_url or f"http://{settings.cashier_host}:{port}"
    web.run_app(make_app(settings, public), host=settings.cashier_host, port=port, print=None)
    return 0


def create_link(url: str, business_line: str, body: dict) -> dict:
    """POST /v1/sessions signed with the business line's key; the cashier's JSON answer."""
    from infra.cashier import line_key
    from processors.cashier.tokens import sign_body
    raw = json.dumps(body, separators=(",", ":")).encode()
    ts = time.time_ns() // 1_000_000
    req = urllib.request.Request(f"{url.rstrip('/')}/v1/sessions", data=raw, method="POST", headers={
        "Content-Type": "application/json", "X-PC-Timestamp": str(ts),
        "X-PC-Signature": sign_body(line_key(business_line), ts, raw)})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def cmd_link(args) -> int:
    from infra.settings import load
    url = args.url or f"http://127.0.0.1:{load().cashier_port}"
    body = {"order_id": args.order_id, "business_line": args.business_line, "amount_fen": args.amount_fen,
            "customer_id": args.customer_id, "return_url": args.return_url or f"{url}/v1/return-check",
            "expires_in_s": args.expires_in_s}
    try:
        answer = create_link(url, args.business_line, body)
    except urllib.error.HTTPError as exc:
        print(f"cashier refused the session: {json.loads(exc.read()).get('error', exc.reason)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"no cashier at {url} ({getattr(exc, 'reason', exc)}): start it with `paycenter cashier serve`",
              file=sys.stderr)
        return 1
    print(answer["url"])
    return 0


def register(sub) -> None:
    p = sub.add_parser("cashier", help="the hosted payment page: serve it, make a session's link",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cs = p.add_subparsers(dest="cashier_command", required=True)
    s = cs.add_parser("serve", help="run the cashier page (needs the broker and the workers)")
    s.add_argument("--port", type=int, help="default PAYCENTER_CASHIER_PORT (18700)")
    s.add_argument("--public-url", help="how customers reach it, for the links (default http://host:port)")
    s.set_defaults(func=cmd_serve)
    k = cs.add_parser("link", help="create a session as a business line does and print its link")
    k.add_argument("--order-id", required=True)
    k.add_argument("--amount-fen", type=int, required=True, help="integer fen (1 CNY = 100)")
    k.add_argument("--customer-id", required=True, help="the customer's id at the business line")
    k.add_argument("--business-line", default="card_repayment")
    k.add_argument("--return-url", help="where the page sends the customer back (default: the cashier's check page)")
    k.add_argument("--expires-in-s", type=int, default=900)
    k.add_argument("--url", help="the cashier (default http://127.0.0.1:$PAYCENTER_CASHIER_PORT)")
    k.set_defaults(func=cmd_link)
