"""Channel requests for the connector and simulator tests."""
from __future__ import annotations

from connectors.base import ChannelRequest
from schemas.records import CardType, Operation


def make_request(
    attempt_id: str = "ord-1.1",
    amount_fen: int = 10_000,
    *,
    order_id: str | None = None,
    bank_code: str = "ICBC",
    card_token: str = "tok_card_0001",
    operation: Operation = Operation.PAY_IN,
    card_type: CardType = CardType.DEBIT,
    auth_elements: int = 0,
) -> ChannelRequest:
    return ChannelRequest(
        attempt_id=attempt_id,
        order_id=order_id or attempt_id.rsplit(".", 1)[0],
        operation=operation,
        card_token=card_token,
        bank_code=bank_code,
        card_type=card_type,
        amount_fen=amount_fen,
        auth_elements=auth_elements,
    )
