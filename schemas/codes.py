"""The channels' protocol codes and what each means for the order.

They live with the records because both sides read them: the connectors map a channel's answer to a
code, the domain logic (health, scoring) decides by the code.

The failure kind decides what the router may do next:
* CUSTOMER - the card/customer is the problem; another channel would fail the same way (or, for a
  card reported lost, must not be tried at all). Never retried elsewhere.
* CHANNEL - this channel could not do it; another channel may, and nothing moved here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from schemas.records import AttemptStatus, FailureKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodeMeaning:
    status: AttemptStatus
    failure_kind: FailureKind
    description: str


def _ok(d: str) -> CodeMeaning:
    return CodeMeaning(AttemptStatus.SUCCESS, FailureKind.NONE, d)


def _pending(d: str) -> CodeMeaning:
    return CodeMeaning(AttemptStatus.PENDING, FailureKind.NONE, d)


def _customer(d: str) -> CodeMeaning:
    return CodeMeaning(AttemptStatus.FAILED, FailureKind.CUSTOMER, d)


def _channel(d: str) -> CodeMeaning:
    return CodeMeaning(AttemptStatus.FAILED, FailureKind.CHANNEL, d)


SUCCESS = "0000"
PROCESSING = "P001"
INSUFFICIENT_BALANCE = "E101"
CARD_FROZEN = "E102"
INVALID_CARD = "E103"
CARD_LIMIT = "E104"
# element verification (AUTHENTICATE, signing): which element the issuing bank's record disagrees with
NAME_MISMATCH = "E111"
ID_MISMATCH = "E112"
PHONE_MISMATCH = "E113"
CVV2_MISMATCH = "E114"
EXPIRY_MISMATCH = "E115"
BANK_BUSY = "E201"
CHANNEL_LIMIT = "E202"
BANK_NOT_SUPPORTED = "E203"
MAINTENANCE = "E204"
BAD_REQUEST = "E400"
BAD_SIGNATURE = "E401"
UNKNOWN_ATTEMPT = "E404"
CONFLICT = "E409"
INTERNAL_ERROR = "E500"
UNAVAILABLE = "E503"

CODES: dict[str, CodeMeaning] = {
    SUCCESS: _ok("success"),
    PROCESSING: _pending("processing; final result later (query the status)"),
    INSUFFICIENT_BALANCE: _customer("insufficient balance"),
    CARD_FROZEN: _customer("card frozen or reported lost"),
    INVALID_CARD: _customer("invalid card or card information mismatch"),
    CARD_LIMIT: _customer("exceeds the card's limit at the issuing bank"),
    # the customer entered an element the bank has otherwise: another channel would say the same
    NAME_MISMATCH: _customer("holder's name does not match the bank's record"),
    ID_MISMATCH: _customer("ID number does not match the bank's record"),
    PHONE_MISMATCH: _customer("phone number does not match the one the bank has"),
    CVV2_MISMATCH: _customer("CVV2 does not match"),
    EXPIRY_MISMATCH: _customer("expiry date does not match"),
    BANK_BUSY: _channel("bank system busy"),
    CHANNEL_LIMIT: _channel("channel limit exceeded (per payment or per card per day)"),
    BANK_NOT_SUPPORTED: _channel("bank not supported by the channel"),
    MAINTENANCE: _channel("under maintenance"),
    # E400/E401: the channel refused the request before processing it, so nothing was booked.
    BAD_REQUEST: _channel("malformed request rejected by the channel"),
    BAD_SIGNATURE: _channel("request signature rejected by the channel"),
    # Query only. The channel has no trace of the attempt, so nothing moved there. Callers should
    # only query after the original call has returned (a request still in flight is not booked yet).
    UNKNOWN_ATTEMPT: _channel("unknown attempt: the channel never booked it"),
    # The attempt_id exists at the channel with other details (a bug on our side). The original
    # attempt may well have moved money, so only its status query can tell.
    CONFLICT: _pending("attempt_id already used with different details; query its status"),
    INTERNAL_ERROR: _channel("channel internal error"),
    UNAVAILABLE: _channel("service unavailable (outage)"),
}


# Local code, never sent by a channel: the executor's bulkhead for the channel-bank was full
# (streams/calls/bulkhead.py), so the request was NOT sent. FAILED/CHANNEL: the router may fail over at
# no risk. Not evidence about the channel (our capacity, not its health): the health monitor and
# the routing scores skip it.
CHANNEL_BUSY = "CHANNEL_BUSY"

# Local code, never sent by a channel: calls of this channel-bank timed out (3 in a row) and the executor lets
# one probe call at a time through until a call is answered in time (streams/calls/bulkhead.py); the
# request was NOT sent. FAILED/CHANNEL: the router fails over at no risk. Unlike CHANNEL_BUSY it is
# about the channel-bank: the health monitor counts it as the PENDING result the call would have
# become (so a hung channel-bank still trips the pending rule); the routing scores skip it.
CHANNEL_HUNG = "CHANNEL_HUNG"

# Local code, never sent by a channel: the executor has no connector for the attempt's channel (a
# configuration it has not read yet); the request was NOT sent. FAILED/CHANNEL: the router fails over.
NO_CONNECTOR = "NO_CONNECTOR"

# Local code, never sent by a channel: PENDING for an attempt the executor would have answered "not sent"
# but cannot, because another executor had it before (a crash, a handover) and may have sent it. Only
# the channel's books can tell: the attempt is resolved by a status query, like any PENDING one. Not
# evidence about the channel-bank: the health monitor skips it.
MAYBE_SENT = "MAYBE_SENT"

# "Not sent" is final only if no later executor sends the attempt: streams/calls/refusals.py keeps them.
NOT_SENT = frozenset({CHANNEL_BUSY, CHANNEL_HUNG, NO_CONNECTOR})

# Local codes of the transport (connectors/http.py), never sent by a channel: no answer in the
# channel's timeout and a connection lost mid-request leave the outcome unknown (PENDING, resolved
# by a status query); a refused connection sent nothing (FAILED/CHANNEL).
TIMEOUT, NETWORK, CONNECT = "TIMEOUT", "NETWORK", "CONNECT"


def classify(code: str) -> CodeMeaning:
    """Map a channel code to a standard outcome.

    An unknown code is *not* treated as a failure. The request reached the channel, which may
    have moved money before replying with a code we do not know. Calling that FAILED would let
    the router retry on another channel and could charge the customer twice. PENDING is the safe
    answer; the executor resolves it with a status query (and reconciliation catches the rest).
    """
    meaning = CODES.get(code)
    if meaning is None:
        log.warning("unknown channel code %r: treating the attempt as PENDING until queried", code)
        return _pending(f"unknown channel code {code!r}")
    return meaning
