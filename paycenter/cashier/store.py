"""Cashier state on the compacted topic cashier.sessions (nothing in a process's memory alone):

    s:<session id>                  the session (processors/cashier/session.py, JSON)
    o:<business line>:<order id>    the session id of an order: creating it again returns the same
    c:<business line>:<customer>    the customer's bound cards (token, bank, type, last 4: no card data)

A restarted cashier reads the topic back: a reload after a restart resumes where the customer was.
"""
from __future__ import annotations

import json

from infra import kafka
from infra.settings import Settings
from processors.cashier.session import Card, Session
from streams.runtime.compacted import CompactedTable

TOPIC = "cashier.sessions"


class CashierStore:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(TOPIC)
        self.table = CompactedTable(settings, self.topic)
        self.table.catch_up()
        self.producer = kafka.producer(settings)

    def _put(self, key: str, value: bytes) -> None:
        errors: list = []
        self.producer.produce(self.topic, key=key.encode(), value=value,
                              on_delivery=lambda err, _m: err and errors.append(err))
        if self.producer.flush(30) or errors:
            raise RuntimeError(f"cashier state not written to {self.topic}: {errors or 'no answer in 30 s'}")
        self.table.catch_up()

    def session(self, session_id: str) -> Session | None:
        raw = self.table.get(f"s:{session_id}")
        return Session.from_bytes(raw) if raw else None

    def save(self, session: Session) -> None:
        self._put(f"s:{session.session_id}", session.to_bytes())

    def session_of_order(self, business_line: str, order_id: str) -> str | None:
        raw = self.table.get(f"o:{business_line}:{order_id}")
        return raw.decode() if raw else None

    def create(self, session: Session) -> None:
        self.save(session)
        self._put(f"o:{session.business_line}:{session.order_id}", session.session_id.encode())

    def cards(self, business_line: str, customer_id: str) -> list[Card]:
        raw = self.table.get(f"c:{business_line}:{customer_id}")
        return [Card(**c) for c in json.loads(raw)] if raw else []

    def bind(self, business_line: str, customer_id: str, card: Card) -> None:
        cards = [c for c in self.cards(business_line, customer_id) if c.token != card.token] + [card]
        self._put(f"c:{business_line}:{customer_id}",
                  json.dumps([c.__dict__ for c in cards], separators=(",", ":")).encode())

    def close(self) -> None:
        self.producer.flush(10)
        self.table.close()
