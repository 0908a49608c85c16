"""The operators' console through a real server, a real worker and a real browser.

One ``publisher serve`` (uvicorn, a subprocess) on a SQLite file, a real SMTP sink
(aiosmtpd) as the relay, ``publisher worker`` as a subprocess when something must be sent,
and Debian's Chromium driven by Playwright: log in, the dashboard charts drawn from the
store's numbers, an issue sent and watched to 100%, an issue cancelled, a viewer refused a
send, a form without its CSRF token refused. The login limits and TOTP (enrolment, a code,
a recovery code) are driven with httpx against the same live server.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from publisher.store import Store
from tests.conftest import (
    RecordingHandler,
    SmtpServer,
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
SUBSCRIBERS = 12
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
timezone = "UTC"
subject = "{title}: {date}"

[[digests]]
id = "monthly"
title = "Pleura Monthly"
schedule = "0 7 1 * *"
timezone = "UTC"
subject = "{title}: {date}"
"""
ADMIN_CONFIG = """trusted_proxies = ["127.0.0.1"]

[admin]
login_window = "15m"
login_per_address = 3
login_per_ip = 6
"""
OPERATORS = {
    "admin@example.org": "admin",
    "editor@example.org": "editor",
    "viewer@example.org": "viewer",
    "totp@example.org": "admin",
    "limited@example.org": "viewer",
}


@dataclass
class Console:
    config: Path
    url: str
    smtp: SmtpServer
    process: subprocess.Popen[bytes]

    def store(self) -> Store:
        return Store.open(f"sqlite:///{self.config.parent / 'publisher.db'}")


def _env() -> dict[str, str]:
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret"}
    env.pop("PUBLISHER_NOW", None)  # the console, the worker and TOTP run on the real clock
    return env


def serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    """``publisher serve`` on ``port``, once it answers."""
    return start_serve(config, port, _env())


stop = stop_process


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    handler = RecordingHandler()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    smtp = SmtpServer("127.0.0.1", smtp_port, handler)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(folder, transport="smtp", smtp=smtp, digests=DIGESTS, extra=ADMIN_CONFIG)
    text = config.read_text(encoding="utf-8").replace("https://news.example.org/mail", url)
    config.write_text(text, encoding="utf-8")
    env = {"PUBLISHER_TEST_SECRET": "test-secret"}
    run_cli(config, "collect", env=env)
    rows = "".join(f"reader{i}@example.net,Reader {i}\n" for i in range(SUBSCRIBERS))
    (folder / "subscribers.csv").write_text("email,name\n" + rows, encoding="utf-8")
    run_cli(config, "subscribers", "import", "subscribers.csv", env=env)
    for email, role in OPERATORS.items():
        run_cli(config, "operators", "add", email, "--role", role, "--password-stdin",
                input=PASSWORD, env=env)  # fmt: skip
    process = serve(config, port)
    try:
        yield Console(config, url, smtp, process)
    finally:
        stop(process)
        controller.stop()


