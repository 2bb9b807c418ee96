"""The health monitor's vocabulary: states, reasons, per-channel policy, the transition events it
publishes on `channel.health`, and the per-channel-bank view routers rebuild from those events.
Split from processors/health/monitor.py (the monitor itself) so each module keeps one responsibility."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.codec import codec

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
STATE_VERSION = 1

Key = tuple[str, str]  # (channel_id, bank_code)


class HealthState(StrEnum):
    NORMAL = "NORMAL"
    DEMOTED = "DEMOTED"  # routers must avoid it
    PROBATION = "PROBATION"  # routable again, but a new trip escalates the next demotion


class HealthReason(StrEnum):
    CONSECUTIVE_FAILURES = "CONSECUTIVE_FAILURES"
    CONSECUTIVE_PENDING = "CONSECUTIVE_PENDING"
    RESTORE_TIMER = "RESTORE_TIMER"
    PROBATION_PASSED = "PROBATION_PASSED"
    OPERATOR_DEMOTE = "OPERATOR_DEMOTE"
    OPERATOR_RESTORE = "OPERATOR_RESTORE"
    OPERATOR_DISABLE = "OPERATOR_DISABLE"  # DEMOTED until restored, and routers never use it
    EARLY_RESTORE_PROBES_OK = "EARLY_RESTORE_PROBES_OK"  # DEMOTED -> PROBATION before the timer: probes succeed
    PROBES_FAILING = "PROBES_FAILING"  # the demotion ended but its probes still fail: DEMOTED again


class RestoreReason(StrEnum):
    """Why a demoted channel-bank was routed again (HealthEvent.restore_reason)."""

    EARLY_RESTORE_PROBES_OK = "EARLY_RESTORE_PROBES_OK"
    TIMER = "TIMER"
    OPERATOR = "OPERATOR"


class HealthPolicy(BaseModel):
    """Thresholds and timings for one channel (or the default for every channel)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(20, ge=1, description="consecutive channel-side failures that trip")
    pending_threshold: int = Field(800, ge=1, description="consecutive PENDING results that trip")
    demotion_ms: int = Field(30 * MINUTE_MS, gt=0, description="first demotion's length")
    escalation_factor: float = Field(2.0, ge=1.0, description="each trip in probation multiplies the length")
    max_demotion_ms: int = Field(4 * HOUR_MS, gt=0, description="cap on an automatic demotion's length")
    probation_ms: int = Field(
        30 * MINUTE_MS, ge=0, description="after a restore: this long without a trip returns it to NORMAL"
    )
    probation_pass_successes: int | None = Field(
        None, ge=1, description="if set: this many successes in probation also return it to NORMAL early"
    )
    dedupe_window: int = Field(64, ge=0, description="recent (attempt_id, status) remembered per channel-bank")
    probe_window: int = Field(20, ge=1, description="probe results (attempts sent while DEMOTED) judged together")
    early_restore_max_failures: int | None = Field(
        1, ge=0, description="a full probe window with at most this many channel-side failures restores early"
        " (None: only the timer or an operator restores)")
    redemote_min_probes: int = Field(5, ge=1, description="probes needed to judge a demotion at its end")
    redemote_failure_share: float = Field(
        0.5, gt=0.0, le=1.0, description="at the demotion's end, probes failing this share or more demote again")

    @model_validator(mode="after")
    def _cap(self):
        if self.max_demotion_ms < self.demotion_ms:
            raise ValueError("max_demotion_ms must be at least demotion_ms")
        return self

    def demotion_for_level(self, level: int) -> int:
        """Length of an automatic demotion at escalation `level` (1 = first): demotion_ms *
        factor^(level-1), capped at max_demotion_ms."""
        if level <= 1 or self.escalation_factor == 1.0:
            return min(self.demotion_ms, self.max_demotion_ms)
        length = float(self.demotion_ms)
        for _ in range(level - 1):  # ends early: each step multiplies by >1 until the cap
            length *= self.escalation_factor
            if length >= self.max_demotion_ms:
                return self.max_demotion_ms
        return int(round(length))


