"""The order machine's records: order and attempt state (what the orders table keeps), the
planner's answers (Routed, NoRoute, Settled) and a step's effects (Step and what it carries).

Split from processors/orders/machine.py, which holds the machine itself and re-exports these names
(`orders.OrderState` and the like stay the public spelling).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from processors.routing.fastinit import fast_frozen_init
from processors.routing.limits import CardUsage
from schemas.records import Attempt, AttemptResult, CardType, FailureKind, Outcome, PaymentCommand

IN_FLIGHT = "IN_FLIGHT"

# How an attempt is executed. PAY goes to the executor (pay.attempts); the others need the channel's
# protocol-payment signing API and go to the signer (pay.signing).
PAY = "pay"
SIGN_REQUEST = "sign_request"  # BIND: the channel verifies the card and sends the customer an SMS code
SIGN_CONFIRM = "sign_confirm"  # CONFIRM: the code goes back to the same channel; success = agreement
SIGN_AND_PAY = "sign_and_pay"  # user-present debit on a channel the card has not signed: signs on the way
SIGNING_KINDS = frozenset({SIGN_REQUEST, SIGN_CONFIRM, SIGN_AND_PAY})


@fast_frozen_init  # one or more per routed command: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class Routed:
    """One part routed to one channel-bank."""

    channel_id: str
    bank_code: str
    amount_fen: int
    fee_fen: int
    day: str  # the channel's calendar day, for the card's daily usage
    decision: str = ""  # JSON explanation, journaled with the attempt
    kind: str = PAY
    sign_ref: str | None = None  # SIGN_CONFIRM: the channel's id of the signing request


@dataclass(frozen=True)
class NoRoute:
    reason_code: str
    reason: str
    decision: str = ""


@dataclass(frozen=True)
class Settled:
    """Nothing to execute and nothing wrong (e.g. BIND for a card that already signed every
    protocol channel of its bank): the order succeeds at once with this reason."""

    reason_code: str
    reason: str


class Planner(Protocol):
    """Routing as the order machine needs it (processors.routing.planner adapts the router)."""

    def validate(self, cmd: PaymentCommand) -> NoRoute | None: ...

    def plan(self, cmd: PaymentCommand, amount_fen: int, attempt_no: int, tried: frozenset[str],
             usage: CardUsage, now_ms: int, allow_split: bool,
             agreements: frozenset[str] = frozenset()) -> list[Routed] | NoRoute | Settled: ...

    def confirm(self, cmd: PaymentCommand, bind: OrderState | None, now_ms: int) -> list[Routed] | NoRoute:
        """CONFIRM: the route is the channel that sent the SMS code for `bind` (the BIND order)."""
        ...

    def policy(self, business_line: str) -> tuple[int, int]:
        """(max attempts per part, deadline ms after the command was requested)"""
        ...


@dataclass
class AttemptState:
    attempt_id: str
    attempt_no: int
    part: int
    channel_id: str
    bank_code: str
    amount_fen: int
    day: str
    status: str = IN_FLIGHT  # IN_FLIGHT, or an AttemptStatus value
    failure_kind: str = FailureKind.NONE.value
    fee_fen: int = 0
    channel_txn_id: str | None = None
    reason: str = ""
    expected_fee_fen: int = 0
    origin: str = ""  # "topic:partition:offset" of the event that launched it (see replay)
    kind: str = PAY
    sign_ref: str | None = None


@dataclass
class OrderState:
    command: dict  # the PaymentCommand as Avro dict (JSON-friendly)
    attempts: list[AttemptState] = field(default_factory=list)
    outcome: dict | None = None  # the final Outcome as Avro dict, once decided
    duplicates_waiting: int = 0  # repeats that arrived before the outcome was known
    duplicates_answered: int = 0
    outcome_origin: str = ""

    def to_dict(self) -> dict:
        # not dataclasses.asdict: its recursive deep copy was ~60 % of the pure per-command cost.
        # The dict is serialised at once (the changelog), never mutated; command/outcome are shared.
        return {"command": self.command, "attempts": [dict(vars(a)) for a in self.attempts],
                "outcome": self.outcome, "duplicates_waiting": self.duplicates_waiting,
                "duplicates_answered": self.duplicates_answered, "outcome_origin": self.outcome_origin}

    @classmethod
    def from_dict(cls, d: dict) -> "OrderState":
        return cls(command=d["command"], attempts=[AttemptState(**a) for a in d["attempts"]],
                   outcome=d.get("outcome"), duplicates_waiting=d.get("duplicates_waiting", 0),
                   duplicates_answered=d.get("duplicates_answered", 0),
                   outcome_origin=d.get("outcome_origin", ""))

    @property
    def cmd(self) -> PaymentCommand:
        return PaymentCommand.from_avro(self.command)

    def find(self, attempt_id: str) -> AttemptState | None:
        return next((a for a in self.attempts if a.attempt_id == attempt_id), None)


@fast_frozen_init  # one or more per routed command: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class UsageDelta:
    channel_id: str
    day: str
    delta_fen: int


@dataclass(frozen=True)
class DeadLetterReason:
    reason_code: str
    reason: str


@dataclass(frozen=True)
class SigningTask:
    """An attempt for the signer: the attempt record plus what only the signing API needs."""

    attempt: Attempt
    kind: str
    sign_ref: str | None = None
    sms_code: str | None = None
    auth_elements: int = 0


@dataclass(frozen=True)
class AgreementSigned:
    channel_id: str
    signed_at_ms: int
    ref: str
    via: str


@dataclass
class Step:
    """What one input did: the new state and the effects to carry out, in order."""

    state: OrderState | None
    attempts: list[Attempt] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    usage: list[UsageDelta] = field(default_factory=list)
    dead_letter: DeadLetterReason | None = None
    signing: list[SigningTask] = field(default_factory=list)
    agreements: list[AgreementSigned] = field(default_factory=list)
    observed: list[AttemptResult] = field(default_factory=list)  # payment attempts' final results
    first_of_part: list[bool] = field(default_factory=list)  # per observed result: its part's first attempt?


# What a decided order does not need to keep: the business line's free-form metadata, a CONFIRM's
# SMS code (a secret: once used, it must not stay in a changelog for the whole window), and
# optional fields at their defaults (PaymentCommand.from_avro gives them back).
_DROPPED_WHEN_DECIDED = ("metadata", "sms_code")
_DEFAULTS = {"currency": "CNY", "user_present": False, "funder": None, "auth_step": "VERIFY", "auth_elements": 0,
             "sign_order_id": None}


def decided(state: OrderState) -> OrderState:
    """What a decided order keeps until it expires: the first outcome (a repeat is answered with
    it), the details it was asked with (a reused order_id is told apart from a repeat), where its
    outcome came from (a replay re-sends it), and a BIND's successful signing requests (a CONFIRM
    finds the channel that sent the code). Not its attempts' history."""
    cmd = {k: v for k, v in state.command.items()
           if k not in _DROPPED_WHEN_DECIDED and (k not in _DEFAULTS or v != _DEFAULTS[k])}
    kept = [a for a in state.attempts if a.kind == SIGN_REQUEST and a.status == "SUCCESS"]
    return OrderState(command=cmd, attempts=kept, outcome=state.outcome, duplicates_waiting=state.duplicates_waiting,
                      duplicates_answered=state.duplicates_answered, outcome_origin=state.outcome_origin)


