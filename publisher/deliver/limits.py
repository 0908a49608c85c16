"""Send pacing shared by the cluster (store and monotonic-clock I/O): rates, pauses, slots.

A :class:`Bucket` hands out send slots leased from the store (see ``store/limits.py``):
``LEASE_SECONDS`` worth of slots at a time, so one process asks the store two or three
times a second per bucket, however fast it sends. A slot may be used from its time until
``tolerance`` (half a lease) after it, never later: a slot that went stale (the thread
was busy) is thrown away, not saved up. Slots never overlap across the cluster, so every
window of ``T`` seconds holds at most ``rate * T`` messages plus half a lease (and one
for the window's edge), whatever the number of processes. The next lease is taken when
half of the current one is left, so the store's round trip costs no sending time.

A message waits for a slot of every bucket that applies (the cluster ``rate_limit``, its
relay's ``rate``, its domain's ``rate``), so the lowest limit wins. :class:`DomainGate`
caps the messages in flight to one domain (``connections``) with slots held in the store.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from publisher.config import DeliveryConfig
from publisher.store.limits import LimitsMixin

LimitStore = LimitsMixin  # the store methods pacing uses

LEASE_SECONDS = 0.4  # how much sending time one lease covers
FREE_LEASE = 100  # slots per lease of a bucket with no rate (it only carries pauses)
FREE_TOLERANCE = 1.0  # ... which is read again at least this often
HOLD_SECONDS = 30.0  # a domain connection slot expires unless renewed (a crashed holder)
Stopping = Callable[[], bool]


def lease_size(rate: float) -> int:
    """Slots per lease: ``LEASE_SECONDS`` of sending at ``rate`` (4 to 50)."""
    if rate <= 0:
        return FREE_LEASE
    return max(4, min(50, round(rate * LEASE_SECONDS)))


def sleep_until(moment: float, stopping: Stopping) -> bool:
    """Sleep until monotonic ``moment``; False as soon as ``stopping()`` turns true."""
    while True:
        left = moment - time.monotonic()
        if left <= 0:
            return True
        if stopping():
            return False
        time.sleep(min(left, 0.1))


class Bucket:
    """One shared limit as seen by this process: leased slots in monotonic time."""

    def __init__(self, store: LimitStore, key: str, rate: float) -> None:
        self.store, self.key, self.rate = store, key, rate
        self.size = lease_size(rate)
        # A slot is usable until ``tolerance`` after its time; a lease may start ``slack``
        # in the past, so the store's round trip costs no throughput (slack < tolerance,
        # or the first slot would be stale on arrival).
        self.tolerance = 0.5 * self.size / rate if rate > 0 else FREE_TOLERANCE
        self.slack = 0.25 * self.size / rate if rate > 0 else 0.0
        self._slots: deque[float] = deque()
        self._offset = 0.0
        self._streak = 0
        self._lock = threading.Lock()

    def take(self) -> float:
        """The next usable slot (monotonic seconds); leases more from the store when out."""
        with self._lock:
            now = time.monotonic()
            while self._slots and self._slots[0] < now - self.tolerance:
                self._slots.popleft()  # stale: using it late could crowd a later window
            if not self._slots:
                self._lease()
            slot = self._slots.popleft()
            if self.rate > 0 and len(self._slots) == self.size // 2:
                # Half a lease left: lease the next now, while those slots are still ahead,
                # so the next lease follows on with no gap for the store's round trip.
                self._lease()
            return slot

    def _lease(self) -> None:
        lease = self.store.lease_slots(self.key, self.rate, self.size, self.slack)
        # Store time -> monotonic; the offset is read after the reply, so slots err late.
        self._offset = time.monotonic() - lease.now
        self._slots.extend(t + self._offset for t in lease.slots)
        self._streak = lease.streak

    def release(self) -> None:
        """Hand the slots still ahead back to the store, for other processes to use."""
        with self._lock:
            now = time.monotonic()
            ahead = [t - self._offset for t in self._slots if t > now]
            self._slots.clear()
        if ahead and self.rate > 0:
            self.store.return_slots(self.key, ahead)

    def pause(self, base_seconds: float, reply: str) -> float:
        """Pause the bucket for the whole cluster; drop the slots this process holds."""
        seconds = self.store.pause_bucket(self.key, base_seconds, reply)
        with self._lock:
            self._slots.clear()
            self._streak += 1
        return seconds

    def accepted(self) -> None:
        """A message went through: reset the shared pause streak if one is running."""
        if self._streak:
            self._streak = 0
            self.store.clear_pause_streak(self.key)


class Pacer:
    """Every bucket of one sending process; a message waits for a slot of each of its own."""

    def __init__(self, store: LimitStore, settings: DeliveryConfig,
                 relay_rates: dict[str, float] | None = None) -> None:  # fmt: skip
        self.store, self.settings = store, settings
        self.relay_rates = relay_rates or {}
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def bucket(self, key: str, rate: float) -> Bucket:
        """The bucket ``key``, made on first use."""
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = self._buckets[key] = Bucket(self.store, key, rate)
            return found

    def release(self) -> None:
        """This process is done sending for now: hand back every slot it still holds."""
        with self._lock:
            buckets = list(self._buckets.values())
        for bucket in buckets:
            bucket.release()

    def relay_bucket(self, relay: str) -> Bucket:
        """The bucket of a relay: its ``rate``, and the pause after "slow down" replies."""
        return self.bucket(f"relay:{relay}", self.relay_rates.get(relay, 0.0))

    def buckets_for(self, relay: str | None, domain: str) -> list[Bucket]:
        """The buckets a message to ``domain`` through ``relay`` must get a slot from."""
        found = []
        if self.settings.rate_limit > 0:
            found.append(self.bucket("global", self.settings.rate_limit))
        if relay is not None or "relay:default" in self._buckets:
            # A transport with no relays (a test's, the outbox) has one once it was paused.
            found.append(self.relay_bucket(relay or "default"))
        limit = self.settings.domain_limit(domain)
        if limit is not None and limit.rate > 0:
            found.append(self.bucket(f"domain:{domain}", limit.rate))
        return found

    def wait(self, buckets: Iterable[Bucket], stopping: Stopping) -> bool:
        """Block until a slot of every bucket is due at once; False when stopping."""
        wanted = sorted(buckets, key=lambda b: b.rate if b.rate > 0 else float("inf"))
        held: dict[str, float] = {}
        while True:
            for bucket in wanted:
                if bucket.key not in held:
                    held[bucket.key] = bucket.take()
            if not held:
                return not stopping()
            if not sleep_until(max(held.values()), stopping):
                return False
            now = time.monotonic()
            stale = [b.key for b in wanted if held[b.key] < now - b.tolerance]
            if not stale:
                return True
            for key in stale:  # went stale waiting for a slower bucket: take a fresh one
                del held[key]


class DomainGate:
    """One sending thread's hold on a domain's connection slots (one domain at a time)."""

    def __init__(self, store: LimitStore, settings: DeliveryConfig, holder: str) -> None:
        self.store, self.settings, self.holder = store, settings, holder
        self._key: str | None = None
        self._renew_at = 0.0

    def enter(self, domain: str, stopping: Stopping) -> bool:
        """Hold a connection slot of ``domain`` (if it is capped); False when stopping."""
        limit = self.settings.domain_limit(domain)
        key = f"domain:{domain}" if limit is not None and limit.connections > 0 else None
        if key == self._key and time.monotonic() < self._renew_at:
            return True
        if key != self._key:
            self.leave()  # holding one while waiting for another could deadlock
        if key is None or limit is None:
            return True
        while not self.store.hold_slot(key, self.holder, limit.connections, HOLD_SECONDS):
            if not sleep_until(time.monotonic() + 0.05, stopping) or stopping():
                return False
        self._key, self._renew_at = key, time.monotonic() + HOLD_SECONDS / 3
        return True

    def leave(self) -> None:
        """Give back the slot held, if any."""
        if self._key is not None:
            self.store.release_slot(self._key, self.holder)
            self._key = None
