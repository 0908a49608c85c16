"""The webhook dispatcher loop of ``publisher run`` and ``publisher worker`` (a thread).

While the daemon or a worker runs, a background thread delivers due webhook events
(:func:`publisher.services.webhooks.deliver_due`) and then sleeps until the next one is
due, or ``poll_seconds``, whichever is sooner: a new event (a sign-up in the web process,
a send in another worker) is picked up within that time. Any number of these loops, in
any number of processes, can share one store: claims keep each event to one sender. A
failing pass is logged and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from publisher.app import App

log = logging.getLogger("publisher.ops.webhooks")


def _loop(app: App, stop: threading.Event, poll_seconds: float) -> None:
    from publisher.services import webhooks

    while not stop.is_set():
        try:
            report = webhooks.deliver_due(app, stop=stop)
            if report.attempts:
                log.info("webhooks: %d delivered, %d to retry, %d given up",
                         report.delivered, report.failed, report.given_up)  # fmt: skip
            due = webhooks.next_due(app)
        except Exception:  # noqa: BLE001 - a bad pass must not end the daemon's deliveries
            log.exception("webhook delivery pass failed; trying again in %.0fs", poll_seconds)
            due = None
        wait = poll_seconds
        if due is not None:
            wait = max(0.05, min(poll_seconds, (due - app.clock()).total_seconds()))
        stop.wait(wait)


@contextmanager
def webhook_pump(
    app: App, stop: threading.Event | None = None, poll_seconds: float = 5.0
) -> Iterator[None]:
    """Run the dispatcher thread while the block runs (nothing when no hook is configured);
    it ends with the block, or earlier when ``stop`` is set."""
    if not app.config.webhooks:
        yield
        return
    done = threading.Event()
    thread = threading.Thread(
        target=_loop, args=(app, done, poll_seconds), name="webhooks", daemon=True
    )
    watcher = None
    if stop is not None:
        watcher = threading.Thread(
            target=lambda: (stop.wait(), done.set()), name="webhooks-stop", daemon=True
        )
        watcher.start()
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=70)
