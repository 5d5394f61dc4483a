"""Exactly one writer: a lease kept in NATS itself, in a JetStream key-value bucket.

Any number of reconcilers may run against one account; the one holding the lease writes,
the others plan only (standbys). The lease is one key (the lease name) of the bucket
`jetstream_reconciler` (stream `KV_jetstream_reconciler`); its value names the holder:

    {"holder": "nats-0/7", "token": "5f0c...", "ttl_ms": 10000, "released": false}

Every write of the key is a compare-and-set on its revision (the bucket stream's sequence,
`Nats-Expected-Last-Subject-Sequence`), so of two processes that try at once, one wins.
No clock is compared across hosts; each process judges time on its own monotonic clock:

- The holder renews every ttl/3. Its right to write ends `ttl - margin` after it SENT the
  last renew that succeeded (the server stored it later than that, so nobody has seen it
  earlier). A holder that cannot renew in time stops writing and says `leadership_lost`.
- A standby takes the lease over when the revision it last read has not changed for the
  holder's `ttl` on the standby's own clock, counted from when it first read that revision.
  That is at least `margin` after the holder stopped writing. A released record (the holder
  stopped cleanly) or no record at all is free at once.
- Before writing, a pass re-reads the key (the revision must still be ours), and every
  single create or update checks the deadline on the clock first. A process that was paused
  (SIGSTOP) past its deadline therefore writes nothing when it wakes up: its clock shows the
  deadline passed before any write or renew, and its renew fails on the revision.

What this cannot fence: a request that left the process before the deadline but reaches the
server later than `margin` after it (a TCP segment retransmitted when a partition heals,
nats-py's reconnect buffer). The JetStream API has no precondition a stream update could
carry; writes are only sent while connected, and `margin` (ttl/5) is far above loopback or
LAN latency.

`LeaseState` is the pure state machine (tested with a fake clock); `Lease` runs it against
the server through the small `LeaseStore` interface that `jetstream.JetStream` implements.
"""

from __future__ import annotations

from reconciler.jetstream.protocol import LeaseStore as LeaseStore
from reconciler.lease.fence import Fenced, holding
from reconciler.lease.keeper import Lease
from reconciler.lease.state import (
    DEFAULT_NAME,
    DEFAULT_TTL_S,
    REPLICAS,
    Change,
    Holder,
    LeaseState,
    Record,
    Step,
    clock,
)

__all__ = [
    "DEFAULT_NAME", "DEFAULT_TTL_S", "REPLICAS", "Change", "Fenced", "Holder", "Lease",
    "LeaseState", "LeaseStore", "Record", "Step", "clock", "holding",
]
