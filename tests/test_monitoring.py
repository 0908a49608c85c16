"""/healthz, /metrics and ``status --json`` against a store filled with a known state.

Each store test runs on a real SQLite file and on the local PostgreSQL (CI=true). The web
app answers real HTTP requests through Starlette's test client (and once through
``publisher serve``); ``/metrics`` is read back with ``prometheus_client``'s own parser;
``status --json`` runs as a subprocess of the CLI and must carry the same numbers.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from publisher.app import App, open_app
from publisher.config import load
from publisher.deliver import liveness
from publisher.errors import ConfigError
from publisher.models import Article, SendOutcome
from publisher.services import monitoring
from publisher.store.schema import issues
from publisher.web import create_app
from tests.conftest import run_cli, write_config
from tests.test_web_server import start_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette suggests httpx2 for its TestClient
    from starlette.testclient import TestClient

T = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
RELAYS = """
[[relays]]
name = "primary"
host = "127.0.0.1"
port = 1
security = "none"

[[relays]]
name = "backup"
host = "127.0.0.1"
port = 2
security = "none"
priority = 1
"""


def _config(folder: Path, store_url: str, web: str = "") -> Path:
    return write_config(folder, store_url=store_url, transport="smtp", extra=web + RELAYS)


def _article() -> Article:
    return Article(
        source="newsroom",
        guid="a",
        title="Title",
        url="https://news.example.org/a/",
        published_at=T - timedelta(days=1),
        updated_at=T - timedelta(days=1),
        content_html="<p>body</p>",
        summary="sum",
        tags=(),
        content_hash="h",
    )


def _send(app: App, issue_id: int, n: int, at: datetime) -> None:
    batch = app.store.claim_batch(issue_id, "test", at, n, 600)
    assert len(batch) == n
    app.store.record_outcomes(
        [(SendOutcome(r.delivery_id, True), r.attempts) for r in batch],
        at,
        max_attempts=3,
        retry_at=lambda _a, _d: at,
    )


def _fill(app: App) -> dict[str, object]:
    """A known state: 12 readers of an issue being sent, a paused issue, workers, relays."""
    store = app.store
    store.upsert_article(_article(), T, "news.example.org")
    [article] = store.recent_articles(1)
    for i in range(12):
        store.add_subscriber(f"reader{i}@example.org", f"R{i}", ["daily"], T - timedelta(hours=2))
    planned_at = T - timedelta(hours=2)
    sending, _ = store.create_issue("daily", "2026-12-01", "S", [article.id], planned_at)
    assert store.plan_deliveries(sending, planned_at) == 12
    _send(app, sending.id, 2, T - timedelta(hours=1))  # sent, but in neither window
    _send(app, sending.id, 3, T - timedelta(seconds=200))  # the last five minutes only
    _send(app, sending.id, 4, T - timedelta(seconds=20))  # the last minute (and five)
    me = os.getpid()
    alive, lock = store.register_worker(
        host_id=liveness.host_id(), hostname=socket.gethostname(), pid=me,
        process_start=liveness.process_start(me), command="worker", now=T,
    )  # fmt: skip
    _gone, gone_lock = store.register_worker(
        host_id=liveness.host_id(), hostname=socket.gethostname(), pid=me,
        process_start="another-boot:1", command="worker", now=T,
    )  # fmt: skip
    [in_flight] = store.claim_batch(sending.id, "w", T, 1, 600, owner=alive)
    [retry] = store.claim_batch(sending.id, "w", T, 1, 600)
    store.record_outcomes(
        [(SendOutcome(retry.delivery_id, False, "451 later", False, 451), 1)],
        T,
        max_attempts=3,
        retry_at=lambda _a, _d: T + timedelta(minutes=5),
    )
    # An issue an operator paused: its queued deliveries are not the workers' queue.
    paused, _ = store.create_issue("daily", "2026-12-02", "S", [article.id], T)
    assert store.plan_deliveries(paused, T) == 12
    with store.engine.begin() as conn:
        conn.execute(update(issues).where(issues.c.id == paused.id).values(status="paused"))
    store.relay_trouble("backup", "cannot connect", refusal=False, threshold=1, recheck=600)
    store.record_source_run("newsroom", T, "HTTP 500")
    return {"locks": [lock, gone_lock], "in_flight": in_flight}


EXPECTED = {
    "queue": {"queued": 2, "sending": 1},  # 12 - 9 sent - 1 in flight = 2 (one a retry)
    "sent": {"1m": 4, "5m": 7},
    "relays": {"primary": True, "backup": False},
    "open_issues": 1,
    "paused_issues": 1,
    "workers": {"alive": 1, "unknown": 0, "gone": 1},
    "retry_queue": 1,
    "failing_sources": 1,
}


@pytest.fixture
def filled(tmp_path: Path, store_url: str) -> Iterator[App]:
    app = open_app(load(_config(tmp_path, store_url)), clock=lambda: T)
    held = _fill(app)
    try:
        yield app
    finally:
        for conn in held["locks"]:  # type: ignore[attr-defined]
            if conn is not None:
                conn.close()
        app.store.close()


def _scrape(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of an exposition, by metric name and sorted labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _as_figures(samples: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> dict[str, object]:
    """The /metrics samples in the shape of ``status --json``'s ``monitoring``."""

    def by(name: str, label: str) -> dict[str, int]:
        return {dict(k)[label]: int(v) for k, v in samples[name].items()}

    def one(name: str) -> int:
        [value] = samples[name].values()
        return int(value)

    return {
        "queue": by("publisher_queue_depth", "state"),
        "sent": by("publisher_sent_messages", "window"),
        "relays": {k: bool(v) for k, v in by("publisher_relay_healthy", "relay").items()},
        "open_issues": one("publisher_open_issues"),
        "paused_issues": one("publisher_paused_issues"),
        "workers": by("publisher_workers", "state"),
        "retry_queue": one("publisher_retry_queue"),
        "failing_sources": one("publisher_failing_sources"),
    }


