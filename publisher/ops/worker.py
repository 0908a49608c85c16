"""``publisher worker`` (store, transport and clock I/O): send the queue of every open issue.

A worker claims batches of every issue that still has deliveries to make, of any digest,
until it is stopped. Any number of workers, on any number of hosts, can share one
PostgreSQL store: claims use ``FOR UPDATE SKIP LOCKED`` under a lease, so each delivery
goes to one worker. When nothing is due, a worker sleeps until the next retry is due or
``poll_seconds`` have passed, whichever is sooner. With ``until_idle`` it returns as soon
as nothing is due instead (for cron-driven runs, tests and benchmarks).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from publisher.app import App
from publisher.errors import ConfigError, DeliveryError, TransportError
from publisher.models import Held, SendReport
from publisher.services import sending

log = logging.getLogger("publisher.ops.worker")


@dataclass
class WorkerReport:
    """What one worker process sent, over all the issues it touched."""

    sent: int = 0
    failed: int = 0
    bounced: int = 0
    retrying: int = 0
    recovered: int = 0
    lost: int = 0
    issues: set[int] = field(default_factory=set)
    held: dict[int, list[Held]] = field(default_factory=dict)  # by issue, as last seen

    def add(self, report: SendReport) -> None:
        """Add one issue run's counts."""
        self.sent += report.sent
        self.failed += report.failed
        self.bounced += report.bounced
        self.retrying += report.retrying
        self.recovered += report.recovered
        self.lost += report.lost
        if report.issue is not None:
            self.issues.add(report.issue.id)
            if report.held_by:
                self.held[report.issue.id] = report.held_by
            else:
                self.held.pop(report.issue.id, None)


def run_worker(
    app: App,
    stop: threading.Event,
    *,
    until_idle: bool = False,
    poll_seconds: float = 5.0,
) -> WorkerReport:
    """Deliver queued messages of every open issue until ``stop`` is set (or idle)."""
    total = WorkerReport()
    while not stop.is_set():
        busy = False
        for issue in app.store.issues_to_deliver():
            if stop.is_set():
                break
            try:
                report = sending.deliver_open_issue(app, issue, stop)
            except ConfigError as exc:
                log.error("issue %d (%s) skipped: %s", issue.id, issue.digest_id, exc)
                continue
            except TransportError as exc:
                if until_idle or isinstance(exc, DeliveryError):
                    raise
                log.error("relay unavailable, retrying in %.0fs: %s", poll_seconds, exc)
                stop.wait(poll_seconds)
                break
            total.add(report)
            busy = busy or bool(report.sent or report.failed or report.bounced or report.retrying)
        if busy:
            continue
        if until_idle:
            break
        due = app.store.next_due_at()
        wait = poll_seconds
        if due is not None:
            wait = max(0.05, min(poll_seconds, (due - app.clock()).total_seconds()))
        stop.wait(wait)
    return total


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (the handlers are restored)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("received signal %d: finishing the messages in flight", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
