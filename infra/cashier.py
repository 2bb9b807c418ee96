"""The cashier's per business line configuration, from the environment.

    PAYCENTER_CASHIER_KEY_<LINE>      the HMAC key the business line signs session requests with, and
                                      the cashier signs the result it redirects with (LINE upper-cased)
    PAYCENTER_CASHIER_ORIGINS_<LINE>  origins allowed to frame the page (space-separated), e.g.
                                      "https://shop.example.com"; default: none ('none')
    PAYCENTER_CASHIER_SECRET          signs the links and the CSRF tokens (never leaves the cashier)

With PAYCENTER_ALLOW_DEV_SECRETS=1 (demo and tests) a missing key or secret is a development one.
"""
from __future__ import annotations

import os

from infra.settings import DEV_SECRETS_FLAG


class MissingKey(RuntimeError):
    pass


def _dev() -> bool:
    return os.environ.get(DEV_SECRETS_FLAG) == "1"


def line_key(business_line: str) -> str:
    var = f"PAYCENTER_CASHIER_KEY_{business_line.upper()}"
    key = os.environ.get(var)
    if key:
        return key
    if _dev():
        return f"dev-cashier-key-{business_line}"
    raise MissingKey(f"no cashier key for business line {business_line!r}: set {var}")


def frame_ancestors(business_line: str) -> str:
    return os.environ.get(f"PAYCENTER_CASHIER_ORIGINS_{business_line.upper()}", "").strip() or "'none'"


def link_secret(configured: str) -> str:
    if configured:
        return configured
    if _dev():
        return "dev-cashier-link-secret"
    raise MissingKey("PAYCENTER_CASHIER_SECRET is not set: the cashier signs its links and forms with it")
