-- Report rollups: success rate, latency, volume and failure reasons per business line, channel and
-- channel-bank, per minute / hour / day. docs/analytics.md documents them with example queries.
--
-- Why not a plain aggregating materialized view on the journal: an MV sees every INSERT, replays
-- included (the journal sink is at-least-once; an executor restarted after a crash publishes the same
-- result again), and no state that adds up (sum, count, quantiles) can tell a copy from a new row,
-- while the states that can (uniqExact) keep every event id and cost as much to read as the journal.
-- So the work is split in two:
--   * the materialized view `rollup_dirty_mv` records, on every insert, WHICH minutes received rows
--     (max of now(): idempotent, a replay only marks a minute again);
--   * sinks/rollups.py refreshes those minutes: it recomputes them from the journal with every event
--     id counted once (the copy with the latest event_time_ms, as the journal's ReplacingMergeTree
--     keeps it) and writes complete rows for the minute under a new `version`; hours and days are
--     recomputed from their minutes. A period counts only under its latest version in `rollup_runs`,
--     so a refresh replaces, never adds: running it twice, or after a replay, changes nothing.
-- Reads need no FINAL: filter `(period, version) IN (latest versions from rollup_runs)`.
-- Periods are UTC. Rows are written by sinks/rollups.py only.
CREATE TABLE IF NOT EXISTS rollup_dirty
(
    minute     DateTime COMMENT 'a minute (UTC, event time) that received result or outcome rows',
    touched_at DateTime COMMENT 'server time of the latest insert into that minute'
)
ENGINE = ReplacingMergeTree(touched_at)
PARTITION BY toYYYYMM(minute)
ORDER BY minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_dirty_mv TO rollup_dirty AS
SELECT toStartOfMinute(event_time) AS minute, max(now()) AS touched_at
FROM journal
WHERE event_type IN ('result', 'outcome')
GROUP BY minute;

CREATE TABLE IF NOT EXISTS rollup_runs
(
    grain       String   COMMENT 'minute | hour | day',
    period      DateTime COMMENT 'start of the period (UTC)',
    version     UInt64   COMMENT 'the refresh that computed the period (nanoseconds); the latest one counts',
    computed_at DateTime COMMENT 'server time when that refresh started reading the journal'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY grain
ORDER BY (grain, period);

CREATE TABLE IF NOT EXISTS rollup_attempts
(
    grain             String   COMMENT 'minute | hour | day',
    period            DateTime COMMENT 'start of the period (UTC)',
    version           UInt64   COMMENT 'refresh version; count a row only if (period, version) is the latest in rollup_runs',
    business_line     String,
    operation         String   COMMENT 'PAY_IN | PAYOUT | AUTHENTICATE',
    channel_id        String,
    bank_code         String,
    first_attempt     UInt8    COMMENT '1: attempt_no = 1 (the first choice of the router), 0: a failover attempt',
    results           UInt64   COMMENT 'final results (SUCCESS + FAILED): the per-attempt denominator',
    successes         UInt64   COMMENT 'SUCCESS results',
    channel_failures  UInt64   COMMENT 'FAILED with failure_kind CHANNEL (another channel may succeed)',
    customer_failures UInt64   COMMENT 'FAILED with failure_kind CUSTOMER (balance, frozen card...)',
    pendings          UInt64   COMMENT 'PENDING answers (not in results; the final result later is)',
    amount_fen        Int64    COMMENT 'amount of the final results, fen',
    succeeded_fen     Int64    COMMENT 'amount moved by SUCCESS results, fen',
    fee_fen           Int64    COMMENT 'fees charged, fen',
    latency_ms_sum    UInt64   COMMENT 'sum of channel call latency of final results (avg = latency_ms_sum / results)',
    latency_ms        AggregateFunction(quantilesTiming(0.5, 0.95, 0.99), UInt32) COMMENT 'latency quantile state: quantilesTimingMerge(0.5, 0.95, 0.99)(latency_ms)'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY (grain, toYYYYMM(period))
ORDER BY (grain, period, business_line, channel_id, bank_code, operation, first_attempt);

CREATE TABLE IF NOT EXISTS rollup_payments
(
    grain         String   COMMENT 'minute | hour | day',
    period        DateTime COMMENT 'start of the period (UTC), by the decision time of the outcome',
    version       UInt64   COMMENT 'refresh version (see rollup_runs)',
    business_line String,
    operation     String,
    channel_id    String   COMMENT 'channels of the parts, comma-separated; empty when no channel was tried',
    bank_code     String   COMMENT 'bank of the first part; empty when no channel was tried',
    payments      UInt64   COMMENT 'orders decided (repeated order ids excluded): the per-payment denominator',
    succeeded     UInt64,
    partial       UInt64,
    failed        UInt64,
    rejected      UInt64   COMMENT 'invalid, or no channel could take it; nothing was charged',
    amount_fen    Int64    COMMENT 'amount ordered, fen',
    succeeded_fen Int64    COMMENT 'amount moved, fen',
    fee_fen       Int64,
    attempts      UInt64   COMMENT 'attempts made for these orders'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY (grain, toYYYYMM(period))
ORDER BY (grain, period, business_line, channel_id, bank_code, operation);

CREATE TABLE IF NOT EXISTS rollup_failures
(
    grain         String   COMMENT 'minute | hour | day',
    period        DateTime COMMENT 'start of the period (UTC)',
    version       UInt64   COMMENT 'refresh version (see rollup_runs)',
    source        String   COMMENT 'attempt (a FAILED result) | payment (a FAILED, REJECTED or PARTIAL outcome)',
    business_line String,
    channel_id    String,
    bank_code     String,
    failure_kind  String   COMMENT 'CHANNEL | CUSTOMER for attempts; the outcome status for payments',
    reason_code   String   COMMENT 'code of the channel (attempt) or reason code of paycenter (payment)',
    failures      UInt64,
    amount_fen    Int64,
    sample_reason String   COMMENT 'one of the messages that came with that code'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY (grain, toYYYYMM(period))
ORDER BY (grain, period, source, business_line, channel_id, bank_code, failure_kind, reason_code);
