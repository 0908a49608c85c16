"""The engine as real processes: kill -9 and takeover, SIGSTOP, SIGTERM drain, two workers.

``publisher`` runs as a subprocess against a scripted aiosmtpd server in this process, or,
where thousands of messages must go through quickly, an aiosmtpd server in a process of
its own (:mod:`tests.smtp_sink`). The takeover tests run on the real clock.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher.app import open_app
from publisher.config import load
from publisher.services import collecting
from publisher.store import Store
from publisher.store.schema import deliveries, subscribers, workers
from tests.conftest import SmtpServer, free_port, run_cli, write_config
from tests.smtp_sink import Sink
from tests.test_delivery import T0, ScriptedHandler, add_many, scripted  # noqa: F401

NOW = T0.isoformat()


def _config(tmp_path: Path, server: SmtpServer, store_url: str | None, delivery: str) -> Path:
    path = write_config(tmp_path, transport="smtp", smtp=server, store_url=store_url)
    text = path.read_text().replace(
        "retry_base_seconds = 60\n", f"retry_base_seconds = 60\n{delivery}\n"
    )
    path.write_text(text)
    return path


def _popen(
    config: Path, *args: str, now: str | None = NOW, host: str | None = None
) -> subprocess.Popen[str]:
    """``publisher ARGS`` as a process; ``now=None`` runs it on the real clock, ``host``
    gives it another host id (another machine, as far as liveness goes)."""
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret"}
    env.pop("PUBLISHER_NOW", None)
    env.pop("PUBLISHER_HOST_ID", None)
    if now is not None:
        env["PUBLISHER_NOW"] = now
    if host is not None:
        env["PUBLISHER_HOST_ID"] = host
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=config.parent,
    )


def _wait_for(handler: ScriptedHandler, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while handler.count() < count:
        assert proc.poll() is None, f"publisher exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the send did not get going"
        time.sleep(0.02)


def _prepare(config: Path, n: int) -> Store:
    """Collect the sample articles and add ``n`` subscribers (in this process)."""
    app = open_app(load(config), clock=lambda: T0)
    collecting.collect(app)
    add_many(app.store, n)
    return app.store


def _by_status(store: Store) -> Counter[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        ).all()
    return Counter({status: n for status, n in rows})


def _sink_config(tmp_path: Path, sink: Sink, store_url: str | None, delivery: str) -> Path:
    server = SmtpServer("127.0.0.1", sink.port, None)  # type: ignore[arg-type]
    return _config(tmp_path, server, store_url, delivery)


def _finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


def _resent(output: str) -> int:
    match = re.search(r"(\d+) resent after a crash \(possible duplicates\)", output)
    return int(match[1]) if match else 0


def test_kill_9_mid_send_then_immediate_send_delivers_all_with_duplicates_at_most_connections(
    tmp_path: Path,
) -> None:
    """SIGKILL in the middle of a send; a second send right away delivers the rest.

    Real clock and the default 300 s lease: the dead process's claims are taken over at
    once (its pid is gone), and its journal tells which messages already got their 250,
    so only messages on the wire at the kill can go twice. CI runs the issue's 20,000
    recipients; a developer's run takes 2,000 unless PUBLISHER_CRASH_TEST_N says otherwise.
    """
    default = "20000" if os.environ.get("CI") == "true" else "2000"
    n = int(os.environ.get("PUBLISHER_CRASH_TEST_N", default))
    connections = 2
    sink = Sink(free_port(), tmp_path / "sink.log")
    try:
        config = _sink_config(
            tmp_path, sink, None, f"connections = {connections}\nbatch_size = 100"
        )
        store = _prepare(config, n)
        proc = _popen(config, "send", "daily", now=None)
        sink.wait_for(max(300, n // 10))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        at_kill = _by_status(store)
        assert at_kill["sending"] > 0  # the dead process held claims

        began = time.monotonic()
        out = _finish(_popen(config, "send", "daily", now=None))
        assert time.monotonic() - began < 300  # no wait for the lease
        per_rcpt = sink.per_rcpt()
        assert len(per_rcpt) == n  # nobody is missing
        duplicates = sum(c - 1 for c in per_rcpt.values())
        resent = _resent(out)
        # Duplicates are at most the messages on the wire, and the output counts them.
        assert duplicates <= resent <= connections, out
        assert "held" not in out
        ids: dict[str, set[str]] = {}
        for rcpt, mid in sink.lines():
            ids.setdefault(rcpt, set()).add(mid)
        assert all(len(v) == 1 for v in ids.values())  # a resend keeps its Message-ID
        assert _by_status(store) == Counter({"sent": n})
        assert not list((tmp_path / "journal").glob("*.jsonl"))  # replayed, then removed
        store.close()
    finally:
        sink.stop()


def test_worker_killed_on_another_host_is_taken_over_within_seconds_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """Two workers with distinct host ids; one is killed -9: the other takes over its
    claims as soon as PostgreSQL drops the dead session's advisory lock, with a lease
    (600 s) far longer than the test."""
    n = 3000
    sink = Sink(free_port(), tmp_path / "sink.log")
    try:
        config = _sink_config(
            tmp_path, sink, pg_url,
            "connections = 2\nbatch_size = 50\nrate_limit = 150\nlease_seconds = 600",
        )  # fmt: skip
        store = _prepare(config, n)
        run_cli(config, "send", "daily", "--queue-only")
        victim = _popen(config, "worker", "--until-idle", now=None, host="host-a")
        sink.wait_for(200)
        survivor = _popen(config, "worker", "--until-idle", now=None, host="host-b")
        sink.wait_for(600)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        held = _by_status(store)["sending"]
        killed_at = time.monotonic()
        out = _finish(survivor, timeout=120)
        assert time.monotonic() - killed_at < 60  # seconds, not lease_seconds
        assert held > 0
        per_rcpt = sink.per_rcpt()
        assert len(per_rcpt) == n
        duplicates = sum(c - 1 for c in per_rcpt.values())
        resent = _resent(out)
        assert resent > 0, out  # it did take claims over
        # Another host has no journal to read: the bound is what the dead worker had not
        # yet group-committed (a few tens of ms of sending) plus what was on the wire.
        assert duplicates <= resent, out
        assert duplicates <= 2 + 150 * 0.1, duplicates
        assert "held" not in out
        assert _by_status(store) == Counter({"sent": n})
        store.close()
    finally:
        sink.stop()


def test_sigterm_finishes_in_flight_records_and_exits_0(
    tmp_path: Path, scripted: SmtpServer  # noqa: F811
) -> None:
    n = 300
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    config = _config(tmp_path, scripted, None, "connections = 2\nrate_limit = 60")
    store = _prepare(config, n)
    proc = _popen(config, "send", "daily")
    _wait_for(handler, 40, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err and "left queued" in out

    counts = _by_status(store)
    received = handler.count()
    assert counts["sending"] == 0  # nothing left claimed
    assert counts["sent"] == received < n  # everything that went out is recorded
    assert counts["queued"] == n - received

    run_cli(config, "send", "daily", now=NOW)  # a later run goes on from there
    assert handler.per_rcpt() == Counter({f"user{i:06d}@example.org": 1 for i in range(n)})
    assert _by_status(store) == Counter({"sent": n})
    store.close()


def test_two_workers_share_one_issue_on_postgresql(
    tmp_path: Path, scripted: SmtpServer, pg_url: str  # noqa: F811
) -> None:
    n = 5000
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    config = _config(tmp_path, scripted, pg_url, "connections = 2\nbatch_size = 50")
    store = _prepare(config, n)
    queued = run_cli(config, "send", "daily", "--queue-only", now=NOW)
    assert handler.count() == 0 and f"{n} queued for `publisher worker`" in queued.stdout
    workers = [_popen(config, "worker", "--until-idle") for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    sent = [int(out.split("worker")[1].split(" sent")[0]) for out, _ in outputs]
    assert all(s > 0 for s in sent), sent  # both took part
    assert sum(sent) == n
    per_rcpt = handler.per_rcpt()
    assert len(per_rcpt) == n and set(per_rcpt.values()) == {1}  # exactly one each
    assert _by_status(store) == Counter({"sent": n})
    store.close()


def _stop_outside_a_write(proc: subprocess.Popen[str], store: Store) -> None:
    """SIGSTOP ``proc`` at a moment it holds no SQLite write lock.

    A process stopped inside a write transaction would block every other writer of the
    file (that is SQLite, not us); so if the file is locked, let it go on and stop it again.
    """
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        if store.engine.dialect.name != "sqlite":
            return
        path = store.engine.url.database
        conn = sqlite3.connect(str(path), timeout=0.2)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            conn.close()
    raise AssertionError("the sender never left its write transaction")


def _held_by(store: Store, pid: int) -> tuple[int, set[int]]:
    """The worker id of process ``pid`` and the ids of the deliveries it holds."""
    with store.engine.connect() as conn:
        worker_id = conn.scalar(select(workers.c.id).where(workers.c.pid == pid))
        assert worker_id is not None, "the sender is not registered"
        ids = set(
            conn.scalars(
                select(deliveries.c.id).where(
                    deliveries.c.worker_id == worker_id, deliveries.c.status == "sending"
                )
            )
        )
    return worker_id, ids


def _wait_lease_over(store: Store, ids: set[int]) -> None:
    """Until every lease of ``ids`` is in the past (real clock)."""
    deadline = time.monotonic() + 30
    while True:
        with store.engine.connect() as conn:
            latest = conn.scalar(
                select(func.max(deliveries.c.lease_until)).where(deliveries.c.id.in_(ids))
            )
        if latest is not None and latest < datetime.now(UTC):
            return
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.1)


def _recipients(store: Store, ids: set[int]) -> set[str]:
    with store.engine.connect() as conn:
        return set(
            conn.scalars(
                select(subscribers.c.email)
                .join(deliveries, deliveries.c.subscriber_id == subscribers.c.id)
                .where(deliveries.c.id.in_(ids))
            )
        )


@pytest.mark.parametrize("backend", ["sqlite-same-host", "postgresql-other-host"])
def test_stopped_worker_is_alive_and_keeps_its_claims_past_its_lease(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """SIGSTOP a sender; its 1 s lease runs out; another send delivers everything else,
    reports what the stopped one holds and leaves it alone; after SIGCONT the stopped one
    finishes. Same host: its pid lives. PostgreSQL, another host: its session keeps its lock.
    """
    n = 400
    url = request.getfixturevalue("pg_url") if backend.startswith("postgresql") else None
    host = "host-a" if backend.endswith("other-host") else None
    sink = Sink(free_port(), tmp_path / "sink.log")
    try:
        config = _sink_config(
            tmp_path, sink, url, "connections = 1\nbatch_size = 40\nrate_limit = 80\nlease_seconds = 1"
        )
        store = _prepare(config, n)
        first = _popen(config, "send", "daily", now=None, host=host)
        sink.wait_for(60)
        _stop_outside_a_write(first, store)
        try:
            _worker, held = _held_by(store, first.pid)
            assert held, "stopped while holding nothing"
            _wait_lease_over(store, held)
            at_stop = sink.per_rcpt()
            second = _finish(_popen(config, "send", "daily", now=None))
            assert f"{len(held)} held by " in second and f":{first.pid} (alive" in second, second
            assert "[not done]" in second
            # status and issues show name the stopped worker and what it holds.
            data = json.loads(run_cli(config, "status", "--json").stdout)
            (mine,) = [w for w in data["workers"] if w["pid"] == first.pid]
            assert mine["state"] == "alive" and mine["claims"] == len(held)
            shown = run_cli(config, "issues", "show", "1").stdout
            assert f"held      {len(held)} claimed by " in shown and f":{first.pid} (worker #" in shown
            assert "alive" in shown
            # Nothing the stopped worker holds was sent again while it was stopped.
            now = sink.per_rcpt()
            for rcpt in _recipients(store, held):
                assert now[rcpt] == at_stop[rcpt] <= 1
            assert _by_status(store)["sending"] == len(held)
        finally:
            first.send_signal(signal.SIGCONT)
        out = _finish(first, timeout=60)
        assert "lost" not in out
        assert sink.per_rcpt() == Counter({f"user{i:06d}@example.org": 1 for i in range(n)})
        assert _by_status(store) == Counter({"sent": n})
        store.close()
    finally:
        sink.stop()


def test_stopped_worker_on_another_host_loses_its_claims_to_the_lease_and_is_fenced(
    tmp_path: Path,
) -> None:
    """SQLite cannot tell whether another host's worker lives: after its lease the claims
    of a stopped worker are taken over; resumed, it records nothing over them and reports
    what it lost."""
    n = 300
    sink = Sink(free_port(), tmp_path / "sink.log")
    try:
        config = _sink_config(
            tmp_path, sink, None, "connections = 1\nbatch_size = 40\nrate_limit = 80\nlease_seconds = 1"
        )
        store = _prepare(config, n)
        first = _popen(config, "send", "daily", now=None, host="host-a")
        sink.wait_for(60)
        _stop_outside_a_write(first, store)
        try:
            _worker, held = _held_by(store, first.pid)
            _wait_lease_over(store, held)
            second = _finish(_popen(config, "send", "daily", now=None))
            assert "held" not in second
            assert _resent(second) == len(held)  # taken over, counted as possible duplicates
            assert _by_status(store) == Counter({"sent": n})
        finally:
            first.send_signal(signal.SIGCONT)
        out = _finish(first, timeout=60)
        assert re.search(r"\b[1-9]\d* lost to a takeover", out), out
        per_rcpt = sink.per_rcpt()
        assert len(per_rcpt) == n
        twice = {rcpt for rcpt, c in per_rcpt.items() if c > 1}
        assert twice <= _recipients(store, held)  # only claims that were taken over
        # Another host cannot read its journal: the one on the wire at the stop, plus what
        # it had not group-committed yet (20 ms at 80 msg/s), can go twice.
        assert sum(c - 1 for c in per_rcpt.values()) <= 1 + 4
        with store.engine.connect() as conn:
            holders = set(
                conn.scalars(select(deliveries.c.claimed_by).where(deliveries.c.id.in_(held)))
            )
        # Fencing: the resumed worker did not record over the rows the other one sent.
        assert all(not h.startswith(f"{socket.gethostname()}:{first.pid}/") for h in holders)
        assert _by_status(store) == Counter({"sent": n})
        store.close()
    finally:
        sink.stop()
