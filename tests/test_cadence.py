"""Per-subscriber cadence over simulated days: real CLI subprocesses, a real SQLite file,
the file transport, and a clock pinned with PUBLISHER_NOW (no sleeping)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from publisher.config import load
from publisher.store import Store
from tests.conftest import run_cli, write_config

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # ISO week 2026-W48; daily fires 07:00 UTC
DAILY = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "UTC"\nsubject = "{title}: {date}"\nmax_articles = 10\n'
)


def _article(folder: Path, day: int, at: datetime) -> str:
    title = f"Day {day} Research Note"
    (folder / "content" / f"day-{day}.md").write_text(
        f'---\ntitle: "{title}"\ndate: {at.isoformat()}\nauthor: "Newsroom"\n'
        f'tags: [research]\nsummary: "Fictional note number {day}."\n---\nBody of note {day}.\n',
        encoding="utf-8",
    )
    return title


def _outbox(folder: Path) -> dict[str, list[EmailMessage]]:
    by_rcpt: dict[str, list[EmailMessage]] = defaultdict(list)
    for path in sorted((folder / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        by_rcpt[str(message["To"]).strip("<>").split("<")[-1].rstrip(">")].append(message)  # type: ignore[arg-type]
    return by_rcpt


def test_weekly_subscriber_of_a_daily_digest_gets_one_rollup_a_week(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DAILY)
    start = MONDAY.isoformat()
    run_cli(config, "subscribers", "add", "every@example.org", now=start)
    run_cli(config, "subscribers", "add", "day@example.org", "--frequency", "daily", now=start)
    added = run_cli(
        config, "subscribers", "add", "week@example.org", "--frequency", "weekly", now=start
    )
    assert "daily (weekly)" in added.stdout

    titles = []
    for day in range(7):  # Monday .. Sunday of 2026-W48
        now = MONDAY + timedelta(days=day)
        titles.append(_article(tmp_path, day, now - timedelta(hours=2)))
        run_cli(config, "run", "--once", now=now.isoformat())
        # A second run the same day (a restart, cron twice) sends nothing more.
        run_cli(config, "run", "--once", now=(now + timedelta(hours=1)).isoformat())

    mail = _outbox(tmp_path)
    assert len(mail["every@example.org"]) == 7
    assert len(mail["day@example.org"]) == 7  # daily on a daily digest: every issue
    [weekly] = mail["week@example.org"]
    text = weekly.get_body(("plain",)).get_content()
    for title in titles:
        assert title in text
    # Everything the daily readers got that week is in the one weekly message.
    daily_titles = set()
    for message in mail["every@example.org"]:
        body = message.get_body(("plain",)).get_content()
        daily_titles.update(t for t in titles if t in body)
    assert daily_titles == set(titles)

    # The next Monday's issue does not go to the weekly reader; their cursor moved on.
    next_monday = MONDAY + timedelta(days=7)
    _article(tmp_path, 7, next_monday - timedelta(hours=2))
    run_cli(config, "run", "--once", now=next_monday.isoformat())
    mail = _outbox(tmp_path)
    assert len(mail["week@example.org"]) == 1
    assert len(mail["every@example.org"]) == 8

    store = Store.open(load(config).store_url)
    try:
        periods = [i.period for i in store.list_issues(50)]
    finally:
        store.close()
    assert "2026-W48 weekly since #0" in periods
    assert len(periods) == 9  # 8 daily issues + 1 roll-up


def test_switching_to_weekly_starts_from_the_latest_issue(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DAILY)
    run_cli(config, "subscribers", "add", "ana@example.org", now=MONDAY.isoformat())
    run_cli(config, "run", "--once", now=MONDAY.isoformat())  # issue 1, sent to Ana
    wednesday = MONDAY + timedelta(days=2)
    run_cli(
        config, "subscribers", "add", "ana@example.org", "--frequency", "weekly",
        now=wednesday.isoformat(),
    )  # fmt: skip
    for day in range(2, 7):
        now = MONDAY + timedelta(days=day)
        _article(tmp_path, day, now - timedelta(hours=1))
        run_cli(config, "run", "--once", now=now.isoformat())
    mail = _outbox(tmp_path)["ana@example.org"]
    assert len(mail) == 2  # Monday's regular issue, then Sunday's roll-up
    rollup = mail[-1].get_body(("plain",)).get_content()
    assert "Day 2 Research Note" in rollup and "Day 6 Research Note" in rollup
    # Monday's articles were in the issue Ana already had: not repeated.
    store = Store.open(load(config).store_url)
    try:
        issues = {i.period: i for i in store.list_issues(50)}
    finally:
        store.close()
    rollup_issue = issues["2026-W48 weekly since #1"]
    assert not set(rollup_issue.article_ids) & set(issues["2026-11-23"].article_ids)
    assert len(rollup_issue.article_ids) == 5


def test_send_window_holds_deliveries_until_it_opens(tmp_path: Path) -> None:
    digest = DAILY.replace(
        "max_articles = 10\n", 'max_articles = 10\nsend_window = "07:00-20:00"\n'
    )
    config = write_config(tmp_path, digests=digest)
    evening = "2026-11-28T21:00:00+00:00"  # the 07:00 period is due, but it is past 20:00
    run_cli(config, "subscribers", "add", "ana@example.org", now=evening)
    first = run_cli(config, "run", "--once", now=evening)
    assert "0 sent, 0 failed" in first.stdout
    assert not list((tmp_path / "outbox").glob("*.eml"))
    still_night = run_cli(config, "run", "--once", now="2026-11-29T06:30:00+00:00")
    assert not list((tmp_path / "outbox").glob("*.eml")), still_night.stdout
    run_cli(config, "run", "--once", now="2026-11-29T07:05:00+00:00")  # the window is open
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