@pytest.fixture
def browser(console: Console) -> Iterator[object]:
    require_tool("chromium", hint="apt-get install chromium")
    sync_api = require_module("playwright.sync_api", hint="pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, problems: list[str]):  # type: ignore[no-untyped-def]
    """A fresh browser context (its own cookies) whose console errors are collected: a
    CSP violation (an inline script or style) is one. (The email preview's remote images
    cannot load here: no DNS; tests leave those errors out.)"""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page


def log_in(page, url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/admin/")
    assert "/admin/login" in page.url  # not logged in: the login page, and back afterwards
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/admin/")


def no_sideways_scroll(page, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(200)  # the charts follow the width
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{name} scrolls sideways at {width}px ({scroll}px)"
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)


def start_worker(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "worker", "--poll", "0.2"],
        cwd=config.parent, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_log_in_see_real_charts_send_an_issue_to_100_percent(
    console: Console, browser, tmp_path: Path
) -> None:
    problems: list[str] = []
    page = open_page(browser, problems)
    log_in(page, console.url, "admin@example.org")
    # The session cookie: HttpOnly, SameSite=Strict, not Secure over plain http.
    [cookie] = [c for c in page.context.cookies() if c["name"] == "publisher_admin"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]

    # No worker yet: the banner says so plainly.
    assert page.locator("#no-worker").is_visible()
    assert "Send now only queues" in page.locator("#no-worker").inner_text()
    # The subscribers chart is drawn from the store's numbers.
    chart = page.locator("#chart-subscribers[data-drawn=true]")
    chart.wait_for()
    assert chart.locator("canvas").count() == 1
    assert chart.get_attribute("data-total") == str(SUBSCRIBERS)
    page.locator("#chart-live[data-drawn=true]").wait_for()
    assert "Pleura Daily" in page.locator("#digests-title + .table-wrap").inner_text()
    assert "newsroom" in page.locator(".health").inner_text()
    no_sideways_scroll(page, "dashboard", tmp_path)
    # By keyboard: the first Tab reaches the skip link, shown on focus; it leads to <main>.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    assert page.locator(".skip").bounding_box()["x"] >= 0  # type: ignore[index]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Light and dark follow the system setting.
    background = "getComputedStyle(document.body).backgroundColor"
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) == "rgb(17, 24, 39)"
    page.emulate_media(color_scheme="light")
    assert page.evaluate(background) == "rgb(255, 255, 255)"
    page.set_viewport_size({"width": 1280, "height": 900})

    # Send now: a confirmation, then the issue page with everything queued.
    page.click("nav a:text-is('Issues')")
    page.click("text=Send Pleura Daily now")
    assert "never sends itself" in page.inner_text("main")
    page.click("button[type=submit]:has-text('Yes')")
    page.wait_for_url(re.compile(r".*/admin/issues/\d+\?notice=.*"))
    assert "Queued" in page.inner_text(".notice")
    assert page.get_attribute("#progress", "value") == "0"
    assert f"queued {SUBSCRIBERS}" in page.inner_text("#progress-counts")
    assert console.smtp.handler.messages == []  # serve never sends
    assert "No worker is running" in page.inner_text("#no-worker")
    # The email in light and dark, each in a sandboxed frame; the text part beside it.
    frames = page.locator(".previews iframe")
    assert frames.count() == 2
    assert [frames.nth(i).get_attribute("sandbox") for i in range(2)] == ["", ""]
    assert "Unsubscribe" in page.inner_text(".plain") or "unsubscribe" in page.inner_text(".plain")
    no_sideways_scroll(page, "issue", tmp_path)

    # A second tab keeps the dashboard open: htmx refreshes its live panel by itself.
    dashboard = page.context.new_page()
    dashboard.goto(f"{console.url}/admin/")
    assert dashboard.inner_text("#fig-queued") == str(SUBSCRIBERS)
    worker = start_worker(console.config)
    try:
        # Locators, not evaluated strings: the console's CSP forbids eval, even Playwright's.
        page.locator("#progress[value='100'][data-status='sent']").wait_for(timeout=60_000)
        page.locator("#issue-status:text-is('sent')").wait_for(timeout=10_000)
        # The worker is alive: the banner goes, and the panel shows what was sent.
        dashboard.locator(f"#fig-rate:text-is('{SUBSCRIBERS}')").wait_for(timeout=15_000)
        dashboard.locator("#fig-workers:text-is('1')").wait_for(timeout=15_000)
        assert dashboard.locator("#no-worker").count() == 0
        assert dashboard.inner_text("#fig-queued") == "0"
    finally:
        stop(worker)
    dashboard.close()
    assert f"sent {SUBSCRIBERS}" in page.inner_text("#progress-counts")
    assert len(console.smtp.handler.messages) == SUBSCRIBERS

    # Back on the dashboard, the issues chart counts what was just sent.
    page.goto(f"{console.url}/admin/")
    issues = page.locator("#chart-issues[data-drawn=true]")
    issues.wait_for()
    assert issues.get_attribute("data-total") == str(SUBSCRIBERS)
    assert [p for p in problems if "ERR_NAME_NOT_RESOLVED" not in p] == []


def test_cancel_an_issue(console: Console, browser, tmp_path: Path) -> None:
    problems: list[str] = []
    page = open_page(browser, problems)
    log_in(page, console.url, "admin@example.org")
    page.goto(f"{console.url}/admin/send/weekly")
    page.click("button[type=submit]:has-text('Yes')")
    page.wait_for_url(re.compile(r".*/admin/issues/\d+\?notice=.*"))
    issue_id = int(re.search(r"/issues/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    # The confirmation opens as a modal dialog over the page (admin.js); "No" closes it.
    page.click("a[data-action=cancel]")
    dialog = page.locator("dialog#confirm-cancel[open]")
    assert "cannot be undone" in dialog.inner_text()
    dialog.locator("button:has-text('No')").click()
    assert page.locator("dialog[open]").count() == 0
    assert page.inner_text("#issue-status") == "sending"
    page.click("a[data-action=cancel]")
    dialog.locator("button[type=submit]:has-text('Yes')").click()
    page.wait_for_url(re.compile(rf".*/admin/issues/{issue_id}\?notice=Cancelled.*"))
    assert page.inner_text("#issue-status") == "cancelled"
    assert f"skipped {SUBSCRIBERS}" in page.inner_text("#progress-counts")
    assert page.locator("a[data-action=cancel]").count() == 0
    store = console.store()
    try:
        assert store.get_issue(issue_id).status == "cancelled"  # type: ignore[union-attr]
        [entry] = store.audit_entries(1, action="issue.cancel")
        assert (entry.actor, entry.target, entry.ip) == (
            "admin@example.org", f"issue #{issue_id}", "127.0.0.1",
        )  # fmt: skip
    finally:
        store.close()
    # The admins' pages with wide tables scroll inside the table, not the page (a hidden
    # "Actions" header once widened the page at 375 px).
    for name in ("operators", "tokens", "issues"):
        page.goto(f"{console.url}/admin/{name}")
        no_sideways_scroll(page, name, tmp_path)
    assert [p for p in problems if "ERR_NAME_NOT_RESOLVED" not in p] == []


def test_a_viewer_is_refused_a_send(console: Console, browser) -> None:
    problems: list[str] = []
    page = open_page(browser, problems)
    log_in(page, console.url, "viewer@example.org")
    page.goto(f"{console.url}/admin/issues")
    assert page.locator("text=Send Pleura Daily now").count() == 0
    response = page.goto(f"{console.url}/admin/send/daily")
    assert response.status == 403
    assert "needs the admin role; you are viewer" in page.inner_text("main")
    # Even a well-formed POST with the viewer's own CSRF token is refused.
    csrf = page.get_attribute("form.logout input[name=csrf]", "value")
    before = _issue_count(console)
    result = page.request.post(f"{console.url}/admin/send/daily", form={"csrf": csrf})
    assert result.status == 403
    assert _issue_count(console) == before
    assert [p for p in problems if "403" not in p] == []  # the refusal is the only error


def _issue_count(console: Console) -> int:
    store = console.store()
    try:
        return len(store.list_issues(1000))
    finally:
        store.close()


def test_a_form_without_its_csrf_token_is_refused(console: Console, browser) -> None:
    problems: list[str] = []
    page = open_page(browser, problems)
    log_in(page, console.url, "admin@example.org")
    before = _issue_count(console)
    page.goto(f"{console.url}/admin/send/daily")
    page.evaluate("document.querySelector('form.confirm input[name=csrf]').remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button[type=submit]:has-text('Yes')")
    assert posted.value.status == 403
    assert "did not come from the console" in page.inner_text("main")
    # A wrong token is refused the same way, and nothing was queued.
    result = page.request.post(f"{console.url}/admin/send/daily", form={"csrf": "0" * 64})
    assert result.status == 403
    assert _issue_count(console) == before
    # The login form has its own token too.
    assert httpx.post(f"{console.url}/admin/login", data={
        "email": "admin@example.org", "password": PASSWORD}).status_code == 403  # fmt: skip
    assert [p for p in problems if "403" not in p] == []


def _login_post(client: httpx.Client, email: str, password: str, ip: str) -> httpx.Response:
    client.cookies.clear()  # a new visitor each time (a session would skip the login page)
    page = client.get("/admin/login", headers={"X-Forwarded-For": ip})
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/admin/login", data={"csrf": token, "email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )  # fmt: skip


def test_the_login_limits_hold_per_address_per_ip_and_across_processes(console: Console) -> None:
    with httpx.Client(base_url=console.url) as client:
        for _ in range(3):  # login_per_address = 3
            assert (
                _login_post(client, "limited@example.org", "wrong", "203.0.113.1").status_code
                == 401
            )
        # The right password no longer helps, from any address.
        refused = _login_post(client, "limited@example.org", PASSWORD, "203.0.113.2")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 900
        assert "too many failed logins" in refused.text
        # Another operator from another IP is not affected.
        assert _login_post(client, "editor@example.org", PASSWORD, "203.0.113.3").status_code == 303

        # login_per_ip = 6: one IP trying many addresses is stopped too.
        for i in range(6):
            assert (
                _login_post(client, f"guess{i}@example.org", "x", "198.51.100.9").status_code == 401
            )
        assert (
            _login_post(client, "viewer@example.org", PASSWORD, "198.51.100.9").status_code == 429
        )
        assert (
            _login_post(client, "viewer@example.org", PASSWORD, "198.51.100.10").status_code == 303
        )

    # The counts live in the store: a second server process refuses the same.
    port = free_port()
    other = serve(console.config, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert (
                _login_post(client, "limited@example.org", PASSWORD, "203.0.113.4").status_code
                == 429
            )
    finally:
        stop(other)
    store = console.store()
    try:
        failed = store.audit_entries(100, action="operator.login_failed")
        assert {e.ip for e in failed} >= {"203.0.113.1", "198.51.100.9"}
    finally:
        store.close()


def test_totp_enrolment_then_login_with_a_code_and_a_recovery_code(console: Console) -> None:
    pyotp = require_module("pyotp")
    with httpx.Client(base_url=console.url) as client:
        assert _login_post(client, "totp@example.org", PASSWORD, "192.0.2.1").status_code == 303
        account = client.get("/admin/account").text
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', account).group(1)  # type: ignore[union-attr]
        assert "otpauth://totp/" in account and "<svg" in account
        csrf = re.search(r'name="csrf" value="([^"]+)"', account).group(1)  # type: ignore[union-attr]
        totp = pyotp.TOTP(secret)
        wrong = client.post(
            "/admin/account/2fa",
            data={
                "csrf": csrf,
                "secret": secret,
                "code": "000000" if totp.now() != "000000" else "111111",
            },
        )
        assert wrong.status_code == 400
        shown = client.post(
            "/admin/account/2fa", data={"csrf": csrf, "secret": secret, "code": totp.now()}
        )
        assert shown.status_code == 200
        codes = re.findall(r"<code>([A-Z2-9]{4}(?:-[A-Z2-9]{4}){3})</code>", shown.text)
        assert len(codes) == 10 and len(set(codes)) == 10
        out = client.post("/admin/logout", data={"csrf": csrf})
        assert out.status_code == 303, out.text
        assert client.get("/admin/").status_code == 303  # logged out

    def second_step(code: str) -> tuple[httpx.Client, httpx.Response]:
        client = httpx.Client(base_url=console.url)
        first = _login_post(client, "totp@example.org", PASSWORD, "192.0.2.1")
        assert first.status_code == 303 and first.headers["location"].endswith("/admin/login/2fa")
        assert client.get("/admin/").status_code == 303  # the password alone is not a login
        page = client.get("/admin/login/2fa").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        return client, client.post("/admin/login/2fa", data={"csrf": csrf, "code": code})

    # The enrolment used this step's code: the next step's is accepted (once).
    code = totp.at(time.time() + 30)
    client, done = second_step(code)
    assert done.status_code == 303 and client.get("/admin/").status_code == 200
    client.close()
    client, again = second_step(code)
    assert again.status_code == 401  # a code is good for one login
    client.close()
    client, recovered = second_step(codes[0].lower().replace("-", " "))
    assert recovered.status_code == 303 and client.get("/admin/").status_code == 200
    assert "9 recovery codes left" in client.get("/admin/account").text
    client.close()
    client, reused = second_step(codes[0])
    assert reused.status_code == 401
    client.close()


@contextlib.contextmanager
def _logged_in(console: Console, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.url) as client:
        assert _login_post(client, email, PASSWORD, "127.0.0.1").status_code == 303
        yield client


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_admins_manage_operators_and_tokens_from_the_console(console: Console) -> None:
    with _logged_in(console, "editor@example.org") as editor:
        assert editor.get("/admin/operators").status_code == 403
        assert editor.get("/admin/tokens").status_code == 403
        assert "Operators" not in editor.get("/admin/").text.split("</nav>")[0]
    with _logged_in(console, "admin@example.org") as client:
        page = client.get("/admin/operators").text
        weak = client.post("/admin/operators", data={
            "csrf": _csrf(page), "email": "new@example.org", "role": "editor", "password": "short"})  # fmt: skip
        assert weak.status_code == 400 and "too short" in weak.text
        added = client.post("/admin/operators", data={
            "csrf": _csrf(page), "email": "new@example.org", "role": "editor", "password": PASSWORD})  # fmt: skip
        assert added.status_code == 303
        with _logged_in(console, "new@example.org") as new:
            assert new.get("/admin/").status_code == 200
            confirm = client.get("/admin/operators/remove", params={"email": "new@example.org"})
            assert "their sessions end now" in confirm.text
            gone = client.post("/admin/operators/remove",
                               data={"csrf": _csrf(confirm.text), "email": "new@example.org"})  # fmt: skip
            assert gone.status_code == 303
            assert new.get("/admin/").status_code == 303  # logged out with the account

        page = client.get("/admin/tokens").text
        made = client.post("/admin/tokens", data={
            "csrf": _csrf(page), "name": "ci", "scope": "write", "expires": "90d"})  # fmt: skip
        secret = re.search(r'id="new-token">(pub_[^<]+)<', made.text).group(1)  # type: ignore[union-attr]
        assert secret not in client.get("/admin/tokens").text  # shown that once only
        store = console.store()
        try:
            from publisher.services.tokens import token_hash

            [row] = [t for t in store.list_api_tokens() if t.name == "ci"]
            assert row.scope == "write" and row.expires_at is not None
            assert store.api_token_by_hash(token_hash(secret)) is not None
        finally:
            store.close()
        confirm = client.get("/admin/tokens/revoke", params={"name": "ci"})
        revoked = client.post(
            "/admin/tokens/revoke", data={"csrf": _csrf(confirm.text), "name": "ci"}
        )
        assert revoked.status_code == 303 and "Revoked" in revoked.headers["location"]
        assert ">revoked<" in client.get("/admin/tokens").text
    store = console.store()
    try:
        actions = {(e.actor, e.action, e.target) for e in store.audit_entries(50)}
        assert {("admin@example.org", "operator.add", "new@example.org"),
                ("admin@example.org", "operator.remove", "new@example.org"),
                ("admin@example.org", "token.create", "ci"),
                ("admin@example.org", "token.revoke", "ci")} <= actions  # fmt: skip
    finally:
        store.close()


def test_an_editor_sends_a_test_copy_but_cannot_cancel(console: Console) -> None:
    if not _issue_count(console):  # run alone: make an issue to look at
        run_cli(console.config, "send", "weekly", "--queue-only",
                env={"PUBLISHER_TEST_SECRET": "test-secret"})  # fmt: skip
    store = console.store()
    try:
        issue = store.list_issues(1)[0]
    finally:
        store.close()
    before = len(console.smtp.handler.messages)
    with _logged_in(console, "editor@example.org") as editor:
        assert editor.get(f"/admin/issues/{issue.id}/cancel").status_code == 403
        # The preview has a CSP of its own: a sandbox, no script, framed only by the console.
        preview = editor.get(f"/admin/issues/{issue.id}/preview", params={"scheme": "dark"})
        policy = preview.headers["content-security-policy"]
        assert "sandbox" in policy and "default-src 'none'" in policy and "script-src" not in policy
        assert (
            "frame-ancestors 'self'" in policy
            and preview.headers["x-frame-options"] == "SAMEORIGIN"
        )
        assert "<script" not in preview.text.lower() and "@media all" in preview.text
        assert "script-src 'self'" in editor.get("/admin/").headers["content-security-policy"]
        confirm = editor.get(f"/admin/issues/{issue.id}/test")
        assert confirm.status_code == 200 and 'value="editor@example.org"' in confirm.text
        bad = editor.post(f"/admin/issues/{issue.id}/test",
                          data={"csrf": _csrf(confirm.text), "to": "not an address"})  # fmt: skip
        assert bad.status_code == 400
        sent = editor.post(f"/admin/issues/{issue.id}/test",
                           data={"csrf": _csrf(confirm.text), "to": "proof@example.net"})  # fmt: skip
        assert sent.status_code == 303 and "test%20copy" in sent.headers["location"]
    [test_copy] = console.smtp.handler.to("proof@example.net")
    assert test_copy["Subject"].startswith("[TEST]")
    assert len(console.smtp.handler.messages) == before + 1


def test_pause_resume_and_resend_failed_from_the_issue_page(console: Console) -> None:
    with _logged_in(console, "admin@example.org") as admin:
        confirm = admin.get("/admin/send/monthly")
        queued = admin.post("/admin/send/monthly", data={"csrf": _csrf(confirm.text)})
        issue_id = int(re.search(r"/issues/(\d+)", queued.headers["location"]).group(1))  # type: ignore[union-attr]

        def act(action: str) -> httpx.Response:
            page = admin.get(f"/admin/issues/{issue_id}/{action}")
            assert page.status_code == 200
            return admin.post(f"/admin/issues/{issue_id}/{action}", data={"csrf": _csrf(page.text)})

        def status() -> str:
            return admin.get(f"/admin/issues/{issue_id}/progress.json").json()["status"]

        assert "Paused" in act("pause").headers["location"] and status() == "paused"
        assert 'data-action="resume"' in admin.get(f"/admin/issues/{issue_id}").text
        # Pausing twice is refused with the service's own line.
        refused = admin.post(f"/admin/issues/{issue_id}/pause", data={"csrf": _csrf(
            admin.get(f"/admin/issues/{issue_id}/pause").text)})  # fmt: skip
        assert refused.status_code == 409 and "already paused" in refused.text
        assert "Resumed" in act("resume").headers["location"] and status() == "sending"
        assert "failed%20deliveries%20queued" in act("resend").headers["location"]
        assert "Cancelled" in act("cancel").headers["location"] and status() == "cancelled"
    store = console.store()
    try:
        done = [e.action for e in store.audit_entries(20) if e.target == f"issue #{issue_id}"]
        assert done == ["issue.cancel", "issue.resend", "issue.resume", "issue.pause"]
    finally:
        store.close()
