"""The order state machine: from a command and the channels' answers to exactly one outcome.

Pure: the streams layer feeds it commands and attempt results, stores the returned state in a
changelog-backed table keyed by order_id, and carries out the returned effects (produce an attempt,
an outcome, a dead letter; move the card's used-today amounts). Rules a payments engineer expects:

* a repeated order_id is answered with the first outcome (duplicate=True), never executed again;
  the order_id reused for another payment is refused, ORDER_ID_REUSED (processors/orders/reuse.py);
* a result for an attempt the order is not waiting for (a replay) changes nothing;
* a CHANNEL failure is retried on another channel within the business line's attempts and deadline;
  a CUSTOMER failure ends the part (another channel would fail too, or charge twice);
* a PENDING attempt is never re-routed: the money may have moved; the order waits for its result;
* a split order's outcome waits for every part: all succeeded → SUCCEEDED, none → FAILED, else PARTIAL;
* protocol-payment signing (BIND's SMS request, CONFIRM, a user-present debit that signs on the
  way: the channel holds it PENDING until a CONFIRM brings the SMS code) is executed by the signer role, not the executor: those attempts come out in `Step.signing`;
  a confirmed signing comes out as an agreement for the card × channel (`Step.agreements`);
* every payment attempt's final answer is evidence about its channel-bank's success rate (a
  failover lands on another channel-bank, which answers on its own merits): those results come out
  in `Step.observed`; the statistics decide what counts (customer-side failures do not).
"""
from __future__ import annotations

from typing import Callable

from processors.orders import reuse as order_reuse
from processors.orders.state import (
    IN_FLIGHT,
    PAY,
    SIGN_AND_PAY,
    SIGN_CONFIRM,
    SIGN_REQUEST,
    AgreementSigned,
    AttemptState,
    DeadLetterReason,
    NoRoute,
    OrderState,
    Planner,
    Routed,
    Settled,
    SigningTask,
    Step,
    UsageDelta,
    apply_delta,
    attempt_id,
    auth_elements,
)
from processors.routing.limits import CardUsage
from processors.routing.validation import clear_card_number_field, without_card_numbers
from schemas.records import (
    Attempt,
    AttemptResult,
    AttemptStatus,
    AuthStep,
    FailureKind,
    Operation,
    Outcome,
    OutcomePart,
    OutcomeStatus,
    PaymentCommand,
)


def on_command(state: OrderState | None, cmd: PaymentCommand, usage: CardUsage, now_ms: int,
               planner: Planner, origin: str = "", agreements: frozenset[str] = frozenset(),
               lookup: Callable[[str], OrderState | None] | None = None, window_ms: int | None = None) -> Step:
    """`agreements`: channels the card has signed; `lookup`: the order table (CONFIRM finds its BIND);
    `window_ms`: the duplicate-detection window (decided orders are kept that long: expires_at)."""
    if state is not None:
        replayed = replay(state, origin, now_ms)
        if replayed is not None:
            return replayed
        return order_reuse.check(state, cmd, now_ms) or _answer_duplicate(state, now_ms)
    leaked = clear_card_number_field(cmd)
    if leaked is not None:
        # nothing of the number is kept: not in the state (changelog), the outcome or the dead letter
        state = OrderState(command=without_card_numbers(cmd).to_avro())
        reason = (f"{leaked} holds what looks like a card number in clear; publish the card's token "
                  "(processors.pan.tokenize), never the number. The command was not processed and its "
                  "payload was not kept; send it again with a new order_id")
        step = _finish(state, now_ms, origin, reject=NoRoute("CARD_NUMBER_IN_CLEAR", reason))
        step.dead_letter = DeadLetterReason("CARD_NUMBER_IN_CLEAR", reason)
        return step
    state = OrderState(command=cmd.to_avro())
    if window_ms is not None and cmd.requested_at_ms + window_ms < now_ms:
        # its first decision, if any, may have been forgotten already: executing it could charge twice
        reason = (f"requested at {cmd.requested_at_ms}, more than the duplicate-detection window "
                  f"({window_ms // 3_600_000} h) ago: a repeat of an order that old can no longer be recognised, so "
                  "it is not executed; publish a new order_id if the payment is still wanted")
        step = _finish(state, now_ms, origin, reject=NoRoute("STALE_COMMAND", reason))
        step.dead_letter = DeadLetterReason("STALE_COMMAND", reason)
        return step
    rejection = planner.validate(cmd)
    if rejection is not None:
        step = _finish(state, now_ms, origin, reject=rejection)
        step.dead_letter = DeadLetterReason(rejection.reason_code, rejection.reason)
        return step
    if cmd.operation == Operation.AUTHENTICATE and (cmd.auth_step == AuthStep.CONFIRM or cmd.sign_order_id):
        bind = lookup(cmd.sign_order_id) if lookup is not None and cmd.sign_order_id else None
        plan: list[Routed] | NoRoute | Settled = planner.confirm(cmd, bind, now_ms)
    else:
        plan = planner.plan(cmd, cmd.amount_fen, 1, frozenset(), usage, now_ms,
                            _allow_split(planner, cmd.business_line), agreements=agreements)
    if isinstance(plan, NoRoute):
        return _finish(state, now_ms, origin, reject=plan)
    if isinstance(plan, Settled):
        return _finish(state, now_ms, origin, note=plan)
    step = Step(state)
    for part, routed in enumerate(plan):
        _launch(state, step, routed, part, now_ms, origin)
    return step


