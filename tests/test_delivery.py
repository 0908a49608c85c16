"""The delivery engine against a real SMTP server: retries, bounces, drops, rate, slow-down.

The server is aiosmtpd with a scripted handler (:class:`ScriptedHandler`) that can answer
chosen recipients with a chosen reply (always, or once), drop the connection after K
messages, and records when each message arrived. The process-level tests (kill -9,
SIGTERM, two workers) are in ``test_delivery_process.py`` and reuse these helpers.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from publisher.app import App, open_app
from publisher.config import DeliveryConfig, load
from publisher.deliver.limits import Pacer
from publisher.deliver.retry import is_bounce, is_throttle, retry_delay
from publisher.services import collecting, sending
from publisher.store import Store
from publisher.store.schema import deliveries, subscribers, subscriptions
from tests.conftest import SmtpServer, free_port, run_cli, write_config

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
_MESSAGE_ID = re.compile(rb"^Message-ID: (\S+)\r?$", re.M | re.I)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Received:
    rcpt: str
    message_id: str
    at: float
    raw: bytes | None


@dataclass
class ScriptedHandler:
    """An SMTP handler told how to misbehave; it records every accepted message."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    rcpt_replies_once: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # close the connection at the MAIL after this many messages
    keep_raw: bool = False
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.drop_after is not None and len(self.received) >= self.drop_after:
            self.drop_after = None
            server.transport.close()
            return "421 4.4.2 dropped (never seen by the client)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        once = self.rcpt_replies_once.pop(address, None)
        reply = once or self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content
        match = _MESSAGE_ID.search(raw)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append(
                    Received(
                        rcpt,
                        match[1].decode() if match else "",
                        time.monotonic(),
                        raw if self.keep_raw else None,
                    )
                )
        return "250 2.0.0 accepted"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def per_rcpt(self) -> Counter[str]:
        with self.lock:
            return Counter(r.rcpt for r in self.received)


@pytest.fixture
def scripted() -> Iterator[SmtpServer]:
    """A real aiosmtpd server with a :class:`ScriptedHandler`."""
    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)  # type: ignore[arg-type]
    finally:
        controller.stop()


def add_many(store: Store, n: int, digest: str = "daily", start: int = 0) -> list[str]:
    """Insert ``n`` active subscribers of ``digest`` in a few statements (fast set-up)."""
    emails = [f"user{i:06d}@example.org" for i in range(start, start + n)]
    with store.engine.begin() as conn:
        conn.execute(
            insert(subscribers),
            [
                {"email": e, "name": f"Reader {i}", "status": "active", "created_at": T0,
                 "updated_at": T0}
                for i, e in enumerate(emails)
            ],
        )  # fmt: skip
        ids = dict(conn.execute(subscribers.select().with_only_columns(
            subscribers.c.email, subscribers.c.id)).all())  # fmt: skip
        conn.execute(
            insert(subscriptions),
            [
                {"subscriber_id": ids[e], "digest_id": digest, "frequency": "every",
                 "tags": "[]", "created_at": T0}
                for e in emails
            ],
        )  # fmt: skip
    return emails


def smtp_app(
    tmp_path: Path, server: SmtpServer, extra_delivery: str = "", clock: Clock | None = None
) -> App:
    config_path = write_config(tmp_path, transport="smtp", smtp=server)
    if extra_delivery:
        text = config_path.read_text().replace(
            "retry_base_seconds = 60\n", f"retry_base_seconds = 60\n{extra_delivery}\n"
        )
        config_path.write_text(text)
    return open_app(load(config_path), clock=clock or Clock(T0))


def test_451_is_retried_550_bounces_and_the_batch_goes_on(
    tmp_path: Path, scripted: SmtpServer
) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    handler.rcpt_replies = {
        "later@example.org": "451 4.3.0 Try again later",
        "gone@example.org": "550 5.1.1 No such user",
        "policy@example.org": "554 5.7.1 Rejected by policy",
    }
    clock = Clock(T0)
    app = smtp_app(tmp_path, scripted, clock=clock)
    addresses = ("a@example.org", "later@example.org", "gone@example.org",
                 "policy@example.org", "z@example.org")  # fmt: skip
    for address in addresses:
        app.store.add_subscriber(address, "", ["daily"], T0)
    collecting.collect(app)
    [report] = sending.send_digest(app, "daily")
    assert (report.sent, report.failed, report.bounced, report.retrying) == (2, 1, 1, 1)
    assert sorted(handler.per_rcpt()) == ["a@example.org", "z@example.org"]
    assert sorted(app.store.failures(report.issue.id)) == [
        ("550 5.1.1 No such user", 1),
        ("554 5.7.1 Rejected by policy", 1),
    ]
    # The 5.1.1 marks the subscriber bounced; a 5.7.1 policy refusal does not.
    status = {s.email: s.status for s in app.store.list_subscribers()}
    assert status["gone@example.org"] == "bounced"
    assert status["policy@example.org"] == "active"

    # Not due yet: nothing is sent. After the backoff, the server accepts it.
    [early] = sending.send_digest(app, "daily")
    assert early.sent == 0
    handler.rcpt_replies.pop("later@example.org")
    clock.at = T0 + timedelta(hours=1)
    [resumed] = sending.send_digest(app, "daily")
    assert resumed.sent == 1 and resumed.note == "resumed"
    counts = app.store.delivery_counts(report.issue.id)
    assert (counts["sent"], counts["failed"], counts["bounced"], counts["queued"]) == (3, 1, 1, 0)
    assert app.store.list_issues()[0].status == "sent"
    assert len({r.message_id for r in handler.received}) == 3

    # `status ISSUE` shows the counts and the most common failure replies.
    out = run_cli(app.config.path, "status", str(report.issue.id), now=clock.at.isoformat()).stdout
    assert "3 sent, 1 failed, 1 bounced" in out
    assert "1 x 550 5.1.1 No such user" in out and "ETA" in out
    app.store.close()


