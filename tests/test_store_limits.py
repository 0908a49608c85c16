"""The shared limits and relay health in the store, on SQLite and PostgreSQL.

Two ``Store`` objects on one database stand for two processes; threads take leases at
once. Real clock; no PUBLISHER_NOW.
"""

from __future__ import annotations

import threading

from publisher.store import Store


def test_concurrent_leases_never_overlap(store_url: str) -> None:
    stores = [Store.open(store_url), Store.open(store_url)]
    slots: list[float] = []
    lock = threading.Lock()

    def lease(store: Store) -> None:
        for _ in range(10):
            got = store.lease_slots("global", 100.0, 5, 0.0)
            with lock:
                slots.extend(got.slots)

    threads = [threading.Thread(target=lease, args=(s,)) for s in stores for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots.sort()
    assert len(slots) == 200
    # 4 leasers, one timeline: every slot is at least 1/rate after the one before it.
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert min(gaps) >= 0.01 - 1e-6, min(gaps)
    for store in stores:
        store.close()


def test_a_pause_is_seen_by_every_store_and_doubles(store_url: str) -> None:
    first, second = Store.open(store_url), Store.open(store_url)
    assert first.pause_bucket("relay:a", 2, "421 4.7.0 slow down") == 2
    lease = second.lease_slots("relay:a", 0.0, 100, 0.0)
    assert lease.slots[0] - lease.now >= 1.5 and lease.streak == 1  # the other one waits
    assert second.pause_bucket("relay:a", 2, "421 again") == 4  # refused again: doubled
    [paused] = first.paused_buckets()
    assert paused["key"] == "relay:a" and paused["reply"] == "421 again"
    first.clear_pause_streak("relay:a")
    assert first.pause_bucket("relay:a", 2, "421") == 2
    first.close()
    second.close()


def test_connection_slots_are_capped_and_released(store_url: str) -> None:
    first, second = Store.open(store_url), Store.open(store_url)
    assert first.hold_slot("domain:gmail.com", "h1/0", 2, 30)
    assert second.hold_slot("domain:gmail.com", "h2/0", 2, 30)
    assert not second.hold_slot("domain:gmail.com", "h2/1", 2, 30)
    assert first.hold_slot("domain:gmail.com", "h1/0", 2, 30)  # renewing is no new slot
    first.release_slot("domain:gmail.com", "h1/0")
    assert second.hold_slot("domain:gmail.com", "h2/1", 2, 30)
    # A holder that crashed loses its slot when it expires.
    assert second.hold_slot("domain:x.org", "dead/0", 1, 0.0)
    assert first.hold_slot("domain:x.org", "h1/0", 1, 30)
    first.close()
    second.close()


def test_relay_health_turns_and_recovers(store_url: str) -> None:
    store = Store.open(store_url)
    for n in (1, 2):
        state = store.relay_trouble("primary", "cannot connect", refusal=False, threshold=3,
                                    recheck=60)  # fmt: skip
        assert state.healthy and state.failures == n
    store.relay_trouble("primary", "421 busy", refusal=True, threshold=3, recheck=60)
    state = store.relay_states()["primary"]
    assert state.healthy and (state.failures, state.refusals) == (0, 1)  # not "in a row"
    for _ in range(2):
        state = store.relay_trouble("primary", "421 busy", refusal=True, threshold=3, recheck=60)
    assert not state.healthy and state.refusals == 3
    assert not store.claim_relay_recheck("primary", 60)  # not due for a minute
    store.relay_recovered("primary")
    state = store.relay_states()["primary"]
    assert state.healthy and (state.failures, state.refusals) == (0, 0)
    store.relay_trouble("backup", "down", refusal=False, threshold=1, recheck=0)
    assert store.claim_relay_recheck("backup", 60)  # due now: this process may try it
    assert not store.claim_relay_recheck("backup", 60)  # ...and no other at the same time
    store.close()


def test_slots_handed_back_go_to_the_next_lease(store_url: str) -> None:
    first, second = Store.open(store_url), Store.open(store_url)
    lease = first.lease_slots("global", 10.0, 8, 0.0)
    first.return_slots("global", list(lease.slots[4:]))  # finished after using four
    again = second.lease_slots("global", 10.0, 6, 0.0)
    assert again.slots[:4] == lease.slots[4:]  # reused, not lost
    assert again.slots[4] >= lease.slots[-1] + 0.1 - 1e-6  # then on from the bucket's end
    first.close()
    second.close()
