"""Outgoing webhooks (store and network I/O): deliver what is due, list hooks, history.

:func:`deliver_due` is one pass of the dispatcher: it claims due events of the configured
hooks that are on, POSTs each (signed, see :mod:`publisher.deliver.webhooks`), and records
the outcome. A failed POST is retried after the hook's ``retries`` waits (1 min, 5 min,
30 min, 2 h, 6 h, 12 h, 24 h by default), then given up; after ``max_failures`` failed
attempts in a row the hook is turned off until :func:`enable`. Once one POST to a hook
fails, the rest of that hook's batch waits for the next pass rather than hammer a
receiver that is down. ``publisher run``, ``publisher worker`` and ``publisher webhooks
deliver`` run it; the console and the CLI read :func:`hooks` and :func:`history`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from publisher.app import App
from publisher.config import WebhookConfig, parse_duration, secret_from_env
from publisher.deliver import webhooks as wire
from publisher.errors import PublisherError
from publisher.services.audit import Actor, entry
from publisher.store.webhooks import AttemptResult, WebhookClaim

log = logging.getLogger("publisher.services.webhooks")
KEEP = timedelta(days=30)  # attempts, and events every hook is done with, are kept this long
BATCH = 100


@dataclass
class DeliveryPass:
    """What one pass did: events delivered, failed (to retry), given up, hooks turned off."""

    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    turned_off: list[str] = field(default_factory=list)
    deferred: int = 0  # left for the next pass after their hook failed in this one

    @property
    def attempts(self) -> int:
        """POSTs made."""
        return self.delivered + self.failed + self.given_up


@dataclass(frozen=True)
class HookState:
    """A configured hook with its stored state (what ``webhooks list`` shows)."""

    name: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    failures: int
    pending: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    disabled_at: datetime | None
    last_error: str


@dataclass(frozen=True)
class Attempt:
    """One POST made (what ``webhooks history`` shows)."""

    id: int
    at: datetime
    hook: str
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


def _sync(app: App) -> dict[str, WebhookConfig]:
    configured = {hook.label: hook for hook in app.config.webhooks}
    app.store.sync_webhooks([(name, hook.url) for name, hook in configured.items()])
    return configured


def retry_at(hook: WebhookConfig, attempt: int, now: datetime) -> datetime | None:
    """When attempt ``attempt`` (1-based) of a failed event is retried; None: give up."""
    if attempt > len(hook.retries):
        return None
    return now + timedelta(seconds=parse_duration(hook.retries[attempt - 1]))


def deliver_due(app: App, *, stop: threading.Event | None = None, limit: int = BATCH) -> DeliveryPass:
    """Deliver every webhook event that is due now, in batches of ``limit``; one pass."""
    report = DeliveryPass()
    if not app.config.webhooks:
        return report
    configured = _sync(app)
    lease = timedelta(seconds=max(h.timeout for h in configured.values()) * 2 + 30)
    with httpx.Client(headers={"Connection": "close"}) as client:
        while stop is None or not stop.is_set():
            claims = app.store.claim_webhooks(list(configured), app.clock(), lease, limit)
            if not claims:
                break
            failing: dict[str, datetime] = {}  # hook -> when its other events may go
            for claim in claims:
                if stop is not None and stop.is_set():
                    app.store.release_webhooks([claim], app.clock())
                    continue
                if claim.hook in failing:
                    app.store.release_webhooks([claim], app.clock(), until=failing[claim.hook])
                    report.deferred += 1
                    continue
                hook = configured[claim.hook]
                if not _attempt(app, client, hook, claim, report):
                    now = app.clock()
                    pause = retry_at(hook, claim.attempt, now) or retry_at(hook, 1, now) or now
                    failing[claim.hook] = pause
                    app.store.release_webhooks([], now, until=pause, hooks=[claim.hook])
            if len(claims) < limit:
                break
    app.store.prune_webhooks(app.clock() - KEEP)
    return report


def _attempt(
    app: App, client: httpx.Client, hook: WebhookConfig, claim: WebhookClaim, report: DeliveryPass
) -> bool:
    """POST one claimed event and record it; return whether it was delivered."""
    secret = secret_from_env(hook.secret_env, what=f"[[webhooks]] {hook.label} secret_env")
    if secret is None:
        code, error, ms = None, f"the variable {hook.secret_env} (secret_env) is not set", 0
    else:
        body = wire.envelope(claim.event_id, claim.event_type, claim.created_at.isoformat(), claim.data)
        now_unix = int(app.clock().timestamp())
        signed = wire.headers(secret, claim.event_id, claim.event_type, claim.attempt, body, now_unix)
        code, error, ms = wire.post(client, hook.url, body, signed, hook.timeout)
    ok = code is not None and 200 <= code < 300
    now = app.clock()
    again = None if ok else retry_at(hook, claim.attempt, now)
    off = app.store.record_webhook_attempt(
        claim, AttemptResult(ok, code, error, ms), now, retry_at=again, max_failures=hook.max_failures
    )
    if ok:
        report.delivered += 1
    elif again is not None:
        report.failed += 1
        log.warning("webhook %s: %s %s failed (%s); retry at %s", hook.label, claim.event_type,
                    claim.event_id, error, again.isoformat())  # fmt: skip
    else:
        report.given_up += 1
        log.error("webhook %s: %s %s given up after %d attempts (%s)", hook.label,
                  claim.event_type, claim.event_id, claim.attempt, error)  # fmt: skip
    if off:
        report.turned_off.append(hook.label)
        log.error("webhook %s turned off after %d failures in a row; "
                  "`publisher webhooks enable %s` turns it back on", hook.label,
                  hook.max_failures, hook.label)  # fmt: skip
    return ok


def next_due(app: App) -> datetime | None:
    """When the next webhook event is due (None: nothing waits)."""
    if not app.config.webhooks:
        return None
    return app.store.next_webhook_due()


def hooks(app: App) -> list[HookState]:
    """The configured hooks with their state: on or off, failures in a row, pending events."""
    configured = _sync(app) if app.config.webhooks else {}
    states = app.store.webhook_states()
    found = []
    for name, hook in configured.items():
        s = states.get(name, {})
        found.append(
            HookState(
                name=name, url=hook.url, events=hook.events, enabled=bool(s.get("enabled", 1)),
                failures=int(s.get("failures") or 0), pending=int(s.get("pending") or 0),
                last_success_at=s.get("last_success_at"), last_failure_at=s.get("last_failure_at"),
                disabled_at=s.get("disabled_at"), last_error=s.get("last_error") or "",
            )
        )  # fmt: skip
    return found


def history(
    app: App, limit: int = 50, *, hook: str | None = None, before_id: int | None = None
) -> list[Attempt]:
    """The newest POSTs first, ``limit`` at most, optionally of one hook; keyset pages
    (pass the last :attr:`Attempt.id` as ``before_id``)."""
    rows = app.store.webhook_history(limit, hook=hook, before_id=before_id)
    return [
        Attempt(
            id=r["id"], at=r["at"], hook=r["hook"], event_id=r["event_id"],
            event_type=r["event_type"], attempt=r["attempt"], status_code=r["status_code"],
            error=r["error"] or "", duration_ms=r["duration_ms"],
        )
        for r in rows
    ]  # fmt: skip


def enable(app: App, name: str, *, actor: Actor) -> HookState:
    """Turn hook ``name`` back on (audited): failures start again at 0 and the events it
    missed while off are due at once."""
    configured = _sync(app) if app.config.webhooks else {}
    if name not in configured:
        known = ", ".join(configured) or "none configured"
        raise PublisherError(f"no webhook {name!r} in [[webhooks]] (known: {known})")
    app.store.enable_webhook(name, app.clock(), entry(app, actor, "webhook.enable", name))
    return next(h for h in hooks(app) if h.name == name)