class HealthEvent(BaseModel):
    """One transition of one channel-bank. Carries the state *after* the transition, so the latest
    event of a key (what the compacted `channel.health` topic keeps) is a complete view."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel_id: str
    bank_code: str
    seq: int = Field(ge=1, description="per channel-bank transition number; views ignore seq <= theirs")
    from_state: HealthState
    to_state: HealthState
    reason_code: HealthReason
    reason: str = ""
    consecutive_failures: int
    consecutive_pending: int
    at_ms: int
    demoted_at_ms: int | None = Field(None, description="while DEMOTED: when this demotion began")
    demoted_until_ms: int | None = Field(None, description="None while DEMOTED = until an operator restores")
    demotion_level: int
    probation_until_ms: int | None = None
    restore_reason: RestoreReason | None = Field(None, description="set when a DEMOTED channel-bank is routed again")

    @property
    def key(self) -> str:
        """The `channel.health` topic key."""
        return f"{self.channel_id}:{self.bank_code}"

    @property
    def is_alert(self) -> bool:
        """Worth a `pay.alerts` message: the channel-bank left service, or an operator acted."""
        return self.to_state == HealthState.DEMOTED or self.reason_code == HealthReason.OPERATOR_RESTORE

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HealthEvent":
        return cls.model_validate(dict(data))

    def encode(self) -> bytes:
        """Avro single-object encoding (schemas/avro/health_event.avsc), the channel.health value."""
        return codec("health_event").encode(self.to_dict())

    @classmethod
    def decode(cls, payload: bytes) -> "HealthEvent":
        """Raises schemas.codec.DecodeError (a ValueError) on bytes that are not a health event."""
        return cls.from_dict(codec("health_event").decode(payload))


class Avoided(frozenset):
    """The channel-banks routers avoid (every element), and among them the `disabled` ones, which
    get no traffic at all; the others are demoted: still probed by exploration, and a last resort."""

    __slots__ = ("disabled",)
    disabled: frozenset[Key]

    def __new__(cls, demoted: Iterable[Key] = (), disabled: Iterable[Key] = ()) -> "Avoided":
        disabled = frozenset(disabled)
        avoided = super().__new__(cls, frozenset(demoted) | disabled)
        avoided.disabled = disabled
        return avoided


@dataclass(slots=True)
class ChannelBankHealth:
    """The health of one channel-bank. The monitor keeps one per key; a router can keep its own,
    built from `channel.health` events alone with `apply_event`."""

    channel_id: str
    bank_code: str
    state: HealthState = HealthState.NORMAL
    consecutive_failures: int = 0
    consecutive_pending: int = 0
    demotion_level: int = 0  # 0 in NORMAL; n = the n-th demotion in a row without a clean probation
    demoted_at_ms: int | None = None
    demoted_until_ms: int | None = None  # None while DEMOTED = indefinite (operator)
    probation_until_ms: int | None = None
    probation_successes: int = 0
    last_reason_code: HealthReason | None = None
    last_reason: str = ""
    updated_at_ms: int | None = None
    seq: int = 0
    probes: str = ""  # results of attempts sent while DEMOTED, oldest first: "1" success, "0" channel failure
    last_restore_reason: RestoreReason | None = None
    # the runs in event time (processors/health/runs.py); monitor-side only, not on events
    failure_times: list[int] = field(default_factory=list)
    last_success_ms: int | None = None
    last_final_ms: int | None = None
    pending_from_ms: int | None = None

    @property
    def key(self) -> Key:
        return (self.channel_id, self.bank_code)

    def is_demoted(self, now_ms: int) -> bool:
        """Must routers avoid it at `now_ms`? A timed demotion ends at demoted_until_ms exactly, even
        if the RESTORE_TIMER event has not been produced yet."""
        if self.state != HealthState.DEMOTED:
            return False
        return self.demoted_until_ms is None or now_ms < self.demoted_until_ms

    @property
    def is_disabled(self) -> bool:
        """Disabled by an operator: no traffic at all (a demotion still gets probes and last resorts)."""
        return self.state == HealthState.DEMOTED and self.last_reason_code == HealthReason.OPERATOR_DISABLE

    def apply_event(self, event: HealthEvent) -> bool:
        """Bring this view up to `event`; returns False (and changes nothing) for an event of another
        key or one already applied (seq not newer), so replays and duplicates are harmless."""
        if (event.channel_id, event.bank_code) != self.key or event.seq <= self.seq:
            return False
        self.state = event.to_state
        self.consecutive_failures = event.consecutive_failures
        self.consecutive_pending = event.consecutive_pending
        self.demotion_level = event.demotion_level
        self.demoted_at_ms = event.demoted_at_ms
        self.demoted_until_ms = event.demoted_until_ms
        self.probation_until_ms = event.probation_until_ms
        if event.to_state != HealthState.PROBATION or event.from_state != HealthState.PROBATION:
            self.probation_successes = 0
        self.last_reason_code = event.reason_code
        self.last_reason = event.reason
        if event.restore_reason is not None:
            self.last_restore_reason = event.restore_reason
        self.updated_at_ms = event.at_ms
        self.seq = event.seq
        return True

    @classmethod
    def from_events(cls, channel_id: str, bank_code: str, events: Iterable[HealthEvent]) -> "ChannelBankHealth":
        view = cls(channel_id, bank_code)
        for event in events:
            view.apply_event(event)
        return view

    def to_dict(self) -> dict:
        return {
            "channel_id": self.channel_id,
            "bank_code": self.bank_code,
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_pending": self.consecutive_pending,
            "demotion_level": self.demotion_level,
            "demoted_at_ms": self.demoted_at_ms,
            "demoted_until_ms": self.demoted_until_ms,
            "probation_until_ms": self.probation_until_ms,
            "probation_successes": self.probation_successes,
            "last_reason_code": None if self.last_reason_code is None else self.last_reason_code.value,
            "last_reason": self.last_reason,
            "updated_at_ms": self.updated_at_ms,
            "seq": self.seq,
            "probes": self.probes,
            "last_restore_reason": None if self.last_restore_reason is None else self.last_restore_reason.value,
            "failure_times": list(self.failure_times),
            "last_success_ms": self.last_success_ms,
            "last_final_ms": self.last_final_ms,
            "pending_from_ms": self.pending_from_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ChannelBankHealth":
        reason = data.get("last_reason_code")
        health = cls(
            channel_id=str(data["channel_id"]),
            bank_code=str(data["bank_code"]),
            state=HealthState(data.get("state", HealthState.NORMAL)),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            consecutive_pending=int(data.get("consecutive_pending", 0)),
            demotion_level=int(data.get("demotion_level", 0)),
            demoted_at_ms=_opt_int(data.get("demoted_at_ms")),
            demoted_until_ms=_opt_int(data.get("demoted_until_ms")),
            probation_until_ms=_opt_int(data.get("probation_until_ms")),
            probation_successes=int(data.get("probation_successes", 0)),
            last_reason_code=None if reason is None else HealthReason(reason),
            last_reason=str(data.get("last_reason", "")),
            updated_at_ms=_opt_int(data.get("updated_at_ms")),
            seq=int(data.get("seq", 0)),
            probes=str(data.get("probes", "")),
            last_restore_reason=None if data.get("last_restore_reason") is None
            else RestoreReason(data["last_restore_reason"]),
            failure_times=sorted(int(t) for t in data.get("failure_times", ())),
            last_success_ms=_opt_int(data.get("last_success_ms")),
            last_final_ms=_opt_int(data.get("last_final_ms")),
            pending_from_ms=_opt_int(data.get("pending_from_ms")),
        )
        if health.consecutive_failures < 0 or health.consecutive_pending < 0 or health.demotion_level < 0:
            raise ValueError(f"negative count in health state of {health.key}")
        if health.state == HealthState.PROBATION and health.probation_until_ms is None:
            raise ValueError(f"PROBATION without probation_until_ms for {health.key}")
        return health


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
