"""Outgoing webhooks against a real local receiver (a threaded HTTP server on 127.0.0.1).

Every event comes from a real flow run as the operator runs it (``publisher subscribers
add/remove``, ``send`` to the aiosmtpd relay, ``bounces import``, ``issues pause``) and is
delivered by ``publisher webhooks deliver`` or ``publisher worker``. Signatures are
checked with the very function the README shows. Backoff runs on the real clock, with
second-long ``retries`` set in the config.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from publisher.app import open_app
from publisher.config import ConfigError, load
from publisher.deliver.webhooks import sign
from publisher.services.webhooks import history
from tests.conftest import REPO, SmtpServer, free_port, run_cli, write_config

SECRET = "whsec-test-4f1c"
ENV = {"PUBLISHER_HOOK_SECRET": SECRET}
DATA = Path(__file__).parent / "data" / "bounces"
ALL_EVENTS = (
    '["subscriber.created", "subscriber.unsubscribed", "subscriber.complained", '
    '"issue.sent", "issue.paused", "delivery.bounced"]'
)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP receiver: records each POST and answers the next queued status (or 200)."""

    port: int
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    always: int = 200
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [r.event for r in self.requests if r.event["type"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(state.delay)
            with state.lock:
                state.requests.append(Received(dict(self.headers.items()), body))
                code = state.answers.pop(0) if state.answers else state.always
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def readme_verify() -> Callable[..., bool]:
    """The signature check exactly as the README's Webhooks section prints it."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Checking the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "README: no python block under '### Checking the signature'"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # noqa: S102 - our own README's example
    return scope["verify"]


def hook_config(url: str, *, events: str = ALL_EVENTS, retries: str = '["1s", "1s", "1s"]',
                max_failures: int = 3) -> str:  # fmt: skip
    return (
        f'\n[[webhooks]]\nname = "crm"\nurl = "{url}"\nevents = {events}\n'
        f'secret_env = "PUBLISHER_HOOK_SECRET"\nretries = {retries}\nmax_failures = {max_failures}\n'
        "timeout = 5\n"
    )


def deliver(config: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    return run_cli(config, "webhooks", "deliver", env=ENV, check=check)


def test_subscriber_events_are_signed_as_the_readme_checks(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(tmp_path, extra=hook_config(receiver.url))
    run_cli(config, "subscribers", "add", "ana@example.org", "--name", "Ana", env=ENV)
    run_cli(config, "subscribers", "add", "bo@example.org", env=ENV)
    run_cli(config, "subscribers", "remove", "ana@example.org", env=ENV)
    run_cli(config, "subscribers", "remove", "bo@example.org", "--complaint", env=ENV)
    result = deliver(config, check=True)
    assert "4 delivered, 0 to retry, 0 given up" in result.stdout

    verify = readme_verify()
    types = [r.event["type"] for r in receiver.requests]
    assert types == [
        "subscriber.created", "subscriber.created", "subscriber.unsubscribed",
        "subscriber.complained",
    ]  # fmt: skip
    for request in receiver.requests:
        header = request.headers["Publisher-Signature"]
        assert verify(SECRET, header, request.body)
        assert not verify("another-secret", header, request.body)
        assert not verify(SECRET, header, request.body.replace(b"example", b"exampla"))
        assert request.headers["Publisher-Event-Id"] == request.event["id"]
        assert request.headers["Content-Type"] == "application/json"
        assert set(request.event) == {"id", "type", "created_at", "data"}
    # A request signed more than five minutes ago is refused, however right its HMAC.
    body = receiver.requests[0].body
    assert verify(SECRET, sign(SECRET, int(time.time()) - 60, body), body)
    assert not verify(SECRET, sign(SECRET, int(time.time()) - 400, body), body)

    created = receiver.of_type("subscriber.created")[0]["data"]
    assert created["subscriber"]["email"] == "ana@example.org"
    assert created["subscriber"]["name"] == "Ana"
    assert created["subscriber"]["status"] == "active"
    assert created["subscriber"]["digests"] == ["daily"]
    assert created["previous_status"] is None and created["source"] == "cli"
    left = receiver.of_type("subscriber.unsubscribed")[0]["data"]
    assert left["subscriber"]["status"] == "unsubscribed" and left["digest"] is None
    complained = receiver.of_type("subscriber.complained")[0]["data"]
    assert complained["subscriber"]["email"] == "bo@example.org"
    assert complained["source"] == "complaint"
    # Nothing is sent twice.
    assert "0 delivered" in deliver(config, check=True).stdout
    assert len(receiver.requests) == 4


def test_failed_posts_are_retried_with_backoff_until_one_succeeds(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.answers = [500, 500]
    config = write_config(tmp_path, extra=hook_config(receiver.url, retries='["1s", "2s", "1h"]'))
    run_cli(config, "subscribers", "add", "ana@example.org", env=ENV)
    first = deliver(config)
    assert first.returncode == 1 and "0 delivered, 1 to retry" in first.stdout
    for _ in range(20):  # a pass every half second; the receiver decides when it succeeds
        if "1 delivered" in deliver(config).stdout:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the event was never delivered")
    # The tries were spaced by the configured waits, however often a pass ran.
    app = open_app(load(config))
    attempts = list(reversed(history(app, 10)))
    app.store.close()
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert (attempts[1].at - attempts[0].at).total_seconds() >= 1
    assert (attempts[2].at - attempts[1].at).total_seconds() >= 2
    ids = {r.headers["Publisher-Event-Id"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1  # one event, three tries
    assert [r.headers["Publisher-Attempt"] for r in receiver.requests] == ["1", "2", "3"]

    shown = run_cli(config, "webhooks", "history", "--limit", "10", env=ENV).stdout
    rows = [line for line in shown.splitlines() if "subscriber.created" in line]
    assert len(rows) == 3
    assert "200" in rows[0] and "HTTP 500" in rows[1] and "HTTP 500" in rows[2]
    listing = run_cli(config, "webhooks", "list", env=ENV).stdout
    assert "crm" in listing and " on " in f" {listing} " and receiver.url in listing


def test_a_hook_failing_again_and_again_is_turned_off_until_enabled(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.always = 503
    config = write_config(
        tmp_path, extra=hook_config(receiver.url, retries='["1s", "1s", "1s", "1s"]', max_failures=3)
    )
    for name in ("ana", "bo", "cy"):
        run_cli(config, "subscribers", "add", f"{name}@example.org", env=ENV)
    turned_off = ""
    for _ in range(6):
        out = deliver(config).stdout
        if "turned off" in out:
            turned_off = out
            break
        time.sleep(1.1)
    assert "crm turned off (publisher webhooks enable crm)" in turned_off
    # One POST per pass while failing: the other events wait behind the first.
    assert len(receiver.requests) == 3
    listing = run_cli(config, "webhooks", "list", env=ENV).stdout
    assert "off since" in listing and "HTTP 503" in listing
    time.sleep(1.2)
    assert "0 delivered, 0 to retry" in deliver(config).stdout  # off: nothing is sent
    assert len(receiver.requests) == 3

    receiver.always = 200
    enabled = run_cli(config, "webhooks", "enable", "crm", env=ENV).stdout
    assert "enabled webhook crm: 3 event(s) waiting" in enabled
    assert "3 delivered" in deliver(config, check=True).stdout
    assert {r.event["data"]["subscriber"]["email"] for r in receiver.requests[3:]} == {
        "ana@example.org", "bo@example.org", "cy@example.org"
    }
    unknown = run_cli(config, "webhooks", "enable", "nope", env=ENV, check=False)
    assert unknown.returncode == 1 and "no webhook 'nope'" in unknown.stderr


def test_sends_bounces_and_pauses_make_events_delivered_by_the_worker(
    tmp_path: Path, receiver: Receiver, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.rcpt_replies["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
    config = write_config(
        tmp_path, transport="smtp", smtp=smtp_server, extra=hook_config(receiver.url)
    )
    # On the real clock throughout: events are due when they are made.
    for address in ("ana@example.org", "gone@example.org", "nobody@example.org"):
        run_cli(config, "subscribers", "add", address, env=ENV)
    run_cli(config, "collect", env=ENV)
    # Queue the issue, pause it (issue.paused), resume it, and let a worker send it.
    run_cli(config, "send", "daily", "--queue-only", env=ENV)
    run_cli(config, "issues", "pause", "1", env=ENV)
    run_cli(config, "issues", "resume", "1", env=ENV)
    worker = run_cli(config, "worker", "--until-idle", env=ENV)
    assert "2 sent, 0 failed, 1 bounced" in worker.stdout
    # Delivered while it ran, and in one last pass before it exited: 3 created, paused,
    # bounced (the 5.1.1 refusal), sent.
    assert len(receiver.requests) == 6
    # A DSN for gone@ arrives later: bounces import.
    run_cli(config, "bounces", "import", str(DATA / "postfix-hard.eml"), env=ENV)
    assert "1 delivered" in deliver(config, check=True).stdout

    paused = receiver.of_type("issue.paused")[0]["data"]
    assert paused["issue"]["id"] == 1 and paused["issue"]["status"] == "paused"
    assert paused["queued"] == 3 and paused["issue"]["digest"] == "daily"
    [sent] = receiver.of_type("issue.sent")
    assert sent["data"]["issue"]["status"] == "sent"
    assert sent["data"]["issue"]["deliveries"] == {"sent": 2, "bounced": 1}
    smtp_bounce, dsn = receiver.of_type("delivery.bounced")
    assert smtp_bounce["data"]["email"] == "nobody@example.org"
    assert smtp_bounce["data"]["source"] == "smtp" and smtp_bounce["data"]["issue_id"] == 1
    assert smtp_bounce["data"]["status"] == "5.1.1"
    assert smtp_bounce["data"]["subscriber"]["status"] == "bounced"
    assert dsn["data"]["email"] == "gone@example.org" and dsn["data"]["source"] == "report"
    assert dsn["data"]["kind"] == "hard" and dsn["data"]["subscriber_marked_bounced"] is True
    verify = readme_verify()
    assert all(verify(SECRET, r.headers["Publisher-Signature"], r.body) for r in receiver.requests)


def test_a_hook_only_gets_the_events_it_names_and_erasure_forgets_queued_ones(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path, extra=hook_config(receiver.url, events='["subscriber.unsubscribed"]')
    )
    run_cli(config, "subscribers", "add", "ana@example.org", env=ENV)
    run_cli(config, "subscribers", "add", "bo@example.org", env=ENV)
    run_cli(config, "subscribers", "remove", "ana@example.org", env=ENV)
    run_cli(config, "subscribers", "remove", "bo@example.org", env=ENV)
    app = open_app(load(config))
    try:
        bo = app.store.find_subscriber("bo@example.org")
        assert bo is not None
        from publisher.compose.subscriptions import email_hash

        app.store.erase_subscriber(bo.id, email_hash(bo.email), app.clock())
    finally:
        app.store.close()
    assert "1 delivered" in deliver(config, check=True).stdout
    [only] = receiver.requests
    assert only.event["type"] == "subscriber.unsubscribed"
    assert only.event["data"]["subscriber"]["email"] == "ana@example.org"


def test_two_dispatchers_at_once_send_each_event_exactly_once(
    store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.delay = 0.02
    config = write_config(tmp_path, store_url=store_url, extra=hook_config(receiver.url))
    rows = "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(60))
    (tmp_path / "subs.csv").write_text("email,name\n" + rows)
    run_cli(config, "subscribers", "import", str(tmp_path / "subs.csv"), env=ENV)
    env = {**os.environ, "PUBLISHER_HOOK_SECRET": SECRET,
           "PUBLISHER_TEST_SECRET": "test-secret"}  # fmt: skip
    command = [sys.executable, "-m", "publisher", "--config", str(config), "webhooks", "deliver"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=tmp_path)  # fmt: skip
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in runs]
    assert all(p.returncode == 0 for p in runs), outputs
    ids = [r.headers["Publisher-Event-Id"] for r in receiver.requests]
    assert len(ids) == 60 and len(set(ids)) == 60
    emails = {r.event["data"]["subscriber"]["email"] for r in receiver.requests}
    assert emails == {f"reader{i}@example.org" for i in range(60)}
    assert all(r.event["data"]["source"] == "import" for r in receiver.requests)
    delivered = [int(re.search(r"(\d+) delivered", out).group(1)) for out, _ in outputs]  # type: ignore[union-attr]
    assert sum(delivered) == 60


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('url = "ftp://x"\nevents = ["issue.sent"]\nsecret_env = "S"', "webhooks[0].url: 'ftp://x' is not an absolute http(s) URL"),
        ('url = "https://x.example"\nevents = ["issue.done"]\nsecret_env = "S"', "webhooks[0].events: 'issue.done' is not one of subscriber.created"),
        ('url = "https://x.example"\nevents = []\nsecret_env = "S"', "webhooks[0].events: name at least one event"),
        ('url = "https://x.example"\nevents = ["issue.sent"]\nsecret_env = "hunter2!"', "webhooks[0].secret_env: must name an environment variable"),
        ('url = "https://x.example"\nevents = ["issue.sent"]\nsecret_env = "S"\nretries = ["soon"]', "webhooks[0].retries: 'soon' is not a duration"),
        ('url = "https://x.example"\nevents = ["issue.sent"]\nsecret_env = "S"\nmax_failures = -1', "webhooks[0].max_failures: must be 0 (never) or more"),
        ('url = "https://x.example"\nevents = ["issue.sent"]', "webhooks[0]: missing required key 'secret_env'"),
        ('url = "https://x.example"\nevents = ["issue.sent"]\nsecret_env = "S"\nretry = []', "webhooks[0].retry: unknown key 'retry' (did you mean 'retries'?)"),
    ],
)
def test_webhook_settings_are_checked_with_file_line_and_key(
    tmp_path: Path, entry: str, expected: str
) -> None:
    config = write_config(tmp_path, extra=f"\n[[webhooks]]\n{entry}\n")
    with pytest.raises(ConfigError) as info:
        load(config)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert re.match(r"config\.toml:\d+: webhooks\[0\]", message), message


def test_duplicate_hook_names_are_refused_on_the_second_entrys_line(tmp_path: Path) -> None:
    hook = '\n[[webhooks]]\nurl = "https://hooks.example.org/a"\nevents = ["issue.sent"]\nsecret_env = "S"\n'
    config = write_config(tmp_path, extra=hook + hook.replace("/a", "/b"))
    with pytest.raises(ConfigError) as info:
        load(config)
    lines = config.read_text().splitlines()
    line = [i + 1 for i, text in enumerate(lines) if text == "[[webhooks]]"][1]
    assert f"config.toml:{line}: webhooks[1]: duplicate webhook 'hooks.example.org'" in str(info.value)


def test_every_webhook_key_is_documented() -> None:
    import dataclasses

    from publisher.config import WebhookConfig

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shipped = (REPO / "config.toml").read_text(encoding="utf-8")
    for f in dataclasses.fields(WebhookConfig):
        assert f"| `[[webhooks]] {f.name}` |" in readme, f.name
        assert re.search(rf"^# {f.name} = ", shipped, re.M), f.name
    assert "# [[webhooks]]" in shipped
    load(REPO / "config.toml")  # the shipped file still loads
    for event in ("subscriber.created", "subscriber.unsubscribed", "subscriber.complained",
                  "issue.sent", "issue.paused", "delivery.bounced"):  # fmt: skip
        assert f"| `{event}` |" in readme, event


def test_the_daemon_delivers_events_made_by_other_processes(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_scheduler import Daemon

    monkeypatch.setenv("PUBLISHER_HOOK_SECRET", SECRET)
    config = write_config(tmp_path, extra=hook_config(receiver.url))
    daemon = Daemon(config, now=None)
    try:
        daemon.wait_for("next scheduled issue")
        run_cli(config, "subscribers", "add", "ana@example.org", env=ENV)  # another process
        deadline = time.monotonic() + 30
        while not receiver.of_type("subscriber.created") and time.monotonic() < deadline:
            time.sleep(0.1)
        [created] = receiver.of_type("subscriber.created")
        assert created["data"]["subscriber"]["email"] == "ana@example.org"
        # (The start-up catch-up made an issue for nobody, at once sent: issue.sent.)
        assert {r.event["type"] for r in receiver.requests} <= {"subscriber.created", "issue.sent"}
        verify = readme_verify()
        assert all(verify(SECRET, r.headers["Publisher-Signature"], r.body) for r in receiver.requests)
    finally:
        daemon.terminate()
    assert daemon.proc.returncode == 0, daemon.log()


def test_check_fails_a_hook_whose_secret_variable_is_unset(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=hook_config("http://127.0.0.1:9/hooks"))
    run_cli(config, "db", "upgrade")
    unset = run_cli(config, "check", check=False)
    assert unset.returncode == 1
    assert "FAIL  webhook    crm: secret_env names PUBLISHER_HOOK_SECRET, which is unset" in unset.stdout
    fine = run_cli(config, "check", env=ENV)
    assert "ok    webhook    crm: http://127.0.0.1:9/hooks (6 event(s))" in fine.stdout


def test_a_web_sign_up_is_created_when_confirmed_not_before(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from tests.test_charts import _web_signup_confirmed

    monkeypatch.setenv("PUBLISHER_TEST_SECRET", "test-secret")
    config = write_config(tmp_path, extra=hook_config(receiver.url))
    now = datetime.now(UTC)
    _web_signup_confirmed(config, "web@example.org", now, now)
    assert "1 delivered" in deliver(config, check=True).stdout
    [created] = receiver.of_type("subscriber.created")
    data = created["data"]
    assert data["previous_status"] == "pending" and data["source"] == "web"
    assert data["subscriber"]["email"] == "web@example.org"
    assert data["subscriber"]["digests"] == ["daily"] and data["subscriber"]["status"] == "active"


def test_status_shows_a_hook_turned_off(tmp_path: Path, receiver: Receiver) -> None:
    receiver.always = 500
    config = write_config(tmp_path, extra=hook_config(receiver.url, max_failures=1))
    run_cli(config, "subscribers", "add", "ana@example.org", env=ENV)
    assert "crm turned off" in deliver(config).stdout
    shown = run_cli(config, "status", env=ENV).stdout
    assert re.search(r"webhook   crm is off since \S+ after 1 failures \(HTTP 500 answered: ok\); "
                     r"1 event\(s\) waiting for `publisher webhooks enable crm`", shown), shown  # fmt: skip
    data = json.loads(run_cli(config, "status", "--json", env=ENV).stdout)
    [hook] = data["webhooks"]
    assert hook["name"] == "crm" and hook["enabled"] is False and hook["pending"] == 1
