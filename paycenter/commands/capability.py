"""`paycenter capability`: ask a router what a business line can do for a bank (and a card) now.

    paycenter capability --business-line card_repayment --bank ICBC [--card-token T]
                         [--operation PAY_IN] [--card-type DEBIT] [--url http://127.0.0.1:18600]

Prints the router's JSON answer (streams/http/capability.py): supported banks' limits (single payment =
max over channels, daily = sum of what remains), whether the card can be used now, restrictions.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:{port}"


def cmd_capability(args) -> int:
    base = args.url or DEFAULT_URL.format(port=os.environ.get("PAYCENTER_CAPABILITY_PORT") or 18600)
    query = {"business_line": args.business_line, "bank": args.bank, "operation": args.operation}
    if args.card_token:
        query["card_token"] = args.card_token
    if args.card_type:
        query["card_type"] = args.card_type
    url = f"{base.rstrip('/')}/v1/capability?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        print(f"error: {message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: no capability endpoint at {base} ({getattr(exc, 'reason', exc)}): is a router running "
              f"(`paycenter worker router`, PAYCENTER_CAPABILITY_PORT) and is --url right?", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


def register(sub) -> None:
    p = sub.add_parser("capability", help="payment capability of a business line for a bank/card (asks a router)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--business-line", required=True, help="e.g. card_repayment")
    p.add_argument("--bank", required=True, help="bank code, e.g. ICBC")
    p.add_argument("--card-token", help="the card's token: adds its usage today and its agreements")
    p.add_argument("--operation", default="PAY_IN", choices=("PAY_IN", "PAYOUT", "AUTHENTICATE"))
    p.add_argument("--card-type", choices=("DEBIT", "CREDIT"))
    p.add_argument("--url", help="a router's capability endpoint (default http://127.0.0.1:$PAYCENTER_CAPABILITY_PORT,"
                                 " port 18600)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_capability)
