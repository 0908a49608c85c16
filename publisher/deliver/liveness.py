"""Whether a sending process still lives, and this process's own registration (OS and store I/O).

A process that sends (``send``, ``run``, ``worker``) opens a :class:`SenderSession`: it
registers in the store's ``workers`` table with its host id, pid and process start time,
heartbeats from a thread (renewing the leases of its claims) and deregisters on a clean
exit. On PostgreSQL it also holds an advisory lock on a connection of its own.

Another process judges a claim holder so (liveness decides; the lease is the fallback):

- same host id: *alive* while its pid exists with the same start time (``/proc/PID/stat``
  field 22, with the boot id, so a reused pid or a reboot is told apart); a zombie is gone;
- another host, PostgreSQL: *alive* while its session holds its advisory lock;
- another host, SQLite: *unknown*: its claims are taken over only after their lease, which
  its heartbeat keeps renewing while it runs.

A worker that is gone loses its claims at once to the next claim; an alive one keeps them
even past its lease (a SIGSTOPped process still has its pid and its session).

The host id is ``$PUBLISHER_HOST_ID`` when set (tests simulate a second host with it), else
``/etc/machine-id`` plus the pid namespace (two containers never pass for one host), else
the host name.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from publisher.config import DeliveryConfig
from publisher.deliver import journal
from publisher.deliver.retry import retry_delay
from publisher.errors import ConfigError
from publisher.models import Held
from publisher.store import Store
from publisher.store.workers import WorkerRow

log = logging.getLogger("publisher.deliver.liveness")

HOST_ID_ENV = "PUBLISHER_HOST_ID"
ALIVE, GONE, UNKNOWN = "alive", "gone", "unknown"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def host_id() -> str:
    """This machine's stable id (see the module docstring)."""
    forced = os.environ.get(HOST_ID_ENV, "").strip()
    if forced:
        return forced
    machine = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    if machine is None:
        return socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return machine
    return f"{machine}/{namespace}"


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process, from /proc."""
    raw = _read(f"/proc/{pid}/stat")
    if raw is None:
        return None
    fields = raw.rsplit(")", 1)[-1].split()  # the command name may hold spaces and ")"
    return fields[0], fields[19]


def process_start(pid: int) -> str | None:
    """``<boot id>:<start ticks>`` of a process, or None where there is no /proc."""
    stat = _stat(pid)
    if stat is None:
        return None
    return f"{_read('/proc/sys/kernel/random/boot_id') or ''}:{stat[1]}"


def process_alive(pid: int, start: str | None) -> bool:
    """Whether ``pid`` is still the process that registered with ``start``."""
    if start is not None and os.path.isdir("/proc/self"):
        stat = _stat(pid)
        return stat is not None and stat[0] not in ("Z", "X") and process_start(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def judge(row: WorkerRow | None, my_host: str, locked: set[int] | None) -> str:
    """alive, gone or unknown, as seen from host ``my_host`` (see the module docstring)."""
    if row is None:
        return GONE  # deregistered or reaped: nobody can still be sending for it
    if row.host_id == my_host:
        return ALIVE if process_alive(row.pid, row.process_start) else GONE
    if locked is not None:
        return ALIVE if row.id in locked else GONE
    return UNKNOWN


def worker_states(
    store: Store, my_host: str | None = None, me: int | None = None
) -> dict[int, tuple[WorkerRow, str]]:
    """Every registered worker with its state as seen from this host."""
    my_host = my_host or host_id()
    locked = store.locked_workers()
    return {
        r.id: (r, ALIVE if r.id == me else judge(r, my_host, locked))
        for r in store.list_workers()
    }


def workers_data(store: Store) -> list[dict[str, object]]:
    """The registered workers with their state and claims, for ``status`` (JSON-ready)."""
    holdings = {h.worker_id: h for h in store.holdings()}
    out: list[dict[str, object]] = []
    for wid, (row, state) in worker_states(store).items():
        holding = holdings.get(wid)
        out.append(
            {
                "id": wid,
                "host": row.hostname,
                "host_id": row.host_id,
                "pid": row.pid,
                "command": row.command,
                "state": state,
                "started_at": row.started_at.isoformat(),
                "heartbeat_at": row.heartbeat_at.isoformat(),
                "claims": holding.count if holding else 0,
                "lease_until": holding.lease_until.isoformat()
                if holding and holding.lease_until
                else None,
            }
        )
    return out


def issue_holders(store: Store, issue_id: int) -> list[dict[str, object]]:
    """Who holds the issue's ``sending`` rows: worker, state, count and lease (JSON-ready)."""
    states = worker_states(store)
    out: list[dict[str, object]] = []
    for holding in store.holdings(issue_id):
        row, state = states.get(holding.worker_id or 0, (None, GONE))
        if holding.worker_id is None:
            state = UNKNOWN  # claimed before workers registered: the lease decides
        out.append(
            {
                "worker_id": holding.worker_id,
                "holder": row.label if row else "-",
                "state": state,
                "claims": holding.count,
                "lease_until": holding.lease_until.isoformat() if holding.lease_until else None,
            }
        )
    return out


@dataclass
class ClaimPlan:
    """Whose claims the next claim may take: at once (gone) or after their lease."""

    takeover: list[int] = field(default_factory=list)
    lease_decides: list[int] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)


