"""``publisher purge`` on SQLite and PostgreSQL, run as the operator runs it (subprocesses).

Finished issues lose their delivery rows but keep their counts; an issue still sending is
never touched, even when a worker is sending it while the purge runs (PostgreSQL).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher.app import open_app
from publisher.config import load
from publisher.services import audit
from publisher.store.schema import deliveries
from publisher.store.schema_doors import audit_log
from tests.conftest import run_cli, write_config

T0 = "2026-11-28T12:00:00Z"  # issue 1 is created and sent
T1 = "2026-11-29T12:00:00Z"  # issue 2 is created
LATER = "2027-06-16T12:00:00Z"  # 200 days after T0


def _site(tmp_path: Path, store_url: str, count: int, delivery: str = "") -> Path:
    config = write_config(tmp_path, store_url=store_url)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("retry_base_seconds = 60\n", f"retry_base_seconds = 60\n{delivery}"))
    csv = tmp_path / "people.csv"
    csv.write_text("email\n" + "".join(f"p{i:04d}@example.org\n" for i in range(count)))
    run_cli(config, "subscribers", "import", str(csv), now=T0)
    run_cli(config, "collect", now=T0)
    return config


def _rows(config: Path, issue_id: int) -> tuple[int, dict[str, int]]:
    app = open_app(load(config))
    try:
        with app.store.engine.connect() as conn:
            rows = conn.scalar(select(func.count()).where(deliveries.c.issue_id == issue_id))
        return int(rows or 0), app.store.delivery_counts(issue_id)
    finally:
        app.store.close()


def _audit(config: Path, monkeypatch: pytest.MonkeyPatch, at: str, action: str) -> None:
    monkeypatch.setenv("PUBLISHER_NOW", at)
    app = open_app(load(config))
    try:
        audit.record_audit(app, audit.Actor("ops@example.org", "127.0.0.1"), action, "issue 1")
    finally:
        app.store.close()
        monkeypatch.delenv("PUBLISHER_NOW")


def test_purge_keeps_counts_and_dry_run_removes_nothing(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _site(tmp_path, store_url, 40)
    _audit(config, monkeypatch, T0, "issue.old")
    _audit(config, monkeypatch, LATER, "issue.recent")
    assert "40 sent" in run_cli(config, "send", "daily", now=T0).stdout
    shown = run_cli(config, "issues", "show", "1", now=T0).stdout
    # Too young: nothing goes.
    young = json.loads(run_cli(config, "purge", "--older-than", "180d", "--json", now=T1).stdout)
    assert young["removed"]["deliveries"] == 0
    dry = run_cli(config, "purge", "--older-than", "180d", "--dry-run", now=LATER).stdout
    assert "would remove" in dry and "40  delivery rows of finished issues" in dry
    assert "nothing was removed" in dry
    assert _rows(config, 1)[0] == 40
    done = json.loads(run_cli(config, "purge", "--older-than", "180d", "--json", now=LATER).stdout)
    assert done["removed"]["deliveries"] == 40 and done["dry_run"] is False
    assert done["removed"]["audit"] == 1  # the entry of T0; the recent one stays
    rows, counts = _rows(config, 1)
    assert rows == 0 and counts["sent"] == 40 and counts["failed"] == 0
    assert run_cli(config, "issues", "show", "1", now=LATER).stdout.count("40") >= shown.count("40") > 0
    app = open_app(load(config))
    try:
        with app.store.engine.connect() as conn:
            assert list(conn.scalars(select(audit_log.c.action))) == ["issue.recent"]
    finally:
        app.store.close()
    again = json.loads(run_cli(config, "purge", "--older-than", "180d", "--json", now=LATER).stdout)
    assert again["removed"]["deliveries"] == 0 and _rows(config, 1)[1]["sent"] == 40
    bad = run_cli(config, "purge", "--older-than", "soon", check=False)
    assert bad.returncode == 1 and "--older-than" in bad.stderr


def test_purge_while_a_worker_sends_another_issue_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    config = _site(tmp_path, pg_url, 150, delivery="rate_limit = 40\n")
    assert "150 sent" in run_cli(config, "send", "daily", now=T0).stdout
    (tmp_path / "content" / "zz-late-news.md").write_text(
        '---\ntitle: "Late News"\ndate: 2026-11-29T08:00:00Z\nauthor: "Desk"\n'
        "tags: [research]\n---\nA later article, for the second issue.\n",
        encoding="utf-8",
    )
    run_cli(config, "collect", now=T1)
    run_cli(config, "send", "daily", "--queue-only", now=T1)
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret", "PUBLISHER_NOW": T1}
    worker = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "worker", "--until-idle"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _rows(config, 2)[1]["sent"] < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Both issues are past the cut-off; issue 2 is still sending, so only issue 1 goes.
        purged = run_cli(config, "purge", "--older-than", "180d", "--json", now=LATER)
        assert json.loads(purged.stdout)["removed"]["deliveries"] == 150
        assert worker.poll() is None  # the purge ran while the worker was sending
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    rows, counts = _rows(config, 2)
    assert rows == 150 and counts["sent"] == 150 and counts["queued"] == 0  # nothing lost
    rows, counts = _rows(config, 1)
    assert rows == 0 and counts["sent"] == 150  # counts kept
