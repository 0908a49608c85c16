"""The store on a real SQLite file and on the local PostgreSQL (same tests, both backends)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from publisher.app import open_app
from publisher.config import load
from publisher.models import Article, SendOutcome
from publisher.services import cycle
from publisher.store import Store
from publisher.store.schema import metadata
from tests.conftest import write_config

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _article(
    guid: str, published: datetime, body: str = "<p>x</p>", tags: tuple[str, ...] = ()
) -> Article:
    return Article(
        source="s",
        guid=guid,
        title=f"Title {guid}",
        url=f"https://news.example.org/{guid}/",
        published_at=published,
        updated_at=published,
        content_html=body,
        summary="sum",
        tags=tags,
        content_hash=str(hash(body)),
    )


def test_migration_matches_schema(store_url: str) -> None:
    store = Store.open(store_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_upgrade_is_idempotent(store_url: str) -> None:
    store = Store.open(store_url, migrate=False)
    assert store.upgrade() == [
        "0001", "0003", "0004", "0005", "0006_plain_titles", "0007_limits", "0008_planning",
        "0009_workers", "0010_suppressions", "0011_operators", "0012_monitoring", "0013_events",
        "0014_webhooks", "0014_idempotency",
        "0015_console", "0017_provider_events", "0018_autopause", "0016_engagement",
    ]
    assert store.upgrade() == []
    store.close()


def test_articles_new_unchanged_updated(store_url: str) -> None:
    store = Store.open(store_url)
    a = _article("a", T0 - timedelta(days=1), tags=("research",))
    assert store.upsert_article(a, T0, "news.example.org") == "new"
    assert store.upsert_article(a, T0, "news.example.org") == "unchanged"
    edited = replace(a, content_html="<p>y</p>", content_hash="other")
    later = T0 + timedelta(hours=2)
    assert store.upsert_article(edited, later, "news.example.org") == "updated"
    [stored] = store.recent_articles(10)
    assert stored.content_html == "<p>y</p>"
    assert stored.published_at == a.published_at  # kept
    assert stored.updated_at == later  # dated by when the edit was seen
    assert stored.feed_id == f"tag:news.example.org,{T0:%Y-%m-%d}:s/a"  # fixed at first sight
    assert stored.tags == ("research",)
    assert store.all_tags() == ["research"]
    assert [x.guid for x in store.articles_with_tag("research", 5)] == ["a"]
    store.close()


def test_issue_unique_per_digest_period(store_url: str) -> None:
    store = Store.open(store_url)
    store.upsert_article(_article("a", T0), T0, "h")
    [a] = store.recent_articles(1)
    first, created = store.create_issue("daily", "2026-11-28", "S", [a.id], T0)
    second, created_again = store.create_issue("daily", "2026-11-28", "S", [a.id], T0)
    assert created and not created_again
    assert first.id == second.id
    assert store.unissued_articles("daily") == []
    assert [x.guid for x in store.unissued_articles("weekly")] == ["a"]
    store.close()


def _issue_with_subscribers(store: Store, n: int) -> tuple[int, list[int]]:
    store.upsert_article(_article("a", T0), T0, "h")
    [a] = store.recent_articles(1)
    ids = []
    for i in range(n):
        sub, _ = store.add_subscriber(f"user{i}@example.org", f"U{i}", ["daily"], T0)
        ids.append(sub.id)
    issue, _ = store.create_issue("daily", "p1", "S", [a.id], T0)
    return issue.id, ids


def test_plan_claim_record(store_url: str) -> None:
    store = Store.open(store_url)
    issue_id, subs = _issue_with_subscribers(store, 5)
    issue = store.list_issues()[0]
    assert store.plan_deliveries(issue, T0) == 5
    assert store.plan_deliveries(issue, T0) == 0  # a second planner adds nothing

    store.set_subscriber_status("user4@example.org", "unsubscribed", T0)
    batch = store.claim_batch(issue_id, "w1", T0, 10, 3600)
    assert sorted(r.email for r in batch) == [f"user{i}@example.org" for i in range(4)]
    assert store.claim_batch(issue_id, "w2", T0, 10, 300) == []  # all leased
    assert store.delivery_counts(issue_id)["skipped"] == 1

    ok, temp, perm, crashed = batch
    outcomes = [
        (SendOutcome(ok.delivery_id, True), 1),
        (SendOutcome(temp.delivery_id, False, "451 try later", False, 451), 1),
        (SendOutcome(perm.delivery_id, False, "550 no such user", True, 550), 1),
    ]
    store.record_outcomes(
        outcomes, T0, max_attempts=3, retry_at=lambda attempt, _id: T0 + timedelta(minutes=5)
    )
    counts = store.delivery_counts(issue_id)
    assert counts == {
        "queued": 1, "sending": 1, "sent": 1, "failed": 1, "bounced": 0, "skipped": 1
    }  # fmt: skip
    assert store.failures(issue_id) == [("550 no such user", 1)]
    assert not store.finish_issue_if_done(issue_id)

    # Before the retry time and the lease expiry nothing is due; after both, both come back.
    assert store.claim_batch(issue_id, "w3", T0 + timedelta(minutes=1), 10, 300) == []
    later = T0 + timedelta(minutes=6)
    again = store.claim_batch(issue_id, "w3", later, 10, 3600)
    assert [r.delivery_id for r in again] == [temp.delivery_id]
    expired = store.claim_batch(issue_id, "w4", T0 + timedelta(seconds=3601), 10, 300)
    assert [r.delivery_id for r in expired] == [crashed.delivery_id]
    assert expired[0].attempts == 2
    store.record_outcomes(
        [(SendOutcome(r.delivery_id, True), r.attempts) for r in again + expired],
        later,
        max_attempts=3,
        retry_at=lambda attempt, _id: later,
    )
    assert store.finish_issue_if_done(issue_id)
    assert store.delivery_counts(issue_id)["sent"] == 3
    store.close()


def test_import_does_not_resubscribe(store_url: str) -> None:
    store = Store.open(store_url)
    store.add_subscriber("a@example.org", "A", ["daily"], T0)
    store.set_subscriber_status("a@example.org", "unsubscribed", T0)
    sub, created = store.add_subscriber(
        "a@example.org", "A", ["daily", "weekly"], T0, reactivate=False
    )
    assert not created and sub.status == "unsubscribed" and sub.digests == ("daily",)
    sub, _ = store.add_subscriber("a@example.org", "", ["weekly"], T0)
    assert sub.status == "active" and sub.digests == ("daily", "weekly") and sub.name == "A"
    assert store.count_recipients("weekly") == 1
    store.close()


def test_whole_cycle_on_this_backend(store_url: str, tmp_path: Path) -> None:
    """collect -> feeds -> send with the file transport, through the pipeline, on this backend."""
    config = load(write_config(tmp_path, store_url=store_url))
    app = open_app(config, clock=lambda: T0 + timedelta(hours=3))
    app.store.add_subscriber("a@example.org", "A", ["daily"], T0)
    app.store.add_subscriber("b@example.org", "B", ["daily"], T0)
    report = cycle.run_once(app)
    assert report.collected.new == 7 and report.errors == []
    assert sum(r.sent for r in report.sends) == 2
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    again = cycle.run_once(app)
    assert sum(r.sent for r in again.sends) == 0 and again.collected.unchanged == 7
    app.store.close()


def test_topic_tags_choose_which_issues_a_subscriber_gets(store_url: str) -> None:
    store = Store.open(store_url)
    store.upsert_article(_article("a", T0, tags=("research",)), T0, "h")
    store.upsert_article(
        _article("b", T0 + timedelta(hours=1), tags=("surgery", "50%_off")), T0, "h"
    )
    by_guid = {a.guid: a.id for a in store.recent_articles(10)}
    store.add_subscriber("all@example.org", "", ["daily"], T0)
    store.add_subscriber("surgery@example.org", "", ["daily"], T0, tags=["surgery"])
    store.add_subscriber("odd@example.org", "", ["daily"], T0, tags=["50%"])
    research, _ = store.create_issue("daily", "p1", "S", [by_guid["a"]], T0)
    surgery, _ = store.create_issue("daily", "p2", "S", [by_guid["b"]], T0)
    assert store.plan_deliveries(research, T0) == 1  # only the subscriber without topics
    assert store.plan_deliveries(surgery, T0) == 2  # and the one who picked surgery
    batch = store.claim_batch(surgery.id, "w", T0, 10, 60)
    assert sorted(r.email for r in batch) == ["all@example.org", "surgery@example.org"]
    store.close()


def test_0010_keeps_existing_suppressions_and_adds_their_note(store_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from publisher.store import _alembic_config

    store = Store.open(store_url, migrate=False)
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0009_workers")
        conn.execute(
            text("INSERT INTO suppressions (email_hash, reason, created_at) VALUES (:h, 'erased', :t)"),
            {"h": "ab" * 32, "t": T0.replace(tzinfo=None)},
        )
    assert store.upgrade()[:1] == ["0010_suppressions"]  # later revisions follow it
    found = store.suppression("ab" * 32)
    assert found is not None and (found.reason, found.note) == ("erased", "")
    store.suppress("ab" * 32, "complaint", T0, note="operator")
    assert store.suppression_counts() == {"complaint": 1}
    assert store.lift_suppression("ab" * 32) is not None and store.suppression("ab" * 32) is None
    store.close()
