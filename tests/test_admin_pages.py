"""The console's subscribers, import, digests and audit pages: a real server, a real browser.

One ``publisher serve`` (uvicorn, a subprocess) on a SQLite file holding 130 subscribers
(imported by the CLI) and one sent issue (``publisher send`` with the file transport), and
Debian's Chromium driven by Playwright: search, filter and page through the subscribers,
a subscriber's history, edit, unsubscribe, erase with its confirmation, a CSV upload with
its progress bar and rejected rows, and the audit log listing what was just done. The
upload limit, the export round trip and the viewer's refusals are checked with httpx
against the same server. No page scrolls sideways at 375 px.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from publisher.store import Store
from tests.conftest import (
    free_port,
    require_module,
    require_tool,
    run_cli,
    start_serve,
    stop_process,
    write_config,
)
from tests.test_web_browser import ARGS, CHROMIUM

PASSWORD = "correct horse battery staple"
PEOPLE = 130
DIGESTS = """
[[digests]]
id = "daily"
title = "Pleura Daily"
schedule = "0 7 * * *"
timezone = "UTC"
subject = "{title}: {date}"

[[digests]]
id = "weekly"
title = "Pleura Weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Paris"
subject = "{title}: {date}"
send_window = "08:00-18:00"
"""
EXTRA = """trusted_proxies = ["127.0.0.1"]

[admin]
max_upload_mb = 1

[[sources]]
name = "wire"
type = "feed"
url = "http://127.0.0.1:9/feed.xml"

[[webhooks]]
name = "crm"
url = "http://127.0.0.1:9/hooks"
events = ["subscriber.unsubscribed"]
secret_env = "PUBLISHER_TEST_SECRET"
timeout = 2
retries = ["1s"]
max_failures = 2
"""
OPERATORS = {"admin@example.org": "admin", "editor@example.org": "editor", "viewer@example.org": "viewer"}


@dataclass
class Site:
    config: Path
    url: str
    tmp: Path

    def store(self) -> Store:
        return Store.open(f"sqlite:///{self.config.parent / 'publisher.db'}")


def _person(i: int) -> str:
    # Odd people get daily only, even ones daily and weekly; every third wants "research".
    return f"p{i:03d}@example.org,Person {i},{'daily' if i % 2 else 'daily weekly'},{'research' if i % 3 == 0 else ''}"


def _serve(config: Path, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret", "TMPDIR": str(tmp)}
    env.pop("PUBLISHER_NOW", None)
    return start_serve(config, port, env)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("pages")
    port = free_port()
    config = write_config(folder, digests=DIGESTS, extra=EXTRA)
    # An http base URL: the session cookie is Secure only when the console is on https.
    config.write_text(config.read_text(encoding="utf-8").replace(
        "https://news.example.org/mail", f"http://127.0.0.1:{port}"), encoding="utf-8")
    run_cli(config, "collect", check=False)  # the "wire" source fails, and is recorded as failing
    (folder / "people.csv").write_text(
        "email,name,digests,tags\n" + "\n".join(_person(i) for i in range(PEOPLE)) + "\n", encoding="utf-8"
    )
    run_cli(config, "subscribers", "import", "people.csv")
    run_cli(config, "send", "daily")
    # A hook whose receiver is down: two failed POSTs in a row turn it off.
    run_cli(config, "subscribers", "remove", "p100@example.org")
    run_cli(config, "webhooks", "deliver", check=False)
    time.sleep(1.2)
    run_cli(config, "webhooks", "deliver", check=False)
    for email, role in OPERATORS.items():
        run_cli(config, "operators", "add", email, "--role", role, "--password-stdin", input=PASSWORD)
    store = Store.open(f"sqlite:///{folder / 'publisher.db'}")
    now = datetime.now(UTC)
    store.record_bounce("p007@example.org", "soft", "4.2.2", "452 4.2.2 mailbox full", "r-1",
                        now - timedelta(hours=1), now, soft_limit=5, soft_window=timedelta(days=7))  # fmt: skip
    store.close()
    tmp = folder / "tmp"
    tmp.mkdir()
    process = _serve(config, port, tmp)
    try:
        yield Site(config, f"http://127.0.0.1:{port}", tmp)
    finally:
        stop_process(process)


def session(site: Site, email: str) -> httpx.Client:
    """An httpx client logged in as ``email``."""
    client = httpx.Client(base_url=site.url, timeout=30)
    page = client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    done = client.post("/admin/login", data={"csrf": token.group(1), "email": email, "password": PASSWORD})
    assert done.status_code == 303, done.text
    return client


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, read from a console page."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/subscribers").text)
    assert found
    return found.group(1)


def visible_text(client: httpx.Client, path: str) -> str:
    """The words of a page, tags and extra whitespace removed."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())


