"""Executor role: pay.attempts -> the channel (HTTP, signed) -> pay.results.

A confluent-kafka consumer driven from an asyncio loop (docs/performance.md). The loop hands
each attempt to its own task, through a bulkhead per channel-bank (streams/calls/bulkhead.py):
PAYCENTER_CHANNEL_CONCURRENCY calls in flight per channel-bank and as many waiting,
PAYCENTER_EXECUTOR_CONCURRENCY calls in flight per worker and as many waiting. A channel-bank that
hangs fills its own compartment; the loop goes on with the others. When its compartment is full and
stalled, further attempts for it are answered CHANNEL_BUSY at once, without calling the channel
(nothing sent: the router fails over safely; health and routing scores ignore the code). A full
compartment that drains (a burst, a backlog after a restart) holds the loop back instead: Kafka is
the queue, a healthy channel-bank is not failed for being popular. Three calls in a row that time out
open a channel-bank to one call at a time until a call is answered in time (a probe, as a circuit
breaker's half-open state): the attempts waiting for it and those that find the probe running are
answered CHANNEL_HUNG at once, unsent. So a hung channel-bank holds PAYCENTER_CHANNEL_CONCURRENCY
of the worker's calls only until its first timeouts, then one, and its attempts fail over instead
of waiting a timeout each.

At-least-once: an attempt's offset counts as finished when the broker has acknowledged its result
(the producer's delivery report), and only the finished prefix of each partition is committed
(streams/runtime/offsets.py), whatever order the calls end in. A PENDING answer is published at once (the
health monitor counts pending runs) and finishes the offset; the attempt is then polled at the
channel with backoff until final or the poll deadline passes. Polling holds no call slot: a status
query is cheap, and a PENDING attempt holding a slot for the poll deadline would starve its
channel-bank. Pollers are capped at PAYCENTER_EXECUTOR_CONCURRENCY; beyond that, and whatever the
poll did not settle, the pending resolver (streams/pending.py) queries later. A crash before the
result is delivered means the attempt is consumed again and sent again with the same attempt_id:
the channel answers with what it already did, it does not charge twice. An attempt answered without
a call is the exception (the channel never saw it): streams/calls/refusals.py keeps it unsent.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from types import SimpleNamespace

from confluent_kafka import KafkaException

from connectors.base import Channel, ChannelResponse
from connectors.registry import build_channels
from connectors.signing import MissingSecretError
from infra import groups, kafka, metrics
from infra.settings import Settings
from processors.routing.config import RoutingConfig
from processors.routing.config_doc import ConfigDoc, digest
from schemas import codes
from schemas.codec import DecodeError
from schemas.records import Attempt, AttemptStatus
from streams.calls import attempt as calls
from streams.calls.bulkhead import Bulkhead, Refused, Ticket
from streams.calls.refusals import RefusalLog, topic_for
from streams.calls.vault_lookup import VaultLookup
from streams.common import Clock, load_routing_config, message_dead_letter, wall_clock_ms
from streams.runtime import commit as commits
from streams.runtime.kafka import IdleNaps, consumer as group_consumer, instance_id, produce, stop_consuming
from streams.runtime.lag import LagReporter
from streams.runtime.membership import MembershipWatch
from streams.runtime.offsets import OffsetTracker, Partition
from streams.runtime.run import run_role
from streams.views.config import ConfigView

log = logging.getLogger("paycenter.executor")

STALL_S = 0.5  # a full channel-bank whose oldest waiting attempt got no slot for this long refuses more
UNKNOWN_CHANNEL_WAIT_S = 5.0  # for a configuration that adds a channel to reach this executor too
RETIRE_S = 60.0  # a connector replaced by a new configuration is closed this much later
SHUTDOWN_WAIT_S = 10.0  # for the calls in flight when asked to stop
BUSY_LOG_EVERY_S = 10.0  # one warning per stalled channel-bank per this long, with the count


def _wiring(ch) -> tuple:
    """What a connector is built from: a change of any of it needs a new connector."""
    return (ch.base_url, ch.secret_env, ch.timeout_ms)


class ExecutorLoop:
    """pay.attempts -> Channel.execute -> pay.results. The signer (streams/signer.py) is this loop
    on pay.signing with another decode and call: what the class attributes and `decode`/`send` say."""

    ROLE, INPUT = "executor", "pay.attempts"

    def __init__(self, settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms,
                 channels: dict[str, Channel] | None = None, batch: int = 500):
        self.s, self.clock, self.batch = settings, clock, batch
        # the configuration in force on pay.config (PAYCENTER_ROUTING_CONFIG when it holds none), as
        # the routers see it, followed while running: a channel added there is called without a restart
        self.view = None
        if channels is None:
            self.view = ConfigView(settings, fallback=ConfigDoc(config, digest(config), f"file:{settings.routing_config}"))
            config = self.view.load_initial().config
        # built now, before any attempt can arrive (connectors open their HTTP sessions lazily)
        self.registry: dict[str, Channel] = channels if channels is not None else build_channels(config)
        self._wiring = {cid: _wiring(ch) for cid, ch in config.channels.items()}
        self.bulkhead = Bulkhead(per_key=settings.channel_concurrency, queue_per_key=settings.channel_concurrency,
                                 total=settings.executor_concurrency, stall_s=STALL_S)
        self.results_t, self.dlq_t = settings.topic("pay.results"), settings.topic("pay.deadletter")
        # the loop stops consuming while the bulkhead's waiting room is full: stay in the group meanwhile
        self.consumer = group_consumer(settings, groups.GROUPS[self.ROLE], settings.path_fetch_max_wait_ms, role=self.ROLE,
                                       **{"max.poll.interval.ms": 600_000})
        self.producer = kafka.producer(settings, linger_ms=1)  # reports confirm with an offset (infra/kafka.py)
        self.offsets = OffsetTracker()
        self.refusals = RefusalLog(settings.kafka_bootstrap, settings.topic(topic_for(self.ROLE)), self.producer)
        self.tasks: set[asyncio.Task] = set()  # channel calls (waiting for a slot, or in flight)
        self.polls: set[asyncio.Task] = set()  # PENDING attempts asked again until final
        self.polling = 0
        self.failed: BaseException | None = None  # a result that could not be delivered: stop, replay
        self.running = True
        self.lag = LagReporter(self.ROLE)
        self.naps = IdleNaps(self.consumer, settings, settings.path_fetch_max_wait_ms, self.consumer.assignment)
        self.watch = MembershipWatch(settings, self.ROLE, instance_id(self.ROLE), self.consumer,
                                     [settings.topic(self.INPUT)], self._alert)
        self._busy_logged: dict[tuple[str, str], float] = {}
        self.vault = VaultLookup(settings)  # a verification's card elements, opened at call time

    # ---- the loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        self._reconfigured = asyncio.get_running_loop().create_future()
        if self.view is not None:
            loop = asyncio.get_running_loop()
            self.view.listen(lambda doc: loop.call_soon_threadsafe(self.reconfigure, doc.config))
            self.view.start()
        self.consumer.subscribe([self.s.topic(self.INPUT)], on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._lost)
        idle, committed_at = 0.001, 0.0
        try:
            while self.running and self.failed is None:
                msgs = self.consumer.consume(self.batch, 0)
                self.naps.after(len(msgs))
                self.producer.poll(0)  # delivery reports: results acknowledged, offsets finished
                for msg in msgs:
                    await self.handle(msg)
                if time.monotonic() - committed_at >= 0.5:
                    committed_at = time.monotonic()
                    self._commit(attempts=1)  # what fails is offered again next time
                    self.lag.report(self.consumer)
                    self.watch.check()
                if not msgs:
                    # nothing fetched: yield to the calls, longer while idle (nothing comes during a nap)
                    await asyncio.sleep(max(idle, self.naps.wait_s(0.25)) if self.naps.napping else idle)
                    idle = min(idle * 2, 0.02)
                else:
                    idle = 0.001
                    await asyncio.sleep(0)
        finally:
            await self._shutdown()
        if self.failed is not None:
            raise self.failed

    def stop(self) -> None: self.running = False  # noqa: E704

    def reconfigure(self, config: RoutingConfig) -> None:
        """Connectors for the channels a new configuration adds or rewires (URL, secret, timeout).
        A replaced connector is closed a minute later: calls in flight keep the one they started
        with. A removed channel keeps its connector: attempts routed before may still arrive."""
        changed = {cid: ch for cid, ch in config.channels.items() if self._wiring.get(cid) != _wiring(ch)}
        if not changed:
            return
        try:
            built = build_channels(SimpleNamespace(channels=changed))
        except MissingSecretError as exc:
            log.error("new channel configuration not applied in this executor: %s; then restart it", exc)
            return
        for cid, connector in built.items():
            old = self.registry.get(cid)
            self.registry[cid] = connector
            self._wiring[cid] = _wiring(changed[cid])
            if old is not None:
                asyncio.get_running_loop().call_later(RETIRE_S, lambda ch=old: asyncio.ensure_future(ch.close()))
        log.warning("channels %s connected from the configuration on pay.config", sorted(built))
        self._reconfigured.set_result(None)  # wakes attempts waiting for these channels
        self._reconfigured = asyncio.get_running_loop().create_future()

    async def handle(self, msg) -> None:
        if msg.error():
            log.warning("consume error: %s", msg.error())
            return
        metrics.child(metrics.CONSUMED, self.ROLE, msg.topic()).inc()
        part = self.offsets.partition(msg.topic(), msg.partition())
        part.started(msg.offset())
        done = functools.partial(self._delivered, part, msg.offset())
        try:
            att, job = self.decode(msg)
        except (DecodeError, ValueError, TypeError) as exc:
            self._produce(self.dlq_t, msg.key(), message_dead_letter(msg, "UNDECODABLE", str(exc)).encode(), done)
            metrics.child(metrics.DEAD_LETTERS, self.ROLE, "UNDECODABLE").inc()
            return
        if not self.refusals.loaded(msg.partition()):
            self.refusals.load_assigned(msg.partition(), [tp.partition for tp in self.consumer.assignment()])
        refused = self.refusals.answer(msg.partition(), att.attempt_id)
        if refused is not None:  # answered "not sent" before a crash: the same answer, still unsent
            self._produce(self.results_t, att.card_token.encode(), refused, done)
            return
        channel = self.registry.get(att.channel_id)
        if channel is None:
            self._spawn(self.unknown(att, job, done), None)
            return
        await self.dispatch(att, job, channel, done)

    def decode(self, msg) -> tuple[Attempt, object]:
        """(the attempt, what `send` needs); raises DecodeError/ValueError on a record that is not one."""
        att = Attempt.decode(msg.value())
        return att, att

    async def send(self, channel: Channel, job) -> ChannelResponse:
        return await channel.execute(await self.vault.attach(calls.to_request(job)))

    async def unknown(self, att: Attempt, job, done) -> None:
        """A channel this executor has no connector for: the routers may have read a configuration
        that adds it a moment before this executor did; wait for that a little, then answer
        NO_CONNECTOR (nothing sent: the router fails over)."""
        end = time.monotonic() + (UNKNOWN_CHANNEL_WAIT_S if self.view is not None else 0.0)
        while att.channel_id not in self.registry and (left := end - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(asyncio.shield(self._reconfigured), left)
            except asyncio.TimeoutError:
                break
        channel = self.registry.get(att.channel_id)
        if channel is None:
            self.publish(att, calls.unknown_channel(att), self.clock(), done)
        else:
            await self.dispatch(att, job, channel, done)

    async def dispatch(self, att: Attempt, job, channel: Channel, done) -> None:
        key = (att.channel_id, att.bank_code)
        ticket = await self.bulkhead.admit(key)
        if ticket is None:
            self.refuse(att, channel, done, hung=self.bulkhead.is_probing(key))
            return
        self._spawn(self.call(att, job, channel, ticket, done), ticket)

    def refuse(self, att: Attempt, channel: Channel, done, hung: bool) -> None:
        """Not sent: CHANNEL_HUNG (calls timed out, a probe is running) or CHANNEL_BUSY (stalled).
        Unless another executor had the attempt before: then PENDING, asked at the channel."""
        metrics.child(metrics.CHANNEL_BUSY, self.ROLE, att.channel_id, att.bank_code).inc()
        resp = calls.channel_hung(att) if hung else calls.channel_busy(att, self.s.channel_concurrency, STALL_S)
        self._log_busy(att, resp.channel_code)
        if self.refusals.maybe_sent(done.args[0].partition, att.created_at_ms):  # `done`: made by `handle`
            resp = calls.maybe_sent(resp)
        started = self.clock()
        self.publish(att, resp, started, done)
        if resp.status == AttemptStatus.PENDING:
            self._poll_later(att, channel, started)

    def _spawn(self, coro, ticket: Ticket | None) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, ticket))

    async def call(self, att: Attempt, job, channel: Channel, ticket: Ticket, done) -> None:
        try:
            await ticket.started()
        except Refused:  # its channel-bank's calls timed out while it waited: fail over at once
            self.refuse(att, channel, done, hung=True)
            return
        started = self.clock()  # after the wait for a slot: latency is the channel's, the wait shows in started_at
        timed_out = False
        try:
            resp = await self.send(channel, job)
            timed_out = resp.channel_code == codes.TIMEOUT
        except Exception as exc:  # a connector bug: the request may have gone out, so the outcome is unknown
            log.exception("attempt %s at %s: the connector failed", att.attempt_id, att.channel_id)
            resp = ChannelResponse.pending("EXECUTOR_ERROR", f"outcome unknown: connector failed: {exc!r}")
        finally:
            # the call is over: the slot goes to the next attempt waiting; after a timeout the
            # channel-bank gets one call at a time until one is answered in time (streams/calls/bulkhead.py)
            ticket.release(timed_out)
        self.publish(att, resp, started, done)
        if resp.status == AttemptStatus.PENDING:
            self._poll_later(att, channel, started)

    def _poll_later(self, att: Attempt, channel: Channel, started: int) -> None:
        # a task of its own: the call is over (its offset finishes with the PENDING result)
        task = asyncio.ensure_future(self.poll(att, channel, started))
        self.polls.add(task)
        task.add_done_callback(self.polls.discard)

    async def poll(self, att: Attempt, channel: Channel, started: int) -> None:
        if self.polling >= self.s.executor_concurrency:
            log.warning("attempt %s pending at %s: %d attempts already polled; left to the pending resolver",
                        att.attempt_id, att.channel_id, self.polling)
            return
        self.polling += 1
        try:
            final = await calls.resolve_pending(channel, att.attempt_id, self.s.pending_poll_deadline_s)
        except Exception as exc:  # e.g. the connector closed at shutdown; the pending resolver asks later
            log.warning("attempt %s: polling %s failed (%r); left to the pending resolver",
                        att.attempt_id, att.channel_id, exc)
            return
        finally:
            self.polling -= 1
        if final is not None:
            self.publish(att, final, started, None)
        else:
            log.warning("attempt %s still pending at %s after %.0f s; left to the pending resolver",
                        att.attempt_id, att.channel_id, self.s.pending_poll_deadline_s)

    # ---- producing -------------------------------------------------------------------------------
    def publish(self, att: Attempt, resp: ChannelResponse, started: int, done) -> None:
        res = calls.to_result(att, resp, started, self.clock())
        result = res.encode()
        if resp.channel_code in codes.NOT_SENT and done is not None:
            # on the broker before the router can fail over on it: no later executor sends it
            part: Partition = done.args[0]  # `done` is the partial `handle` made for the attempt's offset
            self.refusals.record(part.partition, att.attempt_id, result,
                                 lambda: self._produce(self.results_t, att.card_token.encode(), result, done),
                                 self._delivered_untracked)
        else:
            self._produce(self.results_t, att.card_token.encode(), result, done)
        metrics.child(metrics.PRODUCED, self.ROLE, self.results_t).inc()
        metrics.child(metrics.CHANNEL_CALLS, att.channel_id, resp.status.value).observe(res.latency_ms / 1000)

    def _produce(self, topic: str, key: bytes | None, value: bytes, done) -> None:
        produce(self.producer, topic, key, value, on_delivery=done or self._delivered_untracked)

    def _alert(self, topic: str, key: bytes, value: bytes) -> None:
        self._produce(topic, key, value, None)

    def _delivered(self, part: Partition, offset: int, err, msg) -> None:
        if err is not None:
            self._delivered_untracked(err, msg)
            return
        part.finished(offset)

    def _delivered_untracked(self, err, msg) -> None:
        if err is not None and self.failed is None:
            # never commit past a result the broker did not take: stop, the restart replays the attempt
            log.error("delivery to %s failed: %s; stopping the %s", msg.topic(), err, self.ROLE)
            self.failed = KafkaException(err)

    def _task_done(self, ticket: Ticket | None, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if ticket is not None:
            ticket.release()  # idempotent: a task cancelled while waiting or calling frees its place
        if not task.cancelled() and task.exception() is not None and self.failed is None:
            log.error("attempt task failed: %r; stopping the %s", task.exception(), self.ROLE)
            self.failed = task.exception()

    # ---- offsets ---------------------------------------------------------------------------------
    def _commit(self, attempts: int = 5, tps=None) -> None:
        """Commit the finished prefix of each partition, every partition checked; an offset is marked
        committed only once the broker took it (a failure is retried: `attempts` now, then at the next
        call). Not committed means sent again by the next owner: the channel answers from its books."""
        offsets = self.offsets.commits(tps)
        if offsets:
            self.offsets.confirm(commits.commit(self.consumer, offsets, attempts=attempts).committed)

    def _assigned(self, consumer, partitions) -> None:
        self.refusals.assigned([tp.partition for tp in partitions], wall_clock_ms())

    def _revoked(self, consumer, partitions) -> None:
        # Calls still running for these partitions finish and publish; their offsets stay
        # uncommitted and the next owner sends those attempts again (the channel answers from its books).
        self.producer.flush(5)  # serve the delivery reports: commit everything finished
        self._commit(tps=partitions)
        self.offsets.forget(partitions)
        self.refusals.forget([tp.partition for tp in partitions])

    def _lost(self, consumer, partitions) -> None:
        self.offsets.forget(partitions)
        self.refusals.forget([tp.partition for tp in partitions])

    async def _shutdown(self) -> None:
        # Calls in flight may end (bounded by the channels' timeouts): their results go out and
        # their offsets are committed. What is still running after that, and every poll, is
        # cancelled: a call's attempt is consumed again after the restart, a poll's attempt is the
        # pending resolver's.
        calls = [t for t in self.tasks if not t.done()]
        if calls:
            await asyncio.wait(calls, timeout=SHUTDOWN_WAIT_S)
        leftover = [t for t in self.tasks | self.polls if not t.done()]
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
        self.producer.flush(10)
        self._commit()
        stop_consuming(self.consumer, self.s)
        if self.view is not None:
            self.view.stop()
        for ch in self.registry.values():
            await ch.close()

    def _log_busy(self, att: Attempt, code: str) -> None:
        key, now = (att.channel_id, att.bank_code), time.monotonic()
        if now - self._busy_logged.get(key, 0.0) >= BUSY_LOG_EVERY_S:
            self._busy_logged[key] = now
            running, waiting = self.bulkhead.snapshot().get(key, (0, 0))
            why = "its calls time out, one probe at a time" if code == codes.CHANNEL_HUNG else "stalled"
            log.warning("%s/%s %s (%d calls in flight, %d waiting): answering %s without calling (%d so far)",
                        *key, why, running, waiting, code, self.bulkhead.refused[key])


def run_loop(cls: type[ExecutorLoop], settings: Settings) -> int:
    return run_role(cls(settings, load_routing_config(settings)))


def main(settings: Settings) -> int:
    return run_loop(ExecutorLoop, settings)
