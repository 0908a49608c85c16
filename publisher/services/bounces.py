"""Bounces into subscriber states (store I/O; IMAP for the poll): one message or a mailbox.

A message is a DSN (RFC 3464) or an ARF feedback report (RFC 5965): the latter is a spam
complaint, handled by :func:`publisher.services.feedback.record_complaint`."""

from __future__ import annotations

from dataclasses import dataclass, field

from publisher.app import App
from publisher.deliver import bounces, imap
from publisher.deliver.feedback import parse_arf
from publisher.services import feedback, guard


@dataclass
class BounceReport:
    """What a bounce import or IMAP poll did."""

    messages: int = 0
    not_bounces: int = 0
    hard: int = 0
    soft: int = 0
    unknown: int = 0
    duplicates: int = 0
    complaints: int = 0
    marked: list[str] = field(default_factory=list)
    complained: list[str] = field(default_factory=list)


def import_bounce(app: App, raw: bytes, report: BounceReport) -> bool:
    """Record the bounces (or the complaint) one message reports; return whether it was
    a bounce or a complaint."""
    now = app.clock()
    report.messages += 1
    complaint = parse_arf(raw, now)
    if complaint is not None:
        result = feedback.record_complaint(app, complaint)
        report.complaints += 1
        if result.outcome == "duplicate":
            report.duplicates += 1
        elif result.outcome == "complained":
            report.complained.append(f"{result.email} (unsubscribed and suppressed)")
        else:
            report.unknown += 1
        return True
    found = bounces.parse_bounce(raw, now)
    if not found:
        report.not_bounces += 1
        return False
    for bounce in found:
        setattr(report, bounce.kind, getattr(report, bounce.kind) + 1)
        outcome = app.store.record_bounce(
            bounce.email,
            bounce.kind,
            bounce.status,
            bounce.diagnostic,
            bounce.report_id,
            bounce.occurred_at,
            now,
            soft_limit=bounces.SOFT_LIMIT,
            soft_window=bounces.SOFT_WINDOW,
        )
        if outcome == "bounced":
            report.marked.append(f"{bounce.email} ({bounce.kind}, {bounce.status})")
        if bounce.kind == "hard" and outcome in ("bounced", "counted"):
            sub = app.store.find_subscriber(bounce.email)
            if sub is not None:  # the issues that reached them may now pass pause_bounce_rate
                guard.after_signal(app, sub.id)
        elif outcome == "unknown":
            report.unknown += 1
        elif outcome == "duplicate":
            report.duplicates += 1
    return True


def poll_bounces(app: App) -> tuple[BounceReport, int]:
    """Poll the [bounces] IMAP folder once; return the report and how many were moved."""
    report = BounceReport()
    _, moved = imap.poll(app.config.bounces, lambda raw: import_bounce(app, raw, report))
    return report, moved
