"""Outgoing webhooks against a real local receiver (a threaded HTTP server on 127.0.0.1).

Every event comes from a real flow run as the operator runs it (``publisher subscribers
add/remove``, ``send`` to the aiosmtpd relay, ``bounces import``, ``issues pause``) and is
delivered by ``publisher webhooks deliver`` or ``publisher worker``. Signatures are
checked with the very function the README shows. Backoff runs on the real clock, with
second-long ``retries`` set in the config.
"""

from __future__ import annotations

import json
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
