"""Progress of long sends and the per-issue delivery view (terminal I/O; store reads).

On a terminal, a send shows a rich progress bar per issue. Off a terminal (cron, systemd,
a pipe) it writes a plain line at most every ``interval`` seconds instead. Both are fed by
the delivery engine's progress callback with the running counts.

:func:`issue_view` gathers what ``publisher status ISSUE`` prints: counts by state, the
send rate over the last minute, an ETA, the relay's last "slow down" and the most common
failure replies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from publisher.deliver.engine import DeliveryResult
from publisher.models import Issue
from publisher.store import Store

RATE_WINDOW = timedelta(seconds=60)

ProgressFactory = Callable[[Issue], Callable[[DeliveryResult], None]]


def _pending(store: Store, issue: Issue) -> int:
    counts = store.delivery_counts(issue.id)
    return counts["queued"] + counts["sending"]


def _label(issue: Issue) -> str:
    return f"{issue.digest_id} {issue.period} (#{issue.id})"


def format_seconds(seconds: float) -> str:
    """``42s``, ``7m05s`` or ``2h03m``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def plain_lines(
    store: Store, stream: TextIO, interval: float = 5.0, clock: Callable[[], float] = time.monotonic
) -> ProgressFactory:
    """Progress as one log line per ``interval`` seconds (for logs and pipes)."""

    def factory(issue: Issue) -> Callable[[DeliveryResult], None]:
        total = _pending(store, issue)
        last = [clock()]
        lock = threading.Lock()

        def update(result: DeliveryResult) -> None:
            now = clock()
            with lock:
                if now - last[0] < interval and result.done < total:
                    return
                last[0] = now
            elapsed = max(1e-6, now - result.started_at)
            rate = result.done / elapsed
            eta = (total - result.done) / rate if rate > 0 else 0
            stream.write(
                f"progress  {_label(issue)}: {result.done}/{total} done ({result.sent} sent, "
                f"{result.failed} failed, {result.bounced} bounced, {result.retrying} to retry), "
                f"{rate:.0f} msg/s, ETA {format_seconds(eta)}\n"
            )
            stream.flush()

        return update

    return factory


@contextmanager
def progress_bars(store: Store) -> Iterator[ProgressFactory]:
    """A rich progress bar per issue, shown while the ``with`` block runs."""
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.0f} msg/s"),
        TimeRemainingColumn(),
    )

    def factory(issue: Issue) -> Callable[[DeliveryResult], None]:
        task = bars.add_task(_label(issue), total=_pending(store, issue), rate=0.0)

        def update(result: DeliveryResult) -> None:
            elapsed = max(1e-6, time.monotonic() - result.started_at)
            bars.update(task, completed=result.done, rate=result.done / elapsed)

        return update

    with bars:
        yield factory


@dataclass
class IssueView:
    """What ``publisher status ISSUE`` shows about one issue."""

    issue: Issue
    counts: dict[str, int]
    rate: float  # messages recorded sent per second over the last minute
    eta_seconds: float | None
    throttle: dict[str, Any] | None
    failures: list[tuple[str, int]] = field(default_factory=list)
    next_retry_at: datetime | None = None


def issue_view(store: Store, issue: Issue, now: datetime) -> IssueView:
    """Counts, recent send rate, ETA, active slow-down and common failures of an issue."""
    counts = store.delivery_counts(issue.id)
    recent, _first = store.sent_since(issue.id, now - RATE_WINDOW)
    rate = recent / RATE_WINDOW.total_seconds()
    pending = counts["queued"] + counts["sending"]
    eta = pending / rate if rate > 0 and pending else (0.0 if not pending else None)
    throttle = store.throttle()
    if throttle is not None and throttle["until"] <= now:
        throttle = None
    return IssueView(
        issue=issue,
        counts=counts,
        rate=rate,
        eta_seconds=eta,
        throttle=throttle,
        failures=store.failures(issue.id, 5),
        next_retry_at=store.next_retry_at(issue.id) if counts["queued"] else None,
    )


@contextmanager
def attached(app: Any, stream: TextIO) -> Iterator[None]:
    """Show delivery progress of ``app``'s sends: bars on a terminal, else plain lines."""
    if stream.isatty():
        with progress_bars(app.store) as factory:
            app.progress = factory
            try:
                yield
            finally:
                app.progress = None
    else:
        app.progress = plain_lines(app.store, stream)
        try:
            yield
        finally:
            app.progress = None


@contextmanager
def bar(label: str, total: int | None, *, stream: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar for a long command on a terminal; off a terminal, nothing at all.

    Yields ``advance(n)``. Used by ``collect`` (per source) and ``subscribers import``
    (per row); sends have their own view above.
    """
    import sys

    out = stream or sys.stderr
    if not out.isatty():
        yield lambda n=1: None
        return
    from rich.console import Console

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=out),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)
