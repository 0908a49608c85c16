"""Signed links end to end, with no secret in the environment, through the real server.

``publisher send`` signs each message's unsubscribe and preferences links; ``publisher
serve`` checks them. With ``[web] secret_env`` naming a variable that is not set, both
processes must use the secret generated into the store on first use, and agree on it.
Unsubscribe links never expire: a link from an issue sent years ago still works.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from publisher.compose.links import TokenError, read_token
from tests.conftest import free_port, run_cli, serving, write_config

# [web] secret_env is left out, so its default PUBLISHER_SECRET applies; neither it nor
# the test suite's usual variable is set (run_cli sets that one; empty means "not set").
NO_SECRET = {"PUBLISHER_SECRET": "", "PUBLISHER_TEST_SECRET": ""}


@dataclass
class Site:
    folder: Path
    config: Path
    url: str


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (*NO_SECRET, "PUBLISHER_NOW")}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A config whose base_url is a real ``publisher serve``, started with no secret set."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path)
    text = config.read_text().replace('secret_env = "PUBLISHER_TEST_SECRET"\n', "")
    assert "secret_env" not in text
    config.write_text(
        text.replace('base_url = "https://news.example.org/mail"', f'base_url = "{url}"')
    )
    yield Site(tmp_path, config, url)


@pytest.fixture
def serve(site: Site) -> Iterator[None]:
    with serving(site.config, int(site.url.rsplit(":", 1)[1]), _env()):
        yield


def _issue_mail(folder: Path, address: str) -> EmailMessage:
    [path] = [
        p for p in sorted((folder / "outbox").glob("daily-*.eml")) if address in p.read_text()
    ]
    return message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[return-value]


def _stored_secret(folder: Path) -> str | None:
    with closing(sqlite3.connect(folder / "publisher.db")) as conn:
        row = conn.execute("SELECT value FROM settings WHERE key = 'signing_secret'").fetchone()
    return row[0] if row else None


def _status(site: Site, address: str) -> str:
    listing = run_cli(site.config, "subscribers", "list", env=NO_SECRET).stdout
    [line] = [line for line in listing.splitlines() if address in line]
    return line


def test_links_signed_with_the_generated_secret_are_honoured_by_serve(
    site: Site, serve: None
) -> None:
    (site.folder / "subs.csv").write_text("email\nana@example.org\nben@example.org\n")
    run_cli(site.config, "subscribers", "import", "subs.csv", env=NO_SECRET)
    run_cli(site.config, "run", "--once", env=NO_SECRET)  # collect, feeds, send

    secret = _stored_secret(site.folder)
    assert secret and len(secret) >= 32  # generated into the store on first use
    mail = _issue_mail(site.folder, "ana@example.org")
    unsubscribe = str(mail["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith(f"{site.url}/unsubscribe/")
    token = unsubscribe.rsplit("/", 1)[1]
    now = datetime.now(UTC)
    read_token(secret, token, "unsubscribe", now)  # signed with the store's secret ...
    with pytest.raises(TokenError):
        read_token("test-secret", token, "unsubscribe", now)  # ... not the usual test one
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    preferences = re.search(rf'href="({re.escape(site.url)}/preferences/[^"]+)"', html)
    assert preferences, html

    with httpx.Client(timeout=10) as client:
        page = client.get(preferences.group(1))
        assert page.status_code == 200 and "Your subscription" in page.text
        forged = client.get(preferences.group(1)[:-2] + "AA")
        assert forged.status_code == 400
        answer = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200 and answer.text == "unsubscribed\n"
    assert "unsubscribed" in _status(site, "ana@example.org")
    assert "active" in _status(site, "ben@example.org")
    assert _stored_secret(site.folder) == secret  # one secret, kept


def test_an_unsubscribe_link_from_years_ago_still_works(site: Site, serve: None) -> None:
    long_ago = "2023-03-14T15:00:00+00:00"
    run_cli(
        site.config, "subscribers", "add", "old.reader@example.org", now=long_ago, env=NO_SECRET
    )
    run_cli(site.config, "run", "--once", now=long_ago, env=NO_SECRET)
    mail = _issue_mail(site.folder, "old.reader@example.org")
    unsubscribe = str(mail["List-Unsubscribe"]).strip("<>")
    token = unsubscribe.rsplit("/", 1)[1]
    secret = _stored_secret(site.folder)
    assert secret is not None
    issued = read_token(secret, token, "unsubscribe", datetime.now(UTC)).issued_at
    assert (datetime.now(UTC) - issued).days > 365  # the link really is old

    # The server runs on today's clock; the page and the one-click POST both honour it.
    with httpx.Client(timeout=10) as client:
        page = client.get(unsubscribe)
        assert page.status_code == 200 and "Unsubscribe" in page.text
        answer = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200 and answer.text == "unsubscribed\n"
    assert "unsubscribed" in _status(site, "old.reader@example.org")
