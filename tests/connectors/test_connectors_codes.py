from __future__ import annotations

import logging

import pytest

from schemas import codes
from schemas.records import AttemptStatus, FailureKind

S, F, P = AttemptStatus.SUCCESS, AttemptStatus.FAILED, AttemptStatus.PENDING
NONE, CHANNEL, CUSTOMER = FailureKind.NONE, FailureKind.CHANNEL, FailureKind.CUSTOMER

EXPECTED = {
    "0000": (S, NONE),
    "P001": (P, NONE),
    "E101": (F, CUSTOMER),
    "E102": (F, CUSTOMER),
    "E103": (F, CUSTOMER),
    "E104": (F, CUSTOMER),
    "E111": (F, CUSTOMER),
    "E112": (F, CUSTOMER),
    "E113": (F, CUSTOMER),
    "E114": (F, CUSTOMER),
    "E115": (F, CUSTOMER),
    "E201": (F, CHANNEL),
    "E202": (F, CHANNEL),
    "E203": (F, CHANNEL),
    "E204": (F, CHANNEL),
    "E400": (F, CHANNEL),
    "E401": (F, CHANNEL),
    "E404": (F, CHANNEL),
    "E409": (P, NONE),
    "E500": (F, CHANNEL),
    "E503": (F, CHANNEL),
}


@pytest.mark.parametrize("code,expected", sorted(EXPECTED.items()))
def test_code_maps_to_standard_outcome(code: str, expected: tuple[AttemptStatus, FailureKind]) -> None:
    meaning = codes.classify(code)
    assert (meaning.status, meaning.failure_kind) == expected
    assert meaning.description


def test_table_is_fully_covered() -> None:
    assert set(codes.CODES) == set(EXPECTED)


@pytest.mark.parametrize("code", ["E999", "", "0001", "e101", "SUCCESS"])
def test_unknown_code_is_pending_and_warned(code: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="schemas.codes"):
        meaning = codes.classify(code)
    assert (meaning.status, meaning.failure_kind) == (P, NONE)
    assert any("unknown channel code" in r.getMessage() for r in caplog.records)
