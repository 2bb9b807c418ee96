"""The simulator's books: every attempt it accepted, and the ledger of final entries.

Pure state, no HTTP: the server asks it questions and records answers. Pending attempts resolve
lazily: `settle(now)` books every attempt whose resolve time has passed, with `booked_at_ms` set
to that resolve time (not to when someone looked), so the books do not depend on polling.
"""
from __future__ import annotations

import datetime
import hashlib
import heapq
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from schemas import codes
from schemas.records import AttemptStatus, CardType, Operation


@dataclass(frozen=True)
class LedgerEntry:
    attempt_id: str
    order_id: str
    card_token: str
    operation: Operation
    bank_code: str
    amount_fen: int
    fee_fen: int
    status: AttemptStatus  # SUCCESS (money moved) or FAILED (nothing moved)
    code: str
    txn_id: str
    booked_at_ms: int
    auth_elements: int = 0  # AUTHENTICATE: the card elements verified (4 or 6)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AttemptRecord:
    attempt_id: str
    order_id: str
    card_token: str
    bank_code: str
    card_type: CardType
    operation: Operation
    amount_fen: int
    fee_fen: int  # charged only if the attempt succeeds
    txn_id: str
    final_code: str
    received_at_ms: int
    resolve_at_ms: int  # == received_at_ms unless first answered P001
    requests: int = 1
    booked: bool = False
    auth_elements: int = 0  # AUTHENTICATE: the elements verified (4 or 6)

    def code_at(self, now: int) -> str:
        return codes.PROCESSING if now < self.resolve_at_ms else self.final_code