def test_metrics_status_json_and_the_service_agree_on_a_known_store(filled: App) -> None:
    figures = monitoring.figures(filled)
    data = figures.as_dict()
    assert data.pop("at") == T.isoformat()
    assert data == EXPECTED

    client = TestClient(create_app(filled.config, app=filled))
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert answer.headers["cache-control"] == "no-store"
    assert _as_figures(_scrape(answer.text)) == EXPECTED

    status = json.loads(run_cli(filled.config.path, "status", "--json", now=T.isoformat()).stdout)
    shown = dict(status["monitoring"])
    assert shown.pop("at") == T.isoformat()
    assert shown == EXPECTED
    assert status["retry_queue"] == EXPECTED["retry_queue"]  # the older key, same source
    assert {"digests", "issues", "relays", "paused", "held", "workers"} <= set(status)


def test_healthz_answers_while_the_store_does(filled: App) -> None:
    client = TestClient(create_app(filled.config, app=filled))
    for method in (client.get, client.head):
        answer = method("/healthz")
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_healthz_and_metrics_answer_503_when_the_sqlite_file_is_gone(tmp_path: Path) -> None:
    db = tmp_path / "publisher.db"
    app = open_app(load(_config(tmp_path, f"sqlite:///{db}")), clock=lambda: T)
    client = TestClient(create_app(app.config, app=app))
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    for path in tmp_path.glob("publisher.db*"):
        path.unlink()
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"status": "unavailable", "reason": "the store did not answer"}
    assert str(db) not in answer.text  # the detail is for the server log
    assert client.get("/metrics").status_code == 503
    app.store.close()


def test_healthz_answers_503_when_postgresql_is_unreachable(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    client = TestClient(create_app(load(_config(tmp_path, url))))
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable" and "127.0.0.1" not in answer.text
    assert client.get("/metrics").status_code == 503


def test_metrics_token_and_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'publisher.db'}"
    guarded = tmp_path / "guarded"
    guarded.mkdir()
    config = load(_config(guarded, db, 'metrics_token_env = "PUBLISHER_TEST_METRICS"\n'))
    client = TestClient(create_app(config))
    monkeypatch.delenv("PUBLISHER_TEST_METRICS", raising=False)
    assert client.get("/metrics").status_code == 401  # unset: closed to everyone
    monkeypatch.setenv("PUBLISHER_TEST_METRICS", "s3cret")
    refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "publisher_queue_depth" in ok.text
    assert client.get("/healthz").status_code == 200  # never behind the token

    off = tmp_path / "off"
    off.mkdir()
    client = TestClient(create_app(load(_config(off, db, "metrics = false\n"))))
    assert client.get("/metrics").status_code == 404
    assert client.get("/healthz").status_code == 200


def test_metrics_token_env_must_name_a_variable(tmp_path: Path) -> None:
    config = _config(tmp_path, "sqlite:///publisher.db", 'metrics_token_env = "not a name"\n')
    with pytest.raises(ConfigError, match="metrics_token_env"):
        load(config)


def test_publisher_serve_answers_healthz_and_metrics(tmp_path: Path) -> None:
    for served in start_server(tmp_path, T.isoformat()):
        health = httpx.get(f"{served.url}/healthz", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        scraped = _scrape(httpx.get(f"{served.url}/metrics", timeout=10).text)
        assert scraped["publisher_queue_depth"] == {
            (("state", "queued"),): 0.0,
            (("state", "sending"),): 0.0,
        }
        assert "publisher_relay_healthy" not in scraped  # the file transport has no relays


def test_check_warns_when_the_metrics_token_variable_is_unset(tmp_path: Path) -> None:
    config = _config(
        tmp_path, "sqlite:///publisher.db", 'metrics_token_env = "PUBLISHER_TEST_NO_SUCH"\n'
    )
    run_cli(config, "db", "upgrade")
    result = run_cli(config, "check", check=False)
    [line] = [x for x in result.stdout.splitlines() if "metrics_token_env" in x]
    assert line.startswith("warn") and "PUBLISHER_TEST_NO_SUCH" in line, result.stdout
    quiet = run_cli(config, "check", check=False, env={"PUBLISHER_TEST_NO_SUCH": "t"})
    assert "metrics" not in quiet.stdout
