"""An attempt's call to its channel, as the executor and the signer make it: the request built from
the attempt, the result published for it, the answers given without calling (nothing was sent, so
the router may fail over), and polling a PENDING attempt until it is final."""
from __future__ import annotations

import asyncio

from connectors.base import Channel, ChannelRequest, ChannelResponse
from processors.orders.state import auth_elements
from schemas import codes
from schemas.records import Attempt, AttemptResult, AttemptStatus, FailureKind, Operation


def to_request(att: Attempt) -> ChannelRequest:
    # an AUTHENTICATE attempt written before the field existed reads 0: the channel gets the card type's count
    elements = (auth_elements(att.auth_elements, att.card_type.value)
                if att.operation == Operation.AUTHENTICATE else 0)
    return ChannelRequest(attempt_id=att.attempt_id, order_id=att.order_id, operation=att.operation,
                          card_token=att.card_token, bank_code=att.bank_code, card_type=att.card_type,
                          amount_fen=att.amount_fen, auth_elements=elements)


def to_result(att: Attempt, resp: ChannelResponse, started_ms: int, finished_ms: int) -> AttemptResult:
    return AttemptResult(
        attempt_id=att.attempt_id, order_id=att.order_id, attempt_no=att.attempt_no,
        business_line=att.business_line, operation=att.operation, card_token=att.card_token,
        bank_code=att.bank_code, channel_id=att.channel_id, amount_fen=att.amount_fen, status=resp.status,
        failure_kind=resp.failure_kind, channel_code=resp.channel_code, channel_message=resp.message,
        channel_txn_id=resp.channel_txn_id, fee_fen=resp.fee_fen,
        latency_ms=max(0, min(finished_ms - started_ms, 2**31 - 1)), started_at_ms=started_ms,
        finished_at_ms=finished_ms)


def not_sent(code: str, message: str) -> ChannelResponse:
    # Nothing was sent, so this is a safe channel-side failure: the router may fail over.
    return ChannelResponse(status=AttemptStatus.FAILED, failure_kind=FailureKind.CHANNEL, channel_code=code,
                           message=message, channel_txn_id=None, fee_fen=0)


def channel_hung(att: Attempt) -> ChannelResponse:
    return not_sent(codes.CHANNEL_HUNG, f"not sent: calls to {att.channel_id}/{att.bank_code} timed out; one probe "
                                        "call at a time goes through until one is answered in time")


def maybe_sent(refusal: ChannelResponse) -> ChannelResponse:
    """A refusal for an attempt another executor had before (a crash, a handover): it may have sent
    it, so "not sent" would be a guess; the channel's books tell, through a status query."""
    return ChannelResponse.pending(codes.MAYBE_SENT, f"outcome unknown: {refusal.channel_code} here, but the "
                                                     "executor before this one may have sent it; asked at the channel")


def unknown_channel(att: Attempt) -> ChannelResponse:
    return not_sent(codes.NO_CONNECTOR, f"no connector for channel {att.channel_id!r}; add it to the routing config")


async def resolve_pending(channel: Channel, attempt_id: str, deadline_s: float,
                          first_delay_s: float = 0.2, max_delay_s: float = 5.0) -> ChannelResponse | None:
    """Ask the channel until the attempt is final; None if still pending at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    delay = first_delay_s
    while loop.time() + delay <= end:
        await asyncio.sleep(delay)  # polling interval towards an external system, not a test wait
        resp = await channel.query_status(attempt_id)
        if resp.status != AttemptStatus.PENDING:
            return resp
        delay = min(delay * 2, max_delay_s)
    return None


def channel_busy(att: Attempt, limit: int, stall_s: float) -> ChannelResponse:
    return not_sent(codes.CHANNEL_BUSY, f"not sent: {att.channel_id}/{att.bank_code} is full in this executor "
                                        f"({limit} calls in flight, {limit} waiting, the oldest for over {stall_s:g} s); "
                                        "PAYCENTER_CHANNEL_CONCURRENCY sets the limit")
