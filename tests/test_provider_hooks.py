"""Provider webhooks through the real server: SES via SNS (signed with a local key and a
certificate served from a local URL that the config allow-lists), Postmark, SendGrid and
Mailgun, each in its documented JSON shape; and ARF complaint reports via ``bounces import``.

``publisher serve`` runs as a subprocess; the issue is really sent (file transport), so
each event names its message by the Message-ID read back from the outbox.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from publisher.compose.subscriptions import email_hash
from publisher.store import Store
from tests.conftest import REPO, free_port, run_cli
from tests.test_web_server import Served, start_server

NOW = "2026-11-28T15:00:00+00:00"
DATA = Path(__file__).parent / "data" / "arf"
PEOPLE = ["ana", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon"]
POSTMARK_USER, POSTMARK_PASSWORD = "postmark-hooks", "pm-secret-0f3a"
MAILGUN_KEY = "key-mailgun-signing-7c1d"


@dataclass
class Cert:
    """A local 'SNS': serves the signing certificate and records subscription confirmations."""

    url: str
    key: rsa.RSAPrivateKey
    confirmations: list[str] = field(default_factory=list)


@pytest.fixture
def sns() -> Iterator[Cert]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM)
    record = Cert("", key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.startswith("/confirm"):
                record.confirmations.append(self.path)
                body = b"<ConfirmSubscriptionResponse/>"
            elif self.path == "/SimpleNotificationService.pem":
                body = pem
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    record.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


@dataclass
class Site:
    served: Served
    ids: dict[str, str]  # address -> the Message-ID of the issue sent to it
    sendgrid_key: ec.EllipticCurvePrivateKey
    sns: Cert

    def store(self) -> Store:
        return Store.open(f"sqlite:///{self.served.config.parent / 'publisher.db'}")

    def post(self, provider: str, body: bytes, **headers: str) -> httpx.Response:
        return httpx.post(f"{self.served.url}/hooks/{provider}", content=body,
                          headers={"Content-Type": "application/json", **headers}, timeout=20)  # fmt: skip


def _hooks(cert_host: str) -> str:
    return f"""
[hooks.ses]
enabled = true
cert_hosts = ["{cert_host}"]
topic_arns = ["arn:aws:sns:eu-west-1:123456789012:ses-feedback"]

[hooks.postmark]
enabled = true
username_env = "TEST_PM_USER"
password_env = "TEST_PM_PASSWORD"

[hooks.sendgrid]
enabled = true
public_key_env = "TEST_SG_KEY"

