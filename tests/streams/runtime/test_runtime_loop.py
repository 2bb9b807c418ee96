"""The stream runtime's loop on the real broker: assign, revoke, re-assign, a deposed owner, a
stalled owner that loses its partitions. A tiny counting role (tests/support/runtime.py Counter) makes
every mistake visible: a record counted twice or lost shows in the `key=count` outputs."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections import defaultdict

import pytest

from infra.settings import Settings
from paycenter.supervisor import wait_for
from streams.runtime.changelog import StateWriter, headers
from tests.support.runtime import PARTITIONS, Counter, outputs, private, publish

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def s(services: Settings) -> Settings:
    # in-process loops must really leave when closed (a subprocess worker never does: docs/operators.md)
    return dataclasses.replace(private(services), group_membership="dynamic-leave", session_timeout_s=3.0)


def pump(*counters: Counter, until, what: str, timeout_s: float = 60):
    def step():
        for c in counters:
            c.loop.poll_once(0.05)
        return until()
    return wait_for(step, timeout_s, what, interval_s=0)


def records(keys_per_partition: int, rounds: int, tag: str = "k") -> list[tuple[str, int]]:
    return [(f"{tag}{p}-{k}", p) for _ in range(rounds) for p in range(PARTITIONS) for k in range(keys_per_partition)]


def counts_ok(lines: list[str]) -> dict[str, list[int]]:
    """key -> the counts it came out with; each key's must be 1, 2, 3, ... (none twice, none skipped)."""
    seen: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        key, n = line.rsplit("=", 1)
        seen[key].append(int(n))
    bad = {k: v for k, v in seen.items() if v != list(range(1, len(v) + 1))}
    assert not bad, f"keys counted twice or out of order: {dict(list(bad.items())[:3])}"
    return seen


def test_a_new_owner_restores_the_counts_and_reads_from_the_commit(s):
    a = Counter(s)
    a.loop.start()
    publish(s, records(4, 2))
    pump(a, until=lambda: a.handled == 24, what="the first owner to count 24 records")
    a.loop.close()
    b = Counter(s)
    b.loop.start()
    publish(s, records(4, 1))
    pump(b, until=lambda: b.handled == 12, what="the next owner to count 12 more")
    b.loop.close()
    seen = counts_ok(outputs(s))
    assert len(seen) == 12 and all(v == [1, 2, 3] for v in seen.values())
    assert b.loop.stats["restored"] == PARTITIONS  # it read the first owner's state


def test_a_second_member_shares_the_partitions_and_the_first_keeps_what_nobody_wrote(s):
    a, b = Counter(s), Counter(s)
    a.loop.start()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled == 6, what="the first member to count")
    b.loop.start()
    pump(a, b, until=lambda: a.loop.active() and b.loop.active() and len(a.loop.active() | b.loop.active()) == PARTITIONS,
         what="both members to hold partitions")
    assert a.loop.stats["kept"] == len(a.loop.active())  # a revocation and re-assignment: kept without reading
    publish(s, records(2, 1))
    pump(a, b, until=lambda: a.handled + b.handled == 12, what="both to count the second round")
    b_held, a_restored = len(b.loop.active()), a.loop.stats["restored"]
    b.loop.close()  # leaves: its partitions go back to the first member, which reads what b wrote
    pump(a, until=lambda: len(a.loop.active()) == PARTITIONS, what="the first member to get everything back")
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled + b.handled == 18, what="the third round")
    a.loop.close()
    seen = counts_ok(outputs(s))
    assert all(v == [1, 2, 3] for v in seen.values()) and len(seen) == 6
    assert a.loop.stats["restored"] - a_restored == b_held  # b wrote those: read, not kept