def expires_at(state: OrderState, window_ms: int) -> int | None:
    """When a decided order may leave the table: a window after its decision, or after the time it
    was requested if that is later (a future-dated command); None while it is not decided. A repeat
    within the window is answered with the first outcome; a command requested longer ago than the
    window is refused as stale (orders.on_command), so a forgotten order is never executed again."""
    if state.outcome is None:
        return None
    return max(int(state.outcome["decided_at_ms"]), int(state.command["requested_at_ms"])) + window_ms


def apply_delta(usage: CardUsage, channel_id: str, day: str, delta_fen: int) -> CardUsage:
    """Reserve (delta > 0) or release (delta < 0) an amount of the card's daily usage.
    A release never takes the usage below zero."""
    if delta_fen >= 0:
        return usage.add(channel_id, day, delta_fen)
    entries = dict(usage.entries)
    key = (channel_id, day)
    left = entries.get(key, 0) + delta_fen
    if left > 0:
        entries[key] = left
    else:
        entries.pop(key, None)
    return CardUsage(MappingProxyType(entries))


def attempt_id(order_id: str, attempt_no: int) -> str:
    return f"{order_id}.{attempt_no}"


def auth_elements(asked: int, card_type: str) -> int:
    """Card elements to verify: as asked, else 6 for credit cards (CVV2 + expiry) and 4 for debit."""
    return asked or (6 if card_type == CardType.CREDIT.value else 4)