[hooks.mailgun]
enabled = true
signing_key_env = "TEST_MG_KEY"
max_age = "5m"
"""


@pytest.fixture
def site(tmp_path: Path, sns: Cert, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    sendgrid_key = ec.generate_private_key(ec.SECP256R1())
    der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("TEST_PM_USER", POSTMARK_USER)
    monkeypatch.setenv("TEST_PM_PASSWORD", POSTMARK_PASSWORD)
    monkeypatch.setenv("TEST_SG_KEY", base64.b64encode(der).decode())
    monkeypatch.setenv("TEST_MG_KEY", MAILGUN_KEY)
    host = sns.url.split("://", 1)[1]
    with contextlib.contextmanager(start_server)(tmp_path, NOW, _hooks(host)) as served:
        csv = tmp_path / "people.csv"
        csv.write_text("email\n" + "".join(f"{p}@example.org\n" for p in PEOPLE), encoding="utf-8")
        run_cli(served.config, "subscribers", "import", str(csv), now=NOW)
        run_cli(served.config, "collect", now=NOW)
        run_cli(served.config, "send", "daily", now=NOW)
        ids = {}
        for path in (tmp_path / "outbox").glob("daily-*.eml"):
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            ids[mail["To"].addresses[0].addr_spec] = str(mail["Message-ID"])
        assert len(ids) == len(PEOPLE)
        yield Site(served, ids, sendgrid_key, sns)


def _status(site: Site, name: str) -> str:
    store = site.store()
    try:
        sub = store.find_subscriber(f"{name}@example.org")
        assert sub is not None
        return sub.status
    finally:
        store.close()


def _complained(site: Site, name: str) -> bool:
    """Unsubscribed, suppressed as a complaint, and the change recorded as a complaint."""
    store = site.store()
    try:
        sub = store.find_subscriber(f"{name}@example.org")
        suppression = store.suppression(email_hash(f"{name}@example.org"))
        assert sub is not None
        sources = [e["source"] for e in store.subscriber_events_of(sub.id)]
        return (sub.status == "unsubscribed" and suppression is not None
                and suppression.reason == "complaint" and "complaint" in sources)  # fmt: skip
    finally:
        store.close()


def _events(site: Site, name: str) -> list:
    store = site.store()
    try:
        return store.provider_events_of(f"{name}@example.org")
    finally:
        store.close()


# --- Amazon SES through SNS -------------------------------------------------------------


def _sns(site: Site, kind: str, fields: dict[str, str], version: str = "1") -> bytes:
    message = {
        "Type": kind, "MessageId": fields.pop("MessageId", "a1b2c3d4-0000-4a5b-9c8d-0123456789ab"),
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
        "Timestamp": "2026-11-28T15:00:01.000Z", "SignatureVersion": version,
        "SigningCertURL": f"{site.sns.url}/SimpleNotificationService.pem", **fields,
    }  # fmt: skip
    order = (("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
             if kind == "Notification" else
             ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"))  # fmt: skip
    text = "".join(f"{k}\n{message[k]}\n" for k in order if k in message)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = site.sns.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    message["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(message).encode()


def _ses_bounce(site: Site, email: str, bounce_type: str, status: str) -> str:
    return json.dumps({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": status,
                                   "diagnosticCode": f"smtp; 550 {status} user unknown"}],
            "timestamp": "2026-11-28T15:00:00.000Z",
            "feedbackId": f"0100017c-{email.split('@')[0]}-bounce", "remoteMtaIp": "192.0.2.1",
        },
        "mail": {
            "timestamp": "2026-11-28T14:59:58.000Z", "messageId": "0100017c-ses-id",
            "source": "newsletter@news.example.org", "destination": [email],
            "headersTruncated": False,
            "headers": [{"name": "Message-ID", "value": site.ids[email]}],
            "commonHeaders": {"messageId": site.ids[email], "subject": "Pleura Daily"},
        },
    })  # fmt: skip


def test_ses_subscription_bounce_complaint_and_redelivery(site: Site) -> None:
    confirm = _sns(site, "SubscriptionConfirmation", {
        "Token": "2336412f37f", "Message": "You have chosen to subscribe to the topic ...",
        "SubscribeURL": f"{site.sns.url}/confirm?Action=ConfirmSubscription&Token=2336412f37f",
    })  # fmt: skip
    assert site.post("ses", confirm).status_code == 200
    assert site.sns.confirmations == ["/confirm?Action=ConfirmSubscription&Token=2336412f37f"]

    bounce = _sns(site, "Notification", {
        "Message": _ses_bounce(site, "ana@example.org", "Permanent", "5.1.1"),
    })  # fmt: skip
    first = site.post("ses", bounce)
    assert first.status_code == 200 and first.json()["outcomes"] == {"bounced": 1}
    assert _status(site, "ana") == "bounced"
    again = site.post("ses", bounce)  # SNS retries: stored once, nothing done twice
    assert again.json()["outcomes"] == {"duplicate": 1}
    [event] = _events(site, "ana")
    assert (event.provider, event.kind, event.issue_id, event.status) == ("ses", "bounce", 1, "5.1.1")

    transient = _sns(site, "Notification", {  # SignatureVersion 2: SHA256
        "MessageId": "b2", "Message": _ses_bounce(site, "bob@example.org", "Transient", "4.2.2"),
    }, version="2")  # fmt: skip
    assert site.post("ses", transient).json()["outcomes"] == {"counted": 1}
    assert _status(site, "bob") == "active"

    complaint = json.dumps({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "cat@example.org"}],
                      "timestamp": "2026-11-28T15:00:00.000Z", "feedbackId": "0100017c-cat-c",
                      "complaintFeedbackType": "abuse", "userAgent": "Yahoo!-Mail-Feedback/2.0"},
        "mail": {"messageId": "0100017c-ses-id", "headers": [],
                 "commonHeaders": {"messageId": site.ids["cat@example.org"]}},
    })  # fmt: skip
    assert site.post("ses", _sns(site, "Notification", {"MessageId": "c3", "Message": complaint},
                                 version="2")).json()["outcomes"] == {"complained": 1}  # fmt: skip
    assert _complained(site, "cat")


def test_ses_refuses_bad_signatures_foreign_certificates_and_topics(site: Site) -> None:
    body = json.loads(_sns(site, "Notification", {
        "Message": _ses_bounce(site, "dan@example.org", "Permanent", "5.1.1")}))  # fmt: skip
    tampered = {**body, "Message": body["Message"].replace("dan@", "eve@")}
    assert site.post("ses", json.dumps(tampered).encode()).status_code == 403
    elsewhere = {**body, "SigningCertURL": "https://attacker.example/SimpleNotificationService.pem"}
    refused = site.post("ses", json.dumps(elsewhere).encode())
    assert refused.status_code == 403 and "not allowed" in refused.json()["error"]
    topic = {**body, "TopicArn": "arn:aws:sns:eu-west-1:999999999999:other"}
    assert site.post("ses", json.dumps(topic).encode()).status_code == 403
    assert site.post("ses", b"not json").status_code == 400
    assert _status(site, "dan") == "active" and _status(site, "eve") == "active"
    assert site.post("nosuch", b"{}").status_code == 404


# --- Postmark ---------------------------------------------------------------------------


def _postmark(record_id: int, email: str, kind: str, record: str = "Bounce") -> bytes:
    return json.dumps({
        "RecordType": record, "MessageStream": "outbound", "ID": record_id, "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 512, "Name": "Hard bounce", "Tag": "daily",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Metadata": {},
        "ServerID": 23, "Description": "The server was unable to deliver your message",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Email": email, "From": "newsletter@news.example.org",
        "BouncedAt": "2026-11-28T15:00:00.9070259Z", "DumpAvailable": False,
        "Inactive": True, "CanActivate": True, "Subject": "Pleura Daily",
    }).encode()  # fmt: skip


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_postmark_basic_auth_bounce_and_spam_complaint(site: Site) -> None:
    bounce = _postmark(4323372036854775807, "dan@example.org", "HardBounce")
    assert site.post("postmark", bounce).status_code == 403
    assert site.post("postmark", bounce,
                     Authorization=_basic(POSTMARK_USER, "wrong")).status_code == 403  # fmt: skip
    assert _status(site, "dan") == "active"
    auth = _basic(POSTMARK_USER, POSTMARK_PASSWORD)
    assert site.post("postmark", bounce, Authorization=auth).json()["outcomes"] == {"bounced": 1}
    assert site.post("postmark", bounce, Authorization=auth).json()["outcomes"] == {"duplicate": 1}
    assert _status(site, "dan") == "bounced"
    [event] = _events(site, "dan")
    assert event.issue_id == 1  # no Message-ID from Postmark: the last issue sent to them
    spam = _postmark(4323372036854775808, "eve@example.org", "SpamComplaint", "SpamComplaint")
    assert site.post("postmark", spam, Authorization=auth).json()["outcomes"] == {"complained": 1}
    assert _complained(site, "eve")
    auto = _postmark(4323372036854775809, "fay@example.org", "AutoResponder")
    assert site.post("postmark", auto, Authorization=auth).json()["received"] == 0


# --- SendGrid ---------------------------------------------------------------------------


def test_sendgrid_signed_batch(site: Site) -> None:
    ts = str(int(time.time()))
    batch = json.dumps([
        {"email": "gus@example.org", "timestamp": int(time.time()), "smtp-id": site.ids["gus@example.org"],
         "event": "bounce", "category": ["daily"], "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
         "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
         "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
        {"email": "hal@example.org", "timestamp": int(time.time()), "smtp-id": site.ids["hal@example.org"],
         "event": "spamreport", "sg_event_id": "37nvH5QBz858KGVYCM4uOA==",
         "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1"},
        {"email": "ivy@example.org", "timestamp": int(time.time()), "event": "delivered",
         "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==", "response": "250 OK"},
    ]).encode()  # fmt: skip
    signature = site.sendgrid_key.sign(ts.encode() + batch, ec.ECDSA(hashes.SHA256()))
    headers = {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
               "X-Twilio-Email-Event-Webhook-Timestamp": ts}  # fmt: skip
    assert site.post("sendgrid", batch + b" ", **headers).status_code == 403  # body changed
    other = ec.generate_private_key(ec.SECP256R1()).sign(ts.encode() + batch, ec.ECDSA(hashes.SHA256()))
    forged = {**headers, "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(other).decode()}
    assert site.post("sendgrid", batch, **forged).status_code == 403
    assert _status(site, "gus") == "active"
    answer = site.post("sendgrid", batch, **headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"] == {"bounced": 1, "complained": 1}
    assert site.post("sendgrid", batch, **headers).json()["outcomes"] == {"duplicate": 2}
    assert _status(site, "gus") == "bounced" and _complained(site, "hal")
    assert [e.issue_id for e in _events(site, "gus")] == [1]


# --- Mailgun ----------------------------------------------------------------------------


def _mailgun(event: dict[str, object], timestamp: int, key: str = MAILGUN_KEY) -> bytes:
    token = hashlib.sha256(f"{timestamp}{event['id']}".encode()).hexdigest()[:50]
    sig = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": str(timestamp), "token": token,
                                     "signature": sig}, "event-data": event}).encode()  # fmt: skip


def test_mailgun_signed_failed_and_complained(site: Site) -> None:
    failed = {
        "id": "G9Bn5sl1TC6nu79C8C0bwg", "event": "failed", "severity": "permanent",
        "reason": "bounce", "timestamp": time.time(), "recipient": "ivy@example.org",
        "log-level": "error", "flags": {"is-routed": False},
        "message": {"headers": {"message-id": site.ids["ivy@example.org"].strip("<>"),
                                "from": "newsletter@news.example.org", "to": "ivy@example.org"}},
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1",
                            "message": "5.1.1 The email account does not exist",
                            "description": "", "attempt-no": 1},
    }  # fmt: skip
    now = int(time.time())
    assert site.post("mailgun", _mailgun(failed, now, key="wrong-key")).status_code == 403
    assert site.post("mailgun", _mailgun(failed, now - 3600)).status_code == 403  # too old
    assert _status(site, "ivy") == "active"
    assert site.post("mailgun", _mailgun(failed, now)).json()["outcomes"] == {"bounced": 1}
    assert site.post("mailgun", _mailgun(failed, now)).json()["outcomes"] == {"duplicate": 1}
    assert _status(site, "ivy") == "bounced"
    complained = {"id": "-Agny091SquKnsrW2NEKUA", "event": "complained", "timestamp": time.time(),
                  "recipient": "jon@example.org",
                  "message": {"headers": {"message-id": site.ids["jon@example.org"].strip("<>")}}}  # fmt: skip
    assert site.post("mailgun", _mailgun(complained, now)).json()["outcomes"] == {"complained": 1}
    assert _complained(site, "jon")
    # Erasure: the event stays (it is counted, and a redelivery is still known), the address goes.
    store = site.store()
    try:
        jon = store.find_subscriber("jon@example.org")
        assert jon is not None
        store.erase_subscriber(jon.id, email_hash("jon@example.org"), dt.datetime.now(dt.UTC))
        assert store.provider_events_of("jon@example.org") == []
        [kept] = store.provider_events_of(f"erased-{jon.id}@erased.invalid")
        assert kept.kind == "complaint" and kept.detail == ""
    finally:
        store.close()
    assert site.post("mailgun", _mailgun(complained, now)).json()["outcomes"] == {"duplicate": 1}


# --- ARF --------------------------------------------------------------------------------


def test_arf_reports_from_yahoo_and_a_generic_loop_are_complaints(site: Site) -> None:
    config = site.served.config
    result = run_cli(config, "bounces", "import", str(DATA), now=NOW, check=False)
    assert result.returncode != 0  # a folder that is not a Maildir: one clear line
    for name in ("yahoo-abuse.eml", "rfc5965-generic.eml"):
        out = run_cli(config, "bounces", "import", str(DATA / name), now=NOW).stdout
        assert "complaints 1 ARF spam complaint report(s)" in out
        assert "complaint " in out and "(unsubscribed and suppressed)" in out
        assert "0 subscriber(s) marked bounced" in out
    assert _complained(site, "eve") and _complained(site, "fay")
    [yahoo] = _events(site, "eve")
    assert (yahoo.provider, yahoo.issue_id, yahoo.status) == ("arf", 1, "abuse")
    assert yahoo.occurred_at == dt.datetime(2026, 11, 29, 9, 12, 41, tzinfo=dt.UTC)
    sent = dt.datetime.fromisoformat(NOW)
    store = site.store()
    try:  # the complaints that count against issue 1: within a week of its send
        assert store.issue_complaints(1, sent, sent + dt.timedelta(days=7)) == 2
        assert store.issue_complaints(1, sent + dt.timedelta(days=1), sent + dt.timedelta(days=7)) == 0
    finally:
        store.close()
    again = run_cli(config, "bounces", "import", str(DATA / "yahoo-abuse.eml"), now=NOW).stdout
    assert "1 already seen" in again
    assert len(_events(site, "eve")) == 1


def test_every_hooks_key_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shipped = (REPO / "config.toml").read_text(encoding="utf-8")
    for table, keys in {
        "hooks.ses": ("enabled", "topic_arns", "cert_hosts", "confirm_subscriptions"),
        "hooks.postmark": ("enabled", "username_env", "password_env"),
        "hooks.sendgrid": ("enabled", "public_key_env", "max_age"),
        "hooks.mailgun": ("enabled", "signing_key_env", "max_age"),
    }.items():
        assert f"# [{table}]" in shipped
        for key in keys:
            assert f"| `[{table}] {key}`" in readme or f"`[{table}] {key}`," in readme, (table, key)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('[hooks.postmark]\npassword_env = "hunter2 secret"\n', "hooks.postmark.password_env"),
        ('[hooks.mailgun]\nmax_age = "2d"\n', "hooks.mailgun.max_age: must be 1s to 1d"),
        ('[hooks.ses]\ncert_hosts = ["https://x/"]\n', "hooks.ses.cert_hosts"),
        ('[hooks.ses]\ntopic_arns = ["ses-feedback"]\n', "is not an SNS topic ARN"),
        ('[hooks.sendgrid]\npublic_key = "MFkw"\n', "unknown key 'public_key'"),
    ],
)
def test_hook_settings_are_checked_with_file_line_and_key(
    tmp_path: Path, table: str, problem: str
) -> None:
    from publisher.config import load
    from publisher.errors import ConfigError
    from tests.conftest import write_config

    config = write_config(tmp_path, extra=table)
    with pytest.raises(ConfigError) as info:
        load(config)
    assert str(info.value).startswith("config.toml:") and problem in str(info.value)


def test_no_route_without_an_enabled_provider(tmp_path: Path) -> None:
    from publisher.config import load
    from publisher.server import create_server
    from tests.conftest import write_config

    off = create_server(load(write_config(tmp_path)))
    assert not any(getattr(r, "path", "") == "/hooks/{provider}" for r in off.routes)


def test_our_message_ids_are_read_back_and_forged_ones_name_nobody() -> None:
    from publisher.compose.messages import message_id_check, parse_message_id

    check = message_id_check("news.example.org", 12, 345)
    assert parse_message_id(f"<12.345.{check}@news.example.org>", "news.example.org") == (12, 345)
    assert parse_message_id(f"12.345.{check}@news.example.org", "news.example.org") == (12, 345)
    assert parse_message_id(f"<12.346.{check}@news.example.org>", "news.example.org") is None
    assert parse_message_id(f"<12.345.{check}@x>", "other.example.org") is None
    assert parse_message_id("<0100017c-ses@email.amazonses.com>", "news.example.org") is None


def test_provider_events_are_stored_once_on_each_database(store_url: str) -> None:
    from publisher.store import ProviderEventRow

    store = Store.open(store_url)
    at = dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)
    row = ProviderEventRow("sendgrid", "ev-1", "complaint", "a@example.org", 7, None,
                           "", "spamreport", at)  # fmt: skip
    assert store.record_provider_event(row, at) is True
    assert store.record_provider_event(row, at) is False
    other = ProviderEventRow("mailgun", "ev-1", "complaint", "a@example.org", 7, None, "", "", at)
    assert store.record_provider_event(other, at) is True  # ids are per provider
    assert store.issue_complaints(7, at, at + dt.timedelta(days=7)) == 2
    assert [e.provider for e in store.provider_events_of("a@example.org")] == ["sendgrid", "mailgun"]
    store.close()


def test_check_fails_an_enabled_provider_whose_variables_are_unset(tmp_path: Path) -> None:
    from tests.conftest import write_config

    config = write_config(tmp_path, extra=_hooks("127.0.0.1:9"))
    env = {"TEST_PM_USER": "u", "TEST_PM_PASSWORD": "p", "TEST_SG_KEY": "k"}
    result = run_cli(config, "check", now=NOW, env=env, check=False)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "postmark: POST /hooks/postmark" in output
    assert "mailgun: TEST_MG_KEY unset: POST /hooks/mailgun answers 503" in output

