"""The subscribers' web side in process: every route through httpx against the ASGI app.

Real components throughout: a SQLite file under tmp_path, the file transport writing
.eml files that are read back with the email parser, tokens signed with the test secret.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx (installed) works the same.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from publisher.app import open_app
from publisher.compose import subscriptions
from publisher.compose.links import make_token
from publisher.config import load
from publisher.services import collecting, sending
from publisher.web import create_app
from tests.conftest import write_config

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
SECRET = "test-secret"
DIGESTS = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "America/New_York"\n\n'
    '[[digests]]\nid = "weekly"\ntitle = "Research Weekly"\nschedule = "0 8 * * mon"\n'
    'timezone = "Europe/Paris"\ntags = ["research"]\n'
)


class Site:
    """A configured site with its App (fixed clock) and an in-process HTTP client."""

    def __init__(self, folder: Path, web: str = "") -> None:
        path = write_config(folder, digests=DIGESTS, extra=web)
        self.folder = folder
        self.config = load(path)
        self.app = open_app(self.config, clock=lambda: self.now)
        self.now = NOW
        self.client = TestClient(create_app(self.config, app=self.app))

    @property
    def outbox(self) -> Path:
        return self.config.delivery.outbox_dir

    def mails(self) -> list[EmailMessage]:
        files = sorted(self.outbox.glob("confirm-*.eml")) if self.outbox.exists() else []
        return [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]  # type: ignore[misc]

    def form_csrf(self, html: str) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', html)
        assert match, html
        return match.group(1)

    def subscribe(self, email: str, **fields: object) -> object:
        page = self.client.get("/subscribe")
        data = {"csrf": self.form_csrf(page.text), "email": email, "name": "", "website": ""}
        data.update(fields)  # type: ignore[arg-type]
        return self.client.post("/subscribe", data=data)

    def token(
        self, purpose: str, subscriber_id: int, digest: str = "", at: datetime | None = None
    ) -> str:
        return make_token(SECRET, purpose, subscriber_id, digest, at or self.now)

    def confirm_link(self, message: EmailMessage) -> str:
        text = message.get_body(("plain",)).get_content()
        match = re.search(r"https://news\.example\.org/mail(/confirm/\S+)", text)
        assert match, text
        return match.group(1)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("PUBLISHER_TEST_SECRET", SECRET)
    made = Site(tmp_path)
    yield made
    made.client.close()
    made.app.store.close()


def test_subscribe_form_is_csrf_protected_has_a_honeypot_and_security_headers(site: Site) -> None:
    page = site.client.get("/subscribe")
    assert page.status_code == 200
    assert "<script" not in page.text and "style=" not in page.text  # nothing inline (CSP)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    cookie = site.client.cookies["publisher_csrf"]
    assert site.form_csrf(page.text) == cookie
    assert 'name="website"' in page.text and 'class="hp"' in page.text
    assert 'value="daily"' in page.text and 'value="weekly"' in page.text
    assert 'value="research"' in page.text  # a digest's tag is a topic choice
    css = site.client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert site.client.get("/", follow_redirects=False).headers["location"] == "subscribe"


def test_double_opt_in_confirms_only_on_post(site: Site) -> None:
    answer = site.subscribe(
        "Ana@Example.org", name="Ana", digest=["daily", "weekly"], tag=["research"]
    )
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    sub = site.app.store.find_subscriber("ana@example.org")
    assert sub is not None and sub.status == "pending" and sub.digests == ()
    [mail] = site.mails()
    assert mail["To"].addresses[0].addr_spec == "ana@example.org"
    assert mail["Subject"] == "Confirm your subscription to Pleura Health News"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert (
        mail.defects == []
        and b"\r\n" in (site.outbox / next(site.outbox.glob("confirm-*.eml")).name).read_bytes()
    )
    html = mail.get_body(("html",)).get_content()
    link = site.confirm_link(mail)
    assert f"https://news.example.org/mail{link}" in html

    # A link scanner that only GETs confirms nobody.
    for _ in range(2):
        page = site.client.get(link)
        assert page.status_code == 200 and 'method="post"' in page.text
        assert "Pleura Daily" in page.text and "a**@example.org" in page.text
    assert site.app.store.find_subscriber("ana@example.org").status == "pending"

    done = site.client.post(link)
    assert done.status_code == 200 and "You are subscribed" in done.text
    sub = site.app.store.find_subscriber("ana@example.org")
    assert sub.status == "active" and sub.digests == ("daily", "weekly") and sub.name == "Ana"
    rows = site.app.store.subscription_rows(sub.id)
    assert [r["tags"] for r in rows] == [["research"], ["research"]]
    assert "/preferences/" in done.text
    again = site.client.post(link)
    assert again.status_code == 200 and "already subscribed" in again.text


def test_answers_do_not_tell_whether_an_address_is_known(site: Site) -> None:
    site.app.store.add_subscriber("known@example.org", "K", ["daily"], NOW)
    site.app.store.add_subscriber("left@example.org", "L", ["daily"], NOW)
    site.app.store.set_subscriber_status("left@example.org", "unsubscribed", NOW)
    bodies = set()
    for address in ("new@example.org", "known@example.org", "left@example.org"):
        answer = site.subscribe(address, digest="daily")
        assert answer.status_code == 200
        bodies.add(answer.text)
    assert len(bodies) == 1
    assert len(site.mails()) == 3
    # Re-subscribing an address that left needs a new confirmation.
    left = site.app.store.find_subscriber("left@example.org")
    assert left.status == "unsubscribed"
    [mail] = [m for m in site.mails() if "left@" in str(m["To"])]
    site.client.post(site.confirm_link(mail))
    assert site.app.store.find_subscriber("left@example.org").status == "active"


def test_only_the_newest_confirmation_link_works(site: Site) -> None:
    site.subscribe("bo@example.org", digest="daily")
    site.subscribe("bo@example.org", digest="weekly")
    mails = site.mails()
    [old] = [m for m in mails if "Pleura Daily" in m.get_body(("plain",)).get_content()]
    [new] = [m for m in mails if "Research Weekly" in m.get_body(("plain",)).get_content()]
    stale = site.client.post(site.confirm_link(old))
    assert stale.status_code == 400 and "replaced by a newer one" in stale.text
    assert site.client.post(site.confirm_link(new)).status_code == 200
    assert site.app.store.find_subscriber("bo@example.org").digests == ("weekly",)


def test_missing_or_forged_csrf_token_is_refused(site: Site) -> None:
    site.client.get("/subscribe")
    forged = subscriptions.make_csrf("another-secret", "nonce", NOW)
    for token in ("", forged, "garbage"):
        answer = site.client.post(
            "/subscribe", data={"csrf": token, "email": "x@example.org", "digest": "daily"}
        )
        assert answer.status_code == 400 and "form expired" in answer.text
    # A valid token in the form but not in the cookie (a cross-site post) is refused too.
    other = TestClient(create_app(site.config, app=site.app))
    token = site.form_csrf(site.client.get("/subscribe").text)
    answer = other.post(
        "/subscribe", data={"csrf": token, "email": "x@example.org", "digest": "daily"}
    )
    assert answer.status_code == 400
    assert site.app.store.find_subscriber("x@example.org") is None and site.mails() == []


def test_honeypot_answers_the_same_and_records_nothing(site: Site) -> None:
    answer = site.subscribe("bot@example.org", digest="daily", website="http://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert site.app.store.find_subscriber("bot@example.org") is None and site.mails() == []


def test_invalid_input_is_refused_and_escaped(site: Site) -> None:
    answer = site.subscribe(
        "<script>alert(1)</script>@x", name='"><img src=x onerror=alert(1)>', digest="daily"
    )
    assert answer.status_code == 400
    assert "<script>alert(1)" not in answer.text and "&lt;script&gt;" in answer.text
    assert "<img src=x" not in answer.text
    assert "not a valid email address" in answer.text
    none = site.subscribe("ok@example.org")
    assert none.status_code == 400 and "choose at least one newsletter" in none.text
    unknown = site.subscribe("ok@example.org", digest="nope")
    assert unknown.status_code == 400 and "unknown newsletter" in unknown.text
    assert site.mails() == []


def test_rate_limits_per_ip_and_per_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_TEST_SECRET", SECRET)
    site = Site(tmp_path, "subscribe_per_ip = 4\nsubscribe_per_address = 1\n")
    try:
        assert site.subscribe("same@example.org", digest="daily").status_code == 200
        second = site.subscribe("same@example.org", digest="daily")
        assert second.status_code == 200 and "Check your inbox" in second.text
        assert len(site.mails()) == 1  # the address limit drops the second email silently
        assert site.subscribe("other@example.org", digest="daily").status_code == 200
        assert site.subscribe("third@example.org", digest="daily").status_code == 200
        limited = site.subscribe("fourth@example.org", digest="daily")
        assert limited.status_code == 429 and "Too many" in limited.text
        assert site.app.store.find_subscriber("fourth@example.org") is None
    finally:
        site.client.close()
        site.app.store.close()


def _active(
    site: Site, email: str = "ana@example.org", digests: tuple[str, ...] = ("daily", "weekly")
) -> int:
    sub, _ = site.app.store.add_subscriber(email, "Ana", list(digests), NOW)
    return sub.id


@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe", "preferences"])
def test_forged_expired_and_wrong_purpose_tokens_get_a_friendly_page(
    site: Site, purpose: str
) -> None:
    sub_id = _active(site)
    good = site.token(purpose, sub_id, "daily" if purpose == "unsubscribe" else "")
    payload, _, mac = good.partition(".")
    forged = make_token("wrong-secret", purpose, sub_id, "", NOW)
    tampered = f"{payload[:-2]}AA.{mac}"
    wrong = site.token("preferences" if purpose != "preferences" else "unsubscribe", sub_id)
    bad = [forged, tampered, wrong, "x", "a.b", "%00"]
    if purpose == "confirm":
        bad.append(site.token("confirm", sub_id, "nonce", NOW - timedelta(days=8)))
    for token in bad:
        for method in ("get", "post"):
            answer = getattr(site.client, method)(f"/{purpose}/{token}")
            assert answer.status_code == 400, (token, method, answer.text)
            assert "This link does not work" in answer.text and "Traceback" not in answer.text
            assert answer.headers["content-type"].startswith("text/html")
    assert site.app.store.find_subscriber("ana@example.org").status == "active"
    unknown = site.client.get(f"/{purpose}/{site.token(purpose, 999)}")
    assert unknown.status_code == 404 and "Traceback" not in unknown.text


def test_unsubscribe_page_never_unsubscribes_on_get(site: Site) -> None:
    sub_id = _active(site)
    url = f"/unsubscribe/{site.token('unsubscribe', sub_id, 'daily')}"
    for _ in range(3):
        page = site.client.get(url)
        assert page.status_code == 200
        assert (
            "Unsubscribe from Pleura Daily" in page.text
            and "Unsubscribe from everything" in page.text
        )
    assert site.app.store.find_subscriber("ana@example.org").status == "active"

    only = site.client.post(url, data={"scope": "digest"})
    assert only.status_code == 200 and "no more Pleura Daily" in only.text
    sub = site.app.store.find_subscriber("ana@example.org")
    assert sub.status == "active" and sub.digests == ("weekly",)
    everything = site.client.post(url, data={"scope": "all"})
    assert everything.status_code == 200 and "no more email" in everything.text
    assert site.app.store.find_subscriber("ana@example.org").status == "unsubscribed"
    assert "You are unsubscribed" in site.client.get(url).text


def _queue_issue(site: Site) -> int:
    collecting.collect(site.app)
    [report] = sending.send_digest(site.app, "daily", queue_only=True)
    assert report.issue is not None and report.planned >= 1
    return report.issue.id


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_is_immediate_idempotent_and_stops_queued_mail(
    site: Site, encoding: str
) -> None:
    sub_id = _active(site)
    _active(site, "bo@example.org", ("daily",))
    issue_id = _queue_issue(site)
    url = f"/unsubscribe/{site.token('unsubscribe', sub_id, 'daily')}"
    fresh = TestClient(create_app(site.config, app=site.app), follow_redirects=False)
    for _ in range(2):
        if encoding == "multipart":
            answer = fresh.post(url, files={"List-Unsubscribe": (None, "One-Click")})
        else:
            answer = fresh.post(
                url,
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        assert answer.status_code == 200 and answer.text == "unsubscribed\n"
        assert "set-cookie" not in answer.headers and "location" not in answer.headers
    # One click leaves the list the message came from (its List-Id): daily, not weekly.
    ana = site.app.store.find_subscriber("ana@example.org")
    assert ana.status == "active" and ana.digests == ("weekly",)
    counts = site.app.store.delivery_counts(issue_id)
    assert counts["skipped"] == 1 and counts["queued"] == 1
    claimed = site.app.store.claim_batch(issue_id, "w", NOW, 10, 60)
    assert [r.email for r in claimed] == ["bo@example.org"]


def test_preferences_change_digests_frequency_tags_and_name(site: Site) -> None:
    collecting.collect(site.app)
    sub_id = _active(site)
    url = f"/preferences/{site.token('preferences', sub_id)}"
    page = site.client.get(url)
    assert page.status_code == 200 and "a**@example.org" in page.text
    assert 'value="daily" checked' in page.text and 'value="every" checked' in page.text
    assert 'value="immunotherapy"' in page.text  # stored articles' tags are topics
    csrf = site.form_csrf(page.text)
    saved = site.client.post(
        url,
        data={
            "csrf": csrf,
            "name": "Ana <b>B</b>",
            "digest": "daily",
            "frequency": "weekly",
            "tag": ["research", "surgery"],
        },
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    assert "Ana &lt;b&gt;B&lt;/b&gt;" in saved.text
    sub = site.app.store.find_subscriber("ana@example.org")
    assert sub.name == "Ana <b>B</b>" and sub.digests == ("daily",)
    [row] = site.app.store.subscription_rows(sub_id)
    assert row["frequency"] == "weekly" and row["tags"] == ["research", "surgery"]

    refused = site.client.post(url, data={"csrf": "bad", "name": "X", "digest": "weekly"})
    assert (
        refused.status_code == 400 and site.app.store.find_subscriber("ana@example.org").name != "X"
    )
    bad = site.client.post(url, data={"csrf": csrf, "digest": "daily", "frequency": "hourly"})
    assert bad.status_code == 400 and "choose one of" in bad.text

    none = site.client.post(url, data={"csrf": csrf, "name": "Ana"})
    assert none.status_code == 200 and "unsubscribed from everything" in none.text
    assert site.app.store.find_subscriber("ana@example.org").status == "unsubscribed"
    # Someone who left cannot be re-subscribed through a (perhaps forwarded) settings link.
    site.client.post(url, data={"csrf": csrf, "name": "Ana", "digest": "daily"})
    assert site.app.store.find_subscriber("ana@example.org").status == "unsubscribed"
    assert "sign-up form" in site.client.get(url).text


def test_preferences_export_and_erasure(site: Site) -> None:
    sub_id = _active(site)
    url = f"/preferences/{site.token('preferences', sub_id)}"
    exported = site.client.get(f"{url}/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith(
        "application/json"
    )
    assert "attachment" in exported.headers["content-disposition"]
    document = json.loads(exported.text)
    assert document["email"] == "ana@example.org"
    assert [s["digest_id"] for s in document["subscriptions"]] == ["daily", "weekly"]

    csrf = site.form_csrf(site.client.get(url).text)
    unticked = site.client.post(f"{url}/delete", data={"csrf": csrf})
    assert unticked.status_code == 400 and site.app.store.find_subscriber("ana@example.org")
    erased = site.client.post(f"{url}/delete", data={"csrf": csrf, "confirm": "yes"})
    assert erased.status_code == 200 and "deleted" in erased.text
    assert site.app.store.find_subscriber("ana@example.org") is None
    row = site.app.store.subscriber_by_id(sub_id)
    assert row.status == "erased" and row.name == "" and row.digests == ()
    assert "ana@example.org" not in row.email
    assert site.app.store.is_suppressed(subscriptions.email_hash("Ana@Example.org"))
    assert site.client.get(url).status_code == 404
    # Signing up again on purpose (double opt-in) lifts the suppression.
    site.subscribe("ana@example.org", digest="daily")
    [mail] = site.mails()
    site.client.post(site.confirm_link(mail))
    assert site.app.store.find_subscriber("ana@example.org").status == "active"
    assert not site.app.store.is_suppressed(subscriptions.email_hash("ana@example.org"))


def test_body_cap_unknown_pages_and_archive(site: Site) -> None:
    big = site.client.post(
        "/subscribe",
        content=b"x" * 20000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413 and big.headers["x-content-type-options"] == "nosniff"
    missing = site.client.get("/no/such/page")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    wrong = site.client.put("/subscribe", content=b"")
    assert wrong.status_code == 405 and "Traceback" not in wrong.text
    archive = site.config.web.archive_dir
    (archive / "daily").mkdir(parents=True)
    (archive / "index.html").write_text("<!DOCTYPE html><p>issues</p>", encoding="utf-8")
    (archive / "daily" / "2026-11-28.html").write_text("<p>issue</p>", encoding="utf-8")
    index = site.client.get("/archive/")
    assert index.status_code == 200 and "issues" in index.text
    assert "script" not in index.headers["content-security-policy"]
    assert site.client.get("/archive/daily/2026-11-28.html").status_code == 200
    # Traversal (raw paths, symlinks) out of /archive/ is in test_web_traversal.py.
