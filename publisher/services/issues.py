"""What an operator does to issues (store I/O; sending goes through :mod:`.sending`):
cancel, pause, resume, requeue the failed, send now.

Plain functions for every door: the CLI calls them today, the console and the API call the
same ones. They know neither click nor Starlette, take the :class:`~publisher.app.App`
and plain values, and raise :class:`~publisher.errors.PublisherError` with one clear line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import Issue, SendReport
from publisher.services import sending
from publisher.store import PAUSED


@dataclass(frozen=True)
class Paused:
    """What pausing (or resuming) an issue found: deliveries queued and in flight then."""

    issue: Issue
    queued: int
    sending: int


@dataclass(frozen=True)
class Cancelled:
    """What cancelling an issue did."""

    issue: Issue
    skipped: int
    released: int


def get_issue(app: App, issue_id: int) -> Issue:
    """The issue ``issue_id``, or a PublisherError naming it."""
    issue = app.store.get_issue(issue_id)
    if issue is None:
        raise PublisherError(f"no issue #{issue_id} (see `publisher issues list`)")
    return issue


def cancel_issue(app: App, issue_id: int, *, release_articles: bool = True) -> Cancelled:
    """Stop an issue: its queued deliveries are skipped and no run resumes it.

    Messages in flight finish. With ``release_articles`` a regular issue's articles go
    into the digest's next issue. An issue with nothing left to send is refused.
    """
    issue = get_issue(app, issue_id)
    skipped, released = app.store.cancel_issue(
        issue_id, app.clock(), release_articles=release_articles
    )
    return Cancelled(issue=issue, skipped=skipped, released=released)


def pause_issue(app: App, issue_id: int) -> Paused:
    """Pause an issue: its queued deliveries stay queued and nothing sends them until
    :func:`resume_issue`.

    A sender busy with it (any process, any host) stops claiming within about a second;
    the messages in flight finish and are recorded, the rest of its batch goes back to
    the queue. A sent or cancelled issue, one already paused and one with nothing left to
    send are refused with a PublisherError.
    """
    change = app.store.pause_issue(issue_id, app.clock())
    if change.before is None:
        raise PublisherError(f"no issue #{issue_id} (see `publisher issues list`)")
    if change.before == PAUSED:
        raise PublisherError(
            f"issue #{issue_id} is already paused ({change.queued} queued)",
            hint=f"`publisher issues resume {issue_id}` lets the rest go",
        )
    if change.before in ("sent", "cancelled"):
        raise PublisherError(f"issue #{issue_id} is {change.before}: there is nothing to pause")
    if not change.changed:
        raise PublisherError(f"issue #{issue_id} has nothing left to send: not paused")
    return Paused(get_issue(app, issue_id), change.queued, change.sending)


def resume_issue(app: App, issue_id: int) -> Paused:
    """Make a paused issue sendable again: the next ``send``, ``run`` or ``worker`` (or the
    running daemon or worker, at its next poll) sends what is queued.

    Nothing is sent here. An issue that is not paused is refused with a PublisherError.
    """
    change = app.store.resume_issue(issue_id, app.clock())
    if change.before is None:
        raise PublisherError(f"no issue #{issue_id} (see `publisher issues list`)")
    if not change.changed:
        raise PublisherError(f"issue #{issue_id} is not paused ({change.before}): nothing to resume")
    return Paused(get_issue(app, issue_id), change.queued, change.sending)


def requeue_failed(app: App, issue_id: int) -> tuple[Issue, int]:
    """Queue an issue's failed deliveries again with a fresh retry budget.

    Bounced addresses are not retried; messages already sent are never sent again.
    Returns the (reopened) issue and how many deliveries were requeued. A paused issue
    stays paused: what was requeued waits for :func:`resume_issue`.
    """
    issue = get_issue(app, issue_id)
    requeued = app.store.requeue_failed(issue_id, app.clock())
    return app.store.get_issue(issue_id) or issue, requeued


def send_now(app: App, digest_id: str) -> list[SendReport]:
    """Create the digest's due issue (if it has new articles) and queue its deliveries.

    Nothing is sent here: a ``publisher worker`` or the daemon sends what is queued, so a
    web request or an API call never holds a connection to the relay.
    """
    return sending.send_digest(app, digest_id, queue_only=True)


def deliver(app: App, issue: Issue, stop: threading.Event | None = None) -> SendReport:
    """Send an open issue's due deliveries in this process (the CLI's ``resend``)."""
    return sending.deliver_open_issue(app, issue, stop)
