"""The order state machine: from a command and the channels' answers to exactly one outcome.

Pure: the streams layer feeds it commands and attempt results, stores the returned state in a
changelog-backed table keyed by order_id, and carries out the returned effects (produce an attempt,
an outcome, a dead letter; move the card's used-today amounts). Rules a payments engineer expects:

* a repeated order_id is answered with the first outcome (duplicate=True), never executed again;
* a result for an attempt the order is not waiting for (a replay) changes nothing;
* a CHANNEL failure is retried on another channel within the business line's attempts and deadline;
  a CUSTOMER failure ends the part (another channel would fail too, or charge twice);
* a PENDING attempt is never re-routed: the money may have moved; the order waits for its result;
* a split order's outcome waits for every part: all succeeded → SUCCEEDED, none → FAILED, else PARTIAL.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Protocol

from processors.limits import CardUsage
from schemas.records import (
    Attempt, AttemptResult, AttemptStatus, FailureKind, Operation, Outcome, OutcomePart, OutcomeStatus,
    PaymentCommand,
)

IN_FLIGHT = "IN_FLIGHT"


@dataclass(frozen=True)
class Routed:
    """One part routed to one channel-bank."""

    channel_id: str
    bank_code: str
    amount_fen: int
    fee_fen: int
    day: str  # the channel's calendar day, for the card's daily usage
    decision: str = ""  # JSON explanation, journaled with the attempt


@dataclass(frozen=True)
class NoRoute:
    reason_code: str
    reason: str
    decision: str = ""


class Planner(Protocol):
    """Routing as the order machine needs it (processors.planner adapts the router)."""

    def validate(self, cmd: PaymentCommand) -> NoRoute | None: ...

    def plan(self, cmd: PaymentCommand, amount_fen: int, attempt_no: int, tried: frozenset[str],
             usage: CardUsage, now_ms: int, allow_split: bool) -> list[Routed] | NoRoute: ...

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


@dataclass
class OrderState:
    command: dict  # the PaymentCommand as Avro dict (JSON-friendly)
    attempts: list[AttemptState] = field(default_factory=list)
    outcome: dict | None = None  # the final Outcome as Avro dict, once decided
    duplicates_waiting: int = 0  # repeats that arrived before the outcome was known
    duplicates_answered: int = 0
    outcome_origin: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

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


@dataclass(frozen=True)
class UsageDelta:
    channel_id: str
    day: str
    delta_fen: int


@dataclass(frozen=True)
class DeadLetterReason:
    reason_code: str
    reason: str


@dataclass
class Step:
    """What one input did: the new state and the effects to carry out, in order."""

    state: OrderState | None
    attempts: list[Attempt] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    usage: list[UsageDelta] = field(default_factory=list)
    dead_letter: DeadLetterReason | None = None


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


def on_command(state: OrderState | None, cmd: PaymentCommand, usage: CardUsage, now_ms: int,
               planner: Planner, origin: str = "") -> Step:
    if state is not None:
        replayed = replay(state, origin, now_ms)
        if replayed is not None:
            return replayed
        return _answer_duplicate(state, now_ms)
    state = OrderState(command=cmd.to_avro())
    rejection = planner.validate(cmd)
    if rejection is not None:
        step = _finish(state, now_ms, origin, reject=rejection)
        step.dead_letter = DeadLetterReason(rejection.reason_code, rejection.reason)
        return step
    business = cmd.business_line
    plan = planner.plan(cmd, cmd.amount_fen, 1, frozenset(), usage, now_ms, _allow_split(planner, business))
    if isinstance(plan, NoRoute):
        return _finish(state, now_ms, origin, reject=plan)
    step = Step(state)
    for part, routed in enumerate(plan):
        _launch(state, step, routed, part, now_ms, origin)
    return step


def on_result(state: OrderState | None, result: AttemptResult, usage: CardUsage, now_ms: int,
              planner: Planner, origin: str = "") -> Step:
    if state is not None:
        replayed = replay(state, origin, now_ms)
        if replayed is not None:
            return replayed
    if state is None or state.outcome is not None:
        return Step(state)  # unknown or already decided: a replayed result
    att = state.find(result.attempt_id)
    if att is None or att.status not in (IN_FLIGHT, AttemptStatus.PENDING.value):
        return Step(state)  # not waiting for it
    if result.status == AttemptStatus.PENDING:
        if att.status == IN_FLIGHT:
            att.status = AttemptStatus.PENDING.value
        return Step(state)
    att.status = result.status.value
    att.failure_kind = result.failure_kind.value
    att.fee_fen = result.fee_fen
    att.channel_txn_id = result.channel_txn_id
    att.reason = f"{result.channel_code} {result.channel_message}".strip()
    step = Step(state)
    if result.status == AttemptStatus.FAILED:
        # the reservation made at routing time is released: no money moved
        step.usage.append(UsageDelta(att.channel_id, att.day, -att.amount_fen))
        if result.failure_kind == FailureKind.CHANNEL:
            _failover(state, step, att, usage, now_ms, planner, origin)
    if _all_parts_final(state):
        done = _finish(state, now_ms, origin)
        step.outcomes.extend(done.outcomes)
    return step


def _allow_split(planner: Planner, business_line: str) -> bool:
    return bool(getattr(planner, "allow_split", lambda _b: False)(business_line))


def _launch(state: OrderState, step: Step, routed: Routed, part: int, now_ms: int, origin: str) -> None:
    no = len(state.attempts) + 1
    att = AttemptState(attempt_id(state.command["order_id"], no), no, part, routed.channel_id, routed.bank_code,
                       routed.amount_fen, routed.day, expected_fee_fen=routed.fee_fen, origin=origin)
    state.attempts.append(att)
    # Reserve the amount on the card's daily usage now: the next command of this card (same
    # partition, processed after this one) must see it, whatever the channel answers later.
    step.usage.append(UsageDelta(routed.channel_id, routed.day, routed.amount_fen))
    step.attempts.append(_attempt_record(state, att, now_ms, routed.decision))


def _attempt_record(state: OrderState, att: AttemptState, now_ms: int, decision: str) -> Attempt:
    cmd = state.command
    return Attempt(
        attempt_id=att.attempt_id, order_id=cmd["order_id"], attempt_no=att.attempt_no,
        business_line=cmd["business_line"], operation=cmd["operation"], card_token=cmd["card_token"],
        bank_code=att.bank_code, card_type=cmd["card_type"], channel_id=att.channel_id,
        amount_fen=att.amount_fen, expected_fee_fen=att.expected_fee_fen, created_at_ms=now_ms, decision=decision)


def replay(state: OrderState, origin: str, now_ms: int) -> Step | None:
    """The same input event again (a worker died after saving the state, before its offset was
    committed): send again what that event produced; sending an attempt twice is safe, channels
    are idempotent on attempt_id. Usage deltas are not applied twice."""
    if not origin:
        return None
    launched = [a for a in state.attempts if a.origin == origin]
    if not launched and state.outcome_origin != origin:
        return None
    step = Step(state, attempts=[_attempt_record(state, a, now_ms, "") for a in launched])
    if state.outcome is not None and state.outcome_origin == origin:
        step.outcomes.append(Outcome.from_avro(state.outcome))
    return step


def _failover(state: OrderState, step: Step, failed: AttemptState, usage: CardUsage, now_ms: int,
              planner: Planner, origin: str) -> None:
    cmd = state.cmd
    max_attempts, deadline_ms = planner.policy(cmd.business_line)
    part_attempts = [a for a in state.attempts if a.part == failed.part]
    if len(part_attempts) >= max_attempts or now_ms >= cmd.requested_at_ms + deadline_ms:
        return
    tried = frozenset(a.channel_id for a in part_attempts)
    for d in step.usage:  # the released reservation is not yet in `usage`
        usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
    plan = planner.plan(cmd, failed.amount_fen, len(state.attempts) + 1, tried, usage, now_ms, False)
    if isinstance(plan, NoRoute) or not plan:
        return
    _launch(state, step, plan[0], failed.part, now_ms, origin)


def _part_final(attempts: list[AttemptState]) -> bool:
    last = attempts[-1]
    return last.status in (AttemptStatus.SUCCESS.value, AttemptStatus.FAILED.value)


def _parts(state: OrderState) -> dict[int, list[AttemptState]]:
    parts: dict[int, list[AttemptState]] = {}
    for a in state.attempts:
        parts.setdefault(a.part, []).append(a)
    return parts


def _all_parts_final(state: OrderState) -> bool:
    return all(_part_final(atts) for atts in _parts(state).values())


def _finish(state: OrderState, now_ms: int, origin: str, reject: NoRoute | None = None) -> Step:
    cmd = state.command
    last_of_parts = [atts[-1] for atts in _parts(state).values()]
    ok = [a for a in last_of_parts if a.status == AttemptStatus.SUCCESS.value]
    if reject is not None:
        status, code, reason = OutcomeStatus.REJECTED, reject.reason_code, reject.reason
    elif len(ok) == len(last_of_parts):
        status, code, reason = OutcomeStatus.SUCCEEDED, "", ""
    elif ok:
        status, code, reason = OutcomeStatus.PARTIAL, "PARTIAL", _partial_reason(last_of_parts)
    else:
        last = last_of_parts[-1]
        status, code = OutcomeStatus.FAILED, last.failure_kind
        reason = last.reason
    outcome = Outcome(
        order_id=cmd["order_id"], business_line=cmd["business_line"], operation=Operation(cmd["operation"]),
        card_token=cmd["card_token"], status=status, amount_fen=cmd["amount_fen"],
        succeeded_amount_fen=sum(a.amount_fen for a in ok), fee_fen=sum(a.fee_fen for a in ok),
        attempts=len(state.attempts), reason_code=code, reason=reason,
        parts=[OutcomePart(attempt_id=a.attempt_id, channel_id=a.channel_id, bank_code=a.bank_code,
                           amount_fen=a.amount_fen, fee_fen=a.fee_fen, status=AttemptStatus(a.status),
                           channel_txn_id=a.channel_txn_id) for a in last_of_parts],
        requested_at_ms=cmd["requested_at_ms"], decided_at_ms=now_ms)
    state.outcome = outcome.to_avro()
    state.outcome_origin = origin
    step = Step(state, outcomes=[outcome])
    for _ in range(state.duplicates_waiting):
        step.outcomes.append(_duplicate_of(state, now_ms))
    state.duplicates_waiting = 0
    return step


def _partial_reason(parts: list[AttemptState]) -> str:
    failed = [a for a in parts if a.status != AttemptStatus.SUCCESS.value]
    return "; ".join(f"{a.attempt_id} on {a.channel_id} failed ({a.reason}) for {a.amount_fen} fen" for a in failed)


def _duplicate_of(state: OrderState, now_ms: int) -> Outcome:
    state.duplicates_answered += 1
    first = Outcome.from_avro(state.outcome)
    return first.model_copy(update={"duplicate": True, "decided_at_ms": now_ms})


def _answer_duplicate(state: OrderState, now_ms: int) -> Step:
    if state.outcome is None:
        state.duplicates_waiting += 1  # answered when the first one is decided
        return Step(state)
    return Step(state, outcomes=[_duplicate_of(state, now_ms)])
