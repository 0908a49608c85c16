"""What the console's pages read, on SQLite and PostgreSQL: a subscriber's records, the
filtered export that walks keyset pages, the audit log's filters and pages, and an import
job run in its thread.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.app import App
from publisher.errors import PublisherError
from publisher.services import auditlog, records, subscribers
from publisher.services.audit import Actor, record_audit
from publisher.services.auditlog import AuditFilter
from publisher.services.import_jobs import ImportJobs
from tests.test_directory import NOW, app  # noqa: F401 - app: the directory tests' fixture


def test_subscriber_record_has_deliveries_bounces_and_suppression(app: App) -> None:  # noqa: F811
    subscribers.add(app, "ana@example.org", name="Ana", digests=["daily"], tags=["research"])
    subscribers.add(app, "bo@example.org", digests=["weekly"])
    ana = app.store.find_subscriber("ana@example.org")
    assert ana is not None
    app.store.record_bounce("ana@example.org", "soft", "4.2.2", "452 mailbox full", "r1",
                            NOW - timedelta(hours=2), NOW, soft_limit=3, soft_window=timedelta(days=1))  # fmt: skip
    record = records.subscriber_record(app, ana.id)
    assert record.subscriber.email == "ana@example.org"
    assert [(s["digest_id"], s["tags"]) for s in record.subscriptions] == [("daily", ["research"])]
    assert record.deliveries == []
    assert [(b.kind, b.diagnostic) for b in record.bounces] == [("soft", "452 mailbox full")]
    assert record.suppression is None
    subscribers.remove(app, "ana@example.org", complaint=True)
    assert records.subscriber_record(app, ana.id).suppression is not None
    with pytest.raises(PublisherError, match="no subscriber #999"):
        records.subscriber_record(app, 999)


def test_delivery_history_walks_issues_newest_first(app: App, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import publisher.store.records as store_records

    monkeypatch.setattr(store_records, "_ISSUES", 2)  # several chunks of issues
    subscribers.add(app, "ana@example.org", digests=["daily"])
    subscribers.add(app, "bo@example.org", digests=["weekly"])
    ana = app.store.find_subscriber("ana@example.org")
    assert ana is not None
    for day in range(1, 6):
        for digest in ("daily", "weekly"):
            issue, _ = app.store.create_issue(digest, f"2026-11-0{day}", f"{digest} {day}", [], NOW)
            app.store.plan_deliveries(issue, NOW)
    history = app.store.delivery_records(ana.id, limit=4)
    assert [(d.digest_id, d.period, d.status) for d in history] == [
        ("daily", f"2026-11-0{day}", "queued") for day in (5, 4, 3, 2)
    ]
    assert len(app.store.delivery_records(ana.id)) == 5


def test_export_walks_every_page_once_with_the_filter(app: App, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(records, "EXPORT_PAGE", 4)  # many pages from a small list
    for i in range(11):
        digests = ["daily", "weekly"] if i % 2 else ["daily"]
        subscribers.add(app, f"p{i:02d}@example.org", name=f"=P {i}", digests=digests)
    rows = list(csv.reader(io.StringIO("".join(records.export_lines(app)))))
    assert rows[0] == ["email", "name", "status", "digest", "frequency", "tags"]
    assert len(rows) == 1 + 11 + 5  # one row per subscription
    assert rows[1][:4] == ["p10@example.org", "'=P 10", "active", "daily"]  # newest first, no formula
    weekly = list(csv.reader(io.StringIO("".join(records.export_lines(app, digest="weekly")))))[1:]
    assert sorted({r[0] for r in weekly}) == [f"p{i:02d}@example.org" for i in range(1, 11, 2)]
    assert all(len(r) == 6 for r in weekly)
    with pytest.raises(PublisherError):
        records.export_lines(app, status="gone")  # refused before the first line


def test_audit_filters_pages_and_export(app: App) -> None:  # noqa: F811
    for i in range(7):
        who = Actor("ed@example.org" if i % 2 else "cli:root", "192.0.2.1")
        record_audit(app, who, "subscriber.edit" if i < 5 else "issue.cancel", f"subscriber #{i} X{i}%")
    page = auditlog.search_audit(app, AuditFilter(), limit=3)
    assert [e.target[:13] for e in page.entries] == ["subscriber #6", "subscriber #5", "subscriber #4"]
    rest = auditlog.search_audit(app, AuditFilter(), before=page.next_before, limit=3)
    last = auditlog.search_audit(app, AuditFilter(), before=rest.next_before, limit=3)
    assert len(rest.entries) == 3 and len(last.entries) == 1 and last.next_before is None
    mine = auditlog.search_audit(app, AuditFilter(actor="ed@example.org", action="subscriber."))
    assert [e.target for e in mine.entries] == ["subscriber #3 X3%", "subscriber #1 X1%"]
    assert [e.target for e in auditlog.search_audit(app, AuditFilter(target="x4%")).entries] == ["subscriber #4 X4%"]
    assert auditlog.search_audit(app, AuditFilter(action="subscriber")).entries == []  # no dot: exact
    assert auditlog.search_audit(app, AuditFilter(target="_")).entries == []  # LIKE wildcards are text
    lines = list(csv.reader(io.StringIO("".join(auditlog.export_lines(app, AuditFilter(action="issue."))))))
    assert lines[0] == list(auditlog.EXPORT_HEADER)
    assert [r[3] for r in lines[1:]] == ["issue.cancel", "issue.cancel"] and lines[1][6] == "192.0.2.1"


def test_import_job_reports_progress_errors_and_audits(app: App, tmp_path: Path) -> None:  # noqa: F811
    upload = tmp_path / "upload-1234.csv"
    upload.write_text("email,name,digests\nnew@example.org,New,weekly\nbroken,Nope,daily\n", encoding="utf-8")
    jobs = ImportJobs()
    job = jobs.start(app, upload, "friends.csv", Actor("ed@example.org", "192.0.2.9"))
    deadline = time.monotonic() + 30
    while job.finished_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    done = jobs.get(job.id)
    assert done is not None and done.state == "done" and done.percent == 100
    data = done.as_dict()
    assert (data["added"], data["rejected"], data["total"], data["done"]) == (1, 1, 2, 2)
    assert data["errors"] == ["friends.csv:3: invalid address 'broken': An email address must have an @-sign."]
    assert not upload.exists()
    [entry] = app.store.audit_entries(1)
    assert (entry.actor, entry.action, entry.target, entry.ip) == ("ed@example.org", "subscriber.import", "friends.csv", "192.0.2.9")
    bad = tmp_path / "upload-5678.csv"
    bad.write_bytes(b"name\nno email column\n")
    failed = jobs.start(app, bad, "wrong.csv", Actor("ed@example.org"))
    while failed.finished_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failed.state == "failed" and failed.error == "wrong.csv:1: the header row has no 'email' column"
    assert "upload-5678" not in failed.error and not bad.exists()
