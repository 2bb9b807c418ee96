"""Typed records for every topic (pydantic), mirroring the Avro schemas in schemas/avro.

`to_avro()` gives the dict fastavro writes; `from_avro()` validates what fastavro read. Money is
integer fen everywhere; times are epoch milliseconds.
"""
from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.codec import codec


class Operation(StrEnum):
    PAY_IN = "PAY_IN"
    PAYOUT = "PAYOUT"
    AUTHENTICATE = "AUTHENTICATE"


class AuthStep(StrEnum):
    """What an AUTHENTICATE command asks for (PAY_IN/PAYOUT keep VERIFY, the default).
    UNKNOWN is what a newer, unknown step decodes to (the Avro enum default): it is rejected."""

    UNKNOWN = "UNKNOWN"
    VERIFY = "VERIFY"  # 4/6-element verification through an authentication channel
    BIND = "BIND"  # bind the card: protocol-payment signing preferred (the channel sends an SMS code)
    CONFIRM = "CONFIRM"  # confirm a BIND's signing with the SMS code


class CardType(StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class AttemptStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PENDING = "PENDING"


class FailureKind(StrEnum):
    NONE = "NONE"
    CHANNEL = "CHANNEL"  # channel-side: another channel may succeed
    CUSTOMER = "CUSTOMER"  # customer-side: retrying elsewhere would fail too, or worse, charge


class OutcomeStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    PARTIAL = "PARTIAL"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, use_enum_values=False)
    schema_name: ClassVar[str]

    def to_avro(self) -> dict:
        return self.model_dump(mode="json")

    def encode(self) -> bytes:
        return codec(self.schema_name).encode(self.to_avro())

    @classmethod
    def from_avro(cls, data: dict):
        return cls.model_validate(data)

    @classmethod
    def decode(cls, payload: bytes):
        return cls.from_avro(codec(cls.schema_name).decode(payload))


class PaymentCommand(Record):
    schema_name: ClassVar[str] = "payment_command"
    order_id: str = Field(min_length=1, max_length=64)
    business_line: str
    operation: Operation
    amount_fen: int
    currency: str = "CNY"
    card_token: str = Field(min_length=1)
    bank_code: str
    card_type: CardType
    user_present: bool = False
    funder: str | None = None
    requested_at_ms: int
    metadata: dict[str, str] = Field(default_factory=dict)
    auth_step: AuthStep = AuthStep.VERIFY
    auth_elements: int = 0  # 4 or 6; 0 = by card type (DEBIT 4, CREDIT 6)
    sign_order_id: str | None = None  # CONFIRM: the BIND order whose SMS code this confirms
    sms_code: str | None = Field(None, repr=False)  # CONFIRM only; kept out of logs and the journal

    def to_avro(self) -> dict:
        # Same dict as model_dump(mode="json") (tests/schemas/test_records_fast.py checks it), built
        # directly: every routed command stores it in the order state, and the generic serializer
        # was ~5 % of a command's domain cost. Fields are str/int/bool/None, three enums, one map.
        d = self.__dict__.copy()
        # _value_, not .value: the same str, read without the enum property (3 per command)
        d["operation"] = self.operation._value_
        d["card_type"] = self.card_type._value_
        d["auth_step"] = self.auth_step._value_
        d["metadata"] = dict(self.metadata)  # a copy, like model_dump: the state must not share it
        return d


class Attempt(Record):
    schema_name: ClassVar[str] = "attempt"
    attempt_id: str
    order_id: str
    attempt_no: int
    business_line: str
    operation: Operation
    card_token: str
    bank_code: str
    card_type: CardType
    channel_id: str
    amount_fen: int
    expected_fee_fen: int
    created_at_ms: int
    decision: str = ""
    auth_elements: int = 0  # AUTHENTICATE: 4 or 6 elements to verify; 0 for payments

    def to_avro(self) -> dict:
        # Same dict as model_dump(mode="json") (checked by tests/schemas/test_records_fast.py), built
        # directly: one per routed attempt, and the generic serializer took 3x as long.
        d = self.__dict__.copy()
        d["operation"] = self.operation._value_  # _value_: see PaymentCommand.to_avro
        d["card_type"] = self.card_type._value_
        return d