class SenderSession:
    """This process as a registered worker: heartbeat, journal, and judging others."""

    def __init__(
        self,
        store: Store,
        settings: DeliveryConfig,
        clock: Callable[[], datetime],
        command: str,
    ) -> None:
        self.store, self.settings, self.clock, self.command = store, settings, clock, command
        self.host_id = host_id()
        self.pid = os.getpid()
        self.label = f"{socket.gethostname()}:{self.pid}"
        self.worker_id = 0
        self.journal: journal.Journal | None = None
        self._conn: Any = None
        self._conn_lock = threading.Lock()  # the lock connection serves one thread at a time
        self._row: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = time.monotonic()
        self.gap = 0  # bumped by each renewal that came after its lease was at risk
        self._store_id = ""
        self.interval = max(0.2, min(5.0, settings.lease_seconds / 4))

    # -- life ----------------------------------------------------------------------------

    def open(self) -> SenderSession:
        """Register, open the journal, replay gone workers' journals, start heartbeating."""
        now = self.clock()
        self._row = {
            "host_id": self.host_id,
            "hostname": socket.gethostname(),
            "pid": self.pid,
            "process_start": process_start(self.pid),
            "command": self.command,
        }
        self.worker_id, self._conn = self.store.register_worker(**self._row, now=now)
        self._row["started_at"] = now
        try:
            self._store_id = self.store.setting("store_id", lambda: os.urandom(6).hex()) or ""
        except IntegrityError:  # another process created it at the same moment
            self._store_id = self.store.setting("store_id") or ""
        try:
            self.journal = journal.Journal(self.journal_path(self.worker_id))
        except OSError as exc:
            self.store.deregister_worker(self.worker_id, self._conn)
            raise ConfigError(
                f"[delivery] journal_dir {self.settings.journal_dir}: {exc.strerror}",
                hint="point it at a writable local folder",
            ) from exc
        self._renewed = time.monotonic()
        self.reap()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def close(self, *, clean: bool = True) -> None:
        """Stop heartbeating and deregister (the journal goes when everything is recorded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.journal is not None:
            self.journal.close(remove=clean)
        with self._conn_lock:
            self.store.deregister_worker(self.worker_id, self._conn)

    def __enter__(self) -> SenderSession:
        return self.open()

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self.close(clean=exc_type is None)

    def journal_path(self, worker_id: int) -> Path:
        """The journal file of a worker of this store on this host."""
        return journal.journal_path(self.settings.journal_dir, self._store_id, worker_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renewed()
                self.reap()
            except Exception as exc:  # noqa: BLE001 - a lost session must not end the send
                log.warning("heartbeat failed (%s); reconnecting", exc)
                with self._conn_lock:
                    self._relock()

    def _relock(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - it is broken already
            pass
        try:
            self._conn = self.store.relock_worker(self.worker_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot take the worker lock again yet: %s", exc)

    def lease_at_risk(self) -> bool:
        """True when our leases may have run out (we were stopped, or the store was away)."""
        return time.monotonic() - self._renewed > self.settings.lease_seconds / 2

    def renewed(self) -> None:
        """Heartbeat now: note that we live and renew the leases of our claims.

        A renewal after a gap of more than half a lease starts a new ``gap`` epoch: the
        claims may have been taken over meanwhile, so each sending thread checks its
        batch again before it sends more (the heartbeat thread may well wake first).
        """
        started = time.monotonic()
        with self._conn_lock:
            if self.lease_at_risk():
                self.gap += 1
            self.store.heartbeat_worker(
                self.worker_id, self.clock(), self.settings.lease_seconds, self._row, self._conn
            )
        self._renewed = started

    # -- judging others ----------------------------------------------------------------

    def states(self) -> dict[int, tuple[WorkerRow, str]]:
        """Every registered worker with its state."""
        return worker_states(self.store, self.host_id, self.worker_id)

    def plan(self, issue_id: int) -> ClaimPlan:
        """Which holders of the issue's claims are gone (replaying their journal first)."""
        plan = ClaimPlan()
        holdings = [h for h in self.store.holdings(issue_id) if h.worker_id != self.worker_id]
        if not holdings:
            return plan
        states = self.states()
        for holding in holdings:
            if holding.worker_id is None:
                continue  # claimed before 0006: the lease decides (always, in claim_batch)
            row, state = states.get(holding.worker_id, (None, GONE))
            if state == GONE:
                if row is None or row.host_id == self.host_id:
                    self._replay(holding.worker_id)
                plan.takeover.append(holding.worker_id)
            else:
                if state == UNKNOWN:
                    plan.lease_decides.append(holding.worker_id)
                assert row is not None
                plan.held.append(
                    Held(holding.count, row.label, state, holding.lease_until, row.id)
                )
        return plan

    def held(self, issue_id: int) -> list[Held]:
        """Claims of the issue that others hold and may still be sending (for reports)."""
        now = self.clock()
        return [
            h
            for h in self.plan(issue_id).held
            if h.state == ALIVE or (h.lease_until is not None and h.lease_until >= now)
        ]

    def _replay(self, worker_id: int) -> None:
        settings = self.settings

        def retry_at(attempt: int, delivery_id: int) -> datetime:
            return self.clock() + retry_delay(attempt, delivery_id, settings.retry_base_seconds)

        journal.replay(
            self.store,
            self.journal_path(worker_id),
            worker_id,
            self.clock(),
            max_attempts=settings.max_attempts,
            retry_at=retry_at,
        )

    def reap(self) -> None:
        """Replay the journals of gone workers of this host; forget the gone that hold nothing."""
        states = self.states()
        folder = self.settings.journal_dir
        if folder.is_dir():
            for path in folder.glob("*.jsonl"):
                wid = journal.worker_of(path, self._store_id)
                if wid is None or wid == self.worker_id:
                    continue
                row, state = states.get(wid, (None, GONE))
                if state == GONE and (row is None or row.host_id == self.host_id):
                    self._replay(wid)
        stale = self.clock() - timedelta(seconds=max(3600, 10 * self.settings.lease_seconds))
        for wid, (row, state) in states.items():
            if state == GONE or (state == UNKNOWN and row.heartbeat_at < stale):
                self.store.forget_worker(wid)