def subscriber_id(site: Site, email: str) -> int:
    store = site.store()
    try:
        sub = store.find_subscriber(email)
        assert sub is not None
        return sub.id
    finally:
        store.close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[object]:
    require_tool("chromium", hint="apt-get install chromium")
    sync_api = require_module("playwright.sync_api", hint="pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def logged_in(browser, site: Site, email: str):  # type: ignore[no-untyped-def]
    """A new browser page, logged in as ``email``."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site.url}/admin/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/admin/")
    return page


def no_sideways_scroll(page, name: str) -> None:  # type: ignore[no-untyped-def]
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{name} scrolls sideways at {width}px ({scroll}px)"


def submit(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    """Click a button that loads a new page, and wait for it."""
    with page.expect_navigation():
        page.click(selector)


def shown_emails(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("#subscribers tbody th a").all_inner_texts()


def test_search_filter_and_page_through_subscribers(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    page = logged_in(browser, site, "viewer@example.org")
    page.click("nav >> text=Subscribers")
    page.wait_for_url(f"{site.url}/admin/subscribers")
    seen: list[str] = []
    while True:
        seen.extend(shown_emails(page))
        more = page.locator("a[rel=next]")
        if not more.count():
            break
        with page.expect_navigation():
            more.click()
    # Three keyset pages of 50, newest first, each person exactly once.
    assert len(seen) == PEOPLE and len(set(seen)) == PEOPLE
    assert seen[0] == "p129@example.org" and seen[-1] == "p000@example.org"
    page.goto(f"{site.url}/admin/subscribers")
    page.fill("#q", "P01")
    submit(page, "form[role=search] button")
    assert sorted(shown_emails(page)) == [f"p{i:03d}@example.org" for i in range(10, 20)]
    page.select_option("#digest", "weekly")
    submit(page, "form[role=search] button")
    assert sorted(shown_emails(page)) == [f"p{i:03d}@example.org" for i in range(10, 20, 2)]
    page.goto(f"{site.url}/admin/subscribers?topic=research&digest=weekly")
    assert sorted(shown_emails(page)) == sorted(f"p{i:03d}@example.org" for i in range(0, PEOPLE, 6))
    page.goto(f"{site.url}/admin/subscribers?status=bounced")
    assert shown_emails(page) == []
    assert "Nobody matches" in page.inner_text("#subscribers")
    page.goto(f"{site.url}/admin/subscribers")
    no_sideways_scroll(page, "subscribers")
    # A viewer sees no import and no actions.
    assert page.locator("text=Import a CSV file").count() == 0
    page.close()


def test_detail_page_shows_history_and_bounces(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    page = logged_in(browser, site, "viewer@example.org")
    page.goto(f"{site.url}/admin/subscribers?q=p007")
    submit(page, "#subscribers >> text=p007@example.org")
    assert page.inner_text("#sub-status") == "active"
    history = page.inner_text("#deliveries")
    assert "#1 daily" in history and "sent" in history
    assert "452 4.2.2 mailbox full" in page.inner_text("#bounces")
    assert "Pleura Daily" in page.inner_text("#subscriptions")
    assert page.locator("[data-action]").count() == 0  # a viewer only reads
    no_sideways_scroll(page, "subscriber")
    page.close()


def test_edit_unsubscribe_and_erase_with_confirmation(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    page = logged_in(browser, site, "editor@example.org")
    target = subscriber_id(site, "p020@example.org")
    page.goto(f"{site.url}/admin/subscribers/{target}")
    submit(page, "[data-action=edit]")
    no_sideways_scroll(page, "edit form")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.uncheck("input[name=digest][value=daily]")
    page.select_option("#frequency", "weekly")
    page.check("input[name=tag][value=surgery]")
    page.fill("#name", "Twenty")
    page.click("button:has-text('Save')")
    page.wait_for_url(re.compile(rf".*/admin/subscribers/{target}\?notice=.*"))
    subs = page.inner_text("#subscriptions")
    assert "weekly" in subs and "surgery" in subs and "Pleura Daily" not in subs
    no_sideways_scroll(page, "subscriber-edited")

    submit(page, "[data-action=unsubscribe]")
    assert "nothing more is sent" in page.inner_text("main")
    page.click("button:has-text('Yes: unsubscribe')")
    page.wait_for_url(re.compile(rf".*/admin/subscribers/{target}\?notice=.*"))
    assert page.inner_text("#sub-status") == "unsubscribed"

    submit(page, "[data-action=erase]")
    no_sideways_scroll(page, "erase confirmation")
    page.fill("#confirm", "someone-else@example.org")
    submit(page, "button:has-text('Erase for good')")
    assert "Type the subscriber's address exactly" in page.inner_text("[role=alert]")
    page.fill("#confirm", "p020@example.org")
    page.click("button:has-text('Erase for good')")
    page.wait_for_url(re.compile(rf".*/admin/subscribers/{target}\?notice=.*"))
    assert page.inner_text("#sub-status") == "erased"
    assert "p020@example.org" not in page.content()
    store = site.store()
    try:
        erased = store.subscriber_by_id(target)
        assert erased is not None and erased.email == f"erased-{target}@erased.invalid"
    finally:
        store.close()
    page.close()


def test_csv_upload_shows_progress_and_row_errors(site: Site, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [f"new{i:05d}@example.org,New {i},weekly," for i in range(3000)]
    rows[10] = "not-an-address,Broken,weekly,"  # line 12 (the header is line 1)
    rows[20] = "bad-digest@example.org,Odd,monthly,"  # line 22
    rows.append("p001@example.org,Already here,daily,")
    upload = tmp_path / "newcomers.csv"
    upload.write_text("email,name,digests,tags\n" + "\n".join(rows) + "\n", encoding="utf-8")
    page = logged_in(browser, site, "editor@example.org")
    page.goto(f"{site.url}/admin/subscribers")
    submit(page, "text=Import a CSV file")
    page.set_input_files("#file", str(upload))
    page.click("button:has-text('Upload and import')")
    page.wait_for_selector("#import-job[data-finished=true]", timeout=60_000)
    assert page.locator("#import-progress").evaluate("el => el.value") == 100
    assert page.inner_text("#import-summary") == "2998 added, 1 already present, 2 rejected."
    errors = page.locator("#import-errors li").all_inner_texts()
    assert len(errors) == 2
    assert errors[0].startswith("newcomers.csv:12: ") and "monthly" in errors[1] and errors[1].startswith("newcomers.csv:22: ")
    no_sideways_scroll(page, "import")
    # The job's own page shows the same result, without the browser having to poll.
    submit(page, "text=this import's own page")
    assert "2 rejected" in page.inner_text("#import-summary")
    page.goto(f"{site.url}/admin/subscribers?q=new02999")
    assert shown_emails(page) == ["new02999@example.org"]
    assert list(site.tmp.iterdir()) == []  # the upload's temporary file is gone
    page.close()


def test_upload_over_max_upload_mb_is_refused(site: Site) -> None:
    client = session(site, "editor@example.org")
    token = csrf_of(client)
    big = b"email,name\n" + b"x" * (1024 * 1024 + 10)
    declared = client.post("/admin/subscribers/import?filename=big.csv", content=big,
                           headers={"X-CSRF-Token": token, "Content-Type": "text/csv"})  # fmt: skip
    assert declared.status_code == 413 and "max_upload_mb" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        for _ in range(40):
            yield b"y" * 32768

    streamed = client.post("/admin/subscribers/import?filename=big.csv", content=chunks(),
                           headers={"X-CSRF-Token": token, "Content-Type": "text/csv"})  # fmt: skip
    assert streamed.status_code == 413
    no_token = client.post("/admin/subscribers/import?filename=a.csv", content=b"email\na@example.org\n")
    assert no_token.status_code == 403
    assert list(site.tmp.iterdir()) == []


def test_export_round_trips_through_import(site: Site, tmp_path: Path) -> None:
    client = session(site, "viewer@example.org")
    exported = client.get("/admin/subscribers.csv", params={"digest": "weekly", "topic": "research"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["email", "name", "status", "digest", "frequency", "tags"]
    people = {r[0] for r in rows[1:]}
    assert people == {f"p{i:03d}@example.org" for i in range(0, PEOPLE, 6)}
    assert all(r[3] in ("daily", "weekly") and r[2] == "active" for r in rows[1:])
    # Into a new site through the CLI, and out again: the same rows.
    other = tmp_path / "other"
    other.mkdir()
    config = write_config(other, digests=DIGESTS)
    (other / "in.csv").write_text(exported.text, encoding="utf-8")
    run_cli(config, "subscribers", "import", "in.csv")
    again = run_cli(config, "subscribers", "export").stdout
    assert sorted(list(csv.reader(io.StringIO(again)))[1:]) == sorted(rows[1:])
    assert client.get("/admin/subscribers.csv", params={"digest": "nope"}).status_code == 400


def test_viewer_cannot_change_subscribers(site: Site) -> None:
    client = session(site, "viewer@example.org")
    token = csrf_of(client)
    target = subscriber_id(site, "p030@example.org")
    for action in ("edit", "unsubscribe", "erase"):
        assert client.get(f"/admin/subscribers/{target}/{action}").status_code == 403
        refused = client.post(f"/admin/subscribers/{target}/{action}",
                              data={"csrf": token, "confirm": "p030@example.org", "name": "Hacked"})  # fmt: skip
        assert refused.status_code == 403 and "editor role" in refused.text
    assert client.get("/admin/subscribers/import").status_code == 403
    upload = client.post("/admin/subscribers/import?filename=a.csv", content=b"email\nv@example.org\n",
                         headers={"X-CSRF-Token": token})  # fmt: skip
    assert upload.status_code == 403
    store = site.store()
    try:
        sub = store.find_subscriber("p030@example.org")
        assert sub is not None and sub.status == "active" and sub.name == "Person 30"
    finally:
        store.close()
    # Without a session nothing is read either.
    assert httpx.get(f"{site.url}/admin/subscribers", follow_redirects=False).status_code == 303


def test_digests_and_sources_page(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    text = visible_text(session(site, "viewer@example.org"), "/admin/digests")
    daily = text[text.index("Pleura Daily"):text.index("Pleura Weekly")]
    store = site.store()
    try:
        active = store.count_recipients("daily")  # fewer than 130 once earlier tests changed some
    finally:
        store.close()
    assert "0 7 * * * in UTC" in daily and "Next send" in daily and f"Active subscribers {active}" in daily
    assert re.search(r"#1 \d{4}-\d\d-\d\d sent 130 0 0 0 100%", daily), daily
    weekly = text[text.index("Pleura Weekly"):text.rindex("Sources")]
    assert "Europe/Paris" in weekly and "08:00-18:00" in weekly and "No issue yet" in weekly
    sources = text[text.rindex("Sources"):]
    assert re.search(r"newsroom \(markdown\) \S+/content healthy \d{4}-\d\d-\d\d \d\d:\d\d UTC —", sources), sources
    assert re.search(r"wire \(feed\) http://127.0.0.1:9/feed.xml failing , 1 run\(s\) in a row never collected "
                     r"source &#39;wire&#39;: refused .* not a public address", sources), sources
    page = logged_in(browser, site, "viewer@example.org")
    submit(page, "nav >> text=Digests and sources")
    assert page.locator("#sources tr.bad").count() == 1
    no_sideways_scroll(page, "digests")
    page.close()


def test_webhooks_page_shows_state_and_attempts(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    viewer = session(site, "viewer@example.org")
    text = visible_text(viewer, "/admin/webhooks")
    assert "crm http://127.0.0.1:9/hooks subscriber.unsubscribed off since" in text
    assert text.count("subscriber.unsubscribed") >= 3  # the hook's events and its two attempts
    assert "Turn back on" not in text  # admins only
    assert viewer.get("/admin/webhooks/crm/enable").status_code == 403
    admin = session(site, "admin@example.org")
    assert "Turn back on" in admin.get("/admin/webhooks").text
    confirm = admin.get("/admin/webhooks/crm/enable")
    token = re.search(r'name="csrf" value="([^"]+)"', confirm.text)
    assert confirm.status_code == 200 and token
    done = admin.post("/admin/webhooks/crm/enable", data={"csrf": token.group(1)})
    assert done.status_code == 303 and "is%20on%20again" in done.headers["location"]
    text = visible_text(admin, "/admin/webhooks?hook=crm")
    assert "subscriber.unsubscribed on 0" in text
    page = logged_in(browser, site, "viewer@example.org")
    submit(page, "nav >> text=Webhooks")
    assert page.locator("#attempts tbody tr").count() == 2
    no_sideways_scroll(page, "webhooks")
    page.close()


def test_audit_page_lists_the_actions(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    page = logged_in(browser, site, "viewer@example.org")
    submit(page, "nav >> text=Audit log")
    log = page.inner_text("#audit")
    for action in ("subscriber.edit", "subscriber.unsubscribe", "subscriber.erase",
                   "subscriber.import", "subscriber.export"):  # fmt: skip
        assert action in log, action
    assert "editor@example.org" in log and "127.0.0.1" in log
    assert "webhook.enable" in log and "admin@example.org" in log
    page.fill("#action", "subscriber.import")
    submit(page, "form[role=search] button")
    rows = page.locator("#audit tbody tr").all_inner_texts()
    assert rows and all("subscriber.import" in r for r in rows)
    assert any("newcomers.csv" in r and "2998 added" in r for r in rows)
    no_sideways_scroll(page, "audit")
    page.close()
    client = session(site, "viewer@example.org")
    exported = client.get("/admin/audit.csv", params={"action": "subscriber."})
    entries = list(csv.DictReader(io.StringIO(exported.text)))
    assert {e["action"] for e in entries} >= {"subscriber.edit", "subscriber.erase", "subscriber.import"}
    assert all(e["action"].startswith("subscriber.") for e in entries)
    ids = [int(e["id"]) for e in entries]
    assert ids == sorted(ids, reverse=True)
