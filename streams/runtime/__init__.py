"""The stream runtime every stateful role and sink runs on (a small library, apart from the roles).

What a payments loop needs from Kafka, written once:

* `kafka`      consumers (group membership, fetch waits) and producers that stop a loop before it
               commits past a record the broker did not take;
* `commit`     synchronous offset commits whose per-partition errors are checked and retried;
* `changelog`  the changelog record format (owner epoch and source offsets in headers), claim
               markers, and the state writer that learns where every state record landed;
* `fence`      the check that no other owner wrote a partition's changelog between this owner's
               records: the fence that holds on any Kafka-compatible broker, without transactions;
* `table`      partitioned in-memory tables whose changes are staged and written once per batch;
* `restore`    rebuilding claimed partitions from their changelog inside the loop, with progress;
* `loop`       the batch loop: records in, state staged, changelog written and fenced, effects
               produced, offsets committed; partitions claimed, restored, suspended and dropped;
* `effects`    what a batch asks to produce, kept by the partition whose state decided it;
* `membership` noticing a member that holds no partitions while its group has lag;
* `lag`        the consumer-lag gauge;
* `run`        running a role as a worker process until SIGTERM or SIGINT;
* `faults`     a worker that stops itself at a chosen moment of its batch (tests only).

docs/architecture.md states the delivery guarantee and the argument for it.
"""