def test_a_deposed_owner_sends_nothing_commits_nothing_and_claims_again(s):
    a = Counter(s)
    a.loop.start()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled == 6, what="the owner to count")
    intruder = StateWriter(s, s.topic("changelog"))
    intruder.claim(1, "intruder", 0)  # another worker claims partition 1 (the owner does not know)
    intruder.flush()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.loop.stats["suspended"] == 1, what="the owner to find its fence broken")
    assert 1 not in a.loop.active()
    assert sum(1 for line in outputs(s) if line.startswith("k1-")) == 2  # its second batch there: not sent
    # nobody else really owns it: after twice the session timeout it claims partition 1 again,
    # restores it (its own writes after the intruder's claim are ignored) and counts the batch once
    pump(a, until=lambda: len(a.loop.active()) == PARTITIONS and a.handled >= 14, what="the owner to reclaim and recount")
    a.loop.close()
    seen = counts_ok(outputs(s))
    assert all(v == [1, 2] for v in seen.values()) and len(seen) == 6


def test_a_deposed_workers_late_writes_between_the_owners_do_not_depose_the_owner(s):
    a = Counter(s)
    a.loop.start()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled == 6, what="the owner to count")
    zombie = StateWriter(s, s.topic("changelog"))  # a worker deposed before this one claimed, waking up
    zombie.write(2, b"counts:k2-0", b"99", headers(a.loop.epoch[2] - 1, b"in@0"))
    zombie.flush()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled == 12, what="the owner to count the second round")
    assert a.loop.stats["suspended"] == 0 and a.loop.active() == set(range(PARTITIONS))
    a.loop.close()
    b = Counter(s)  # the next owner restores the owner's counts, not the zombie's 99
    b.loop.start()
    publish(s, records(2, 1))
    pump(b, until=lambda: b.handled == 6, what="the next owner to count the third round")
    b.loop.close()
    seen = counts_ok(outputs(s))
    assert all(v == [1, 2, 3] for v in seen.values()) and len(seen) == 6


def test_a_copy_of_the_owners_own_records_between_its_records_does_not_depose_it(s):
    """A producer retry whose first send was stored after all (the broker crashed before answering)
    leaves a copy of the owner's batch, with the owner's epoch, before the copy it is told about."""
    a = Counter(s)
    a.loop.start()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled == 6, what="the owner to count")
    retried = StateWriter(s, s.topic("changelog"))
    retried.write(2, b"counts:k2-0", b"1", headers(a.loop.epoch[2], b"in@0"))
    retried.flush()
    publish(s, records(2, 1))
    pump(a, until=lambda: a.handled == 12, what="the owner to count the second round")
    assert a.loop.stats["suspended"] == 0 and a.loop.active() == set(range(PARTITIONS))
    a.loop.close()
    seen = counts_ok(outputs(s))
    assert all(v == [1, 2] for v in seen.values()) and len(seen) == 6


STALLED = """
import sys, time
sys.path.insert(0, {repo!r})
from infra.settings import Settings
from tests.support.runtime import Counter
s = Settings(kafka_bootstrap={boot!r}, topic_prefix={prefix!r}, session_timeout_s=3.0)
c = Counter(s)
c.loop.start()
while True:
    c.loop.poll_once(0.05)
    print("active", sorted(c.loop.active()), "handled", c.handled, "suspended", c.loop.stats["suspended"], flush=True)
"""


def test_a_stalled_owner_loses_its_partitions_and_nothing_is_counted_twice_or_lost(s, tmp_path):
    code = STALLED.format(repo=REPO, boot=s.kafka_bootstrap, prefix=s.topic_prefix)
    log = open(tmp_path / "stalled.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    try:
        publish(s, records(2, 1))
        wait_for(lambda: len(outputs(s)) == 6, 60, "the subprocess owner to count the first round")
        os.kill(proc.pid, signal.SIGSTOP)  # stalls past its session: the group moves its partitions
        b = Counter(s)
        b.loop.start()
        publish(s, records(2, 1))
        pump(b, until=lambda: b.handled == 6, what="the new owner to count the second round")
        os.kill(proc.pid, signal.SIGCONT)  # wakes up, finds its partitions lost, joins again
        publish(s, records(2, 1))
        pump(b, until=lambda: len(outputs(s)) == 18, what="the third round, counted by whoever owns it now")
        b.loop.close()
    finally:
        proc.kill()
        proc.wait()
        log.close()
    seen = counts_ok(outputs(s))
    assert all(v == [1, 2, 3] for v in seen.values()) and len(seen) == 6, (tmp_path / "stalled.log").read_text()[-2000:]
