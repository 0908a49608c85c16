"""Auto-pause against a real aiosmtpd relay and a real webhook receiver, run as operators do.

The relay answers ``550 5.1.1`` for one recipient in ten; the digest pauses at 5% hard
bounces after ``pause_min_sent`` final outcomes. Everything goes through the CLI as
subprocesses (``send``, ``status --json``, ``webhooks deliver``, ``issues resume``,
``worker``, ``subscribers remove --complaint``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from publisher.app import open_app
from publisher.config import load
from publisher.services import guard
from publisher.store import Signals
from tests.conftest import SmtpServer, free_port, run_cli, write_config
from tests.test_admin_pages import PASSWORD, Site, _serve, session, visible_text
from tests.test_webhooks import ENV, Receiver, deliver, hook_config, receiver  # noqa: F401

COUNT = 300
DIGESTS = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "America/New_York"\nsubject = "{title}: {date}"\nmax_articles = 10\n'
    "pause_bounce_rate = 0.05\npause_min_sent = 100\n"
)


def _people(folder: Path, count: int = COUNT) -> Path:
    csv = folder / "people.csv"
    csv.write_text(
        "email,name\n" + "".join(f"p{i:04d}@example.org,P {i}\n" for i in range(count)),
        encoding="utf-8",
    )
    return csv


def _site(tmp_path: Path, smtp: SmtpServer, receiver_url: str, delivery: str = "") -> Path:
    config = write_config(
        tmp_path, transport="smtp", smtp=smtp, digests=DIGESTS, extra=hook_config(receiver_url)
    )
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("retry_base_seconds = 60\n", f"retry_base_seconds = 60\n{delivery}"))
    run_cli(config, "subscribers", "import", str(_people(tmp_path)), env=ENV)
    run_cli(config, "collect", env=ENV)
    return config


def _counts(config: Path) -> dict[str, int]:
    app = open_app(load(config))
    try:
        return app.store.delivery_counts(1)
    finally:
        app.store.close()


def test_a_tenth_refused_5_1_1_pauses_the_issue_and_a_resume_finishes_it(
    tmp_path: Path, smtp_server: SmtpServer, receiver: Receiver  # noqa: F811
) -> None:
    smtp_server.handler.rcpt_replies = {
        f"p{i:04d}@example.org": "550 5.1.1 <user> No such user here" for i in range(0, COUNT, 10)
    }
    config = _site(tmp_path, smtp_server, receiver.url)
    sent = run_cli(config, "send", "daily", env=ENV)
    assert "paused" in sent.stdout, sent.stdout
    # The alert in the log: a WARNING naming the issue, the rate and the threshold.
    warning = [line for line in sent.stderr.splitlines() if "paused automatically" in line]
    assert warning and "WARNING" in warning[0], sent.stderr
    assert "issue #1" in warning[0] and "hard-bounce rate" in warning[0]
    assert "pause_bounce_rate 5%" in warning[0]
    counts = _counts(config)
    final = counts["sent"] + counts["bounced"]
    assert final >= 100 and counts["queued"] > 0  # paused after pause_min_sent, queue kept
    assert sum(counts.values()) == COUNT and counts["sending"] == 0
    assert counts["bounced"] / final > 0.05
    # status and status --json show the pause and why.
    status = json.loads(run_cli(config, "status", "--json", env=ENV).stdout)
    [paused] = status["paused_issues"]
    assert paused["issue"] == 1 and paused["queued"] == counts["queued"]
    assert paused["reason"].startswith("hard-bounce rate ")
    assert "paused automatically: hard-bounce rate" in run_cli(config, "status", env=ENV).stdout
    # issue.paused reaches the local receiver with the reason in its data.
    deliver(config, check=True)
    [event] = receiver.of_type("issue.paused")
    assert event["data"]["reason"] == paused["reason"]
    assert event["data"]["auto"]["kind"] == "bounce"
    assert event["data"]["auto"]["threshold"] == 0.05
    # At the pause the claimed batch was in flight: the messages on the wire finished, the
    # rest went back to the queue.
    data = event["data"]
    assert data["queued"] <= counts["queued"] <= data["queued"] + data["sending"]
    _console_shows(config, tmp_path, paused["reason"])
    # The operator resumes: the same figures do not pause it again; it finishes.
    run_cli(config, "issues", "resume", "1", env=ENV)
    worker = run_cli(config, "worker", "--until-idle", env=ENV)
    assert "paused automatically" not in worker.stderr, worker.stderr
    counts = _counts(config)
    assert counts["sent"] == COUNT - COUNT // 10 and counts["bounced"] == COUNT // 10
    assert counts["queued"] == 0
    status = json.loads(run_cli(config, "status", "--json", env=ENV).stdout)
    assert status["paused_issues"] == []
    assert len(smtp_server.handler.messages) == COUNT - COUNT // 10  # nothing went twice


def _console_shows(config: Path, tmp_path: Path, reason: str) -> None:
    """The console's dashboard and issue page (a real ``publisher serve``) say why."""
    port = free_port()
    config.write_text(config.read_text(encoding="utf-8").replace(
        "https://news.example.org/mail", f"http://127.0.0.1:{port}"), encoding="utf-8")  # fmt: skip
    run_cli(config, "operators", "add", "ops@example.org", "--role", "viewer", "--password-stdin",
            input=PASSWORD)  # fmt: skip
    (tmp_path / "tmp").mkdir()
    process = _serve(config, port, tmp_path / "tmp")
    try:
        site = Site(config, f"http://127.0.0.1:{port}", tmp_path / "tmp")
        client = session(site, "ops@example.org")
        dashboard = visible_text(client, "/admin/")
        assert "Issue #1 (daily" in dashboard and f"paused automatically: {reason}" in dashboard
        page = visible_text(client, "/admin/issues/1")
        assert f"Paused automatically: {reason}" in page
        client.close()
        # The API's issue resource carries it too.
        raw = run_cli(config, "tokens", "create", "reader", "--scope", "read").stdout.split()[0]
        answer = httpx.get(f"{site.url}/api/v1/issues/1", headers={"Authorization": f"Bearer {raw}"})
        assert answer.status_code == 200 and answer.json()["pause_reason"] == reason
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_complaints_during_a_slow_send_pause_it(
    tmp_path: Path, smtp_server: SmtpServer, receiver: Receiver  # noqa: F811
) -> None:
    config = _site(tmp_path, smtp_server, receiver.url, delivery="rate_limit = 40\n")
    # The relay holds the send after 120 messages, so the complaint lands while the issue is
    # sending however slow the machine is (a race with the worker's end once failed in CI).
    smtp_server.handler.hold_after = 120
    run_cli(config, "send", "daily", "--queue-only", env=ENV)
    env = {**__import__("os").environ, "PUBLISHER_TEST_SECRET": "test-secret", **ENV}
    worker = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "worker", "--until-idle"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _counts(config)["sent"] < 120 and time.monotonic() < deadline:
            time.sleep(0.2)
        # One reader in ~120 marks it as spam: 0.8% > 0.1%.
        removed = run_cli(config, "subscribers", "remove", "p0003@example.org", "--complaint", env=ENV)
        assert "suppressed" in removed.stdout
        assert "paused automatically" in removed.stderr and "complaint rate" in removed.stderr
        smtp_server.handler.released.set()
        out, err = worker.communicate(timeout=60)
    finally:
        smtp_server.handler.released.set()
        if worker.poll() is None:
            worker.kill()
    counts = _counts(config)
    assert counts["queued"] > 0 and counts["sending"] == 0, (counts, out, err)
    status = json.loads(run_cli(config, "status", "--json", env=ENV).stdout)
    assert status["paused_issues"][0]["reason"].startswith("complaint rate ")


