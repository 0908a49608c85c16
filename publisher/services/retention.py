"""Retention: ``publisher purge`` (store I/O): old rows go, the counts stay.

:func:`purge` removes what is older than the cut-off (see
:mod:`publisher.store.retention`): delivery rows of finished issues (their counts rolled into
``issue_totals`` first), audit entries, settled webhook events and attempts, failed-login
records; and whatever has expired: console sessions and the API's idempotency keys.
Engagement events are purged by the engagement module's ``purge_engagement`` through
:func:`purge_engagement_hook`, the one place that joins the two.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from publisher.app import App
from publisher.errors import PublisherError
from publisher.services.idempotency import RETENTION as IDEMPOTENCY_RETENTION

MIN_AGE = timedelta(days=1)  # refuse a cut-off that could catch a send still being reported


@dataclass
class PurgeReport:
    """What a purge removed (or, dry, would remove): rows per kind, and the cut-off."""

    before: datetime
    dry_run: bool
    removed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def purge_engagement_hook(app: App, before: datetime, dry_run: bool) -> tuple[dict[str, int], str]:
    """Purge engagement events older than ``before`` via ``publisher.services.engagement
    .purge_engagement`` when that module exists; return its counts and a note."""
    try:
        engagement = importlib.import_module("publisher.services.engagement")
    except ModuleNotFoundError:
        return {}, "engagement events: no engagement tracking in this build"
    purge_engagement = getattr(engagement, "purge_engagement", None)
    if purge_engagement is None:
        return {}, "engagement events: no engagement tracking in this build"
    if dry_run:
        return {}, "engagement events: not counted in a dry run (they are purged for real)"
    purged = purge_engagement(app, before)
    return {f"engagement_{k}": int(v) for k, v in purged.as_dict().items()}, ""


def purge(app: App, older_than: timedelta, *, dry_run: bool = False) -> PurgeReport:
    """Remove rows older than ``older_than`` (at least a day); return what went."""
    if older_than < MIN_AGE:
        raise PublisherError(
            f"--older-than must be at least 1d (got {int(older_than.total_seconds())}s)",
            hint="finished issues' rows are kept for their reports; try 180d",
        )
    now = app.clock()
    before = now - older_than
    report = PurgeReport(before=before, dry_run=dry_run)
    report.removed = app.store.purge(
        before, now, idempotency_before=now - IDEMPOTENCY_RETENTION, dry_run=dry_run
    )
    engaged, note = purge_engagement_hook(app, before, dry_run)
    report.removed.update(engaged)
    if note:
        report.notes.append(note)
    return report