def on_result(state: OrderState | None, result: AttemptResult, usage: CardUsage, now_ms: int,
              planner: Planner, origin: str = "", agreements: frozenset[str] = frozenset()) -> Step:
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
        # a debit that signs on the way waits for the customer's SMS code: the CONFIRM needs its reference
        att.channel_txn_id = att.channel_txn_id or result.channel_txn_id
        return Step(state)
    att.status = result.status.value
    att.failure_kind = result.failure_kind.value
    att.fee_fen = result.fee_fen
    att.channel_txn_id = result.channel_txn_id
    att.reason = f"{result.channel_code} {result.channel_message}".strip()
    step = Step(state)
    if att.kind == PAY and result.operation != Operation.AUTHENTICATE:
        step.observed.append(result)
        step.first_of_part.append(_is_first_of_part(state, att))
    if result.status == AttemptStatus.SUCCESS and att.kind in (SIGN_CONFIRM, SIGN_AND_PAY):
        step.agreements.append(AgreementSigned(att.channel_id, result.finished_at_ms,
                                               result.channel_txn_id or "", state.command["order_id"]))
    if result.status == AttemptStatus.FAILED:
        # the reservation made at routing time is released: no money moved
        if att.amount_fen:
            step.usage.append(UsageDelta(att.channel_id, att.day, -att.amount_fen))
        # a confirmation belongs to the channel that sent the code: no other channel can take it
        if result.failure_kind == FailureKind.CHANNEL and att.kind != SIGN_CONFIRM:
            _failover(state, step, att, usage, now_ms, planner, origin, agreements)
    if _all_parts_final(state):
        done = _finish(state, now_ms, origin)
        step.outcomes.extend(done.outcomes)
    return step


def _never_split(_business_line: str) -> bool:
    return False


def _allow_split(planner: Planner, business_line: str) -> bool:
    # a module-level default, not a lambda made on every command
    return bool(getattr(planner, "allow_split", _never_split)(business_line))


def _is_first_of_part(state: OrderState, att: AttemptState) -> bool:
    return next(a for a in state.attempts if a.part == att.part) is att


def _launch(state: OrderState, step: Step, routed: Routed, part: int, now_ms: int, origin: str) -> None:
    no = len(state.attempts) + 1
    att = AttemptState(attempt_id(state.command["order_id"], no), no, part, routed.channel_id, routed.bank_code,
                       routed.amount_fen, routed.day, expected_fee_fen=routed.fee_fen, origin=origin,
                       kind=routed.kind, sign_ref=routed.sign_ref)
    state.attempts.append(att)
    # Reserve the amount on the card's daily usage now: the next command of this card (same
    # partition, processed after this one) must see it, whatever the channel answers later.
    if routed.amount_fen:
        step.usage.append(UsageDelta(routed.channel_id, routed.day, routed.amount_fen))
    _emit(state, step, att, now_ms, routed.decision)


def _emit(state: OrderState, step: Step, att: AttemptState, now_ms: int, decision: str) -> None:
    record = _attempt_record(state, att, now_ms, decision)
    if att.kind == PAY:
        step.attempts.append(record)
        return
    cmd = state.command
    step.signing.append(SigningTask(record, att.kind, att.sign_ref,
                                    cmd.get("sms_code") if att.kind == SIGN_CONFIRM else None,
                                    cmd.get("auth_elements", 0)))


def _attempt_record(state: OrderState, att: AttemptState, now_ms: int, decision: str) -> Attempt:
    cmd = state.command
    # the channel verifies what the business line asked for (a debit card may be asked for 6)
    elements = (auth_elements(cmd.get("auth_elements", 0), cmd["card_type"])
                if cmd["operation"] == Operation.AUTHENTICATE.value else 0)
    return Attempt(
        attempt_id=att.attempt_id, order_id=cmd["order_id"], attempt_no=att.attempt_no,
        business_line=cmd["business_line"], operation=cmd["operation"], card_token=cmd["card_token"],
        bank_code=att.bank_code, card_type=cmd["card_type"], channel_id=att.channel_id,
        amount_fen=att.amount_fen, expected_fee_fen=att.expected_fee_fen, created_at_ms=now_ms, decision=decision,
        auth_elements=elements)


