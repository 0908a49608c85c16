"""``publisher issues pause|resume``: a paused issue keeps its queue and sends nothing.

Real CLI subprocesses against a real SQLite file and the local PostgreSQL, and a real
aiosmtpd server in this process that counts what arrives: every subscriber must get the
issue exactly once across pause, resume and the sends around them. The store tests check
the claim path and the ledger directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.app import open_app
from publisher.config import load
from publisher.errors import PublisherError
from publisher.services import issues as issue_actions
from publisher.store import Store
from tests.conftest import SmtpServer, run_cli, write_config
from tests.test_delivery import ScriptedHandler, add_many, scripted  # noqa: F401
from tests.test_delivery_process import _by_status
from tests.test_takeover import T0, _planned


def _everyone(n: int) -> Counter[str]:
    return Counter({f"user{i:06d}@example.org": 1 for i in range(n)})


def _site(tmp_path: Path, smtp: SmtpServer, store_url: str, n: int, extra: str = "") -> Path:
    """A site on ``store_url`` sending to ``smtp``, with articles and ``n`` subscribers."""
    config = write_config(tmp_path, store_url=store_url, transport="smtp", smtp=smtp)
    if extra:
        text = config.read_text().replace("retry_base_seconds = 60\n", f"retry_base_seconds = 60\n{extra}")
        config.write_text(text)
    run_cli(config, "collect")
    app = open_app(load(config))
    add_many(app.store, n)
    app.store.close()
    return config


def _fails(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 1 with one line on stderr that says all of ``words``."""
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert all(w in line for w in words), line


# -- the store -----------------------------------------------------------------------------


def test_a_paused_issue_hands_out_no_claims_keeps_its_queue_and_is_not_finished(
    store_url: str,
) -> None:
    store = Store.open(store_url)
    issue_id = _planned(store, 3)
    [first] = store.claim_batch(issue_id, "a", T0, 1, 300, owner=1)
    change = store.pause_issue(issue_id)
    assert (change.before, change.changed, change.queued, change.sending) == ("sending", True, 2, 1)
    assert store.claim_batch(issue_id, "b", T0, 10, 300, owner=2) == []
    assert [i.id for i in store.open_issues("daily")] == []
    assert store.issues_to_deliver() == [] and store.next_due_at() is None
    assert [(i.id, n) for i, n in store.paused_issues()] == [(issue_id, 2)]
    # The message in flight is recorded; the queued ones stay queued, the issue paused.
    store.record_outcomes([(_ok(first.delivery_id), 1)], T0, max_attempts=3, retry_at=_never, owner=1)
    assert not store.finish_issue_if_done(issue_id)
    assert store.issue_status(issue_id) == "paused"
    assert store.delivery_counts(issue_id)["queued"] == 2
    assert store.pause_issue(issue_id).changed is False  # twice: no change
    assert store.resume_issue(issue_id).changed
    assert len(store.claim_batch(issue_id, "b", T0, 10, 300, owner=2)) == 2
    store.close()


def test_resume_of_an_issue_whose_last_messages_went_out_while_paused_marks_it_sent(
    store_url: str,
) -> None:
    store = Store.open(store_url)
    issue_id = _planned(store, 2)
    batch = store.claim_batch(issue_id, "a", T0, 10, 300, owner=1)
    assert store.pause_issue(issue_id).changed  # both in flight
    store.record_outcomes([(_ok(r.delivery_id), 1) for r in batch], T0, max_attempts=3, retry_at=_never, owner=1)
    assert store.finish_issue_if_done(issue_id)  # nothing left: done, paused or not
    assert store.issue_status(issue_id) == "sent"
    assert store.resume_issue(issue_id).before == "sent"
    store.close()


def _ok(delivery_id: int):  # type: ignore[no-untyped-def]
    from publisher.models import SendOutcome

    return SendOutcome(delivery_id, True, "250 ok")


def _never(_attempt: int, _id: int) -> datetime:
    return T0 + timedelta(days=1)


# -- the CLI -------------------------------------------------------------------------------


