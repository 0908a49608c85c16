"""The figures that monitoring reads (store reads; no output of its own).

One function, :func:`figures`, computes them; ``/metrics`` (:mod:`publisher.web.health`)
and ``publisher status --json`` (:mod:`publisher.ops.reports`) both print what it returns,
so the two can never disagree about what a number means. Everything is read from the
store at the moment of asking: the senders are other processes (often on other hosts), so
nothing is counted in this process's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.app import App
from publisher.deliver import liveness

# Trailing windows of the send rate, in seconds, with the names the outputs use.
SEND_WINDOWS = {60: "1m", 300: "5m"}
WORKER_STATES = (liveness.ALIVE, liveness.UNKNOWN, liveness.GONE)


@dataclass(frozen=True)
class Figures:
    """The state of sending at one instant, as monitoring sees it.

    ``queued``: queued deliveries of open (``sending``) issues, i.e. what workers will send;
    ``sending``: deliveries a worker has claimed and is sending now;
    ``sent``: deliveries recorded sent in each trailing window (``"1m"``, ``"5m"``);
    ``relays``: each configured relay's label and whether it is healthy (``smtp`` only);
    ``issues``: issues by status (``sending``, ``paused``, ``sent``, ``cancelled`` ...);
    ``workers``: registered sending processes by liveness (``alive``, ``unknown``, ``gone``);
    ``retry_queue``: of ``queued``, the deliveries waiting for a retry;
    ``failing_sources``: sources whose last run failed.
    """

    at: datetime
    queued: int
    sending: int
    sent: dict[str, int]
    relays: dict[str, bool]
    issues: dict[str, int]
    workers: dict[str, int]
    retry_queue: int
    failing_sources: int

    @property
    def open_issues(self) -> int:
        """Issues being sent (status ``sending``)."""
        return self.issues.get("sending", 0)

    @property
    def paused_issues(self) -> int:
        """Issues an operator paused (status ``paused``): their queue waits."""
        return self.issues.get("paused", 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``status --json`` (key ``monitoring``): counts are integers."""
        return {
            "at": self.at.isoformat(),
            "queue": {"queued": self.queued, "sending": self.sending},
            "sent": dict(self.sent),
            "relays": dict(self.relays),
            "open_issues": self.open_issues,
            "paused_issues": self.paused_issues,
            "workers": dict(self.workers),
            "retry_queue": self.retry_queue,
            "failing_sources": self.failing_sources,
        }


def relay_health(app: App) -> dict[str, bool]:
    """Each configured relay's label and whether the shared health table calls it healthy.

    Only the ``smtp`` transport has relays; a relay never seen failing has no row and is
    healthy.
    """
    if app.config.delivery.transport != "smtp":
        return {}
    states = app.store.relay_states()
    return {
        relay.label: (state := states.get(relay.label)) is None or state.healthy
        for relay in app.config.relay_list
    }


def figures(app: App, now: datetime | None = None) -> Figures:
    """Read the figures from the store at ``now`` (default: the app's clock)."""
    now = now or app.clock()
    ledger = app.store.ledger_figures(now, tuple(SEND_WINDOWS))
    workers = dict.fromkeys(WORKER_STATES, 0)
    for _row, state in liveness.worker_states(app.store).values():
        workers[state] = workers.get(state, 0) + 1
    return Figures(
        at=now,
        queued=ledger.queued,
        sending=ledger.sending,
        sent={SEND_WINDOWS[s]: n for s, n in ledger.sent_windows.items()},
        relays=relay_health(app),
        issues=dict(sorted(ledger.issues_by_status.items())),
        workers=workers,
        retry_queue=ledger.retry_queue,
        failing_sources=ledger.failing_sources,
    )
