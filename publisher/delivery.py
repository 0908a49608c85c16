"""The delivery engine (store, transport and clock I/O): claim, send, record, retry.

Each ``[delivery] connections`` worker thread has its own transport connection and loops:
claim a batch of due deliveries under a lease, personalise and send each message, and
record the results in one transaction per batch, or sooner when a second has passed. A
crash leaves claimed rows in ``sending``; when their lease expires they are claimed again,
so nothing queued is lost and only messages in flight at the crash can go twice (with the
same Message-ID). Temporary failures (4xx, dropped connections) are retried with
exponential backoff and jitter; 5xx replies are permanent.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.config import DeliveryConfig
from publisher.errors import DeliveryError
from publisher.messages import MessageTemplate, Personal, personalize
from publisher.models import Recipient, SendOutcome
from publisher.store import Store
from publisher.transports import Transport

FLUSH_SECONDS = 1.0


@dataclass
class DeliveryResult:
    """Counts of one delivery run of an issue."""

    sent: int = 0
    failed: int = 0
    retrying: int = 0


def retry_delay(attempt: int, delivery_id: int, base_seconds: int) -> timedelta:
    """Exponential backoff with deterministic jitter: base * 2^(attempt-1) * [1, 1.5)."""
    jitter = int(hashlib.sha256(f"{delivery_id}:{attempt}".encode()).hexdigest()[:4], 16) / 0x10000
    seconds = base_seconds * (2 ** max(0, attempt - 1)) * (1 + jitter / 2)
    return timedelta(seconds=min(seconds, 6 * 3600))


class RateLimiter:
    """A token bucket shared by every sending thread (``rate`` messages per second)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        """Block until the next message may go."""
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            time.sleep(start - now)


def worker_name() -> str:
    """Identifies this process in the ledger's ``claimed_by`` column."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Urls:
    """Builds per-recipient unsubscribe and preferences URLs."""

    def __init__(self, base_url: str, make_token: Callable[[str, int, str], str]) -> None:
        self.base = base_url.rstrip("/")
        self.make_token = make_token

    def personal(self, recipient: Recipient) -> Personal:
        return Personal(
            subscriber_id=recipient.subscriber_id,
            email=recipient.email,
            name=recipient.name,
            unsubscribe_url=f"{self.base}/unsubscribe/"
            + self.make_token("unsubscribe", recipient.subscriber_id, recipient.digest_id),
            preferences_url=f"{self.base}/preferences/"
            + self.make_token("preferences", recipient.subscriber_id, ""),
        )


def deliver_issue(
    store: Store,
    template: MessageTemplate,
    transport_factory: Callable[[], Transport],
    settings: DeliveryConfig,
    *,
    base_url: str,
    make_token: Callable[[str, int, str], str],
    clock: Callable[[], datetime],
    label: str,
    stop: threading.Event | None = None,
) -> DeliveryResult:
    """Send every due delivery of the issue; return the counts of this run."""
    stop = stop or threading.Event()
    limiter = RateLimiter(settings.rate_limit)
    urls = _Urls(base_url, make_token)
    result = DeliveryResult()
    lock = threading.Lock()
    worker = worker_name()

    def record(pending: list[tuple[SendOutcome, int]]) -> None:
        store.record_outcomes(
            pending,
            clock(),
            max_attempts=settings.max_attempts,
            retry_at=lambda attempt, delivery_id: (
                clock() + retry_delay(attempt, delivery_id, settings.retry_base_seconds)
            ),
        )
        with lock:
            for outcome, attempt in pending:
                if outcome.ok:
                    result.sent += 1
                elif outcome.permanent or attempt >= settings.max_attempts:
                    result.failed += 1
                else:
                    result.retrying += 1

    def run_worker(index: int) -> None:
        transport = transport_factory()
        transport.open()
        try:
            while not stop.is_set():
                batch = store.claim_batch(
                    template.issue_id,
                    f"{worker}/{index}",
                    clock(),
                    settings.batch_size,
                    settings.lease_seconds,
                )
                if not batch:
                    return
                pending: list[tuple[SendOutcome, int]] = []
                flushed = time.monotonic()
                for recipient in batch:
                    if stop.is_set():
                        break
                    limiter.wait()
                    message = personalize(template, urls.personal(recipient))
                    name = f"{label}-{recipient.subscriber_id:07d}"
                    try:
                        reply = transport.send(settings.from_, recipient.email, message, name)
                        pending.append(
                            (SendOutcome(recipient.delivery_id, True, reply), recipient.attempts)
                        )
                    except DeliveryError as exc:
                        pending.append(
                            (
                                SendOutcome(
                                    recipient.delivery_id,
                                    False,
                                    exc.message,
                                    exc.permanent,
                                    exc.code,
                                ),
                                recipient.attempts,
                            )
                        )
                    if time.monotonic() - flushed >= FLUSH_SECONDS:
                        record(pending)
                        pending, flushed = [], time.monotonic()
                record(pending)
        finally:
            transport.close()

    workers = max(1, settings.connections)
    if workers == 1:
        run_worker(0)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
            for future in [pool.submit(run_worker, i) for i in range(workers)]:
                future.result()
    return result
