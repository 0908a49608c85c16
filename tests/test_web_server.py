"""The subscribers' web side through the real server and the CLI, as an operator runs it.

``publisher serve`` runs as a subprocess (uvicorn on a free port); a sign-up goes through
httpx, the confirmation comes from the file outbox, the one-click unsubscribe is sent
with curl, and the next ``publisher send`` must skip the subscriber who left. Also the
``[web]`` settings and ``subscribers import --pending``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from publisher import config as config_module
from publisher.errors import ConfigError
from publisher.store import Store
from tests.conftest import REPO, free_port, require_tool, run_cli, serving, write_config
from tests.test_pipeline_e2e import NEW_ARTICLE

NOW = "2026-11-28T15:00:00+00:00"
NEXT_DAY = "2026-11-29T15:00:00+00:00"


def _mails(outbox: Path, pattern: str = "*.eml") -> list[EmailMessage]:
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob(pattern))
    ]


def _to(message: EmailMessage) -> str:
    return message["To"].addresses[0].addr_spec


@dataclasses.dataclass
class Served:
    config: Path
    url: str
    process: subprocess.Popen[bytes]


def start_server(folder: Path, now: str, extra: str = "") -> Iterator[Served]:
    """``publisher serve`` on a free port, with [web] base_url pointing at it."""
    port = free_port()
    config = write_config(folder, extra=extra)
    url = f"http://127.0.0.1:{port}"
    text = config.read_text(encoding="utf-8").replace(
        'base_url = "https://news.example.org/mail"', f'base_url = "{url}"'
    )
    config.write_text(text, encoding="utf-8")
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret", "PUBLISHER_NOW": now}
    with serving(config, port, env) as process:
        yield Served(config, url, process)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from start_server(tmp_path, NOW)


def test_sign_up_confirm_one_click_unsubscribe_through_the_real_server(
    served: Served, tmp_path: Path
) -> None:
    curl_bin = require_tool("curl", hint="apt-get install curl")
    config, outbox = served.config, tmp_path / "outbox"
    run_cli(config, "subscribers", "add", "stays@example.org", now=NOW)

    with httpx.Client(base_url=served.url, timeout=10) as client:
        form = client.get("/subscribe")
        assert form.status_code == 200 and "content-security-policy" in form.headers
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        answer = client.post(
            "/subscribe",
            data={
                "csrf": csrf,
                "email": "Leaves@Example.org",
                "name": "Lee",
                "digest": "daily",
                "website": "",
            },
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text

    [confirmation] = _mails(outbox, "confirm-*.eml")
    assert _to(confirmation) == "leaves@example.org"
    link = re.search(
        rf"{re.escape(served.url)}/confirm/\S+", confirmation.get_body(("plain",)).get_content()
    ).group(0)  # type: ignore[union-attr]
    assert (
        "pending" in run_cli(config, "subscribers", "list", "--status", "pending", now=NOW).stdout
    )
    with httpx.Client(timeout=10) as scanner:  # a link scanner only GETs, and has no cookie
        assert scanner.get(link).status_code == 200
    assert (
        "leaves@example.org"
        in run_cli(config, "subscribers", "list", "--status", "pending", now=NOW).stdout
    )
    with httpx.Client(timeout=10) as person:
        confirmed = person.post(link)
        assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    assert (
        "leaves@example.org"
        in run_cli(config, "subscribers", "list", "--status", "active", now=NOW).stdout
    )

    # The first issue reaches both; its List-Unsubscribe URL is served by this server.
    run_cli(config, "collect", now=NOW)
    run_cli(config, "send", "daily", now=NOW)
    first = [m for m in _mails(outbox, "daily-*.eml")]
    assert sorted(_to(m) for m in first) == ["leaves@example.org", "stays@example.org"]
    [mine] = [m for m in first if _to(m) == "leaves@example.org"]
    assert mine["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(mine["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith(f"{served.url}/unsubscribe/")

    # The next issue is queued for both; then the one-click POST arrives, twice.
    (tmp_path / "content" / "registry-fourth-centre.md").write_text(NEW_ARTICLE, encoding="utf-8")
    run_cli(config, "collect", now=NEXT_DAY)
    run_cli(config, "send", "daily", "--queue-only", now=NEXT_DAY)
    for _ in range(2):
        curl = subprocess.run(
            [
                curl_bin,
                "-sS",
                "-X",
                "POST",
                "-d",
                "List-Unsubscribe=One-Click",
                "-w",
                "|%{http_code}|%{redirect_url}|",
                unsubscribe,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert curl.stdout == "unsubscribed\n|200||"
    assert (
        "leaves@example.org"
        in run_cli(config, "subscribers", "list", "--status", "unsubscribed", now=NOW).stdout
    )

    sent = run_cli(config, "send", "daily", now=NEXT_DAY)
    assert "1 sent" in sent.stdout
    second = [m for m in _mails(outbox, "daily-2026-11-29-*.eml")]
    assert [_to(m) for m in second] == ["stays@example.org"]
    store = Store.open(f"sqlite:///{tmp_path / 'publisher.db'}")
    [issue] = [i for i in store.list_issues() if i.period == "2026-11-29"]
    counts = store.delivery_counts(issue.id)
    store.close()
    assert counts["sent"] == 1 and counts["skipped"] == 1 and counts["queued"] == 0


def test_import_pending_sends_confirmations_and_reports_bad_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run_cli(config, "subscribers", "add", "known@example.org", now=NOW)
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text(
        "email,name,digests,tags\nnew@example.org,New,daily,research\nbroken@,X,,\n"
        "known@example.org,Known,,\nother@example.org,,nosuch,\n",
        encoding="utf-8",
    )
    result = run_cli(
        config, "subscribers", "import", "--pending", str(csv_file), now=NOW, check=False
    )
    assert result.returncode == 1
    assert "imported 1 pending (confirmation sent), 1 already present, 2 rejected" in result.stdout
    assert "subs.csv:3:" in result.stderr and "subs.csv:5:" in result.stderr
    [mail] = _mails(tmp_path / "outbox", "confirm-*.eml")
    assert _to(mail) == "new@example.org" and "/confirm/" in mail.get_body(("plain",)).get_content()
    listing = run_cli(config, "subscribers", "list", "--status", "pending", now=NOW).stdout
    assert "new@example.org" in listing and "known@example.org" not in listing
    helptext = run_cli(config, "subscribers", "import", "--help").stdout
    assert "--pending" in helptext and "confirmation" in helptext


def test_erased_addresses_are_not_imported_again(tmp_path: Path) -> None:
    from publisher.app import open_app
    from publisher.compose import subscriptions

    config_path = write_config(tmp_path)
    run_cli(config_path, "subscribers", "add", "gone@example.org", now=NOW)
    app = open_app(config_module.load(config_path))
    sub = app.store.find_subscriber("gone@example.org")
    assert app.store.erase_subscriber(sub.id, subscriptions.email_hash(sub.email), app.clock())
    app.store.close()
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text("email\nGone@example.org\n", encoding="utf-8")
    result = run_cli(config_path, "subscribers", "import", str(csv_file), now=NOW, check=False)
    assert result.returncode == 1 and "subs.csv:2:" in result.stderr and "erased" in result.stderr
    assert "gone@example.org" not in run_cli(config_path, "subscribers", "export", now=NOW).stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_body_bytes = 100", "must be 1024 to 10485760 bytes"),
        ("max_body_bytes = 99999999", "must be 1024 to 10485760 bytes"),
        ('rate_window = "soon"', "is not a duration"),
        ('rate_window = "0"', "must be at least 1s"),
        ("subscribe_per_ip = 0", "must be at least 1"),
        ("subscribe_per_address = -1", "must be at least 1"),
        ('subscribe_per_ip = "ten"', "expected a whole number"),
        ('trusted_proxies = ["10.0.0.300"]', "is not an IP address or network"),
    ],
)  # fmt: skip
def test_bad_web_values_name_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = write_config(tmp_path, extra=line + "\n")
    with pytest.raises(ConfigError) as info:
        config_module.load(path)
    text = str(info.value)
    key = line.split(" ", 1)[0]
    number = path.read_text(encoding="utf-8").splitlines().index(line) + 1
    assert text.startswith(f"config.toml:{number}: web.{key}") and message in text
    assert "\n" not in text


def test_web_settings_load_and_every_web_key_is_documented(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        extra='max_body_bytes = 2048\nrate_window = "15m"\nsubscribe_per_ip = 5\nsubscribe_per_address = 2\n',
    )
    web = config_module.load(path).web
    assert (
        web.max_body_bytes,
        web.rate_window,
        web.subscribe_per_ip,
        web.subscribe_per_address,
    ) == (
        2048,
        "15m",
        5,
        2,
    )
    shipped = (REPO / "config.toml").read_text(encoding="utf-8")
    section = shipped.split("\n[web]", 1)[1].split("\n[", 1)[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `[web]")]
    for f in dataclasses.fields(config_module.WebConfig):
        assert re.search(rf"^#? ?{f.name} = .*#", section, re.M), f"config.toml: {f.name}"
        assert any(f"`{f.name}`" in row or f" {f.name}`" in row for row in rows), (
            f"README: {f.name}"
        )
    config_module.load(REPO / "config.toml")
