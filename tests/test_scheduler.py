"""``publisher run`` as real subprocesses: catch-up at start, collecting on an interval,
SIGTERM, restarts, and two daemons sharing one PostgreSQL database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from publisher.config import load
from publisher.store import Store
from tests.conftest import run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"  # 08 h after the daily 07:00 UTC fire: within catch_up
DAILY = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "UTC"\nsubject = "{title}: {date}"\n'
)
NEW_ARTICLE = """---
title: "A Note Collected By The Daemon"
date: 2026-11-28T14:00:00Z
tags: [research]
summary: "Written while the daemon runs."
---
Body.
"""


class Daemon:
    """A ``publisher run`` subprocess whose stderr is read line by line in a thread."""

    def __init__(self, config: Path, *args: str, now: str | None = NOW) -> None:
        """``now=None`` runs on the real clock (no PUBLISHER_NOW at all)."""
        env = {**os.environ, "PUBLISHER_TEST_SECRET": "s"}
        env.pop("PUBLISHER_NOW", None)
        if now is not None:
            env["PUBLISHER_NOW"] = now
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), *args, "run"],
            cwd=config.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60, *, also: str = "") -> str:
        """Block until a stderr line contains ``text`` (and ``also``); return that line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line and also in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in daemon log:\n{''.join(self.lines)}")

    def terminate(self) -> float:
        """SIGTERM; return how long the exit took (the process must be gone in 10 s)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(timeout=5)
        return time.monotonic() - started

    def log(self) -> str:
        return "".join(self.lines)


def _issues(config: Path) -> list[tuple[str, str]]:
    store = Store.open(load(config).store_url)
    try:
        return [(i.digest_id, i.period) for i in store.list_issues(50)]
    finally:
        store.close()


def test_daemon_catches_up_collects_stops_and_restarts_without_doubles(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DAILY, extra='\n[schedule]\ncollect_every = "1s"\n')
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    daemon = Daemon(config, "--log-format", "json")
    try:
        ready = daemon.wait_for("next scheduled issue")
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # the caught-up period
        record = json.loads(ready)
        assert record["job"] == "digest:daily"
        assert record["next_fire_time"] == "2026-11-29T07:00:00+00:00"
        assert json.loads(daemon.wait_for('"collect: every'))["level"] == "info"
        (tmp_path / "content" / "daemon-note.md").write_text(NEW_ARTICLE, encoding="utf-8")
        daemon.wait_for("collected 1 new")
    finally:
        took = daemon.terminate()
    assert daemon.proc.returncode == 0, daemon.log()
    assert took < 10
    for line in daemon.lines:  # every line is one JSON object
        json.loads(line)
    assert _issues(config) == [("daily", "2026-11-28")]

    # A restart in the same period sends nothing twice.
    again = Daemon(config)
    try:
        again.wait_for("next scheduled issue")
    finally:
        again.terminate()
    assert again.proc.returncode == 0, again.log()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert _issues(config) == [("daily", "2026-11-28")]


def test_a_period_older_than_catch_up_is_not_sent_at_start(tmp_path: Path) -> None:
    weekly = DAILY.replace('"0 7 * * *"', '"0 8 * * mon"').replace('"daily"', '"weekly"')
    config = write_config(tmp_path, digests=weekly, extra='\n[schedule]\ncatch_up = "1d"\n')
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    daemon = Daemon(config)  # Saturday: Monday's 08:00 fire is 5 days old
    try:
        line = daemon.wait_for("older than catch_up")
        daemon.wait_for("next scheduled issue")
    finally:
        daemon.terminate()
    assert "period 2026-W48" in line
    assert daemon.proc.returncode == 0, daemon.log()
    assert _issues(config) == []
    assert not list((tmp_path / "outbox").glob("*.eml"))

    # A per-digest catch_up of a week lets the same start-up send it (once).
    config.write_text(
        config.read_text().replace('timezone = "UTC"', 'timezone = "UTC"\ncatch_up = "1w"'),
        encoding="utf-8",
    )
    daemon = Daemon(config)
    try:
        daemon.wait_for("next scheduled issue")
    finally:
        daemon.terminate()
    assert _issues(config) == [("weekly", "2026-W48")]


def test_sigterm_during_the_wait_exits_zero_quickly(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DAILY)
    daemon = Daemon(config, now="2026-11-28T06:00:00+00:00")
    try:
        daemon.wait_for("next scheduled issue")
    finally:
        took = daemon.terminate()
    assert daemon.proc.returncode == 0
    assert took < 10
    assert "received signal 15" in daemon.log()


def test_two_daemons_on_one_postgresql_make_one_issue(tmp_path: Path, pg_url: str) -> None:
    config = write_config(tmp_path, store_url=pg_url, digests=DAILY)
    run_cli(config, "subscribers", "add", "reader@example.org", now=NOW)
    run_cli(config, "subscribers", "import", str(_csv(tmp_path, 20)), now=NOW)
    daemons = [Daemon(config), Daemon(config)]
    try:
        for daemon in daemons:
            daemon.wait_for("next scheduled issue", timeout=120)
    finally:
        for daemon in daemons:
            daemon.terminate()
    for daemon in daemons:
        assert daemon.proc.returncode == 0, daemon.log()
    assert _issues(config) == [("daily", "2026-11-28")]
    emls = list((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 21  # one message per subscriber, whichever daemon sent it
    store = Store.open(pg_url)
    try:
        [issue] = store.list_issues(5)
        counts = store.delivery_counts(issue.id)
    finally:
        store.close()
    assert counts["sent"] == 21 and sum(counts.values()) == 21


def _csv(folder: Path, n: int) -> Path:
    path = folder / "more.csv"
    rows = ["email,name"] + [f"bulk{i}@example.org,Bulk {i}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_the_daemon_fires_an_every_minute_digest_on_the_real_clock(tmp_path: Path) -> None:
    """No PUBLISHER_NOW: APScheduler's own cron job must create and send the issue."""
    every_minute = DAILY.replace('"0 7 * * *"', '"* * * * *"').replace('"daily"', '"minutely"')
    config = write_config(
        tmp_path, digests=every_minute, extra='\n[schedule]\ncollect_every = "1s"\n'
    )
    for article in (tmp_path / "content").glob("*.md"):
        article.unlink()  # start-up then has nothing to send: only a cron firing can send
    # A file that every collect skips: logged, and the daemon keeps running.
    (tmp_path / "content" / "broken.md").write_text("---\ntitle: [x\n---\n", encoding="utf-8")
    run_cli(config, "subscribers", "add", "ana@example.org")
    daemon = Daemon(config, now=None)
    proc = daemon.proc
    outbox = tmp_path / "outbox"
    try:
        daemon.wait_for("digest minutely: next scheduled issue")
        assert "broken.md: broken front matter" in daemon.log()
        (tmp_path / "content" / "daemon-note.md").write_text(NEW_ARTICLE, encoding="utf-8")
        daemon.wait_for("collected 1 new")
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline and not list(outbox.glob("*.eml")):
            assert proc.poll() is None, daemon.log()
            time.sleep(0.2)
        # A firing in the minute before the article was collected logs sent=0; the one
        # that sent is the line to read.
        sent = daemon.wait_for("digest minutely: 20", timeout=10, also="sent=1")
    finally:
        daemon.terminate()
    assert proc.returncode == 0, daemon.log()
    [eml] = outbox.glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == "ana@example.org"
    assert "A Note Collected By The Daemon" in message.get_body(("plain",)).get_content()
    [(digest, period)] = _issues(config)
    assert digest == "minutely" and period in sent and "sent=1" in sent
    # The period is a whole minute after the daemon started: the cron job made it.
    fired = datetime.fromisoformat(period).replace(tzinfo=UTC)
    assert fired.second == 0 and abs(datetime.now(UTC) - fired) < timedelta(minutes=3)


def test_sigterm_at_start_up_always_exits_cleanly(tmp_path: Path) -> None:
    # SIGTERM the moment the daemon says it is ready: the signal lands while APScheduler
    # runs its first pass (the signal guard, due at once). It once crashed there with
    # JobLookupError and exit code 1, about one start in a few on a loaded machine.
    config = write_config(tmp_path, digests=DAILY)
    for attempt in range(5):
        daemon = Daemon(config)
        try:
            daemon.wait_for("next scheduled issue")
        finally:
            took = daemon.terminate()
        assert daemon.proc.returncode == 0, f"start {attempt}: {daemon.log()}"
        assert "Traceback" not in daemon.log()
        assert took < 10