def test_reply_classification() -> None:
    assert is_bounce(550, "550 5.1.1 <x@example.org>: Recipient address rejected")
    assert is_bounce(553, "553 5.1.3 bad address syntax")
    assert not is_bounce(550, "550 5.7.1 spam")
    assert not is_bounce(450, "450 4.1.1 mailbox busy")
    assert is_throttle(421, "421 Service not available")
    assert is_throttle(450, "450 4.7.0 too many messages, slow down")
    assert not is_throttle(451, "451 4.3.0 try later")


def test_retry_delay_grows_with_jitter() -> None:
    delays = [retry_delay(n, 7, 60).total_seconds() for n in (1, 2, 3)]
    assert 60 <= delays[0] < 90 and 120 <= delays[1] < 180 and 240 <= delays[2] < 360
    assert retry_delay(1, 7, 60) == retry_delay(1, 7, 60)
    assert retry_delay(1, 8, 60) != retry_delay(1, 7, 60)


def test_a_pooled_connection_closed_while_idle_costs_no_attempt(
    tmp_path: Path, scripted: SmtpServer
) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    handler.drop_after = 3
    clock = Clock(T0)
    app = smtp_app(tmp_path, scripted, clock=clock)
    emails = add_many(app.store, 8)
    collecting.collect(app)
    [report] = sending.send_digest(app, "daily")
    # The server closed the connection before the 4th message's MAIL: it goes again at
    # once on a new connection, as its first attempt, and nothing waits for a retry.
    assert (report.sent, report.retrying, report.failed) == (8, 0, 0)
    assert handler.per_rcpt() == Counter({e: 1 for e in emails})
    with app.store.engine.connect() as conn:
        attempts = set(conn.scalars(select(deliveries.c.attempts)))
    assert attempts == {1}
    app.store.close()


def test_rate_limit_is_never_exceeded(tmp_path: Path, scripted: SmtpServer) -> None:
    # A loaded machine can only make the send slower, so the limit is checked as a ceiling
    # (no window of the send holds more than the rate allows) and the floor it implies
    # (75 messages at 20/s cannot take less than 74/20 s), not as a +/- window.
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    app = smtp_app(tmp_path, scripted, "rate_limit = 20\nconnections = 2")
    add_many(app.store, 75)
    collecting.collect(app)
    sending.send_digest(app, "daily")
    times = sorted(r.at for r in handler.received)
    assert len(times) == 75
    span = times[-1] - times[0]
    assert span >= 0.9 * 74 / 20, span  # 10% for when arrival times bunch up
    busiest = max(sum(1 for t in times[i:] if t - start < 2.0) for i, start in enumerate(times))
    assert busiest <= 2.0 * 20 + 3, busiest  # at most one second's burst over the rate
    app.store.close()


def test_slow_down_reply_pauses_and_shows_in_status(tmp_path: Path, scripted: SmtpServer) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    emails = [f"user{i:06d}@example.org" for i in range(6)]
    handler.rcpt_replies_once = {emails[2]: "421 4.7.0 Too many messages, slow down"}
    clock = Clock(T0)
    app = smtp_app(tmp_path, scripted, "throttle_seconds = 1", clock=clock)
    add_many(app.store, 6)
    collecting.collect(app)
    started = time.monotonic()
    [report] = sending.send_digest(app, "daily")
    assert (report.sent, report.retrying) == (5, 1)
    # After the 421 every connection waited the backoff before the next message.
    after = [r.at for r in handler.received if r.rcpt in emails[3:]]
    assert min(after) - started >= 0.9
    throttle = app.store.throttle()
    assert throttle is not None and "4.7.0" in throttle["reply"]
    out = run_cli(app.config.path, "status", str(report.issue.id), now=T0.isoformat()).stdout
    assert "backoff" in out and "slow down" in out
    app.store.close()


def test_a_shared_pause_is_cut_short_by_a_stop(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'p.db'}")
    pacer = Pacer(store, DeliveryConfig())
    pacer.relay_bucket("default").pause(30, "421 4.7.0 slow down")
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    assert pacer.wait(pacer.buckets_for("default", "example.org"), stop.is_set) is False
    assert time.monotonic() - started < 1
    store.close()


def test_unreachable_smtp_server_loses_nothing(tmp_path: Path) -> None:
    from tests.conftest import RecordingHandler

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
