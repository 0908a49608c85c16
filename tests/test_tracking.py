"""Engagement tracking through the real server, the real store and real messages.

A digest with ``track_clicks`` / ``track_opens`` is sent with ``publisher send`` (file
outbox), the messages are read back with the email package, and their links are followed
through ``publisher serve`` (uvicorn) with httpx: valid, forged, altered, unknown, expired
and erased-subscriber tokens; the canary; HEAD and prefetch timing; proxy opens. The
figures are read back with ``publisher stats``, the console issue page (Chromium draws its
chart), the API stats resource and the store itself, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from publisher.compose.links import make_token
from publisher.compose.tracking import make_tracking_token, read_tracking_token
from publisher.store import Store
from publisher.store.schema_engagement import engagement_hits, engagement_subscriber, tracked_links
from tests.conftest import free_port, require_module, require_tool, run_cli, serving, write_config
from tests.test_web_browser import ARGS, CHROMIUM

SENT = "2026-11-28T15:00:00+00:00"
LATER = "2026-11-28T16:00:00+00:00"  # an hour after the send: outside any bot window
SOON = "2026-11-28T15:00:03+00:00"  # 3 s after the send: inside bot_window_seconds (10)
MUCH_LATER = "2027-02-10T15:00:00+00:00"  # past retention_days = 30
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SECRET = "test-secret"
PASSWORD = "correct horse battery staple"
HREF = re.compile(r'href="([^"]+)"')


@dataclass
class Sent:
    config: Path
    url: str
    store_url: str
    messages: list[EmailMessage]

    def store(self) -> Store:
        return Store.open(self.store_url)


def _digest(individual: bool) -> str:
    return (
        '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
        'timezone = "America/New_York"\nsubject = "{title}: {date}"\nmax_articles = 10\n'
        'utm_source = "newsletter"\nutm_medium = "email"\nutm_campaign = "daily"\n'
        "track_clicks = true\ntrack_opens = true\nretention_days = 30\n"
        f"individual_tracking = {'true' if individual else 'false'}\n"
    )


def _send(folder: Path, store_url: str, individual: bool = False) -> Sent:
    """Send one tracked issue to two subscribers; base_url names a port a server can take."""
    url = f"http://127.0.0.1:{free_port()}"
    config = write_config(folder, store_url=store_url, digests=_digest(individual))
    config.write_text(
        config.read_text(encoding="utf-8").replace("https://news.example.org/mail", url),
        encoding="utf-8",
    )
    for address in ("ann@example.org", "bob@example.org"):
        run_cli(config, "subscribers", "add", address, now=SENT)
    run_cli(config, "collect", now=SENT)
    run_cli(config, "send", "daily", now=SENT)
    messages = [
        message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted((folder / "outbox").glob("*.eml"))
    ]
    assert len(messages) == 2
    return Sent(config, url, store_url, messages)


@contextmanager
def _serve(sent: Sent, now: str) -> Iterator[httpx.Client]:
    """``publisher serve`` (uvicorn) on the port of base_url, its clock pinned at ``now``."""
    port = urlsplit(sent.url).port
    env = {**os.environ, "PUBLISHER_TEST_SECRET": SECRET, "PUBLISHER_NOW": now}
    assert port is not None
    with serving(sent.config, port, env):
        with httpx.Client(base_url=sent.url, timeout=10, headers={"User-Agent": BROWSER}) as client:
            yield client


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def _tracked(sent: Sent, body: str) -> list[str]:
    """The paths of the /r/ links in ``body``, in order, without repeats."""
    found = re.findall(re.escape(sent.url) + r"(/[ro]/[A-Za-z0-9_\-.]+)", body)
    return list(dict.fromkeys(found))


def _kind(path: str) -> str:
    return read_tracking_token(SECRET, path.rsplit("/", 1)[1]).kind


def _clicks(sent: Sent, message: EmailMessage) -> list[str]:
    return [p for p in _tracked(sent, _parts(message)[1]) if p.startswith("/r/") and _kind(p) == "c"]


def _canary(sent: Sent, message: EmailMessage) -> str:
    [path] = [p for p in _tracked(sent, _parts(message)[1]) if _kind(p) == "k"]
    return path


def _stats(sent: Sent, now: str = LATER) -> dict:
    return json.loads(run_cli(sent.config, "stats", "1", "--json", now=now).stdout)


def _count(store: Store, table, *where) -> int:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


# -- the messages ---------------------------------------------------------------------------


def test_messages_carry_stored_links_a_canary_in_html_only_and_a_nonce_each(
    tmp_path: Path, store_url: str
) -> None:
    sent = _send(tmp_path, store_url)
    store = sent.store()
    try:
        stored = {link.url for link in store.issue_links(1)}
    finally:
        store.close()
    assert stored and all("utm_source=newsletter" in url for url in stored)
    nonces = set()
    for message in sent.messages:
        text, html = _parts(message)
        in_html, in_text = _tracked(sent, html), _tracked(sent, text)
        kinds_html = [_kind(p) for p in in_html]
        assert kinds_html.count("k") == 1 and kinds_html.count("o") == 1  # canary, pixel
        assert [_kind(p) for p in in_text] == ["c"] * len(in_text) and in_text
        assert set(in_text) <= set(in_html)  # the same links in both parts
        hits = [read_tracking_token(SECRET, p.rsplit("/", 1)[1]) for p in in_html]
        assert {h.subscriber_id for h in hits} == {0}  # no individual_tracking: nobody named
        assert len({h.nonce for h in hits}) == 1
        nonces.add(hits[0].nonce)
        # The article links in the HTML all go through /r/; none points at the article itself.
        assert not any(h.startswith("https://news.example.org/") and "utm_" in h for h in HREF.findall(html))
    assert len(nonces) == 2  # a nonce per message


# -- the redirect -----------------------------------------------------------------------------


def test_redirect_valid_forged_unknown_counted_once_and_never_open(
    tmp_path: Path, store_url: str
) -> None:
    sent = _send(tmp_path, store_url)
    ann = sent.messages[0]
    first = _clicks(sent, ann)[0]
    token = first.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    with _serve(sent, LATER) as client:
        answer = client.get(first)
        assert answer.status_code == 302
        target = answer.headers["location"]
        query = parse_qs(urlsplit(target).query)
        assert target.startswith("https://news.example.org/")
        assert query["utm_source"] == ["newsletter"] and query["utm_campaign"] == ["daily"]
        assert "no-store" in answer.headers["cache-control"]
        # Forged and altered tokens: a clear page, never a redirect.
        flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
        for bad in (f"/r/{payload}.{flipped}", f"/r/{payload[:-2]}.{mac}", "/r/garbage", "/r/x.y"):
            refused = client.get(bad)
            assert refused.status_code == 400, bad
            assert "This link does not work" in refused.text and "location" not in refused.headers
        # Well signed but naming no stored link, or a link of another issue: 404, no redirect.
        hit = read_tracking_token(SECRET, token)
        for issue, link in ((hit.issue_id, 99999), (hit.issue_id + 1, hit.link_id)):
            forged = make_tracking_token(SECRET, "c", issue, link, hit.nonce, 0, hit.sent_at)
            unknown = client.get(f"/r/{forged}")
            assert unknown.status_code == 404 and "location" not in unknown.headers
        # A link token is no pixel, and a pixel token no link.
        pixel = next(p for p in _tracked(sent, _parts(ann)[1]) if p.startswith("/o/"))
        assert client.get(f"/o/{token}").status_code == 400
        assert client.get("/r/" + pixel.rsplit("/", 1)[1]).status_code == 400
        # Whatever the request says, the redirect goes to the stored URL only.
        for extra in ("?url=https://evil.example/", "?next=//evil.example"):
            assert client.get(first + extra).headers["location"] == target
        # Bob's click from another browser counts too; Ann's repeats are one more human each.
        bob = _clicks(sent, sent.messages[1])[0]
        assert client.get(bob).status_code == 302
    figures = _stats(sent)
    # Ann clicked 3 times (once, then twice with extra query), Bob once: all human.
    assert figures["clicks"] == {"human": 4, "automated": 0}
    assert figures["opens"]["unreliable"] is True
    store = sent.store()
    try:
        assert _count(store, engagement_subscriber) == 0  # no individual_tracking: no such row
        assert _count(store, engagement_hits) == 4
    finally:
        store.close()


def test_a_human_click_is_counted_once(tmp_path: Path, store_url: str) -> None:
    sent = _send(tmp_path, store_url)
    path = _clicks(sent, sent.messages[0])[0]
    with _serve(sent, LATER) as client:
        assert client.get(path).status_code == 302
    figures = _stats(sent)
    assert figures["clicks"] == {"human": 1, "automated": 0}
    [top] = [a for a in figures["articles"] if a["human"]]
    assert top["human"] == 1 and top["title"]
    assert sum(link["human"] for link in figures["links"]) == 1
    assert sum(row["human"] for row in figures["clicks_by_hour"]) == 1
    csv_out = run_cli(sent.config, "stats", "1", "--csv", now=LATER).stdout.splitlines()
    assert csv_out[0] == "issue,scope,id,title,url,human,automated,proxy"
    assert "1,clicks,,,,1,0," in csv_out


def test_a_canary_hit_turns_the_message_automated(tmp_path: Path, store_url: str) -> None:
    sent = _send(tmp_path, store_url)
    ann, bob = sent.messages
    scanner = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/120 Safari/537.36"}
    with _serve(sent, LATER) as client:
        # Ann's mail: a scanner follows the canary first, then every link: all automated.
        assert client.get(_canary(sent, ann), headers=scanner).status_code == 302
        for path in _clicks(sent, ann):
            assert client.get(path, headers=scanner).status_code == 302
        # Bob's mail: a click first (human so far), then the canary from the same client.
        bob_link = _clicks(sent, bob)[0]
        client.get(bob_link, headers=scanner)
        assert _stats(sent)["clicks"]["human"] == 1
        client.get(_canary(sent, bob), headers=scanner)
        # Bob himself, from his own browser: the canary of the scanner does not taint him.
        client.get(bob_link)
    figures = _stats(sent)
    assert figures["clicks"] == {"human": 1, "automated": len(_clicks(sent, ann)) + 1}


def test_head_and_prefetch_timing_are_automated(tmp_path: Path, store_url: str) -> None:
    sent = _send(tmp_path, store_url)
    ann, bob = sent.messages
    with _serve(sent, SOON) as client:  # 3 s after the send: a prefetcher, not a reader
        assert client.get(_clicks(sent, ann)[0]).status_code == 302
    with _serve(sent, LATER) as client:
        assert client.head(_clicks(sent, bob)[0]).status_code == 302
        # A scanner's user agent, and an open by Gmail's image proxy (shown apart).
        client.get(_clicks(sent, bob)[-1], headers={"User-Agent": "Barracuda Sentinel (EE)"})
        pixel = next(p for p in _tracked(sent, _parts(bob)[1]) if p.startswith("/o/"))
        image = client.get(pixel, headers={"User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"})
        assert image.status_code == 200 and image.headers["content-type"] == "image/gif"
        assert client.get(pixel).status_code == 200
    figures = _stats(sent)
    assert figures["clicks"] == {"human": 0, "automated": 3}
    assert figures["opens"]["proxy"] == 1 and figures["opens"]["human"] == 1
    store = sent.store()
    try:
        reasons = {
            r.reason for r in store.engine.connect().execute(select(engagement_hits.c.reason))
        }
    finally:
        store.close()
    assert {"prefetch", "head", "scanner", "agent"} <= reasons


# -- old links, erased subscribers, individual tracking ------------------------------------------


def test_expired_and_erased_tokens_still_redirect_but_are_not_counted(
    tmp_path: Path, store_url: str
) -> None:
    sent = _send(tmp_path, store_url, individual=True)
    ann, bob = sent.messages
    ann_link, bob_link = _clicks(sent, ann)[0], _clicks(sent, bob)[0]
    ann_id = read_tracking_token(SECRET, ann_link.rsplit("/", 1)[1]).subscriber_id
    assert ann_id > 0  # individual_tracking: the token names the subscriber
    with _serve(sent, LATER) as client:
        assert client.get(bob_link).status_code == 302  # counted, with a per-subscriber row
        store = sent.store()
        try:
            export = store.subscriber_engagement(
                read_tracking_token(SECRET, bob_link.rsplit("/", 1)[1]).subscriber_id
            )
            assert len(export) == 1 and export[0]["kind"] == "click" and "utm_" in export[0]["url"]
            store.erase_subscriber(ann_id, "hash-of-ann", store_now())
        finally:
            store.close()
        # Bob's data export carries his click.
        bob_id = read_tracking_token(SECRET, bob_link.rsplit("/", 1)[1]).subscriber_id
        preferences = make_token(SECRET, "preferences", bob_id, "", datetime.fromisoformat(LATER))
        document = client.get(f"/preferences/{preferences}/export").json()
        assert [e["kind"] for e in document["engagement"]] == ["click"]
        erased = client.get(ann_link)
        assert erased.status_code == 302 and erased.headers["location"].startswith("https://news.")
    with _serve(sent, MUCH_LATER) as client:
        expired = client.get(bob_link)
        assert expired.status_code == 302 and expired.headers["location"].startswith("https://news.")
    assert _stats(sent, MUCH_LATER)["clicks"] == {"human": 1, "automated": 0}
    store = sent.store()
    try:
        assert _count(store, engagement_subscriber) == 1
        assert _count(store, engagement_subscriber, engagement_subscriber.c.subscriber_id == ann_id) == 0
        assert _count(store, tracked_links) >= 1
        store.erase_subscriber(bob_id, "hash-of-bob", store_now())  # erasure takes his rows
        assert _count(store, engagement_subscriber) == 0
        assert _count(store, engagement_hits) == 1  # the anonymous count stays
    finally:
        store.close()


def store_now() -> datetime:
    return datetime.fromisoformat(LATER)


# -- where operators read the figures -------------------------------------------------------------


def _chart_is_drawn(url: str) -> None:
    """Chromium draws the clicks chart of the issue page from its JSON, with no CSP error."""
    require_tool("chromium", hint="apt-get install chromium")
    sync_api = require_module("playwright.sync_api", hint="pip install -e '.[test]'")
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(f"{url}/admin/login")
            page.fill("#email", "viewer@example.org")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/admin/")
            page.goto(f"{url}/admin/issues/1")
            page.wait_for_selector('#chart-clicks[data-drawn="true"]', timeout=15_000)
            assert page.get_attribute("#chart-clicks", "data-total") == "2"
            assert page.locator("#top-articles tbody tr").count() >= 1
        finally:
            chromium.close()
    # The email previews' remote images cannot load here (no DNS); nothing else may fail.
    assert not [p for p in problems if "ERR_NAME_NOT_RESOLVED" not in p], problems


def test_console_issue_page_and_api_stats_show_the_engagement(tmp_path: Path) -> None:
    sent = _send(tmp_path, f"sqlite:///{tmp_path / 'publisher.db'}")
    run_cli(sent.config, "operators", "add", "viewer@example.org", "--role", "viewer",
            "--password-stdin", input=PASSWORD, now=LATER)  # fmt: skip
    api_token = run_cli(sent.config, "tokens", "create", "stats", "--scope", "read", now=LATER).stdout.strip()
    ann, bob = sent.messages
    with _serve(sent, LATER) as client:
        client.get(_clicks(sent, ann)[0])
        client.head(_clicks(sent, bob)[0])
        page = client.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        login = client.post("/admin/login", data={
            "csrf": csrf, "email": "viewer@example.org", "password": PASSWORD})  # fmt: skip
        assert login.status_code == 303
        issue_page = client.get("/admin/issues/1").text
        assert '<span id="clicks-human">1</span>' in issue_page
        assert '<span id="clicks-automated">1</span>' in issue_page
        assert 'id="top-articles"' in issue_page and "(unreliable)" in issue_page
        assert 'data-src="/admin/issues/1/engagement.json"' in issue_page
        chart = client.get("/admin/issues/1/engagement.json").json()["clicks"]
        assert sum(chart["series"]["human"]) == 1 and sum(chart["series"]["automated"]) == 1
        assert len(chart["x"]) == len(chart["series"]["human"]) >= 1
        _chart_is_drawn(sent.url)
        stats = httpx.get(f"{sent.url}/api/v1/issues/1/stats",
                          headers={"Authorization": f"Bearer {api_token}"}, timeout=10)  # fmt: skip
    assert stats.status_code == 200, stats.text
    engagement = stats.json()["engagement"]
    assert engagement["clicks"] == {"human": 1, "automated": 1}
    assert engagement["opens_unreliable"] is True and "proxy" in engagement["opens"]
    assert engagement["tracking"] == {"clicks": True, "opens": True, "individual": False}


@pytest.mark.parametrize("key,value", [("retention_days", "0"), ("bot_window_seconds", "-1")])
def test_bad_engagement_keys_are_refused(tmp_path: Path, key: str, value: str) -> None:
    config = write_config(tmp_path, digests=_digest(False).replace(f"{key} = 30", "") + f"{key} = {value}\n")
    result = run_cli(config, "stats", "1", check=False)
    assert result.returncode == 1 and f"digests[0].{key}" in result.stderr


# -- retention --------------------------------------------------------------------------------


def test_purge_engagement_keeps_the_counts_and_drops_old_subscriber_rows(
    tmp_path: Path, store_url: str
) -> None:
    from datetime import UTC, timedelta

    from publisher.app import open_app
    from publisher.config import load
    from publisher.services.engagement import purge_engagement
    from publisher.store.engagement import NewHit

    config = load(write_config(tmp_path, store_url=store_url, digests=_digest(True)))
    t0 = datetime(2026, 11, 28, 15, tzinfo=UTC)
    now = t0 + timedelta(days=101)
    app = open_app(config, clock=lambda: now)
    store = app.store
    try:
        issue, _ = store.create_issue("daily", "2026-11-28", "Subject", [], t0)
        links = store.ensure_links(issue.id, [(None, "https://news.example.org/a?utm_source=x")], t0)
        assert store.ensure_links(issue.id, [(None, "https://news.example.org/a?utm_source=x")], t0) == links
        [link_id] = links.values()
        for days, verdict, subscriber in ((1, "human", 7), (2, "automated", None), (100, "human", 8)):
            store.record_hit(NewHit(issue.id, link_id, "click", f"n{days}", "c", t0 + timedelta(days=days),
                                    verdict, "", subscriber))  # fmt: skip
        before = store.engagement_counts(issue.id)
        purged = purge_engagement(app, t0 + timedelta(days=50))  # retention_days = 30
        assert purged.hits == 2 and purged.subscriber_rows == 1
        assert store.engagement_counts(issue.id) == before  # the figures outlive the rows
        assert sum(store.click_series(issue.id).values()) == 3
        # Only the row of the hit on day 100 is left (within the 30 days, after `before`).
        assert [r["at"].day for r in store.subscriber_engagement(8)] == [(t0 + timedelta(days=100)).day]
        assert store.subscriber_engagement(7) == []
    finally:
        store.close()
