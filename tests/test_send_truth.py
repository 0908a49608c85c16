"""``send`` tells the truth (issue 12): the dry run counts what a real send does, a send
held by quiet hours says so, and ``issues cancel`` refuses a sent issue and gives the
articles of a cancelled one to the next issue. Real CLI subprocesses on a real SQLite
file with the file transport; the date is pinned with PUBLISHER_NOW (planning only)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from publisher.config import load
from publisher.store import Store
from tests.conftest import run_cli, write_config

DAILY = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "UTC"\nsubject = "{title}: {date}"\nmax_articles = 10\n'
)
QUIET = DAILY.replace("max_articles = 10\n", 'max_articles = 10\nsend_window = "07:00-20:00"\n')
MONDAY = "2026-11-23T15:00:00+00:00"  # ISO week 2026-W48; the 07:00 period is due
EVENING = "2026-11-23T21:00:00+00:00"  # due, but past the 20:00 end of the send window


def _subscribers(folder: Path, config: Path, now: str) -> None:
    """Two readers who get the issue, one whose topic matches none of its articles and a
    weekly reader of the daily digest (a roll-up on Sunday)."""
    csv_file = folder / "people.csv"
    csv_file.write_text(
        "email,name,digests,tags\n"
        "ana@example.org,Ana,daily,\n"
        "bo@example.org,Bo,daily,research\n"
        "cy@example.org,Cy,daily,knitting\n"
        "dee@example.org,Dee,daily,\n",
        encoding="utf-8",
    )
    run_cli(config, "subscribers", "import", str(csv_file), now=now)
    run_cli(config, "subscribers", "add", "dee@example.org", "--frequency", "weekly", now=now)


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return int(found.group(1))


def _outbox(folder: Path) -> int:
    return len(list((folder / "outbox").glob("*.eml")))


def test_dry_run_and_queue_only_count_what_the_real_send_sends(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DAILY)
    run_cli(config, "collect", now=MONDAY)
    _subscribers(tmp_path, config, MONDAY)

    dry = run_cli(config, "send", "daily", "--dry-run", now=MONDAY)
    would = _number(r"for (\d+) subscriber", dry.stdout)
    queued = run_cli(config, "send", "daily", "--queue-only", now=MONDAY)
    assert f"{would} queued for `publisher worker`" in queued.stdout
    real = run_cli(config, "send", "daily", now=MONDAY)  # sends what was queued
    sent = _number(r"(\d+) sent", real.stdout)
    assert would == sent == _outbox(tmp_path) == 2, (dry.stdout, real.stdout)

    # Nothing is left to send: cancelling it now would only relabel it.
    refused = run_cli(config, "issues", "cancel", "1", now=MONDAY, check=False)
    assert refused.returncode == 1
    assert "issue #1 has nothing left to send" in refused.stderr
    assert "[sent]" in run_cli(config, "issues", "show", "1", now=MONDAY).stdout
    # A dry run after the send says why nothing would go, rather than printing nothing.
    again = run_cli(config, "send", "daily", "--dry-run", now=MONDAY)
    assert "already sent; nothing to send" in again.stdout


def test_dry_run_lists_the_rollups_a_send_would_create(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DAILY)
    run_cli(config, "collect", now=MONDAY)
    _subscribers(tmp_path, config, MONDAY)
    run_cli(config, "send", "daily", now=MONDAY)
    sunday = "2026-11-29T15:00:00+00:00"  # closes Dee's week: her roll-up is due
    (tmp_path / "content" / "sunday.md").write_text(
        '---\ntitle: "Sunday Note"\ndate: 2026-11-29T06:00:00Z\ntags: [research]\n---\nBody.\n',
        encoding="utf-8",
    )
    run_cli(config, "collect", now=sunday)

    dry = run_cli(config, "send", "daily", "--dry-run", now=sunday)
    rollup = re.search(
        r"would create roll-up '([^']+)' with (\d+) article\(s\) for (\d+)", dry.stdout
    )
    assert rollup, dry.stdout
    period, articles, readers = rollup.group(1), int(rollup.group(2)), int(rollup.group(3))
    regular = _number(r"for (\d+) subscriber", dry.stdout)

    real = run_cli(config, "send", "daily", now=sunday)
    store = Store.open(load(config).store_url)
    try:
        made = {i.period: i for i in store.list_issues(10)}
        counts = store.delivery_counts(made[period].id)
    finally:
        store.close()
    assert len(made[period].article_ids) == articles == 8  # Monday's 7 and Sunday's note
    assert counts["sent"] == readers == 1
    sent = [int(n) for n in re.findall(r"(\d+) sent", real.stdout)]
    assert sum(sent) == regular + readers, real.stdout


def _cancelled_then_next_day(
    tmp_path: Path, *cancel_args: str, look: bool = False
) -> tuple[str, list[int], list[int]]:
    config = write_config(tmp_path, digests=QUIET)
    run_cli(config, "collect", now=EVENING)
    _subscribers(tmp_path, config, EVENING)
    if look:
        dry = run_cli(config, "send", "daily", "--dry-run", now=EVENING)
        assert "for 2 subscriber(s); 2 held until 07:00 (send_window)" in dry.stdout
    held = run_cli(config, "send", "daily", now=EVENING)  # both deliveries stay queued
    assert "0 sent, 0 failed, 2 held until 07:00 (send_window)" in held.stdout
    assert _outbox(tmp_path) == 0
    if look:
        status = run_cli(config, "status", now=EVENING)
        assert "held      issue 1: 2 held until 07:00 (send_window)" in status.stdout
        as_json = json.loads(run_cli(config, "status", "--json", now=EVENING).stdout)
        assert as_json["held"] == [{"issue": 1, "count": 2, "until": "2026-11-24T07:00:00+00:00"}]
        shown = run_cli(config, "issues", "show", "1", now=EVENING)
        assert "held      2 held until 07:00 (send_window)" in shown.stdout
    cancelled = run_cli(config, "issues", "cancel", "1", *cancel_args, now=EVENING)
    assert "2 queued delivery(ies) skipped" in cancelled.stdout
    again = run_cli(config, "send", "daily", now="2026-11-23T21:30:00+00:00")
    assert "issue 2026-11-23 (#1) was cancelled" in again.stdout
    assert "already sent" not in again.stdout
    next_day = run_cli(config, "send", "daily", now="2026-11-24T07:05:00+00:00")
    store = Store.open(load(config).store_url)
    try:
        issues = {i.id: i for i in store.list_issues(10)}
    finally:
        store.close()
    later = [a for i in issues.values() if i.id != 1 for a in i.article_ids]
    return next_day.stdout, list(issues[1].article_ids), later


def test_held_send_then_cancel_gives_the_articles_to_the_next_issue(tmp_path: Path) -> None:
    out, cancelled, later = _cancelled_then_next_day(tmp_path, look=True)
    assert cancelled and sorted(later) == sorted(cancelled), out
    assert _outbox(tmp_path) == 2


def test_cancel_with_drop_articles_keeps_them_out(tmp_path: Path) -> None:
    out, cancelled, later = _cancelled_then_next_day(tmp_path, "--drop-articles")
    assert cancelled and later == []
    assert "no new articles" in out and _outbox(tmp_path) == 0


def test_postgresql_plans_a_large_list_in_one_statement(tmp_path: Path, pg_url: str) -> None:
    """20,000 subscribers inserted with SQL (as an existing list would be, with no
    statistics yet): the dry run and ``--queue-only`` agree on the count, and a second
    send in the period queues nothing more."""
    from sqlalchemy import create_engine, text

    config = write_config(tmp_path, digests=DAILY, store_url=pg_url)
    run_cli(config, "collect", now=MONDAY)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (email, name, status, created_at, updated_at) "
            "SELECT 'reader' || g || '@example.org', '', 'active', now(), now() "
            "FROM generate_series(1, 20000) AS g"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO subscriptions (subscriber_id, digest_id, frequency, tags, created_at) "
            "SELECT id, 'daily', 'every', CASE WHEN id % 10 = 0 THEN '[\"knitting\"]' ELSE '[]' END, "
            "now() FROM subscribers"
        ))  # fmt: skip
    dry = run_cli(config, "send", "daily", "--dry-run", now=MONDAY)
    assert "for 18000 subscriber(s)" in dry.stdout  # every tenth chose a topic with no article
    queued = run_cli(config, "send", "daily", "--queue-only", now=MONDAY)
    assert "18000 queued for `publisher worker`" in queued.stdout
    again = run_cli(config, "send", "daily", "--queue-only", now=MONDAY)
    assert "was planned before: nothing more queued" in again.stdout
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM deliveries")) == 18000
    engine.dispose()
