"""A sending process's local journal (disk I/O): every 250 is on disk as it arrives.

The database learns results in group commits (every few tens of milliseconds); between a
relay's reply and that commit a ``kill -9`` would lose the fact that the message went out,
and the resend would be a duplicate. So each worker appends to its own file, one line per
event, with a single ``write`` (an ``O_APPEND`` write survives the death of the process;
a flusher thread also ``fdatasync``\\s every few milliseconds against a power cut):

- ``{"s": ID, "a": ATTEMPT}`` just before a message goes on the wire;
- ``{"r": ID, "a": ATTEMPT, "ok": ..., ...}`` with the reply, as soon as it arrives.

The next ``send``, ``run`` or ``worker`` on the same host replays the file of a worker that
is gone (:func:`replay`): results are recorded, rows the worker held but never started go
back to the queue, and only the rows started without a result (at most one per connection)
are left for takeover, counted as possible duplicates. The file name carries the store's id
and the worker's id, ``<store>-<worker>.jsonl``, so several stores can share a folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from publisher.models import SendOutcome
from publisher.store import Store

log = logging.getLogger("publisher.deliver.journal")

SYNC_SECONDS = 0.005
COMPACT_BYTES = 4 << 20


def journal_path(folder: Path, store_id: str, worker_id: int) -> Path:
    """Where worker ``worker_id`` of store ``store_id`` keeps its journal."""
    return folder / f"{store_id}-{worker_id}.jsonl"


def worker_of(path: Path, store_id: str) -> int | None:
    """The worker id a journal file belongs to, or None when it is another store's."""
    prefix, _, number = path.stem.rpartition("-")
    return int(number) if prefix == store_id and number.isdigit() else None


class Journal:
    """The append-only journal of one worker process (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}
        self._size = os.fstat(self._fd).st_size
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
        self._syncer.start()

    def _write(self, record: dict[str, object]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        self._size += len(line)
        self._dirty.set()

    def started(self, delivery_id: int, attempt: int) -> None:
        """The message of this delivery is about to go on the wire."""
        with self._lock:
            self._in_flight[delivery_id] = attempt
            self._write({"s": delivery_id, "a": attempt})

    def result(self, outcome: SendOutcome, attempt: int) -> None:
        """The relay answered (or the connection failed) for this delivery."""
        with self._lock:
            self._in_flight.pop(outcome.delivery_id, None)
            self._write(
                {
                    "r": outcome.delivery_id,
                    "a": attempt,
                    "ok": outcome.ok,
                    "reply": outcome.reply[:1000],
                    "perm": outcome.permanent,
                    "code": outcome.code,
                    "bounce": outcome.bounce,
                }
            )

    def compact(self) -> None:
        """Drop what the database already holds: keep only the messages in flight.

        Call it only when every result written so far is committed. The new file is
        written beside the old one and renamed over it, so a crash leaves one or the other.
        """
        with self._lock:
            if self._size < COMPACT_BYTES:
                return
            tmp = self.path.with_suffix(".tmp")
            lines = "".join(
                json.dumps({"s": d, "a": a}, separators=(",", ":")) + "\n"
                for d, a in self._in_flight.items()
            ).encode()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            os.write(fd, lines)
            os.fsync(fd)
            os.replace(tmp, self.path)
            os.close(self._fd)
            self._fd, self._size = fd, len(lines)

    def _sync_loop(self) -> None:
        while not self._closed.is_set():
            if self._dirty.wait(0.5):
                self._dirty.clear()
                try:
                    # Outside the lock: the senders never wait for the disk.
                    os.fdatasync(self._fd)
                except OSError:
                    pass  # closed or swapped by compact() meanwhile; the next round syncs
                self._closed.wait(SYNC_SECONDS)

    def close(self, *, remove: bool) -> None:
        """Close the file; ``remove`` it when every result is in the database."""
        with self._lock:
            self._closed.set()
            os.close(self._fd)
        self._dirty.set()
        self._syncer.join(timeout=5)
        if remove:
            self.path.unlink(missing_ok=True)
            try:
                self.path.parent.rmdir()  # leave no empty folder behind; others may still use it
            except OSError:
                pass


def read(path: Path) -> tuple[list[tuple[SendOutcome, int]], dict[int, int]]:
    """The results in a journal, and the deliveries started (id -> attempt).

    A torn last line (the process died inside a write) is skipped.
    """
    outcomes: list[tuple[SendOutcome, int]] = []
    started: dict[int, int] = {}
    with path.open("rb") as handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if "s" in entry:
                started[int(entry["s"])] = int(entry["a"])
            elif "r" in entry:
                outcome = SendOutcome(
                    int(entry["r"]),
                    bool(entry["ok"]),
                    str(entry.get("reply", "")),
                    bool(entry.get("perm")),
                    entry.get("code"),
                    bool(entry.get("bounce")),
                )
                outcomes.append((outcome, int(entry["a"])))
    return outcomes, started


def replay(
    store: Store,
    path: Path,
    worker_id: int,
    now: datetime,
    *,
    max_attempts: int,
    retry_at: Callable[[int, int], datetime],
) -> tuple[int, int] | None:
    """Apply a gone worker's journal to the store, then delete it.

    Returns (results recorded, claims released), or None when another process replayed
    it first. An exclusive ``flock`` makes two replayers on one host take turns.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if os.fstat(handle.fileno()).st_nlink == 0:
            return None  # the other replayer finished and removed it
        outcomes, started = read(path)
        counts = store.settle_dead_claims(
            worker_id, outcomes, started, now, max_attempts=max_attempts, retry_at=retry_at
        )
        path.unlink(missing_ok=True)
    log.info(
        "replayed the journal of worker %d: %d result(s) recorded, %d claim(s) released",
        worker_id, *counts,
    )  # fmt: skip
    return counts
