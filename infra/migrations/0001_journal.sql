-- The journal: one wide row per event of the payment flow (command, attempt, result, outcome,
-- dead letter), written by sinks/journal.py from the rows of sinks/rows.py.
--
-- Idempotency: event_id is deterministic (see sinks/rows.py), so a replayed Kafka message yields
-- the same (event_type, event_id) sorting key; ReplacingMergeTree collapses the copies on merge,
-- and reports read with FINAL (or count uniqExact(event_id)) so a replay never counts twice.
-- The version column is event_time_ms: identical copies keep the last inserted one.
-- Partitions are per UTC day of the event (event_time is derived from the event, never from the
-- insert time, so copies of one event always land in the same partition and can be merged).
--
-- Must run on ClickHouse 18.16 (Debian's) and on current releases: no DateTime64, no
-- LowCardinality (experimental in 18.x), column comments are fine.
CREATE TABLE IF NOT EXISTS journal
(
    event_id       String   COMMENT 'deterministic id: cmd:<order>, att:<attempt>, res:<attempt>:<status>, out:<order>[:dup:<n>], dlq:<topic>:<partition>:<offset>',
    event_type     String   COMMENT 'command | attempt | result | outcome | deadletter',
    event_time     DateTime COMMENT 'when the event happened (UTC, seconds): command requested, attempt created, result finished, outcome decided, letter failed',
    event_time_ms  UInt64   COMMENT 'the same instant in epoch milliseconds; also the ReplacingMergeTree version',
    order_id       String   COMMENT 'the upstream order id (empty for a dead letter that could not be parsed)',
    attempt_id     String   COMMENT 'order_id.attempt_no for attempt and result rows, empty otherwise',
    attempt_no     UInt16   COMMENT '1-based attempt number; for outcome rows the number of attempts made',
    business_line  String   COMMENT 'upstream business line that sent the order',
    operation      String   COMMENT 'PAY_IN | PAYOUT | AUTHENTICATE',
    card_token     String   COMMENT 'HMAC token of the card; never a card number',
    bank_code      String   COMMENT 'issuing bank code',
    card_type      String   COMMENT 'DEBIT | CREDIT (empty where the record does not carry it)',
    channel_id     String   COMMENT 'payment channel of the attempt/result; for outcomes the channels of the parts, comma-separated',
    amount_fen     Int64    COMMENT 'amount in fen as ordered/attempted (all row types)',
    succeeded_fen  Int64    COMMENT 'amount in fen that succeeded: result rows with SUCCESS, outcome rows; 0 otherwise',
    fee_fen        Int64    COMMENT 'fee in fen: expected (attempt), charged (result, outcome)',
    status         String   COMMENT 'SUCCESS | FAILED | PENDING (result), SUCCEEDED | FAILED | REJECTED | PARTIAL (outcome)',
    failure_kind   String   COMMENT 'NONE | CHANNEL | CUSTOMER for results',
    reason_code    String   COMMENT 'channel code (result), reason code (outcome, dead letter)',
    reason         String   COMMENT 'human-readable reason or channel message',
    latency_ms     UInt32   COMMENT 'channel call latency (result rows)',
    channel_txn_id String   COMMENT 'the channel transaction id when it gave one',
    duplicate      UInt8    COMMENT '1 for an outcome answering a repeated order_id',
    detail         String   COMMENT 'JSON with the rest of the record, e.g. the routing decision explanation',
    inserted_at    DateTime DEFAULT now() COMMENT 'when the sink wrote the row (differs between replayed copies)'
)
ENGINE = ReplacingMergeTree(event_time_ms)
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_type, event_id);
