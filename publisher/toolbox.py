"""What the operator's commands report (store reads; no output of its own).

``publisher status --json`` and ``publisher issues list --json`` print these dictionaries
as they are, so their keys are a contract for monitoring: datetimes are ISO 8601 strings
in UTC, counts are integers, and a missing value is ``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from publisher import liveness, planning
from publisher.models import Issue
from publisher.store import Store

COUNT_KEYS = ("queued", "sending", "sent", "failed", "bounced", "skipped")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def issue_data(store: Store, issue: Issue) -> dict[str, Any]:
    """One issue with its delivery counts (every state present, zero when none)."""
    return {
        "id": issue.id,
        "digest": issue.digest_id,
        "period": issue.period,
        "cadence": store.issue_cadence(issue.id),
        "subject": issue.subject,
        "status": issue.status,
        "created_at": _iso(issue.created_at),
        "articles": len(issue.article_ids),
        "counts": store.delivery_counts(issue.id),
    }


def status_data(app: Any, now: datetime, recent: int = 20) -> dict[str, Any]:
    """Digests with their next fire time and last issue, recent issues, failing sources,
    the retry queue, the relay's last slow-down, the article count and the registered
    sending processes (state alive/gone/unknown, claims held, lease)."""
    store: Store = app.store
    digests = []
    for digest in app.config.digests:
        period = planning.current_period(digest, now)
        last = store.last_issue(digest.id)
        digests.append(
            {
                "id": digest.id,
                "schedule": digest.schedule,
                "timezone": digest.timezone,
                "current_period": period.key if period else None,
                "next_fire_time": _iso(planning.next_fire_time(digest, now)),
                "last_issue": issue_data(store, last) if last else None,
            }
        )
    sources = [
        {
            "source": s["source"],
            "consecutive_failures": s["consecutive_failures"],
            "last_error": s["last_error"],
            "last_success_at": _iso(s["last_success_at"]),
        }
        for s in store.source_states()
    ]
    throttle = store.throttle()
    if throttle and throttle["until"] <= now:
        throttle = None
    return {
        "now": _iso(now),
        "digests": digests,
        "issues": [issue_data(store, i) for i in store.list_issues(recent)],
        "failing_sources": [s for s in sources if s["last_error"]],
        "retry_queue": store.retry_queue_size(),
        "throttle": None
        if throttle is None
        else {"until": _iso(throttle["until"]), "reply": throttle["reply"]},
        "articles": store.count_articles(),
        "workers": liveness.workers_data(store),
    }