def test_the_rule_after_a_resume_is_clearly_worse() -> None:
    limits = guard.Thresholds(bounce_rate=0.05, complaint_rate=0.001, min_sent=100)
    assert guard.verdict(Signals(99, 50, 0), limits, None) is None  # too few yet
    first = guard.verdict(Signals(100, 6, 0), limits, None)
    assert first is not None and first["kind"] == "bounce" and first["bounce_seen"] == 0.06
    assert guard.verdict(Signals(200, 14, 0), limits, first) is None  # 7% < 6% x 1.25
    again = guard.verdict(Signals(200, 16, 0), limits, first)
    assert again is not None and again["reason"].startswith("hard-bounce rate 8% (16 of 200)")
    complaint = guard.verdict(Signals(1000, 0, 2), limits, None)
    assert complaint is not None and complaint["kind"] == "complaint"


def test_signals_count_dsn_hard_bounces_and_complaints_within_7_days(
    tmp_path: Path, store_url: str
) -> None:
    config = write_config(tmp_path, store_url=store_url)
    run_cli(config, "subscribers", "import", str(_people(tmp_path, 10)), now="2026-11-28T11:00:00Z")
    run_cli(config, "collect", now="2026-11-28T11:00:00Z")
    assert "10 sent" in run_cli(config, "send", "daily", now="2026-11-28T12:00:00Z").stdout
    sent_at = datetime(2026, 11, 28, 12, tzinfo=UTC)
    app = open_app(load(config))
    try:
        store = app.store
        assert store.issue_signals(1) == Signals(10, 0, 0)
        # A DSN reported after the send counts as a hard bounce of this issue; a soft one not.
        for email, kind in (("p0001@example.org", "hard"), ("p0002@example.org", "soft")):
            store.record_bounce(email, kind, "5.1.1" if kind == "hard" else "4.2.2", "x",
                                f"r-{email}", sent_at + timedelta(hours=1),
                                sent_at + timedelta(hours=2), soft_limit=3,
                                soft_window=timedelta(days=7))  # fmt: skip
        # Complaints: one 2 days after the send counts, one 9 days after does not.
        for email, days in (("p0003@example.org", 2), ("p0004@example.org", 9)):
            sub = store.find_subscriber(email)
            assert sub is not None
            store.unsubscribe(sub.id, None, sent_at + timedelta(days=days), source="complaint")
        signals = store.issue_signals(1)
        assert signals == Signals(10, 1, 1)
        assert signals.bounce_rate == 0.1 and signals.complaint_rate == 0.1
        # 10 outcomes are fewer than pause_min_sent (100): no verdict, whatever the rates.
        assert guard.check_issue(app, 1) is None and store.issue_status(1) == "sent"
    finally:
        app.store.close()