class AttemptResult(Record):
    schema_name: ClassVar[str] = "attempt_result"
    attempt_id: str
    order_id: str
    attempt_no: int
    business_line: str
    operation: Operation
    card_token: str
    bank_code: str
    channel_id: str
    amount_fen: int
    status: AttemptStatus
    failure_kind: FailureKind
    channel_code: str
    channel_message: str = ""
    channel_txn_id: str | None = None
    fee_fen: int = 0
    latency_ms: int
    started_at_ms: int
    finished_at_ms: int


class OutcomePart(BaseModel):
    model_config = ConfigDict(frozen=True)
    attempt_id: str
    channel_id: str
    bank_code: str
    amount_fen: int
    fee_fen: int
    status: AttemptStatus
    channel_txn_id: str | None = None


class Outcome(Record):
    schema_name: ClassVar[str] = "outcome"
    order_id: str
    business_line: str
    operation: Operation
    card_token: str
    status: OutcomeStatus
    amount_fen: int
    succeeded_amount_fen: int
    fee_fen: int
    attempts: int
    reason_code: str = ""
    reason: str = ""
    parts: list[OutcomePart] = Field(default_factory=list)
    duplicate: bool = False
    order_id_reused: bool = False  # the rejection of another payment under this order_id (duplicate too)
    requested_at_ms: int
    decided_at_ms: int


class DeadLetter(Record):
    schema_name: ClassVar[str] = "dead_letter"
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None = None
    payload: bytes | None = None
    reason_code: str
    reason: str
    order_id: str | None = None
    failed_at_ms: int

    def to_avro(self) -> dict:
        # bytes must stay bytes for fastavro (json mode would base64 them)
        return self.model_dump(mode="python")


# -- health: pay.alerts and health.commands; channel.health carries processors.health.monitor.HealthEvent --


class AlertSeverity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class Alert(Record):
    schema_name: ClassVar[str] = "alert"
    alert_id: str
    kind: str
    severity: AlertSeverity
    subject: str
    channel_id: str | None = None
    bank_code: str | None = None
    business_line: str | None = None
    what: str
    reason: str = ""
    counts: dict[str, int] = Field(default_factory=dict)
    at_ms: int


class HealthAction(StrEnum):
    DEMOTE = "DEMOTE"
    RESTORE = "RESTORE"
    TICK = "TICK"
    CLOCK = "CLOCK"
    DISABLE = "DISABLE"  # no traffic at all, not even exploration, until RESTORE


class HealthCommand(Record):
    schema_name: ClassVar[str] = "health_command"
    command_id: str
    action: HealthAction
    channel_id: str = ""
    bank_code: str = ""
    reason: str = ""
    duration_ms: int | None = None
    clock_offset_ms: int | None = None
    operator: str = ""
    issued_at_ms: int


# ---- settlement and reconciliation (docs/accounting.md) ------------------------------------------

class SettlementStatus(StrEnum):
    SUCCESS = "SUCCESS"


class SettlementSplit(BaseModel):
    model_config = ConfigDict(frozen=True)
    party: str
    share_ppm: int
    amount_fen: int


class SettlementRecord(Record):
    schema_name: ClassVar[str] = "settlement_record"
    record_id: str
    order_id: str
    attempt_id: str
    business_line: str
    operation: Operation
    funder: str | None = None
    channel_id: str
    channel_txn_id: str | None = None
    bank_code: str
    currency: str = "CNY"
    amount_fen: int
    fee_fen: int
    status: SettlementStatus = SettlementStatus.SUCCESS
    order_status: OutcomeStatus
    requested_at_ms: int
    decided_at_ms: int
    splits: list[SettlementSplit] = Field(default_factory=list)


class DiscrepancyKind(StrEnum):
    MISSING_OURS = "MISSING_OURS"  # on the channel's statement, not in our journal
    MISSING_CHANNEL = "MISSING_CHANNEL"  # a success in our journal, not on the statement
    STATUS_MISMATCH = "STATUS_MISMATCH"  # see Discrepancy.status_case
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    FEE_MISMATCH = "FEE_MISMATCH"


class Discrepancy(Record):
    schema_name: ClassVar[str] = "discrepancy"
    discrepancy_id: str
    kind: DiscrepancyKind
    status_case: str = ""
    channel_id: str
    statement_date: str
    attempt_id: str
    order_id: str
    business_line: str = ""
    ours_status: str = ""
    channel_status: str = ""
    channel_credited: bool | None = None
    ours_amount_fen: int | None = None
    channel_amount_fen: int | None = None
    ours_fee_fen: int | None = None
    channel_fee_fen: int | None = None
    channel_txn_id: str | None = None
    first_seen_date: str
    detail: str = ""
    found_at_ms: int
