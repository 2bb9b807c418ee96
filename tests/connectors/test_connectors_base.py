from __future__ import annotations

import pytest

from connectors.base import ChannelRequest, ChannelResponse
from schemas.records import AttemptStatus, CardType, FailureKind, Operation


@pytest.mark.parametrize("amount", [100.0, True, "100"])
def test_request_amount_must_be_int_fen(amount: object) -> None:
    with pytest.raises(TypeError, match="int fen"):
        ChannelRequest("o.1", "o", Operation.PAY_IN, "tok", "ICBC", CardType.DEBIT, amount)  # type: ignore[arg-type]


def test_pending_helper() -> None:
    r = ChannelResponse.pending("TIMEOUT", "no answer")
    assert (r.status, r.failure_kind, r.fee_fen, r.is_final) == (AttemptStatus.PENDING, FailureKind.NONE, 0, False)
    assert ChannelResponse(AttemptStatus.FAILED, FailureKind.CHANNEL, "E201", "").is_final
