"""The channel interface and the typed records every channel speaks.

A *channel* is a payment company (or its simulator). The executor only sees this interface, so a
new channel protocol is a new `Channel` implementation, nothing else changes.

Money is integer fen. A `ChannelResponse` is always returned for money movements, never an
exception: an unexpected failure is turned into a PENDING answer ("we do not know whether money
moved"), which the executor resolves with `query_status`.
"""
from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from schemas.records import AttemptStatus, CardType, FailureKind, Operation
from schemas.statement import StatementLine


class ChannelError(Exception):
    """A call that is not a money movement (statement download) could not be completed."""


@dataclass(frozen=True)
class ChannelRequest:
    attempt_id: str  # `order_id.attempt_no`; the channel is idempotent on it
    order_id: str
    operation: Operation
    card_token: str  # never a card number
    bank_code: str
    card_type: CardType
    amount_fen: int
    # Protocol payment, user present: the channel has the customer confirm its SMS inside this
    # debit and signs the card on the way (only the signer role sets it; see processors/routing/planner.py).
    sign_on_the_way: bool = False
    auth_elements: int = 0  # AUTHENTICATE: 4 or 6 card elements to verify; 0 for money movements
    # AUTHENTICATE: the elements from the card vault, opened by the executor at call time; None when
    # the vault has no record of the card (the caller verified its customer elsewhere). Never logged.
    elements: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # bool is an int subclass; reject it and floats so money can never be fractional.
        if not isinstance(self.amount_fen, int) or isinstance(self.amount_fen, bool):
            raise TypeError(f"amount_fen must be int fen, got {type(self.amount_fen).__name__}")


@dataclass(frozen=True)
class SigningRequest:
    """Protocol-payment signing, step 1: the channel verifies the card's elements and sends the
    customer an SMS code. Success carries the channel's signing reference in `channel_txn_id`."""

    attempt_id: str
    order_id: str
    card_token: str
    bank_code: str
    card_type: CardType
    auth_elements: int  # 4 or 6
    elements: dict[str, str] | None = field(default=None, repr=False)  # as ChannelRequest.elements
    resend_ref: str | None = None  # send the code of this signing (e.g. a held debit's) again


@dataclass(frozen=True)
class SigningConfirmation:
    """Step 2: the customer's code for the signing `sign_ref`. Success carries the agreement number."""

    attempt_id: str
    order_id: str
    card_token: str
    sign_ref: str
    sms_code: str = field(repr=False)  # never in logs


@dataclass(frozen=True)
class ChannelResponse:
    status: AttemptStatus
    failure_kind: FailureKind
    channel_code: str  # the channel's code, or a local one: TIMEOUT, NETWORK, CONNECT, BAD_SIGNATURE...
    message: str
    channel_txn_id: str | None = None
    fee_fen: int = 0

    @property
    def is_final(self) -> bool:
        return self.status is not AttemptStatus.PENDING

    @classmethod
    def pending(cls, code: str, message: str) -> ChannelResponse:
        """Outcome unknown: money may or may not have moved."""
        return cls(AttemptStatus.PENDING, FailureKind.NONE, code, message)


class Channel(ABC):
    """One payment channel. Implementations must be safe to call concurrently."""

    channel_id: str

    @abstractmethod
    async def debit(self, req: ChannelRequest) -> ChannelResponse:
        """PAY_IN: take money from the customer's card."""

    @abstractmethod
    async def payout(self, req: ChannelRequest) -> ChannelResponse:
        """PAYOUT: send money to the customer's card."""

    @abstractmethod
    async def authenticate(self, req: ChannelRequest) -> ChannelResponse:
        """AUTHENTICATE: verify the card (may carry a fee, moves no principal)."""

    async def request_signing(self, req: SigningRequest) -> ChannelResponse:
        """Protocol payment: ask the channel to send the customer a signing SMS code."""
        return _unsupported(self, "protocol-payment signing")

    async def confirm_signing(self, req: SigningConfirmation) -> ChannelResponse:
        """Protocol payment: confirm a signing with the customer's SMS code."""
        return _unsupported(self, "protocol-payment signing")

    @abstractmethod
    async def query_status(self, attempt_id: str) -> ChannelResponse:
        """The channel's current view of an attempt; PENDING if it (or we) cannot tell yet."""

    @abstractmethod
    async def fetch_statement(self, day: datetime.date) -> list[StatementLine]:
        """The channel's final entries booked on `day` (its calendar). Raises ChannelError."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def execute(self, req: ChannelRequest) -> ChannelResponse:
        """Dispatch on `req.operation`."""
        if req.operation is Operation.PAY_IN:
            return await self.debit(req)
        if req.operation is Operation.PAYOUT:
            return await self.payout(req)
        if req.operation is Operation.AUTHENTICATE:
            return await self.authenticate(req)
        raise ValueError(f"unsupported operation {req.operation!r}")


def _unsupported(channel: Channel, what: str) -> ChannelResponse:
    # Nothing was sent: a safe channel-side failure (the router may try another channel).
    return ChannelResponse(AttemptStatus.FAILED, FailureKind.CHANNEL, "NOT_SUPPORTED",
                           f"{getattr(channel, 'channel_id', '?')} does not support {what}")