def replay(state: OrderState, origin: str, now_ms: int) -> Step | None:
    """The same input event again (a worker died after saving the state, before its offset was
    committed): send again what that event produced; sending an attempt twice is safe, channels
    are idempotent on attempt_id. Usage deltas are not applied twice."""
    if not origin:
        return None
    launched = [a for a in state.attempts if a.origin == origin]
    if not launched and state.outcome_origin != origin:
        return None
    step = Step(state)
    for a in launched:
        _emit(state, step, a, now_ms, "")
    if state.outcome is not None and state.outcome_origin == origin:
        step.outcomes.append(Outcome.from_avro(state.outcome))
    return step


def _failover(state: OrderState, step: Step, failed: AttemptState, usage: CardUsage, now_ms: int,
              planner: Planner, origin: str, agreements: frozenset[str]) -> None:
    cmd = state.cmd
    max_attempts, deadline_ms = planner.policy(cmd.business_line)
    part_attempts = [a for a in state.attempts if a.part == failed.part]
    if len(part_attempts) >= max_attempts or now_ms >= cmd.requested_at_ms + deadline_ms:
        return
    tried = frozenset(a.channel_id for a in part_attempts)
    for d in step.usage:  # the released reservation is not yet in `usage`
        usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
    plan = planner.plan(cmd, failed.amount_fen, len(state.attempts) + 1, tried, usage, now_ms, False,
                        agreements=agreements)
    if not isinstance(plan, list) or not plan:
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


def _finish(state: OrderState, now_ms: int, origin: str, reject: NoRoute | None = None,
            note: Settled | None = None) -> Step:
    cmd = state.command
    last_of_parts = [atts[-1] for atts in _parts(state).values()]
    ok = [a for a in last_of_parts if a.status == AttemptStatus.SUCCESS.value]
    if reject is not None:
        status, code, reason = OutcomeStatus.REJECTED, reject.reason_code, reject.reason
    elif note is not None:
        status, code, reason = OutcomeStatus.SUCCEEDED, note.reason_code, note.reason
    elif len(ok) == len(last_of_parts):
        status, (code, reason) = OutcomeStatus.SUCCEEDED, _success_note(state, ok)
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


def _success_note(state: OrderState, ok: list[AttemptState]) -> tuple[str, str]:
    """What a success means when it is not a plain payment (binding steps tell what comes next)."""
    cmd, kinds = state.command, {a.kind for a in ok}
    if SIGN_REQUEST in kinds:
        ch = ok[0].channel_id
        return ("SMS_SENT", f"{ch} sent the customer an SMS code: publish AUTHENTICATE with auth_step CONFIRM, "
                            f"sign_order_id {cmd['order_id']} and the code to finish signing")
    if SIGN_CONFIRM in kinds:
        return "SIGNED", f"card signed a protocol-payment agreement with {ok[0].channel_id}"
    if ok and cmd.get("auth_step") == AuthStep.BIND.value:
        return ("VERIFIED", f"no protocol-payment channel could sign this card now: bound by element "
                            f"verification through {ok[0].channel_id}")
    signed = sorted({a.channel_id for a in ok if a.kind == SIGN_AND_PAY})
    if signed:
        return "", f"signed a protocol-payment agreement with {', '.join(signed)} on the way"
    return "", ""


def _partial_reason(parts: list[AttemptState]) -> str:
    failed = [a for a in parts if a.status != AttemptStatus.SUCCESS.value]
    return "; ".join(f"{a.attempt_id} on {a.channel_id} failed ({a.reason}) for {a.amount_fen} fen" for a in failed)


def _duplicate_of(state: OrderState, now_ms: int) -> Outcome:
    state.duplicates_answered += 1
    assert state.outcome is not None  # only a decided order answers duplicates
    first = Outcome.from_avro(state.outcome)
    return first.model_copy(update={"duplicate": True, "decided_at_ms": now_ms})


def _answer_duplicate(state: OrderState, now_ms: int) -> Step:
    if state.outcome is None:
        state.duplicates_waiting += 1  # answered when the first one is decided
        return Step(state)
    return Step(state, outcomes=[_duplicate_of(state, now_ms)])


def refuse_unheld(cmd: PaymentCommand, now_ms: int, origin: str, reason_code: str, reason: str) -> Step:
    """A REJECTED outcome and a dead letter for a command this router must not hold (e.g. it came
    on the wrong partition): nothing is kept (`state` None), so the same order_id sent again
    correctly is processed normally."""
    step = _finish(OrderState(command=without_card_numbers(cmd).to_avro()), now_ms, origin,
                   reject=NoRoute(reason_code, reason))
    step.state = None
    step.dead_letter = DeadLetterReason(reason_code, reason)
    return step
