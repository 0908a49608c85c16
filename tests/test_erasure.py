"""Erasure leaves the address nowhere in the store: not in bounce records, not in SMTP replies.

The address gets into the store the ways it does in production: the relay (a real aiosmtpd
server) refuses it with a reply that names it, and a bounce report (a DSN imported with
``publisher bounces import``) names it in its recipient and diagnostic. Then its owner
deletes their data from the preferences page (the real Starlette app, in process), and
every text column of every table of the SQLite file is searched for it.
"""

from __future__ import annotations

import re
import sqlite3
import warnings
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from publisher.app import open_app
from publisher.compose.links import make_token
from publisher.config import load
from publisher.web import create_app
from tests.conftest import SmtpServer, run_cli, write_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette suggests httpx2 for its TestClient
    from starlette.testclient import TestClient

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
ADDRESS = "ana.lee@example.org"
DATA = Path(__file__).parent / "data" / "bounces"


def _occurrences(db: Path, needle: str) -> list[str]:
    """``table.column`` of every stored value holding ``needle`` (case-insensitive)."""
    found = []
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                hits = conn.execute(
                    f'SELECT count(*) FROM "{table}" WHERE instr(lower(CAST("{column}" AS TEXT)), ?)',
                    (needle.lower(),),
                ).fetchone()[0]
                if hits:
                    found.append(f"{table}.{column}")
    return found


def _dsn(tmp_path: Path) -> Path:
    """A soft-bounce report (Exim, delayed) about ADDRESS, naming it in the diagnostic."""
    raw = (
        (DATA / "exim-delayed.eml").read_text(encoding="utf-8").replace("slow@example.com", ADDRESS)
    )
    raw = raw.replace(
        "Diagnostic-Code: smtp; 451 4.4.1 Try again later",
        f"Diagnostic-Code: smtp; 452 4.2.2 <{ADDRESS}>: mailbox full",
    )
    path = tmp_path / "dsn.eml"
    path.write_text(raw, encoding="utf-8")
    return path


def test_erasure_scrubs_bounce_records_and_smtp_replies(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.rcpt_replies[ADDRESS] = f"550 5.7.1 <{ADDRESS}>: refused by local policy"
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    now = NOW.isoformat()
    (tmp_path / "subs.csv").write_text(f"email,name\n{ADDRESS},Ana Lee\nkeep@example.org,Kim\n")
    run_cli(config, "subscribers", "import", "subs.csv", now=now)
    run_cli(config, "collect", now=now)
    sent = run_cli(config, "send", "daily", now=now)
    assert "1 sent, 1 failed" in sent.stdout, sent.stdout
    bounced = run_cli(config, "bounces", "import", str(_dsn(tmp_path)), now=now)
    assert "1 soft" in bounced.stdout
    db = tmp_path / "publisher.db"
    # The address is stored where the issue says it must be scrubbed from.
    where = _occurrences(db, ADDRESS)
    assert {"deliveries.last_reply", "bounce_events.email", "bounce_events.diagnostic"} <= set(
        where
    ), where
    assert ADDRESS in run_cli(config, "status", "1", now=now).stdout  # the reply, in status

    # The owner deletes their data from the preferences page.
    app = open_app(load(config), clock=lambda: NOW)
    sub = app.store.find_subscriber(ADDRESS)
    assert sub is not None
    token = make_token(app.secret(), "preferences", sub.id, "", NOW)
    client = TestClient(create_app(app.config, app=app))
    page = client.get(f"/preferences/{token}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf, page.text
    erased = client.post(f"/preferences/{token}/delete", data={"csrf": csrf[1], "confirm": "yes"})
    assert erased.status_code == 200 and "deleted" in erased.text
    app.store.close()

    assert _occurrences(db, ADDRESS) == []
    assert _occurrences(db, "ana.lee") == []  # not even the local part
    assert _occurrences(db, "Ana Lee") == []  # nor the name
    assert _occurrences(db, "keep@example.org") == ["subscribers.email"]  # the search works
    status = run_cli(config, "status", "1", now=now).stdout
    assert ADDRESS not in status and "550 5.7.1" in status  # the reply stays, not the address
