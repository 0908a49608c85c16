"""What the operator's commands report (store reads; no output of its own).

``publisher status --json`` and ``publisher issues list --json`` print these dictionaries
as they are, so their keys are a contract for monitoring: datetimes are ISO 8601 strings
in UTC, counts are integers, and a missing value is ``null``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from publisher.compose import planning
from publisher.deliver import liveness
from publisher.models import Issue
from publisher.services import guard, monitoring
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
    the retry queue, the relay's last slow-down, the article count, held sends, the
    issues an operator paused (with their queued count), each relay's health, the limits
    paused cluster-wide now, the registered sending processes (state
    alive/gone/unknown, claims held, lease) and the webhooks' states; under ``monitoring`` the figures
    ``/metrics`` serves (:func:`publisher.services.monitoring.figures`)."""
    store: Store = app.store
    figures = monitoring.figures(app, now)
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
        "retry_queue": figures.retry_queue,
        "throttle": None
        if throttle is None
        else {"until": _iso(throttle["until"]), "reply": throttle["reply"]},
        "articles": store.count_articles(),
        "relays": relay_data(app),
        "paused": [
            {"key": b["key"], "until": _iso(b["until"]), "reply": b["reply"]}
            for b in store.paused_buckets()
        ],
        "held": held_data(store, now, recent),
        "paused_issues": [
            {"issue": i.id, "digest": i.digest_id, "period": i.period, "queued": queued,
             "reason": guard.pause_reason(app, i.id)}  # None: paused by an operator
            for i, queued in store.paused_issues()
        ],
        "workers": liveness.workers_data(store),
        "webhooks": webhook_data(app),
        "monitoring": figures.as_dict(),
    }


def webhook_data(app: Any) -> list[dict[str, Any]]:
    """Each configured webhook's state: on or off (since when), failures in a row, pending
    events, the last error. Read only: a hook never delivered yet shows as on."""
    states = app.store.webhook_states()
    found = []
    for hook in app.config.webhooks:
        s = states.get(hook.label, {})
        found.append(
            {
                "name": hook.label,
                "enabled": bool(s.get("enabled", 1)),
                "disabled_at": _iso(s.get("disabled_at")),
                "failures": int(s.get("failures") or 0),
                "pending": int(s.get("pending") or 0),
                "last_error": s.get("last_error") or "",
            }
        )
    return found


def relay_data(app: Any) -> list[dict[str, Any]]:
    """Each relay (``smtp`` transport only) with its shared health: ``state`` is
    ``healthy`` or ``unhealthy``; ``recheck_at`` says when an unhealthy one is tried again."""
    if app.config.delivery.transport != "smtp":
        return []
    states = app.store.relay_states()
    rows = []
    for relay in app.config.relay_list:
        state = states.get(relay.label)
        healthy = state is None or state.healthy
        rows.append(
            {
                "name": relay.label,
                "host": relay.host,
                "port": relay.port,
                "priority": relay.priority,
                "rate": relay.rate,
                "state": "healthy" if healthy else "unhealthy",
                "failures": state.failures if state else 0,
                "refusals": state.refusals if state else 0,
                "last_error": state.last_error if state and state.last_error else None,
                "changed_at": _iso(state.changed_at) if state else None,
                "recheck_at": None
                if healthy or state is None
                else _iso(datetime.fromtimestamp(state.recheck_at, UTC)),
            }
        )
    return rows


def held_data(store: Store, now: datetime, recent: int = 20) -> list[dict[str, Any]]:
    """Open issues whose first attempts a ``send_window`` still holds: how many, until when."""
    held = []
    for issue in store.list_issues(recent):
        if issue.status != "sending":
            continue
        count, until = store.held_deliveries(issue.id, now)
        if count:
            held.append({"issue": issue.id, "count": count, "until": _iso(until)})
    return held
