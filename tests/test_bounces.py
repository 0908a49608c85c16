"""Bounce processing: real-format DSNs (Postfix, Exim, Gmail) into subscriber states."""

from __future__ import annotations

import mailbox
import re
from datetime import UTC, datetime
from pathlib import Path

from publisher.deliver.bounces import classify, parse_bounce, read_mailbox
from publisher.store import Store
from tests.conftest import run_cli, write_config

DATA = Path(__file__).parent / "data" / "bounces"
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def _parse(name: str):
    return parse_bounce((DATA / name).read_bytes(), NOW)


def test_postfix_gmail_and_exim_reports_are_read() -> None:
    [postfix] = _parse("postfix-hard.eml")
    assert (postfix.email, postfix.kind, postfix.status) == ("gone@example.org", "hard", "5.1.1")
    assert "User unknown" in postfix.diagnostic
    assert postfix.report_id == "<20261128100005.4F1A2C0123@mail.example.net>"
    assert postfix.occurred_at == datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
    [gmail] = _parse("gmail-hard.eml")
    assert (gmail.email, gmail.kind, gmail.status) == ("nobody.here@gmail.example", "hard", "5.1.1")
    [full] = _parse("gmail-full.eml")
    assert (full.email, full.kind, full.status) == ("full.box@gmail.example", "soft", "5.2.2")
    [delayed] = _parse("exim-delayed.eml")
    assert (delayed.email, delayed.kind, delayed.status) == ("slow@example.com", "soft", "4.0.0")
    [exim] = _parse("exim-failed.eml")  # no DSN: X-Failed-Recipients and the text
    assert (exim.email, exim.kind, exim.status) == ("old.address@example.com", "hard", "5.1.1")
    assert _parse("auto-reply.eml") == []


def test_classify() -> None:
    assert classify("failed", "5.1.1") == "hard"
    assert classify("failed", "5.2.2") == "soft"  # a full mailbox may empty again
    assert classify("failed", "4.4.7") == "soft"
    assert classify("delayed", "4.0.0") == "soft"
    assert classify("delivered", "2.0.0") is None


def test_mailbox_formats(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for path in sorted(DATA.glob("*.eml")):
        box.add(path.read_bytes())
        maildir.add(path.read_bytes())
    box.close()
    assert len(list(read_mailbox(tmp_path / "bounces.mbox"))) == 6
    assert len(list(read_mailbox(tmp_path / "Maildir"))) == 6
    assert list(read_mailbox(DATA / "postfix-hard.eml")) == [
        (DATA / "postfix-hard.eml").read_bytes()
    ]


def _soft_copy(tmp_path: Path, n: int, date: str, source: str = "exim-delayed.eml") -> Path:
    """Another soft bounce like ``source``, with its own report id and date."""
    raw = (DATA / source).read_text(encoding="utf-8")
    raw = re.sub(r"(?m)^Message-I[dD]: .*$", f"Message-ID: <soft-{n}@mx.example.com>", raw)
    raw = re.sub(r"(?m)^Date: .*$", f"Date: {date}", raw)
    path = tmp_path / f"soft-{n}.eml"
    path.write_text(raw, encoding="utf-8")
    return path


def test_bounces_import_marks_subscribers_and_stops_their_mail(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    now = NOW.isoformat()
    for address in (
        "gone@example.org",
        "slow@example.com",
        "keep@example.org",
        "full.box@gmail.example",
    ):
        run_cli(config, "subscribers", "add", address, now=now)
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for path in sorted(DATA.glob("*.eml")):
        maildir.add(path.read_bytes())
    result = run_cli(config, "bounces", "import", str(tmp_path / "Maildir"), now=now)
    assert (
        "6 message(s): 3 hard, 2 soft, 1 not bounces; 1 subscriber(s) marked bounced"
        in result.stdout
    )
    assert (
        "2 unknown address(es)" in result.stdout
    )  # nobody.here@ and old.address@ were not subscribed
    again = run_cli(config, "bounces", "import", str(tmp_path / "Maildir"), now=now)
    assert "5 already seen" in again.stdout and "0 subscriber(s) marked bounced" in again.stdout

    # Two more soft bounces within 30 days make three: slow@ counts as bounced.
    run_cli(
        config,
        "bounces",
        "import",
        str(_soft_copy(tmp_path, 1, "Fri, 20 Nov 2026 12:00:00 +0000")),
        now=now,
    )
    third = run_cli(
        config,
        "bounces",
        "import",
        str(_soft_copy(tmp_path, 2, "Wed, 25 Nov 2026 12:00:00 +0000")),
        now=now,
    )
    assert re.search(r"bounced\s+slow@example.com \(soft, 4.0.0\)", third.stdout)
    # For full.box@, one of the three soft bounces is older than 30 days: still active.
    old = _soft_copy(tmp_path, 3, "Thu, 01 Oct 2026 12:00:00 +0000", source="gmail-full.eml")
    recent = _soft_copy(tmp_path, 4, "Fri, 27 Nov 2026 12:00:00 +0000", source="gmail-full.eml")
    for path in (old, recent):
        result = run_cli(config, "bounces", "import", str(path), now=now)
        assert "0 subscriber(s) marked bounced" in result.stdout

    store = Store.open(f"sqlite:///{tmp_path / 'publisher.db'}")
    statuses = {s.email: s.status for s in store.list_subscribers()}
    store.close()
    assert statuses == {
        "gone@example.org": "bounced",
        "slow@example.com": "bounced",
        "keep@example.org": "active",
        "full.box@gmail.example": "active",
    }
    sent = run_cli(config, "run", "--once", now=now)
    assert "2 sent" in sent.stdout  # keep@ and full.box@ only
