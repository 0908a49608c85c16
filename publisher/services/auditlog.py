"""Reading the audit log (store reads only): filtered keyset pages and the CSV export.

Every door writes entries (:mod:`publisher.services.audit`); the console lists them here,
newest first, by who, what (an action such as ``subscriber.erase``, or a noun with its dot,
``subscriber.``, for all of its actions) and a text in the target. Pages are keyset pages on
the entry id, so the thousandth page costs what the first does; the export walks the same
pages and streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import AuditEntry
from publisher.services.subscriber_csv import csv_lines

MAX_LIMIT = 500
EXPORT_HEADER = ("id", "at", "actor", "action", "target", "detail", "ip")


@dataclass(frozen=True)
class AuditFilter:
    """Who (exact), what (exact, or a ``noun.`` prefix) and a text in the target."""

    actor: str = ""
    action: str = ""
    target: str = ""


@dataclass(frozen=True)
class AuditPage:
    """One page of entries and the id to continue below (None on the last page)."""

    entries: list[AuditEntry]
    next_before: int | None


def search_audit(app: App, wanted: AuditFilter, *, before: int | None = None, limit: int = 50) -> AuditPage:
    """Entries matching ``wanted``, newest first, with an id below ``before`` (the previous
    page's ``next_before``)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise PublisherError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")
    rows = app.store.audit_entries(
        limit + 1, before_id=before, actor=wanted.actor.strip() or None,
        action=wanted.action.strip() or None, target=wanted.target.strip() or None,
    )  # fmt: skip
    entries = rows[:limit]
    more = len(rows) > limit and entries[-1].id is not None
    return AuditPage(entries, entries[-1].id if more else None)


def export_lines(app: App, wanted: AuditFilter) -> Iterator[str]:
    """The entries matching ``wanted`` as CSV lines, header first, newest first."""
    return csv_lines(_rows(app, wanted))


def _rows(app: App, wanted: AuditFilter) -> Iterator[tuple[str, ...]]:
    yield EXPORT_HEADER
    before: int | None = None
    while True:
        page = search_audit(app, wanted, before=before, limit=MAX_LIMIT)
        for e in page.entries:
            yield (str(e.id), e.at.isoformat(), e.actor, e.action, e.target, e.detail, e.ip or "")
        if page.next_before is None:
            return
        before = page.next_before