def test_pause_before_a_send_then_resume_delivers_everyone_exactly_once(
    tmp_path: Path, smtp_server: SmtpServer, store_url: str
) -> None:
    n = 6
    config = _site(tmp_path, smtp_server, store_url, n)
    queued = run_cli(config, "send", "daily", "--queue-only").stdout
    assert f"{n} queued" in queued and "(#1," in queued

    paused = run_cli(config, "issues", "pause", "1").stdout
    assert f"paused    issue #1: {n} queued" in paused and "issues resume 1" in paused

    send = run_cli(config, "send", "daily").stdout
    assert f"(#1) is paused: {n} queued, nothing sent" in send, send
    assert "already sent" not in send
    worker = run_cli(config, "worker", "--until-idle", "--poll", "0.1").stdout
    assert "0 sent" in worker and f"paused    issue #1: {n} queued" in worker, worker
    assert smtp_server.handler.messages == []

    status = run_cli(config, "status").stdout
    assert "paused    issue #1 (daily " in status and f"{n} queued" in status, status
    data = json.loads(run_cli(config, "status", "--json").stdout)
    assert [(p["issue"], p["digest"], p["queued"]) for p in data["paused_issues"]] == [(1, "daily", n)]
    assert data["issues"][0]["status"] == "paused"
    [listed] = json.loads(run_cli(config, "issues", "list", "--json").stdout)
    assert listed["status"] == "paused" and listed["counts"]["queued"] == n
    assert " paused " in run_cli(config, "issues", "list").stdout
    show = run_cli(config, "issues", "show", "1").stdout
    assert "[paused]" in show and "nothing goes out until `publisher issues resume 1`" in show

    _fails(run_cli(config, "issues", "pause", "1", check=False), "#1", "already paused")
    resumed = run_cli(config, "issues", "resume", "1").stdout
    assert f"resumed   issue #1: {n} queued" in resumed
    _fails(run_cli(config, "issues", "resume", "1", check=False), "#1", "not paused (sending)")

    worker = run_cli(config, "worker", "--until-idle", "--poll", "0.1").stdout
    assert f"{n} sent" in worker and "paused" not in worker, worker
    received = Counter(r for _, rcpts, _ in smtp_server.handler.messages for r in rcpts)
    assert received == _everyone(n)
    assert json.loads(run_cli(config, "status", "--json").stdout)["paused_issues"] == []

    _fails(run_cli(config, "issues", "pause", "1", check=False), "#1", "is sent", "nothing to pause")
    _fails(run_cli(config, "issues", "pause", "99", check=False), "no issue #99")
    _fails(run_cli(config, "issues", "resume", "99", check=False), "no issue #99")


def test_cancel_a_paused_issue_skips_its_queue_and_it_cannot_be_resumed(
    tmp_path: Path, smtp_server: SmtpServer, store_url: str
) -> None:
    config = _site(tmp_path, smtp_server, store_url, 4)
    run_cli(config, "send", "daily", "--queue-only")
    run_cli(config, "issues", "pause", "1")
    cancelled = run_cli(config, "issues", "cancel", "1").stdout
    assert "cancelled issue #1: 4 queued delivery(ies) skipped" in cancelled
    _fails(run_cli(config, "issues", "resume", "1", check=False), "not paused (cancelled)")
    _fails(run_cli(config, "issues", "pause", "1", check=False), "is cancelled", "nothing to pause")
    run_cli(config, "worker", "--until-idle", "--poll", "0.1")
    assert smtp_server.handler.messages == []
    [listed] = json.loads(run_cli(config, "issues", "list", "--json").stdout)
    assert listed["status"] == "cancelled" and listed["counts"]["skipped"] == 4