@dataclass(frozen=True)
class Discrepancy:
    """Planted for reconciliation tests: how the statement should lie about an attempt.

    Each field left at None keeps the true value. Together with `Books.extra_lines` (an entry the
    channel lists but paycenter never sent) this produces every discrepancy kind reconciliation
    types: missing on either side, status (incl. success-not-credited and the reverse), amount, fee.
    """

    credited: bool | None = None  # False: listed as SUCCESS but the money never arrived
    omit: bool = False  # missing from the statement altogether
    status: AttemptStatus | None = None  # the statement reports this status instead of the booked one
    amount_fen: int | None = None  # ... this amount
    fee_fen: int | None = None  # ... this fee

    def __post_init__(self) -> None:
        if self.credited is not None and not isinstance(self.credited, bool):
            raise TypeError(f"credited must be true, false or null, got {self.credited!r}")
        for name in ("amount_fen", "fee_fen"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise TypeError(f"{name} must be a non-negative integer (fen), got {value!r}")
        if self.status is not None:
            object.__setattr__(self, "status", AttemptStatus(self.status))
            if self.status is AttemptStatus.PENDING:
                raise TypeError("a statement lists final entries only: status must be SUCCESS or FAILED")


@dataclass
class Books:
    channel_id: str
    seed: int
    timezone: str
    attempts: dict[str, AttemptRecord] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    discrepancies: dict[str, Discrepancy] = field(default_factory=dict)
    # Statement lines for attempts paycenter never sent (planted: "missing on our side").
    extra_lines: dict[str, dict[str, Any]] = field(default_factory=dict)  # by attempt id
    # Indexes so each request costs O(log n) / O(attempts of that card), not O(all attempts).
    _unbooked: list[tuple[int, str]] = field(default_factory=list)  # heap of (resolve_at_ms, attempt_id)
    _by_card: dict[tuple[str, Operation], list[AttemptRecord]] = field(default_factory=dict)

    def txn_id(self, attempt_id: str) -> str:
        digest = hashlib.sha256(f"{self.channel_id}:{self.seed}:{attempt_id}".encode()).hexdigest()
        return f"{self.channel_id}-{digest[:20]}"

    def day_of(self, ms: int) -> datetime.date:
        return datetime.datetime.fromtimestamp(ms / 1000, ZoneInfo(self.timezone)).date()

    def add(self, record: AttemptRecord, now: int) -> None:
        self.attempts[record.attempt_id] = record
        self._by_card.setdefault((record.card_token, record.operation), []).append(record)
        heapq.heappush(self._unbooked, (record.resolve_at_ms, record.attempt_id))
        self.settle(now)

    def resolve(self, attempt_id: str, final_code: str, now: int) -> AttemptRecord | None:
        """A held attempt becomes final now (a debit whose SMS code was confirmed, or refused)."""
        rec = self.attempts.get(attempt_id)
        if rec is None or rec.booked:
            return None
        rec.final_code, rec.resolve_at_ms = final_code, now
        heapq.heappush(self._unbooked, (now, attempt_id))
        self.settle(now)
        return rec

    def settle(self, now: int) -> None:
        """Book every attempt that has become final (idempotent: each attempt is booked once)."""
        while self._unbooked and self._unbooked[0][0] <= now:
            _, attempt_id = heapq.heappop(self._unbooked)
            rec = self.attempts[attempt_id]
            if not rec.booked:
                rec.booked = True
                self.entries.append(self._entry(rec))

    def _entry(self, rec: AttemptRecord) -> LedgerEntry:
        ok = rec.final_code == codes.SUCCESS
        return LedgerEntry(
            attempt_id=rec.attempt_id,
            order_id=rec.order_id,
            card_token=rec.card_token,
            operation=rec.operation,
            bank_code=rec.bank_code,
            amount_fen=rec.amount_fen,
            fee_fen=rec.fee_fen if ok else 0,
            status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAILED,
            code=rec.final_code,
            txn_id=rec.txn_id,
            booked_at_ms=rec.resolve_at_ms,
            auth_elements=rec.auth_elements,
        )

    def daily_used_fen(self, card_token: str, operation: Operation, day: datetime.date, now: int) -> int:
        """Amount counted against the card's daily limit: successes plus still-pending attempts
        (a pending attempt reserves its amount; it is released if it ends FAILED)."""
        total = 0
        for rec in self._by_card.get((card_token, operation), []):
            if self.day_of(rec.received_at_ms) != day:
                continue
            if rec.code_at(now) in (codes.SUCCESS, codes.PROCESSING):
                total += rec.amount_fen
        return total

    def statement(self, day: datetime.date) -> list[dict[str, Any]]:
        lines = []
        for e in self.entries:
            if self.day_of(e.booked_at_ms) != day:
                continue
            planted = self.discrepancies.get(e.attempt_id, Discrepancy())
            if planted.omit:
                continue
            status = planted.status or e.status
            credited = status is AttemptStatus.SUCCESS if planted.credited is None else planted.credited
            lines.append(
                {
                    "attempt_id": e.attempt_id,
                    "txn_id": e.txn_id,
                    "operation": e.operation.value,
                    "bank_code": e.bank_code,
                    "amount_fen": e.amount_fen if planted.amount_fen is None else planted.amount_fen,
                    "fee_fen": e.fee_fen if planted.fee_fen is None else planted.fee_fen,
                    "status": status.value,
                    "credited": credited,
                    "booked_at_ms": e.booked_at_ms,
                }
            )
        lines.extend(line for line in self.extra_lines.values() if self.day_of(line["booked_at_ms"]) == day)
        return lines

    def add_extra_line(self, attempt_id: str, amount_fen: int, now: int, status: AttemptStatus = AttemptStatus.SUCCESS,
                       fee_fen: int = 0, bank_code: str = "ICBC", operation: Operation = Operation.PAY_IN,
                       booked_at_ms: int | None = None) -> dict[str, Any]:
        """Plant a statement line for an attempt the channel never received from paycenter."""
        if attempt_id in self.attempts:
            raise ValueError(f"attempt {attempt_id} is real; plant a discrepancy on it instead of an extra line")
        for name, value in (("amount_fen", amount_fen), ("fee_fen", fee_fen)):
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a non-negative integer (fen), got {value!r}")
        status = AttemptStatus(status)
        if status is AttemptStatus.PENDING:
            raise ValueError("a statement lists final entries only: status must be SUCCESS or FAILED")
        line = {"attempt_id": attempt_id, "txn_id": self.txn_id(attempt_id), "operation": Operation(operation).value,
                "bank_code": bank_code, "amount_fen": amount_fen, "fee_fen": fee_fen, "status": status.value,
                "credited": status is AttemptStatus.SUCCESS, "booked_at_ms": now if booked_at_ms is None else booked_at_ms}
        self.extra_lines.pop(attempt_id, None)  # a re-planted line goes last, as a new one
        self.extra_lines[attempt_id] = line
        return line

    def add_many_lines(self, prefix: str, count: int, amount_fen: int, fee_fen: int, booked_at_ms: int) -> int:
        """Plant `count` successful lines `<prefix><n>.1` (n = 0..count-1) booked at `booked_at_ms`: a
        channel's full day for load tests, each line as add_extra_line would plant it."""
        if type(count) is not int or not 0 < count <= 5_000_000:
            raise ValueError(f"count must be an integer from 1 to 5,000,000, got {count!r}")
        for name, value in (("amount_fen", amount_fen), ("fee_fen", fee_fen), ("booked_at_ms", booked_at_ms)):
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        base = {"operation": Operation.PAY_IN.value, "bank_code": "ICBC", "amount_fen": amount_fen, "fee_fen": fee_fen,
                "status": AttemptStatus.SUCCESS.value, "credited": True, "booked_at_ms": booked_at_ms}
        for n in range(count):
            attempt_id = f"{prefix}{n}.1"
            if attempt_id in self.attempts:
                raise ValueError(f"attempt {attempt_id} is real; choose another prefix")
            self.extra_lines[attempt_id] = {"attempt_id": attempt_id, "txn_id": self.txn_id(attempt_id), **base}
        return count
