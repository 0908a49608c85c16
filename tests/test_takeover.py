"""Claims, takeover and fencing in the store; liveness of processes; the journal's replay.

Store tests run on a real SQLite file and on the local PostgreSQL; liveness tests use real
child processes. The end-to-end crash tests are in ``test_delivery_process.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher.deliver import journal
from publisher.deliver.liveness import ALIVE, GONE, UNKNOWN, judge, process_alive, process_start
from publisher.models import SendOutcome
from publisher.store import Store
from publisher.store.workers import WorkerRow
from tests.conftest import run_cli, write_config
from tests.test_store import _issue_with_subscribers

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _planned(store: Store, n: int) -> int:
    issue_id, _ = _issue_with_subscribers(store, n)
    assert store.plan_deliveries(store.list_issues()[0], T0) == n
    return issue_id


def _retry(_attempt: int, _id: int) -> datetime:
    return T0 + timedelta(minutes=5)


def test_a_live_holder_keeps_its_claims_past_the_lease_a_gone_one_loses_them_at_once(
    store_url: str,
) -> None:
    store = Store.open(store_url)
    issue_id = _planned(store, 3)
    mine = store.claim_batch(issue_id, "a", T0, 10, 1, owner=1)
    assert len(mine) == 3
    late = T0 + timedelta(hours=1)
    # Alive (not named): kept, whatever the lease says.
    assert store.claim_batch(issue_id, "b", late, 10, 300, owner=2) == []
    # Liveness unknown: the lease decides; it has run out, so they are taken.
    assert store.claim_batch(issue_id, "b", T0, 10, 300, owner=2, lease_decides=[1]) == []
    taken = store.claim_batch(issue_id, "b", late, 10, 300, owner=2, lease_decides=[1])
    assert {r.delivery_id for r in taken} == {r.delivery_id for r in mine}
    assert all(r.recovered and r.attempts == 2 for r in taken)
    # Gone: taken at once, lease or not.
    again = store.claim_batch(issue_id, "c", late, 10, 300, owner=3, takeover=[2])
    assert len(again) == 3 and all(r.attempts == 3 for r in again)
    store.close()


def test_fencing_a_resumed_worker_records_nothing_over_the_new_holder(store_url: str) -> None:
    store = Store.open(store_url)
    issue_id = _planned(store, 2)
    first, second = store.claim_batch(issue_id, "a", T0, 10, 300, owner=1)
    retaken = store.claim_batch(issue_id, "b", T0, 10, 300, owner=2, takeover=[1])
    assert len(retaken) == 2
    stale = [
        (SendOutcome(first.delivery_id, True), first.attempts),
        (SendOutcome(second.delivery_id, False, "550 5.1.1 no such user", True, 550, True), 1),
    ]
    lost = store.record_outcomes(stale, T0, max_attempts=3, retry_at=_retry, owner=1)
    assert lost == {first.delivery_id, second.delivery_id}
    assert store.release_claims([first.delivery_id], T0, owner=1) == 0
    assert store.delivery_counts(issue_id)["sending"] == 2
    assert store.find_subscriber(second.email).status == "active"  # the stale bounce is not applied
    assert store.verify_claims([first.delivery_id], 1) == set()
    assert store.verify_claims([first.delivery_id], 2) == {first.delivery_id}
    fresh = [(SendOutcome(r.delivery_id, True), r.attempts) for r in retaken]
    assert store.record_outcomes(fresh, T0, max_attempts=3, retry_at=_retry, owner=2) == set()
    assert store.delivery_counts(issue_id)["sent"] == 2
    store.close()


def test_replaying_a_dead_workers_journal_leaves_only_what_was_on_the_wire(
    store_url: str, tmp_path: Path
) -> None:
    store = Store.open(store_url)
    issue_id = _planned(store, 4)
    sent, retry, on_wire, never = store.claim_batch(issue_id, "a", T0, 10, 300, owner=7)
    path = journal.journal_path(tmp_path, "s", 7)
    log = journal.Journal(path)
    for r in (sent, retry, on_wire):
        log.started(r.delivery_id, r.attempts)
    log.result(SendOutcome(sent.delivery_id, True, "250 ok"), 1)
    log.result(SendOutcome(retry.delivery_id, False, "451 later", False, 451), 1)
    with path.open("ab") as handle:
        handle.write(b'{"r": 99, "a"')  # torn by the kill
    # The process dies here: its file descriptor just goes away.
    counts = journal.replay(store, path, 7, T0, max_attempts=3, retry_at=_retry)
    assert counts == (2, 1)
    assert not path.exists()
    assert store.delivery_counts(issue_id) == {
        "queued": 2, "sending": 1, "sent": 1, "failed": 0, "bounced": 0, "skipped": 0
    }  # fmt: skip
    # The one never started costs no attempt; the one on the wire is taken over as recovered.
    taken = store.claim_batch(issue_id, "b", T0, 10, 300, owner=8, takeover=[7])
    by_id = {r.delivery_id: r for r in taken}
    assert by_id[on_wire.delivery_id].recovered and by_id[never.delivery_id].attempts == 1
    assert retry.delivery_id not in by_id  # waits for its retry time
    assert journal.replay(store, path, 7, T0, max_attempts=3, retry_at=_retry) is None
    log.close(remove=False)
    store.close()


def test_process_alive_tells_a_live_a_dead_a_zombie_and_a_reused_pid() -> None:
    me = os.getpid()
    assert process_alive(me, process_start(me))
    assert not process_alive(me, "another-boot:1")  # same pid, another process
    child = subprocess.Popen(["sleep", "30"])
    start = process_start(child.pid)
    assert process_alive(child.pid, start)
    child.send_signal(signal.SIGSTOP)
    assert process_alive(child.pid, start)  # stopped is alive
    child.kill()
    deadline = time.monotonic() + 5
    while process_alive(child.pid, start):  # a zombie until reaped: gone already
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.wait()
    assert not process_alive(child.pid, start)


def test_judge_same_host_by_pid_other_host_by_lock_or_unknown() -> None:
    now = datetime.now(UTC)

    def row(host: str, pid: int, start: str | None) -> WorkerRow:
        return WorkerRow(5, host, "h", pid, start, "worker", None, now, now)

    me = os.getpid()
    assert judge(row("here", me, process_start(me)), "here", None) == ALIVE
    assert judge(row("here", me, "x:1"), "here", None) == GONE
    assert judge(row("there", me, None), "here", {5}) == ALIVE
    assert judge(row("there", me, None), "here", set()) == GONE
    assert judge(row("there", me, None), "here", None) == UNKNOWN
    assert judge(None, "here", None) == GONE


def test_postgresql_lock_lives_with_the_workers_session(pg_url: str) -> None:
    store = Store.open(pg_url)
    worker_id, conn = store.register_worker(
        host_id="elsewhere", hostname="h", pid=1, process_start=None, command="worker", now=T0
    )
    assert conn is not None
    assert worker_id in (store.locked_workers() or set())
    conn.invalidate()  # the session ends as if its process died
    deadline = time.monotonic() + 10
    while worker_id in (store.locked_workers() or set()):
        assert time.monotonic() < deadline, "the lock outlived its session"
        time.sleep(0.05)
    assert [w.id for w in store.list_workers()] == [worker_id]  # the row stays until reaped
    assert store.forget_worker(worker_id)
    store.close()


def test_an_unusable_journal_dir_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "taken").write_text("a file, not a folder")
    config.write_text(
        config.read_text().replace(
            "retry_base_seconds = 60\n", 'retry_base_seconds = 60\njournal_dir = "taken"\n'
        )
    )
    run_cli(config, "subscribers", "add", "ana@example.org")
    result = run_cli(config, "send", "daily", check=False)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "[delivery] journal_dir" in line and "taken" in line
    status = json.loads(run_cli(config, "status", "--json").stdout)
    assert status["workers"] == []  # it deregistered again
