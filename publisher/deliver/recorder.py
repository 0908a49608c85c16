"""Group commits of delivery results (store and journal I/O), fenced to their worker.

Sending threads hand each result to :meth:`Recorder.add`, which appends it to the local
journal at once (a ``kill -9`` cannot lose it on this host) and queues it. One thread
writes what is queued to the store every ``GROUP_COMMIT_SECONDS``, in one transaction:
the database never lags the wire by more than a few tens of milliseconds (what another
host could resend after a crash), and the writes stay batched. Every write is fenced
(:meth:`publisher.store.Store.record_outcomes`): results of claims that were taken over
meanwhile are not written, and are reported back as lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from publisher.deliver.journal import Journal
from publisher.models import SendOutcome
from publisher.store import Store

log = logging.getLogger("publisher.deliver.recorder")

GROUP_COMMIT_SECONDS = 0.02

Pending = list[tuple[SendOutcome, int]]


class Recorder:
    """Queues results, commits them in groups, calls ``on_recorded(batch, lost_ids)``."""

    def __init__(
        self,
        store: Store,
        owner: int,
        clock: Callable[[], datetime],
        *,
        max_attempts: int,
        retry_at: Callable[[int, int], datetime],
        journal: Journal | None,
        on_recorded: Callable[[Pending, set[int]], None],
    ) -> None:
        self.store, self.owner, self.clock = store, owner, clock
        self.max_attempts, self.retry_at = max_attempts, retry_at
        self.journal = journal
        self.on_recorded = on_recorded
        self.error: BaseException | None = None
        self._pending: Pending = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def add(self, outcome: SendOutcome, attempt: int) -> None:
        """Journal one result now; it reaches the store with the next group commit."""
        with self._cond:
            if self.journal is not None:
                self.journal.result(outcome, attempt)
            self._pending.append((outcome, attempt))
            self._cond.notify()

    def _commit(self, batch: Pending) -> None:
        lost = self.store.record_outcomes(
            batch, self.clock(), max_attempts=self.max_attempts, retry_at=self.retry_at,
            owner=self.owner,
        )  # fmt: skip
        if lost:
            log.warning(
                "%d result(s) not recorded: another worker took over those claims", len(lost)
            )
        self.on_recorded(batch, lost)
        if self.journal is not None:
            with self._cond:
                if not self._pending:  # every journaled result is now in the store
                    self.journal.compact()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            began = time.monotonic()
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - kept, and raised by close()
                log.error("cannot record results: %s", exc)
                with self._cond:
                    self._pending[:0] = batch
                    self.error = exc
                return
            left = GROUP_COMMIT_SECONDS - (time.monotonic() - began)
            if left > 0 and not self._closing:
                time.sleep(left)

    def close(self) -> None:
        """Commit everything queued; raise the error that stopped the commits, if any."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        if self._pending:
            batch, self._pending = self._pending, []
            self._commit(batch)  # one more try; a failure propagates (the journal keeps them)
        self.error = None
