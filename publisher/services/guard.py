"""Auto-pause: an issue stops itself on a bad hard-bounce or complaint rate (store I/O).

:func:`check_issue` is called by the sending loop (about once a second, and after every
``CHECK_RESULTS`` results, see :mod:`publisher.deliver.engine`) and whenever a bounce or a
complaint is recorded about a subscriber an open issue reached (:func:`after_signal`). Once
the issue has ``pause_min_sent`` final outcomes (sent, failed, bounced), its rates
(:meth:`publisher.store.Store.issue_signals`) are compared with the digest's thresholds; past
one, the issue is paused with the operator's pause (queued deliveries kept), the reason is
stored, a WARNING is logged and ``issue.paused`` carries the reason to webhooks.

After an operator resumes it, the issue is paused again only when a rate gets clearly worse
than at the last auto-pause: past its threshold *and* past :data:`REPAUSE_FACTOR` times its
value then (a resume at 6% bounces re-pauses at 7.5%). Resuming says "I have seen these
figures", so the same figures, give or take the noise of the next messages, never stop it
twice, but more bad news does.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from publisher.app import App
from publisher.store import Signals

log = logging.getLogger("publisher.guard")

COMPLAINT_WINDOW = timedelta(days=7)  # complaints count this long after the send
MIN_GAP_SECONDS = 0.2  # the sending loop's checks of one issue, at most this often per process
REPAUSE_FACTOR = 1.25  # after a resume, how much worse a rate must get to pause again


@dataclass(frozen=True)
class Thresholds:
    """A digest's auto-pause thresholds (its own keys, else ``[delivery]``'s)."""

    bounce_rate: float
    complaint_rate: float
    min_sent: int


def thresholds(app: App, digest_id: str) -> Thresholds:
    """The thresholds for ``digest_id`` (the ``[delivery]`` ones for an unknown digest)."""
    d = app.config.delivery
    digest = next((g for g in app.config.digests if g.id == digest_id), None)

    def pick(key: str) -> Any:
        own = getattr(digest, key, None) if digest is not None else None
        return own if own is not None else getattr(d, key)

    return Thresholds(
        pick("pause_bounce_rate"), pick("pause_complaint_rate"), pick("pause_min_sent")
    )


def _percent(rate: float) -> str:
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def verdict(
    signals: Signals, limits: Thresholds, seen: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The auto-pause reason for these figures, or None (pure).

    ``seen`` is the issue's previous auto-pause record: once resumed, a rate must pass both
    its threshold and :data:`REPAUSE_FACTOR` times its value at that pause.
    """
    if signals.final < limits.min_sent:
        return None
    checks = (
        ("bounce", "hard-bounce", signals.bounce_rate, signals.hard, limits.bounce_rate,
         "pause_bounce_rate", (seen or {}).get("bounce_seen", 0.0)),
        ("complaint", "complaint", signals.complaint_rate, signals.complaints,
         limits.complaint_rate, "pause_complaint_rate", (seen or {}).get("complaint_seen", 0.0)),
    )  # fmt: skip
    for kind, label, rate, count, threshold, key, before in checks:
        if rate > threshold and rate > before * REPAUSE_FACTOR:
            reason = (
                f"{label} rate {_percent(rate)} ({count} of {signals.final}) passed "
                f"{key} {_percent(threshold)}"
            )
            return {
                "kind": kind, "rate": rate, "threshold": threshold, "final": signals.final,
                "reason": reason, "bounce_seen": signals.bounce_rate,
                "complaint_seen": signals.complaint_rate,
            }  # fmt: skip
    return None


def check_issue(app: App, issue_id: int, digest_id: str | None = None) -> dict[str, Any] | None:
    """Pause the issue if its figures pass a threshold; return the reason when it did."""
    if digest_id is None:
        issue = app.store.get_issue(issue_id)
        if issue is None:
            return None
        digest_id = issue.digest_id
    signals = app.store.issue_signals(issue_id, COMPLAINT_WINDOW)
    reason = verdict(signals, thresholds(app, digest_id), app.store.autopause_of(issue_id))
    if reason is None:
        return None
    change = app.store.pause_issue(issue_id, app.clock(), reason=reason)
    if not change.changed:
        return None  # already paused, finished or cancelled meanwhile: nothing to alert
    log.warning(
        "issue #%d (%s) paused automatically: %s; %d queued kept; "
        "`publisher issues resume %d` or `cancel %d`",
        issue_id, digest_id, reason["reason"], change.queued, issue_id, issue_id,
    )  # fmt: skip
    return reason


class IssueWatch:
    """The sending loop's ``watch`` for one issue: :func:`check_issue`, at most every
    :data:`MIN_GAP_SECONDS` per process, so a fast sender does not count a large issue's
    ledger many times a second."""

    def __init__(self, app: App, issue_id: int, digest_id: str) -> None:
        self.app, self.issue_id, self.digest_id = app, issue_id, digest_id
        self.last = float("-inf")
        self.lock = threading.Lock()

    def __call__(self) -> None:
        """Check the issue unless it was checked moments ago (by any sending thread)."""
        with self.lock:
            now = time.monotonic()
            if now - self.last < MIN_GAP_SECONDS:
                return
            self.last = now
        check_issue(self.app, self.issue_id, self.digest_id)


def after_signal(app: App, subscriber_id: int) -> list[dict[str, Any]]:
    """A bounce or complaint about ``subscriber_id`` was recorded: check the open issues
    that reached them; return the reasons of those it paused."""
    paused = []
    for issue_id in app.store.open_issues_of(subscriber_id):
        reason = check_issue(app, issue_id)
        if reason is not None:
            paused.append(reason)
    return paused


def pause_reason(app: App, issue_id: int) -> str | None:
    """Why the issue is paused, when it paused itself and is still paused; else None."""
    record = app.store.autopause_of(issue_id)
    if record is None or record["resumed_at"] is not None:
        return None
    return str(record["reason"])


def autopaused(app: App) -> list[dict[str, Any]]:
    """Issues paused by the auto-pause and not resumed yet: ``issue``, ``digest``,
    ``period``, ``queued`` and ``reason`` (for the console's dashboard)."""
    found = []
    for issue, queued in app.store.paused_issues():
        why = pause_reason(app, issue.id)
        if why is not None:
            found.append({"issue": issue.id, "digest": issue.digest_id, "period": issue.period,
                          "queued": queued, "reason": why})  # fmt: skip
    return found
