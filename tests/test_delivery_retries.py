"""Retries on the real clock and connection reuse, seen from a real SMTP server.

``publisher`` runs as a subprocess (no PUBLISHER_NOW: the real clock) against an aiosmtpd
server in this process whose handler records every RCPT attempt, with the time it came
and the client connection it came on.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import SmtpServer, free_port, run_cli, write_config


@dataclass
class Attempt:
    rcpt: str
    at: float
    peer: tuple[str, int]


@dataclass
class CountingHandler:
    """Answers chosen recipients with a fixed reply, every time; records every attempt."""

    refuse: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    accepted: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            self.attempts.append(Attempt(address, time.monotonic(), tuple(session.peer)))
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.accepted.append(Attempt(rcpt, time.monotonic(), tuple(session.peer)))
        return "250 2.0.0 accepted"

    def tries(self, address: str) -> list[float]:
        with self.lock:
            return [a.at for a in self.attempts if a.rcpt == address]


@pytest.fixture
def counting() -> Iterator[SmtpServer]:
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)  # type: ignore[arg-type]
    finally:
        controller.stop()


def _config(tmp_path: Path, server: SmtpServer, delivery: str = "", smtp: str = "") -> Path:
    path = write_config(tmp_path, transport="smtp", smtp=server)
    text = path.read_text().replace("retry_base_seconds = 60\n", f"{delivery}\n")
    text = text.replace("timeout = 10\n", f"timeout = 10\n{smtp}\n")
    path.write_text(text)
    return path


def _deliveries(tmp_path: Path) -> dict[str, tuple[str, int, str]]:
    """Each recipient's (status, attempts, last reply), read straight from the SQLite file."""
    uri = f"{(tmp_path / 'publisher.db').as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT s.email, d.status, d.attempts, coalesce(d.last_reply, '') "
            "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
        ).fetchall()
    return {email: (status, attempts, reply) for email, status, attempts, reply in rows}


def test_a_451_every_time_uses_up_max_attempts_and_ends_failed(
    tmp_path: Path, counting: SmtpServer
) -> None:
    handler: CountingHandler = counting.handler  # type: ignore[assignment]
    handler.refuse["later@example.org"] = "451 4.3.0 Try again later"
    config = _config(tmp_path, counting, "retry_base_seconds = 1\nmax_attempts = 3")
    for address in ("later@example.org", "fine@example.org"):
        run_cli(config, "subscribers", "add", address)
    run_cli(config, "collect")
    run_cli(config, "send", "daily", "--queue-only")

    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret"}
    env.pop("PUBLISHER_NOW", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "worker"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _deliveries(tmp_path)["later@example.org"][0] != "failed":
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, _deliveries(tmp_path)
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err

    # Three attempts, spaced by the backoff (1-1.5 s, then 2-3 s), then no more.
    tries = handler.tries("later@example.org")
    assert len(tries) == 3, tries
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0, gaps
    ledger = _deliveries(tmp_path)
    assert ledger["later@example.org"] == ("failed", 3, "451 4.3.0 Try again later")
    assert ledger["fine@example.org"][:2] == ("sent", 1)
    assert [a.rcpt for a in handler.accepted] == ["fine@example.org"]
    status = run_cli(config, "status", "1").stdout
    assert "1 sent, 1 failed" in status and "451 4.3.0 Try again later" in status
    # A later run has nothing left to try.
    run_cli(config, "worker", "--until-idle")
    assert len(handler.tries("later@example.org")) == 3


def test_a_new_connection_after_max_messages_per_connection(
    tmp_path: Path, counting: SmtpServer
) -> None:
    handler: CountingHandler = counting.handler  # type: ignore[assignment]
    config = _config(tmp_path, counting, "connections = 1", smtp="max_messages_per_connection = 3")
    emails = [f"reader{i:02d}@example.org" for i in range(10)]
    (tmp_path / "subs.csv").write_text("email\n" + "\n".join(emails) + "\n")
    run_cli(config, "subscribers", "import", "subs.csv")
    run_cli(config, "collect")
    assert "10 sent" in run_cli(config, "send", "daily").stdout

    per_connection = Counter(a.peer for a in handler.accepted)
    assert sorted(per_connection.values()) == [1, 3, 3, 3]  # 10 messages, 3 per connection
    assert sorted(a.rcpt for a in handler.accepted) == emails
