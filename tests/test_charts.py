"""Subscriber status events and the dashboard series, from real flows on SQLite and PostgreSQL.

Each change is made the way an operator or a subscriber makes it: ``publisher subscribers
add/import/remove`` and ``bounces import`` as real subprocesses (the clock pinned with
PUBLISHER_NOW to chosen days), the web sign-up confirmed by a POST through the ASGI app.
The series are then checked day by day against what the list really was.
"""

from __future__ import annotations

import re
import warnings
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from publisher.app import App, open_app
from publisher.config import load
from publisher.services import charts
from publisher.store import Store, _alembic_config
from publisher.store.schema import subscribers
from publisher.web import create_app
from tests.conftest import SmtpServer, run_cli, write_config

DATA = Path(__file__).parent / "data" / "bounces"
DAY1 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a Monday


def _at(day: int, hour: int = 10) -> str:
    return (DAY1 + timedelta(days=day - 1, hours=hour - 10)).isoformat()


def _web_signup_confirmed(
    config_path: Path, email: str, signed_up: datetime, confirmed: datetime
) -> None:
    """Sign up on the web form, then confirm with the link from the mail (a POST)."""
    config = load(config_path)
    clock = [signed_up]
    app = open_app(config, clock=lambda: clock[0])
    try:
        with TestClient(create_app(config, app=app)) as client:
            page = client.get("/subscribe")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            client.post(
                "/subscribe",
                data={"csrf": csrf.group(1), "email": email, "name": "", "website": ""},
            )
            [mail_file] = [
                f for f in config.delivery.outbox_dir.glob("confirm-*.eml") if email in f.read_text()
            ]
            mail = message_from_bytes(mail_file.read_bytes(), policy=policy.default)
            body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            link = re.search(r"https://news\.example\.org/mail(/confirm/\S+)", body)
            assert link
            clock[0] = confirmed
            assert client.post(link.group(1)).status_code == 200
    finally:
        app.store.close()


def test_subscriber_series_follows_real_changes_day_by_day(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_TEST_SECRET", "test-secret")
    config = write_config(tmp_path, store_url=store_url)
    # Day 1: three added by the operator, two imported (one of them as unsubscribed).
    for address in ("gone@example.org", "b@example.org", "c@example.org"):
        run_cli(config, "subscribers", "add", address, now=_at(1))
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text("email,status\nd@example.org,active\ne@example.org,unsubscribed\n")
    run_cli(config, "subscribers", "import", str(csv_file), now=_at(1))
    # Day 2: a web sign-up, confirmed on day 3 (pending for one night).
    _web_signup_confirmed(
        config, "f@example.org", DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)
    )
    # Day 4: one leaves; a hard bounce; a complaint.
    run_cli(config, "subscribers", "remove", "b@example.org", now=_at(4))
    run_cli(config, "bounces", "import", str(DATA / "postfix-hard.eml"), now=_at(4))
    run_cli(config, "subscribers", "remove", "c@example.org", "--complaint", now=_at(4, 11))

    app = open_app(load(config))
    try:
        series = charts.subscriber_series(app, days=6, now=DAY1 + timedelta(days=4))
        assert series.days == [date(2026, 11, 15) + timedelta(days=i) for i in range(6)]
        # Day 3: the web sign-up, pending since day 2, is confirmed. Day 4: b leaves,
        # gone@ bounces, c complains.
        assert series.counts["active"] == [0, 4, 4, 5, 2, 2]
        assert series.counts["pending"] == [0, 0, 1, 0, 0, 0]
        assert series.counts["unsubscribed"] == [0, 1, 1, 1, 3, 3]
        assert series.counts["bounced"] == [0, 0, 0, 0, 1, 1]
        assert series.counts["erased"] == [0] * 6
        # The figures of the last day are the rows as they are now.
        now_counts = {s: 0 for s in charts.STATUSES}
        for sub in list(app.store.list_subscribers()):
            now_counts[sub.status] += 1
        assert {s: v[-1] for s, v in series.counts.items()} == now_counts
        everyone = list(app.store.list_subscribers())
        sources = {e["source"] for s in everyone for e in app.store.subscriber_events_of(s.id)}
        assert sources == {"cli", "import", "web", "bounce", "complaint"}
    finally:
        app.store.close()


def test_issue_series_counts_a_real_send_by_week(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.rcpt_replies["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
    smtp_server.handler.rcpt_replies["refused@example.org"] = "554 5.7.1 policy rejection"
    config = write_config(tmp_path, store_url=store_url, transport="smtp", smtp=smtp_server)
    when = "2026-11-25T12:30:00+00:00"  # a Wednesday, after the digest's 07:00 New York fire
    for address in ("a@example.org", "b@example.org", "nobody@example.org", "refused@example.org"):
        run_cli(config, "subscribers", "add", address, now=when)
    run_cli(config, "collect", now=when)
    run_cli(config, "send", "daily", now=when, check=False)

    app = open_app(load(config))
    try:
        series = charts.issue_series(app, weeks=3, now=datetime(2026, 11, 29, tzinfo=UTC))
        assert series.weeks == [date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]
        assert series.issues == [0, 0, 1]
        assert series.counts == {"sent": [0, 0, 2], "failed": [0, 0, 1], "bounced": [0, 0, 1]}
        # The 5.1.1 marked the subscriber bounced, recorded as an event of that change.
        gone = app.store.find_subscriber("nobody@example.org")
        assert gone is not None and gone.status == "bounced"
        assert [(e["old_status"], e["new_status"], e["source"]) for e in
                app.store.subscriber_events_of(gone.id)] == [
            (None, "active", "cli"), ("active", "bounced", "bounce")
        ]  # fmt: skip
        # The week after has nothing; a later window no longer shows the issue.
        later = charts.issue_series(app, weeks=1, now=datetime(2026, 12, 2, tzinfo=UTC))
        assert later.issues == [0] and later.as_dict()["weeks"] == ["2026-11-30"]
    finally:
        app.store.close()


def test_backfill_charts_existing_subscribers_from_their_rows(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = Store.open(sqlite_url, migrate=False)
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0012_monitoring")
    day = lambda n: DAY1 + timedelta(days=n)  # noqa: E731
    rows = [
        ("a@example.org", "active", day(0), day(0)),
        ("b@example.org", "unsubscribed", day(0), day(2)),
        ("c@example.org", "pending", day(1), day(1)),
        ("d@example.org", "bounced", day(1), day(3)),
    ]
    with store.engine.begin() as conn:
        for email, status, created, updated in rows:
            conn.execute(
                insert(subscribers).values(
                    email=email, name="", status=status, created_at=created, updated_at=updated
                )
            )
    assert "0013_events" in store.upgrade()
    app = App(config=load(write_config(tmp_path, store_url=sqlite_url)), store=store)
    series = charts.subscriber_series(app, days=5, now=day(4))
    assert series.counts["active"] == [2, 3, 2, 1, 1]
    assert series.counts["pending"] == [0, 1, 1, 1, 1]
    assert series.counts["unsubscribed"] == [0, 0, 1, 1, 1]
    assert series.counts["bounced"] == [0, 0, 0, 1, 1]
    assert {e["source"] for e in store.subscriber_events_of(4)} == {"backfill"}
    store.close()
