"""Every address and knob paycenter uses, read from environment variables.

Defaults point at the embedded services that `make run` / the test session start on loopback;
production sets the variables to a real Kafka cluster and ClickHouse server, no code changes.
The table in docs/operators.md lists each variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# development secrets (channels', the cashier's) are allowed: the demo and the tests set it
DEV_SECRETS_FLAG = "PAYCENTER_ALLOW_DEV_SECRETS"

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    # Kafka: a librdkafka-style bootstrap list, "host:port[,host:port]".
    kafka_bootstrap: str = field(default_factory=lambda: _env("PAYCENTER_KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    # Prefix for every topic name, so several environments (or test sessions) share one cluster.
    topic_prefix: str = field(default_factory=lambda: _env("PAYCENTER_TOPIC_PREFIX", ""))
    clickhouse_host: str = field(default_factory=lambda: _env("PAYCENTER_CLICKHOUSE_HOST", "127.0.0.1"))
    clickhouse_port: int = field(default_factory=lambda: int(_env("PAYCENTER_CLICKHOUSE_PORT", "19000")))
    clickhouse_http_port: int = field(default_factory=lambda: int(_env("PAYCENTER_CLICKHOUSE_HTTP_PORT", "18123")))
    clickhouse_database: str = field(default_factory=lambda: _env("PAYCENTER_CLICKHOUSE_DATABASE", "paycenter"))
    clickhouse_user: str = field(default_factory=lambda: _env("PAYCENTER_CLICKHOUSE_USER", "default"))
    clickhouse_password: str = field(default_factory=lambda: _env("PAYCENTER_CLICKHOUSE_PASSWORD", ""))
    # What the embedded broker keeps its data on: "s3" (a local S3 server, infra/objectstore.py, files
    # under data_dir/s3: survives a crash or restart of the broker and of that server) or "memory"
    # (everything is gone when the broker stops). Not used when Kafka is a real cluster.
    broker_storage: str = field(default_factory=lambda: _env("PAYCENTER_BROKER_STORAGE", "memory"))
    # librdkafka debug contexts for paycenter's producers ("eos,msg": idempotence and delivery), or
    # empty; the output goes to each process's stderr.
    kafka_debug: str = field(default_factory=lambda: _env("PAYCENTER_KAFKA_DEBUG", ""))
    # Whether the broker's high watermarks are exact ("exact": a Kafka cluster) or not ("unreliable":
    # the embedded broker reports the last batch's base offset + 1, about 1 per partition on S3
    # storage). Lag is read from them: with "unreliable" it is shown as unknown (a lower bound).
    broker_watermarks: str = field(default_factory=lambda: _env("PAYCENTER_BROKER_WATERMARKS", "unreliable"))
    # Loopback port of the local S3 server (broker_storage=s3).
    s3_port: int = field(default_factory=lambda: int(_env("PAYCENTER_S3_PORT", "19900")))
    # Where the embedded broker / ClickHouse keep files, pids and logs (git-ignored).
    data_dir: Path = field(default_factory=lambda: Path(_env("PAYCENTER_DATA_DIR", str(REPO_ROOT / ".data"))))
    # Routing configuration (channels, banks, fees, limits) as YAML.
    routing_config: Path = field(
        default_factory=lambda: Path(_env("PAYCENTER_ROUTING_CONFIG", str(REPO_ROOT / "infra" / "routing.demo.yaml")))
    )
    # Calendar of the daily limits when a channel does not name its own.
    timezone: str = field(default_factory=lambda: _env("PAYCENTER_TIMEZONE", "Asia/Shanghai"))
    # Session timeout for consumer groups; Tansu makes a first join wait about half of it.
    session_timeout_s: float = field(default_factory=lambda: float(_env("PAYCENTER_SESSION_TIMEOUT_S", "6")))
    # How often a group member tells the coordinator it is alive; it also learns of a rebalance
    # only then. Kafka's rule of thumb: at most a third of the session timeout.
    heartbeat_interval_ms: int = field(default_factory=lambda: int(_env("PAYCENTER_HEARTBEAT_INTERVAL_MS", "1000")))
    # Group membership. "dynamic" (default): a worker that stops does not send LeaveGroup, its
    # partitions move when its session times out; the embedded broker wedges a group for good when
    # its leader leaves during a rebalance, and forgets to expire static members (docs/operators.md).
    # "dynamic-leave": LeaveGroup on stop, partitions move at once (Apache Kafka). "static":
    # group.instance.id (KIP-345), a restarted worker gets its partitions back (Apache Kafka).
    group_membership: str = field(default_factory=lambda: _env("PAYCENTER_GROUP_MEMBERSHIP", "dynamic"))
    # Duplicate-detection window: a decided order is kept (and a repeat of it answered with its first
    # outcome) this long after its decision; a command requested longer ago is refused as stale.
    dedup_window_s: int = field(default_factory=lambda: int(_env("PAYCENTER_DEDUP_WINDOW_S", "86400")))
    # Executor: how many channel calls may be in flight per worker, all channels together; as many
    # attempts again may wait for a slot, beyond that the worker stops consuming (back-pressure).
    executor_concurrency: int = field(default_factory=lambda: int(_env("PAYCENTER_EXECUTOR_CONCURRENCY", "200")))
    # Executor: calls in flight per channel-bank (a bulkhead: a hung channel-bank holds only these),
    # and as many may wait; keep it well under executor_concurrency (streams/executor.py).
    channel_concurrency: int = field(default_factory=lambda: int(_env("PAYCENTER_CHANNEL_CONCURRENCY", "16")))
    # Executor: how long a PENDING attempt is polled at the channel before it is reported as pending.
    pending_poll_deadline_s: float = field(default_factory=lambda: float(_env("PAYCENTER_PENDING_POLL_DEADLINE_S", "15")))
    # Longest a stream worker's fetch waits on an idle partition (latency vs idle polling).
    fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("PAYCENTER_FETCH_MAX_WAIT_MS", "50")))
    # The same for the payment path (router, executor): a command waits for two router fetches and
    # one executor fetch. 10 ms halved command->outcome p50 (75 -> 43 ms, bench/bench_hops.py) for
    # ~+5 % of a core of idle polling; 10 ms everywhere doubled the stack's idle CPU (22 -> 46 %).
    path_fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("PAYCENTER_PATH_FETCH_MAX_WAIT_MS", "10")))
    # The same for the sinks (journal, settlement), which write to ClickHouse in batches anyway: a
    # fetch is held this long unless a MiB is there (`sink_fetch_min_bytes`), so under a light load
    # they fetch ~2 times a second instead of once per record batch.
    sink_fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("PAYCENTER_SINK_FETCH_MAX_WAIT_MS", "500")))
    sink_fetch_min_bytes: int = field(default_factory=lambda: int(_env("PAYCENTER_SINK_FETCH_MIN_BYTES", "1048576")))
    # Idle naps: the embedded broker spends CPU on every fetch, answered or not (~0.4 ms each; a
    # consumer at 10 ms fetches ~75 times a second for nothing). A stream worker that got no record
    # for `idle_nap_after_s` pauses its partitions between fetches, 20 ms doubling up to
    # `idle_nap_max_ms`; the first record ends the naps. A record arriving during a nap waits at
    # most that long, and only after a silence; under load no worker naps. 0 = never nap: on a real
    # Kafka cluster, which answers a waiting fetch as soon as a record comes, raise the fetch waits
    # instead (a long wait costs no latency there).
    idle_nap_after_s: float = field(default_factory=lambda: float(_env("PAYCENTER_IDLE_NAP_AFTER_S", "2")))
    idle_nap_max_ms: int = field(default_factory=lambda: int(_env("PAYCENTER_IDLE_NAP_MAX_MS", "500")))
    # A stack at rest: after `idle_nap_deep_after_s` of silence the naps grow up to
    # `idle_nap_deep_max_ms`. The first command after such a rest waits up to that long at each
    # napping hop; any record brings its loop back to short naps.
    idle_nap_deep_after_s: float = field(default_factory=lambda: float(_env("PAYCENTER_IDLE_NAP_DEEP_AFTER_S", "30")))
    idle_nap_deep_max_ms: int = field(default_factory=lambda: int(_env("PAYCENTER_IDLE_NAP_DEEP_MAX_MS", "1500")))
    # Longest a stream worker waits for the broker to take what it produced before it exits non-zero
    # (its supervisor restarts it, with a new producer, and the batch is replayed): a broker restart
    # is ridden through, a broker gone for good does not leave a worker spinning.
    undelivered_limit_s: float = field(default_factory=lambda: float(_env("PAYCENTER_UNDELIVERED_LIMIT_S", "30")))
    # Key used to turn card numbers into tokens (HMAC); never logged.
    card_token_key: str = field(default_factory=lambda: _env("PAYCENTER_CARD_TOKEN_KEY", "dev-only-card-token-key"))
    # Card vault master keys, "key_id:base64,key_id:base64", and the id new records are wrapped under
    # (processors/vault/keys.py); never logged. Empty: a development key, only with PAYCENTER_ALLOW_DEV_SECRETS=1.
    vault_keys: str = field(default_factory=lambda: _env("PAYCENTER_VAULT_KEYS", ""), repr=False)
    vault_key_id: str = field(default_factory=lambda: _env("PAYCENTER_VAULT_KEY_ID", ""))
    # Cashier: where its page listens, and the secret its session tokens are signed with (never logged).
    cashier_host: str = field(default_factory=lambda: _env("PAYCENTER_CASHIER_HOST", "127.0.0.1"))
    cashier_port: int = field(default_factory=lambda: int(_env("PAYCENTER_CASHIER_PORT", "18700")))
    cashier_secret: str = field(default_factory=lambda: _env("PAYCENTER_CASHIER_SECRET", ""), repr=False)

    @property
    def watermarks_exact(self) -> bool:
        return self.broker_watermarks == "exact"

    @property
    def static_membership(self) -> bool:
        return self.group_membership == "static"

    @property
    def leave_group_on_stop(self) -> bool:
        return self.group_membership == "dynamic-leave"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def load() -> Settings:
    return Settings()
