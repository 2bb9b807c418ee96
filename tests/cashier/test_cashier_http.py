"""The cashier's HTTP contract: signed session creation (same order_id, same session), CSRF, CSP
frame-ancestors, forged links, rate limits, and no card number in its log or its topics."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from paycenter.commands.cashier import create_link
from processors.cashier.tokens import sign_body
from tests.support.pan import pans_in

pytestmark = pytest.mark.e2e


def post(url: str, data: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get(url: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def body(order_id: str, **changes) -> dict:
    return {"order_id": order_id, "business_line": "card_repayment", "amount_fen": 1_000, "customer_id": "c-http",
            "return_url": "https://shop.example/return", **changes}


def test_the_same_order_id_returns_the_same_session(cashier):
    order = f"http-{uuid.uuid4().hex[:8]}"
    first = create_link(cashier.cashier_url, "card_repayment", body(order))
    again = create_link(cashier.cashier_url, "card_repayment", body(order))
    assert first["session_id"] == again["session_id"] and first["url"] == again["url"]


def test_an_unsigned_or_altered_request_is_refused_and_bad_input_explained(cashier):
    raw = json.dumps(body("http-unsigned")).encode()
    ts = time.time_ns() // 1_000_000
    status, _h, answer = post(f"{cashier.cashier_url}/v1/sessions", raw,
                              {"X-PC-Timestamp": str(ts), "X-PC-Signature": sign_body("wrong-key", ts, raw)})
    assert status == 401 and b"signature" in answer
    bad = json.dumps(body("http-bad", amount_fen=10.5)).encode()
    status, _h, answer = post(f"{cashier.cashier_url}/v1/sessions", bad, {
        "X-PC-Timestamp": str(ts), "X-PC-Signature": sign_body("dev-cashier-key-card_repayment", ts, bad)})
    assert status == 400 and b"amount_fen" in answer


def test_page_headers_csrf_and_forged_links(cashier):
    _order, url = cashier.link("c-http", 1_000)
    status, headers, html = get(url)
    assert status == 200 and "frame-ancestors" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"] and 'name="csrf"' in html
    status, _h, _b = post(f"{url}/pay", b"csrf=forged", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    token = url.rsplit("/", 1)[1]
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert get(url.replace(token, forged))[0] == 404


def test_attempts_are_rate_limited_per_session(cashier):
    _order, url = cashier.link("c-rate", 1_000)
    statuses = [post(f"{url}/resend", b"csrf=x", {"Content-Type": "application/x-www-form-urlencoded"})[0]
                for _ in range(3)]
    assert statuses == [403] * 3  # a bad CSRF token is refused before it counts
    _s, _h, html = get(url)
    csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = urllib.parse.urlencode({"csrf": csrf}).encode()
    codes = [post(f"{url}/resend", form, {"Content-Type": "application/x-www-form-urlencoded"})[0] for _ in range(32)]
    assert 429 in codes and codes.index(429) == 30, codes


def test_no_card_number_in_the_cashier_log_or_its_topics(cashier):
    # after the browser tests of this session entered real test card numbers (run them first)
    log = (cashier.sup.log_dir / "ca-cashier.log").read_bytes()
    assert pans_in(log) == []
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cashier.settings.kafka_bootstrap, "group.id": "cashier-pan-scan",
                  "enable.auto.commit": False})
    found = []
    for name, meta in c.list_topics(timeout=10).topics.items():
        if not name.startswith("ca."):
            continue
        c.assign([TopicPartition(name, p, 0) for p in meta.partitions])
        while msgs := c.consume(2000, 1.0):
            found += [(name, pan) for m in msgs if not m.error() for pan in pans_in(m.value()) + pans_in(m.key())]
    c.close()
    assert found == []
