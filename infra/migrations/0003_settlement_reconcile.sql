-- Settlement records (streams/settlement.py) and T+1 reconciliation (paycenter reconcile).
-- docs/accounting.md documents them. All three are ReplacingMergeTree on a deterministic id, so a
-- replayed record or a re-run reconciliation replaces rows instead of adding them; read them with
-- argMax(..., version) / GROUP BY id (or FINAL with filters on the key columns only).
CREATE TABLE IF NOT EXISTS settlements
(
    record_id         String   COMMENT 'stl:<attempt_id>: one per money movement',
    order_id          String,
    attempt_id        String   COMMENT 'the id the channel books and lists on its statement',
    business_line     String,
    operation         String   COMMENT 'PAY_IN | PAYOUT | AUTHENTICATE',
    funder            String   COMMENT 'co-lending funder; empty: own money of the company',
    channel_id        String,
    channel_txn_id    String,
    bank_code         String,
    currency          String,
    amount_fen        Int64    COMMENT 'principal moved, fen',
    fee_fen           Int64    COMMENT 'channel fee, fen (not split)',
    status            String   COMMENT 'SUCCESS',
    order_status      String   COMMENT 'SUCCEEDED | PARTIAL',
    requested_at      DateTime COMMENT 'when the business line asked (UTC)',
    decided_at_ms     UInt64   COMMENT 'when the outcome was decided (epoch ms); the version',
    split_parties     Array(String) COMMENT 'split settlement: who receives...',
    split_share_ppm   Array(UInt32) COMMENT '... at which configured share (ppm) ...',
    split_amounts_fen Array(Int64)  COMMENT '... how many fen (adds up to amount_fen); empty arrays: no split',
    inserted_at       DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(decided_at_ms)
PARTITION BY toYYYYMM(requested_at)
ORDER BY record_id;

CREATE TABLE IF NOT EXISTS reconcile_discrepancies
(
    discrepancy_id     String  COMMENT 'dsc:<channel>:<attempt>:<kind>',
    kind               String  COMMENT 'MISSING_OURS | MISSING_CHANNEL | STATUS_MISMATCH | AMOUNT_MISMATCH | FEE_MISMATCH',
    status_case        String  COMMENT 'for STATUS_MISMATCH: CHANNEL_SUCCESS_NOT_CREDITED, CHANNEL_FAILED_BUT_CREDITED, OURS_<s>_CHANNEL_<s>',
    channel_id         String,
    statement_date     Date    COMMENT 'the statement day whose run declared it',
    first_seen_date    Date    COMMENT 'the statement day it was first unmatched',
    attempt_id         String,
    order_id           String,
    business_line      String,
    ours_status        String,
    channel_status     String,
    channel_credited   Int8    COMMENT '1 credited, 0 not, -1 no statement line',
    ours_amount_fen    Nullable(Int64),
    channel_amount_fen Nullable(Int64),
    ours_fee_fen       Nullable(Int64),
    channel_fee_fen    Nullable(Int64),
    channel_txn_id     String,
    detail             String,
    found_at_ms        UInt64  COMMENT 'when the run found it; the version'
)
ENGINE = ReplacingMergeTree(found_at_ms)
ORDER BY discrepancy_id;

CREATE TABLE IF NOT EXISTS reconcile_buffer
(
    channel_id String,
    side       String COMMENT 'OURS: a journal success waiting for its statement line; CHANNEL: a line waiting for its journal entry',
    attempt_id String,
    first_seen Date   COMMENT 'statement day it was first unmatched; re-checked by the run of the next day, then declared',
    state      String COMMENT 'WAITING | DONE (matched or declared)',
    payload    String COMMENT 'JSON of the waiting statement line or journal entry',
    version    UInt64 COMMENT 'epoch ms of the run that wrote the row; the latest row of a key counts'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (channel_id, side, attempt_id);

CREATE TABLE IF NOT EXISTS reconcile_runs
(
    channel_id     String,
    statement_date Date,
    lines          UInt32 COMMENT 'lines on the statement',
    journal        UInt32 COMMENT 'our entries of the day',
    matched        UInt32,
    discrepancies  UInt32,
    waiting        UInt32 COMMENT 'newly buffered',
    finished_at_ms UInt64
)
ENGINE = ReplacingMergeTree(finished_at_ms)
ORDER BY (channel_id, statement_date);
