"""The store (database I/O): SQLAlchemy Core queries over SQLite or PostgreSQL.

The same code serves both. SQLite runs in WAL mode with ``synchronous=NORMAL`` and takes
the write lock at the start of each transaction (``BEGIN IMMEDIATE``), so the claim of a
delivery batch is atomic; PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so that many
workers can share one issue. Uniqueness that matters is enforced by the database: one
article per ``(source, guid)``, one issue per ``(digest, period)``, one delivery per
``(issue, subscriber)``.

:class:`Store` is a thin facade: one class composed of a mixin per aggregate, so callers
hold one object while each module holds one part of the schema.

- ``engine``: connecting (SQLite tuning, read-only opening), Alembic migrations, settings,
  :func:`translate` of database errors; ``location``: where a SQLite file lives;
  ``schema``: the core tables, ``schema_doors``: those of operators, tokens, audit, the
  console, the API and webhooks; ``schema_engagement``: tracked links and hits;
  ``migrations/``: Alembic revisions; ``rows``: rows to models.
- ``articles``: articles by ``(source, guid)``, their feed ids, and the reads.
- ``sources``: each source's health and validators, the feed index and feed-writer state.
- ``subscribers``: subscribers, their subscriptions, unsubscribing, preferences, erasure.
- ``roster``: subscriber administration (bulk import, changes, listing and export).
- ``signups``: web sign-up requests awaiting confirmation, the links' signing secret.
- ``suppressions``: the suppression list (hashes of addresses never to be mailed again).
- ``bounces``: bounce events and the verdict they lead to.
- ``feedback``: bounce and complaint events from provider webhooks and ARF reports, each once.
- ``issues``: issues, one per ``(digest, period)``, and the delivery ledger's reads.
- ``pauses``: pausing and resuming an issue (its queue kept, no claims while paused).
- ``guard``: an issue's hard-bounce and complaint figures, its auto-pause record.
- ``retention``: ``purge``: old ledger rows (counts rolled into ``issue_totals``), audit,
  webhook history, expired sessions and idempotency keys, in short batches.
- ``rollups``: subscription frequencies and the roll-up issues of slower cadences.
- ``planning``: who gets an issue, queued and counted by one set-based statement.
- ``claims``: claiming, taking over, fencing and recording deliveries.
- ``workers``: the registry of sending processes.
- ``limits``: cluster-wide send limits and relay health.
- ``operators``: the console's operators (password hashes, second factor).
- ``tokens``: API tokens (hashes only), their scope, expiry, last use and revocation.
- ``console``: the console's sessions (hashes of their ids), failed logins, 2FA one-time use.
- ``audit``: the audit log of operator actions, written in the action's transaction.
- ``monitoring``: the health probe and the counts ``/metrics`` and ``status`` report.
- ``directory``: the subscriber search (filters, keyset pages) of the console and the API.
- ``pages``: keyset pages of issues and articles, and a digest's totals, for the API.
- ``idempotency``: the HTTP API's stored responses to POSTs with an ``Idempotency-Key``.
- ``records``: one subscriber's deliveries and bounces, a page's subscriptions (console).
- ``events``: subscriber status changes, recorded in each change's transaction and summed
  by day for the console's charts.
- ``outbox``: webhook events, written in the transaction of what caused them;
  ``webhooks``: their claims, attempts, history and each hook's state.
- ``engagement``: tracked links, click/open/canary hits with their verdicts, the opt-in
  per-subscriber rows, the counts and the purge into hourly roll-ups.
"""

from __future__ import annotations

from publisher.store import location
from publisher.store.articles import ArticlesMixin, feed_id_for
from publisher.store.audit import AuditMixin
from publisher.store.bounces import BouncesMixin
from publisher.store.claims import ClaimsMixin
from publisher.store.console import ConsoleMixin, ConsoleSession
from publisher.store.directory import DirectoryMixin, SubscriberFilter
from publisher.store.engagement import EngagementMixin
from publisher.store.engine import MIGRATIONS, Lifecycle, _alembic_config, make_engine, translate
from publisher.store.events import SubscriberEventsMixin
from publisher.store.feedback import FeedbackMixin, ProviderEventRow
from publisher.store.guard import GuardMixin, Signals
from publisher.store.idempotency import IN_PROGRESS, IdempotencyMixin, StoredResponse
from publisher.store.issues import (
    BOUNCED,
    DELIVERY_STATES,
    ISSUE_STATES,
    THROTTLE_KEY,
    IssuesMixin,
)
from publisher.store.limits import LimitsMixin
from publisher.store.monitoring import LedgerFigures, MonitoringMixin
from publisher.store.operators import OperatorsMixin
from publisher.store.pages import PagesMixin
from publisher.store.pauses import PAUSED, PauseChange, PausesMixin
from publisher.store.planning import PlanningMixin
from publisher.store.records import RecordsMixin
from publisher.store.retention import RetentionMixin
from publisher.store.rollups import RollupsMixin
from publisher.store.roster import SubscriberAdmin
from publisher.store.signups import SignupsMixin
from publisher.store.sources import FEEDS_STATE, FeedIndexRow, SourcesMixin
from publisher.store.subscribers import ACTIVE, SubscribersMixin
from publisher.store.suppressions import SuppressionsMixin
from publisher.store.tokens import TokensMixin
from publisher.store.webhooks import WebhooksMixin
from publisher.store.workers import WorkersMixin

__all__ = [
    "ACTIVE",
    "BOUNCED",
    "ConsoleSession",
    "DELIVERY_STATES",
    "FEEDS_STATE",
    "IN_PROGRESS",
    "ISSUE_STATES",
    "MIGRATIONS",
    "PAUSED",
    "THROTTLE_KEY",
    "FeedIndexRow",
    "PauseChange",
    "Signals",
    "SubscriberFilter",
    "LedgerFigures",
    "ProviderEventRow",
    "Store",
    "StoredResponse",
    "_alembic_config",
    "feed_id_for",
    "location",
    "make_engine",
    "translate",
]


class Store(
    Lifecycle,
    ArticlesMixin,
    SourcesMixin,
    SubscribersMixin,
    SignupsMixin,
    BouncesMixin,
    IssuesMixin,
    PausesMixin,
    GuardMixin,
    RetentionMixin,
    RollupsMixin,
    ClaimsMixin,
    WorkersMixin,
    LimitsMixin,
    PlanningMixin,
    SubscriberAdmin,
    SuppressionsMixin,
    OperatorsMixin,
    TokensMixin,
    AuditMixin,
    ConsoleMixin,
    MonitoringMixin,
    DirectoryMixin,
    PagesMixin,
    IdempotencyMixin,
    RecordsMixin,
    SubscriberEventsMixin,
    WebhooksMixin,
    EngagementMixin,
    FeedbackMixin,
):
    """All database access. Create with :meth:`open`; every method is one transaction.

    Each base holds one aggregate's methods (see the module docstring for which module
    holds what); :class:`~publisher.store.engine.Lifecycle` holds ``engine`` for them all.
    """
