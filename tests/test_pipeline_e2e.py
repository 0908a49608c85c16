"""End to end through the CLI: markdown -> store -> feeds -> digest -> real SMTP server."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import feedparser

from publisher.store import Store
from tests.conftest import REPO, SmtpServer, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"  # after 07:00 New York, so today's daily period is due
NEXT_DAY = "2026-11-29T15:00:00+00:00"

NEW_ARTICLE = """---
title: "Registry Adds a Fourth Surgical Centre"
date: 2026-11-29T09:00:00-05:00
author: "Dana Whitfield"
tags: [surgery, research]
summary: "A fictional registry grows to include a fourth specialist centre."
citations:
  - text: "Example A, et al. A registry update. Journal of Examples, 2026"
    url: https://journals.example.org/je/1/1/1
---
The registry added a [new centre](/centres/fourth/).

## Why it matters

> "More centres mean more data," said a fictional researcher.

Example A, et al, [https://journals.example.org/je/1/1/1](https://journals.example.org/je/1/1/1)
"""


def _unsubscribe_url(message) -> str:
    return str(message["List-Unsubscribe"]).strip("<>")


def test_run_once_over_smtp_end_to_end(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    run_cli(config, "subscribers", "add", "ana@example.org", "--name", "Ana", now=NOW)
    run_cli(config, "subscribers", "add", "Bo@Example.org", now=NOW)

    first = run_cli(config, "run", "--once", now=NOW)
    assert "collect   7 new" in first.stdout
    assert "2 sent, 0 failed" in first.stdout

    messages = smtp_server.handler.parsed()
    assert len(messages) == 2
    by_rcpt = {rcpts[0]: raw for _, rcpts, raw in smtp_server.handler.messages}
    assert set(by_rcpt) == {"ana@example.org", "bo@example.org"}
    titles = [
        "CRS/HIPEC Outcomes Keep Improving, Registry Review Finds",
        "Home Renovators May Underestimate Asbestos Risks, Study Suggests",
    ]
    unsubscribe_urls = set()
    for address in ("ana@example.org", "bo@example.org"):
        [message] = smtp_server.handler.to(address)
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message.defects == []
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = _unsubscribe_url(message)
        assert url.startswith("https://news.example.org/mail/unsubscribe/")
        unsubscribe_urls.add(url)
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert 'style="' in html and "<style" in html  # inlined, with @media kept
        assert "@media" in html
        assert f'href="{url}"' in html  # the footer link is this subscriber's own
        assert "PUBLISHER_" not in html and "PUBLISHER_" not in text
        for title in titles:
            assert title in text
        assert message["Message-ID"]
    assert len(unsubscribe_urls) == 2
    [ana] = smtp_server.handler.to("ana@example.org")
    assert "Hi Ana," in ana.get_body(("plain",)).get_content()

    # Same period again: nothing is sent twice.
    second = run_cli(config, "run", "--once", now=NOW)
    assert "0 message(s) sent" in second.stdout
    assert len(smtp_server.handler.messages) == 2

    # A new article and the next day's period: an issue holding only that article.
    (tmp_path / "content" / "registry-fourth-centre.md").write_text(NEW_ARTICLE, encoding="utf-8")
    third = run_cli(config, "run", "--once", now=NEXT_DAY)
    assert "collect   1 new, 0 updated, 7 unchanged" in third.stdout
    assert len(smtp_server.handler.messages) == 4
    [_, latest] = smtp_server.handler.to("ana@example.org")
    text = latest.get_body(("plain",)).get_content()
    assert "1.  Registry Adds a Fourth Surgical Centre" in text
    assert "\n2.  " not in text  # the issue holds only the new article
    # Earlier articles sharing its tags are offered as similar posts, not as issue items.
    assert "Similar posts:" in text and titles[0] in text
    assert (
        'href="https://news.example.org/registry-fourth-centre/"'
        in latest.get_body(("html",)).get_content()
    )
    # The article's relative link was made absolute in the full content of the feeds.
    atom = (tmp_path / "feeds" / "atom.xml").read_text(encoding="utf-8")
    assert "https://news.example.org/centres/fourth/" in atom

    status = run_cli(config, "status", now=NEXT_DAY)
    assert "2026-11-28" in status.stdout and "2026-11-29" in status.stdout


def test_feeds_are_readable_and_ids_stable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run_cli(config, "collect", now=NOW)
    run_cli(config, "feeds", now=NOW)
    feeds = tmp_path / "feeds"
    first = {name: (feeds / name).read_bytes() for name in ("rss.xml", "atom.xml", "feed.json")}
    ids = {}
    for name in ("rss.xml", "atom.xml"):
        parsed = feedparser.parse(first[name])
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == 7
        ids[name] = [e.id for e in parsed.entries]
        assert all(e.content[0].value.startswith("<") for e in parsed.entries)  # full HTML
    # feedparser 6.0 does not read JSON Feed; the standard library does.
    feed = json.loads(first["feed.json"])
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    ids["feed.json"] = [item["id"] for item in feed["items"]]
    assert ids["rss.xml"] == ids["atom.xml"] == ids["feed.json"]
    assert len(set(ids["atom.xml"])) == 7

    # An unchanged rebuild leaves identical bytes; collecting again changes nothing.
    run_cli(config, "collect", now=NEXT_DAY)
    rebuilt = run_cli(config, "feeds", now=NEXT_DAY)
    assert "already up to date" in rebuilt.stdout
    assert {n: (feeds / n).read_bytes() for n in first} == first

    # Editing an article keeps its id.
    article = tmp_path / "content" / "crs-hipec-outcomes.md"
    article.write_text(
        article.read_text(encoding="utf-8") + "\nA correction was added.\n", encoding="utf-8"
    )
    edited = run_cli(config, "collect", now=NEXT_DAY)
    assert "0 new, 1 updated" in edited.stdout
    run_cli(config, "feeds", now=NEXT_DAY)
    parsed = feedparser.parse((feeds / "atom.xml").read_bytes())
    assert sorted(e.id for e in parsed.entries) == sorted(ids["atom.xml"])


def test_file_transport_and_dry_run(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    run_cli(config, "collect", now=NOW)
    dry = run_cli(config, "send", "daily", "--dry-run", now=NOW)
    assert "dry run: would create issue '2026-11-28' with 7 article(s)" in dry.stdout
    assert not (tmp_path / "outbox").exists()
    store = Store.open(f"sqlite:///{tmp_path / 'publisher.db'}")
    assert store.list_issues() == []
    store.close()

    sent = run_cli(config, "send", "daily", now=NOW)
    assert "1 sent, 0 failed" in sent.stdout
    [eml] = list((tmp_path / "outbox").glob("*.eml"))
    raw = eml.read_bytes()
    assert b"\r\nTo: ana@example.org\r\n" in raw
    assert all(line.endswith(b"\r") or not line for line in raw.split(b"\n")[:-1])
    again = run_cli(config, "send", "daily", now=NOW)
    assert "already sent" in again.stdout
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_preview_writes_html_and_sends_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    run_cli(config, "collect", now=NOW)
    out = tmp_path / "preview.html"
    result = run_cli(config, "preview", "daily", "--out", str(out), now=NOW)
    assert "7 article(s)" in result.stdout
    html = out.read_text(encoding="utf-8")
    assert "CRS/HIPEC Outcomes Keep Improving" in html and 'style="' in html
    assert not (tmp_path / "outbox").exists()
    assert "1 sent" in run_cli(config, "send", "daily", now=NOW).stdout


def test_broken_article_is_reported_and_the_rest_collected(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "content" / "broken.md").write_text(
        "---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8"
    )
    (tmp_path / "content" / "untitled.md").write_text(
        "---\ndate: 2026-11-01T00:00:00Z\n---\nbody\n", encoding="utf-8"
    )
    result = run_cli(config, "collect", now=NOW, check=False)
    assert result.returncode == 1  # the rest was stored, but two files were skipped
    assert "7 new" in result.stdout and "2 error(s)" in result.stdout
    assert re.search(r"broken\.md: broken front matter", result.stderr)
    assert re.search(r"untitled\.md: no title", result.stderr)


def test_subscribers_add_import_list_remove_export(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    bad = run_cli(config, "subscribers", "add", "not-an-address", now=NOW, check=False)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "invalid address 'not-an-address'" in bad.stderr

    csv_file = tmp_path / "subs.csv"
    csv_file.write_text(
        "email,name,digests,tags\nana@example.org,Ana,,\nbroken@,Nope,,\n"
        "bo@example.org,Bo,daily,research\ncy@example.org,Cy,nosuch,\n=evil@example.org,=HYPERLINK(1),,\n",
        encoding="utf-8",
    )
    imported = run_cli(config, "subscribers", "import", str(csv_file), now=NOW, check=False)
    assert imported.returncode == 1
    assert "imported 3 new, 0 already present, 2 rejected" in imported.stdout
    assert "subs.csv:3:" in imported.stderr and "subs.csv:5:" in imported.stderr
    assert "unknown digest 'nosuch'" in imported.stderr

    run_cli(config, "subscribers", "remove", "ana@example.org", now=NOW)
    listing = run_cli(config, "subscribers", "list", now=NOW).stdout
    assert "unsubscribed" in listing and "bo@example.org" in listing

    # A re-import never re-subscribes someone who left.
    run_cli(config, "subscribers", "import", str(csv_file), now=NOW, check=False)
    exported = run_cli(config, "subscribers", "export", now=NOW).stdout.splitlines()
    assert exported[0] == "email,name,status,digest,frequency,tags"
    assert "ana@example.org,Ana,unsubscribed,daily,every," in exported
    # Cells that a spreadsheet would run as formulas are escaped.
    assert any(line.startswith("'=evil@example.org,'=HYPERLINK(1),active,") for line in exported)

    run_cli(config, "collect", now=NOW)
    sent = run_cli(config, "send", "daily", now=NOW)
    assert "2 sent" in sent.stdout  # bo and =evil: ana was removed


def test_config_errors_exit_1_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra='typo_key = "x"\n')
    result = run_cli(config, "status", check=False)
    assert result.returncode == 1
    assert "config.toml:" in result.stderr and "web.typo_key" in result.stderr
    usage = run_cli(config, "send", check=False)
    assert usage.returncode == 2


def test_unknown_digest_is_an_operational_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(config, "send", "weekly", check=False)
    assert result.returncode == 1
    assert "unknown digest 'weekly' (known: daily)" in result.stderr


def test_shipped_config_runs_on_embedded_defaults(tmp_path: Path) -> None:
    # The shipped config.toml, copied with the sample content, runs as `make run` does.
    for name in ("config.toml",):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "content", tmp_path / "content")
    config = tmp_path / "config.toml"
    run_cli(config, "subscribers", "import", "content/subscribers.csv", now=NOW)
    result = run_cli(config, "run", "--once", now=NOW)
    assert "collect   7 new" in result.stdout
    emls = list((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 5  # 3 daily + 2 research-weekly subscribers
    assert (tmp_path / "feeds" / "rss.xml").exists()
    assert (tmp_path / "publisher.db").exists()


def test_daemon_sends_the_due_issue_at_start_and_stops_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    config = write_config(tmp_path)
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "s", "PUBLISHER_NOW": NOW}
    log = tmp_path / "daemon.log"
    with log.open("w") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), "run"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )
    try:
        # Wait for the start-up cycle to finish (its mail written, the schedule logged), so
        # the SIGTERM below reaches the running daemon, whatever the machine's load.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            list((tmp_path / "outbox").glob("*.eml")) and "next scheduled issue" in log.read_text()
        ):
            time.sleep(0.2)
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
        assert "next scheduled issue" in log.read_text()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    stderr = log.read_text()
    assert daemon.returncode == 0, stderr
    # A restart in the same period sends nothing twice.
    assert "already sent" in run_cli(config, "send", "daily", now=NOW).stdout


def test_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    config = write_config(tmp_path)
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text("email\na@example.org\nb@example.org\n", encoding="utf-8")
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "s", "PUBLISHER_NOW": NOW, "COLUMNS": "100"}
    for args, label, total in (
        (["subscribers", "import", str(csv_file)], "importing", "2/2"),
        (["collect"], "collecting", "1/1"),
    ):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), *args],
            stdin=follower, stdout=follower, stderr=follower, env=env, cwd=tmp_path,
        )  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
        os.close(leader)
        screen = b"".join(chunks).decode("utf-8", "replace")
        assert label in screen and total in screen, screen
    # Off a terminal there is no bar, only the summary line.
    off = run_cli(config, "subscribers", "import", str(csv_file), now=NOW)
    assert "importing" not in off.stdout + off.stderr
