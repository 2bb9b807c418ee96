"""streams/runtime/commit.py: every partition's result is checked (pure: a stand-in consumer that
answers like librdkafka does, per partition or for the whole request)."""
from __future__ import annotations

from types import SimpleNamespace

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.runtime.commit import commit


class Answers:
    """Consumer.commit as librdkafka answers it: a list of TopicPartition with .error set, or a raise."""

    def __init__(self, *rounds):
        self.rounds, self.calls = list(rounds), []

    def commit(self, offsets, asynchronous):
        assert asynchronous is False
        self.calls.append([(tp.partition, tp.offset) for tp in offsets])
        answer = self.rounds.pop(0)
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        return [TopicPartition(tp.topic, tp.partition, tp.offset) if answer.get(tp.partition) is None else
                _failed(tp, answer[tp.partition]) for tp in offsets]


def _failed(tp, code):
    # librdkafka's TopicPartition.error is read-only from Python: the same fields, as librdkafka fills them
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=tp.offset, error=KafkaError(code))


def tps(*parts):
    return [TopicPartition("t", p, 10 + p) for p in parts]


def test_a_partition_that_failed_for_a_transient_reason_is_retried_alone():
    c = Answers({1: KafkaError.REQUEST_TIMED_OUT}, {})
    r = commit(c, tps(0, 1), backoff_s=0)
    assert c.calls == [[(0, 10), (1, 11)], [(1, 11)]]
    assert sorted(tp.partition for tp in r.committed) == [0, 1] and r.ok


def test_a_partition_this_worker_no_longer_owns_is_not_retried_and_is_reported():
    c = Answers({0: KafkaError.UNKNOWN_MEMBER_ID})
    r = commit(c, tps(0, 1), backoff_s=0)
    assert len(c.calls) == 1 and [tp.partition for tp in r.committed] == [1]
    assert [tp.partition for tp in r.refused] == [0] and not r.ok


def test_a_whole_request_failure_is_retried_and_given_up_after_the_attempts():
    c = Answers(KafkaError(KafkaError._TRANSPORT), KafkaError(KafkaError._TRANSPORT), KafkaError(KafkaError._TRANSPORT))
    r = commit(c, tps(2), attempts=3, backoff_s=0)
    assert len(c.calls) == 3 and r.committed == [] and [tp.partition for tp in r.refused] == [2]


def test_a_rebalance_answer_for_the_whole_request_is_final():
    c = Answers(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    r = commit(c, tps(0, 1), backoff_s=0)
    assert len(c.calls) == 1 and len(r.refused) == 2