def test_resend_failed_on_a_paused_issue_requeues_but_sends_nothing_until_resumed(
    tmp_path: Path, smtp_server: SmtpServer, store_url: str
) -> None:
    n = 4
    config = _site(tmp_path, smtp_server, store_url, n)
    replies = smtp_server.handler.rcpt_replies
    replies["user000000@example.org"] = "550 5.7.1 refused by policy"  # permanent: failed
    replies["user000001@example.org"] = "451 4.3.0 try again later"  # retried in a minute
    now = datetime.now(UTC)
    first = run_cli(config, "send", "daily", now=now.isoformat()).stdout
    assert f"{n - 2} sent, 1 failed" in first and "1 to retry" in first, first
    run_cli(config, "issues", "pause", "1", now=now.isoformat())
    replies.clear()

    resend = run_cli(config, "issues", "resend", "1", "--failed", now=now.isoformat()).stdout
    assert "requeued  1 failed delivery(ies) of issue #1" in resend
    assert "issue #1 is paused: nothing sent" in resend, resend
    [listed] = json.loads(run_cli(config, "issues", "list", "--json").stdout)
    assert listed["status"] == "paused" and listed["counts"]["queued"] == 2
    assert len(smtp_server.handler.messages) == n - 2

    later = (now + timedelta(minutes=5)).isoformat()  # the 451's retry is due by then
    assert "0 sent" in run_cli(config, "worker", "--until-idle", now=later).stdout
    run_cli(config, "issues", "resume", "1", now=later)
    assert "2 sent" in run_cli(config, "worker", "--until-idle", now=later).stdout
    received = Counter(r for _, rcpts, _ in smtp_server.handler.messages for r in rcpts)
    assert received == _everyone(n)


def test_the_service_refuses_with_one_clear_line(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, store_url=sqlite_url)
    run_cli(config, "collect")
    run_cli(config, "subscribers", "add", "ana@example.org")
    run_cli(config, "send", "daily")  # the file transport: sent at once
    app = open_app(load(config))
    with pytest.raises(PublisherError, match=r"issue #1 is sent: there is nothing to pause"):
        issue_actions.pause_issue(app, 1)
    with pytest.raises(PublisherError, match=r"issue #1 is not paused \(sent\)"):
        issue_actions.resume_issue(app, 1)
    app.store.close()


# -- a pause while another process sends -----------------------------------------------------


def _popen(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret"}
    env.pop("PUBLISHER_NOW", None)
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=config.parent,
    )  # fmt: skip


def test_a_pause_stops_a_running_send_in_another_process_and_loses_nothing(
    tmp_path: Path,
    scripted: SmtpServer,  # noqa: F811
    store_url: str,
) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    n = 60
    # 2 messages a second over two connections (30 s in all, time for a CLI call on a busy
    # machine): one claimed batch holds the whole issue, so only the pause check inside
    # the batch can stop it.
    config = _site(tmp_path, scripted, store_url, n, "connections = 2\nrate_limit = 2\n")
    proc = _popen(config, "send", "daily")
    try:
        deadline = time.monotonic() + 60
        while handler.count() < 5:
            assert proc.poll() is None, f"send exited early: {proc.communicate()}"
            assert time.monotonic() < deadline, "the send did not get going"
            time.sleep(0.02)
        pause = run_cli(config, "issues", "pause", "1")
        assert "paused    issue #1:" in pause.stdout
        at_pause, paused_at = handler.count(), time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - paused_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert took < 10, f"the sender went on for {took:.1f}s after the pause"
    assert "paused: the rest stays queued until `publisher issues resume 1`" in out, out
    sent = handler.count()
    assert sent < n and sent - at_pause <= 2 * took + 2  # what was on the wire, then nothing
    time.sleep(0.5)
    assert handler.count() == sent  # nothing trickles out afterwards

    store = Store.open(store_url)
    counts = _by_status(store)
    assert counts == Counter({"sent": sent, "queued": n - sent}), counts  # none skipped or held
    assert store.issue_status(1) == "paused"
    assert f"{n - sent} left queued" in out, out  # the claimed rest, given back

    config.write_text(config.read_text().replace("rate_limit = 2\n", ""))
    assert "0 sent" in run_cli(config, "worker", "--until-idle", "--poll", "0.1").stdout
    run_cli(config, "issues", "resume", "1")
    rest = run_cli(config, "worker", "--until-idle", "--poll", "0.1").stdout
    assert f"{n - sent} sent" in rest, rest
    assert handler.per_rcpt() == _everyone(n)
    assert _by_status(store) == Counter({"sent": n})
    assert store.issue_status(1) == "sent"
    store.close()
