"""The delivery engine against a real SMTP server: retries, permanent failures, resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher import pipeline
from publisher.config import load
from publisher.delivery import retry_delay
from tests.conftest import SmtpServer, write_config

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_451_is_retried_550_is_permanent_and_the_batch_goes_on(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.rcpt_replies = {
        "later@example.org": "451 4.3.0 Try again later",
        "gone@example.org": "550 5.1.1 No such user",
    }
    config = load(write_config(tmp_path, transport="smtp", smtp=smtp_server))
    clock = Clock(T0)
    app = pipeline.open_app(config, clock=clock)
    for address in ("a@example.org", "later@example.org", "gone@example.org", "z@example.org"):
        app.store.add_subscriber(address, "", ["daily"], T0)
    pipeline.collect(app)
    [report] = pipeline.send_digest(app, "daily")
    assert (report.sent, report.failed, report.retrying) == (2, 1, 1)
    assert sorted(r[1][0] for r in smtp_server.handler.messages) == [
        "a@example.org",
        "z@example.org",
    ]
    assert app.store.failures(report.issue.id) == [("550 5.1.1 No such user", 1)]

    # Not due yet: nothing is sent. After the backoff, the server accepts it.
    [early] = pipeline.send_digest(app, "daily")
    assert early.sent == 0
    smtp_server.handler.rcpt_replies.pop("later@example.org")
    clock.at = T0 + timedelta(hours=1)
    [resumed] = pipeline.send_digest(app, "daily")
    assert resumed.sent == 1 and resumed.note == "resumed"
    counts = app.store.delivery_counts(report.issue.id)
    assert counts["sent"] == 3 and counts["failed"] == 1 and counts["queued"] == 0
    assert app.store.list_issues()[0].status == "sent"
    # The same Message-ID would be used again for the same (issue, subscriber).
    ids = [m["Message-ID"] for m in smtp_server.handler.parsed()]
    assert len(set(ids)) == 3
    app.store.close()


def test_retry_delay_grows_with_jitter() -> None:
    delays = [retry_delay(n, 7, 60).total_seconds() for n in (1, 2, 3)]
    assert 60 <= delays[0] < 90 and 120 <= delays[1] < 180 and 240 <= delays[2] < 360
    assert retry_delay(1, 7, 60) == retry_delay(1, 7, 60)
    assert retry_delay(1, 8, 60) != retry_delay(1, 7, 60)


def test_unreachable_smtp_server_loses_nothing(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    from tests.conftest import RecordingHandler, free_port, run_cli

    down = SmtpServer("127.0.0.1", free_port(), RecordingHandler())  # nothing listens yet
    config = write_config(tmp_path, transport="smtp", smtp=down)
    run_cli(config, "subscribers", "add", "a@example.org", now=T0.isoformat())
    result = run_cli(config, "run", "--once", now=T0.isoformat(), check=False)
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and f"127.0.0.1:{down.port}" in result.stderr

    # The issue and its queued delivery survive; once the server is up, it goes out.
    controller = Controller(down.handler, hostname="127.0.0.1", port=down.port)
    controller.start()
    try:
        again = run_cli(config, "run", "--once", now=T0.isoformat())
    finally:
        controller.stop()
    assert "1 sent" in again.stdout
    assert [rcpts for _, rcpts, _ in down.handler.messages] == [["a@example.org"]]
