"""Tests for publisher.compose.messages (per-recipient mail bytes) and publisher.compose.links."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from publisher.compose import messages
from publisher.compose.links import TokenError, make_token, read_token
from publisher.compose.render import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, RenderedIssue

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
UNSUBSCRIBE = "https://news.example.org/u?token=abc.def&digest=daily"
PREFERENCES = "https://news.example.org/p?token=ghi.jkl&all=1"
BASE_HEADERS = {
    "From",
    "Subject",
    "Date",
    "List-Id",
    "MIME-Version",
    "Content-Type",
    "To",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
}
ENCODED_INJECTION = "Hi =?utf-8?q?x=0D=0ABcc:=20victim@example.org?="
RAW_INJECTION = "Hi\r\nBcc: victim@example.org"

HTML = f"""\
<!DOCTYPE html>
<html lang="en"><body>
<p>{GREETING}</p>
<p><a href="https://news.example.org/story/">Story</a></p>
<p><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a> | <a href="{PREFERENCES_URL}">Preferences</a></p>
</body></html>
"""
TEXT = f"""\
Pleura Daily

{GREETING}

1.  Story
    Read more: https://news.example.org/story/

Unsubscribe: {UNSUBSCRIBE_URL}
Preferences: {PREFERENCES_URL}
"""


def rendered(subject: str = "Pleura Daily: 3 new stories", html: str = HTML, text: str = TEXT):
    return RenderedIssue(subject=subject, html=html, text=text, preheader="Story")


def template(
    subject: str = "Pleura Daily: 3 new stories",
    *,
    issue_id: int = 7,
    reply_to: str = "",
    site_title: str = "Pleura Health News",
    digest_title: str = "Pleura Daily",
    html: str = HTML,
    text: str = TEXT,
    test: bool = False,
) -> messages.MessageTemplate:
    return messages.prepare(
        rendered(subject, html, text),
        issue_id=issue_id,
        site_title=site_title,
        site_url="https://news.example.org",
        digest_id="daily",
        digest_title=digest_title,
        from_addr="newsletter@news.example.org",
        reply_to=reply_to,
        now=NOW,
        test=test,
    )


def person(subscriber_id: int = 3, name: str = "Zoë Ångström", email_addr: str = "zoe@example.org"):
    return messages.Personal(
        subscriber_id=subscriber_id,
        email=email_addr,
        name=name,
        unsubscribe_url=UNSUBSCRIBE,
        preferences_url=PREFERENCES,
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def build(subject: str = "Pleura Daily: 3 new stories", name: str = "Zoë Ångström", **kw) -> bytes:
    return messages.personalize(template(subject, **kw), person(name=name))


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies with LF line ends (the last CRLF belongs to the boundary)."""
    plain, html = list(message.iter_parts())
    return (
        plain.get_content().replace("\r\n", "\n") + "\n",
        html.get_content().replace("\r\n", "\n") + "\n",
    )


def assert_wire_format(data: bytes) -> None:
    """CRLF everywhere (no bare CR or LF) and no line over 998 bytes."""
    assert data.endswith(b"\r\n")
    assert re.search(rb"(?<!\r)\n", data) is None, "bare LF"
    assert re.search(rb"\r(?!\n)", data) is None, "bare CR"
    longest = max(len(line) for line in data.split(b"\r\n"))
    assert longest <= 998, longest


# --- structure ---------------------------------------------------------------------------


def test_exact_header_set() -> None:
    message = parse(build())
    assert set(message.keys()) == BASE_HEADERS
    assert len(message.keys()) == len(BASE_HEADERS)


def test_reply_to_is_added_when_given() -> None:
    message = parse(build(reply_to="editor@news.example.org"))
    assert set(message.keys()) == BASE_HEADERS | {"Reply-To"}
    assert message["Reply-To"] == "editor@news.example.org"


def test_message_has_no_defects() -> None:
    message = parse(build())
    assert message.defects == []
    for part in message.walk():
        assert part.defects == [], part.get_content_type()


def test_multipart_alternative_text_then_html() -> None:
    message = parse(build())
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_header_values() -> None:
    message = parse(build())
    assert message["From"].addresses[0].display_name == "Pleura Health News"
    assert message["From"].addresses[0].addr_spec == "newsletter@news.example.org"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert message["Subject"] == "Pleura Daily: 3 new stories"
    assert message["Date"].datetime == NOW
    assert message["List-Id"] == "Pleura Daily <daily.news.example.org>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"


def test_test_issue_subject_is_marked() -> None:
    assert parse(build(test=True))["Subject"] == "[TEST] Pleura Daily: 3 new stories"


# --- placeholders ----------------------------------------------------------------------


def test_placeholders_are_substituted_in_text() -> None:
    text, _ = parts(parse(build()))
    assert "Hi Zoë Ångström," in text
    assert f"Unsubscribe: {UNSUBSCRIBE}\n" in text
    assert f"Preferences: {PREFERENCES}\n" in text
    assert "PUBLISHER_" not in text


def test_placeholders_are_substituted_and_escaped_in_html() -> None:
    _, html = parts(parse(build(name="Tom & <Jerry>")))
    assert "<p>Hi Tom &amp; &lt;Jerry&gt;,</p>" in html
    assert f'href="{UNSUBSCRIBE.replace("&", "&amp;")}"' in html
    assert f'href="{PREFERENCES.replace("&", "&amp;")}"' in html
    assert UNSUBSCRIBE not in html
    assert "PUBLISHER_" not in html


def test_greeting_without_a_name() -> None:
    text, html = parts(parse(build(name="")))
    assert "\nHello,\n" in text
    assert "<p>Hello,</p>" in html
    assert parse(build(name=""))["To"].addresses[0].display_name == ""


# --- wire format -------------------------------------------------------------------------


def test_crlf_line_endings_and_line_length() -> None:
    long_text = TEXT + ("word " * 400) + "\n" + "x" * 2000 + "\n"
    assert_wire_format(build(text=long_text))


def test_long_non_ascii_subject_is_folded_and_round_trips() -> None:
    subject = "Édition spéciale — " + "mésothéliome et amiante ☕ " * 8
    data = build(subject)
    assert_wire_format(data)
    assert parse(data)["Subject"] == " ".join(subject.split())


def test_single_line_body_has_no_bare_lf() -> None:
    html = "<html><body>" + "<p>A paragraph of the digest.</p>" * 20 + "</body></html>"
    text = "One long line. " * 20
    assert_wire_format(build(html=html, text=text))


def test_long_non_ascii_name_keeps_lines_short() -> None:
    assert_wire_format(build(name="名" * 250))


def test_headers_are_ascii() -> None:
    data = build("Größe ☕ digest", site_title="Pléura Nouvelles", digest_title="Quotidien é")
    head = data.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # raises if any header byte is not ASCII


def test_non_ascii_subject_and_names_round_trip() -> None:
    data = build(
        "Größe ☕ digest — 28 novembre",
        name="Zoë Ångström 😀",
        site_title="Pléura Nouvelles",
        digest_title="Quotidien é",
    )
    message = parse(data)
    assert message["Subject"] == "Größe ☕ digest — 28 novembre"
    assert message["To"].addresses[0].display_name == "Zoë Ångström 😀"
    assert message["From"].addresses[0].display_name == "Pléura Nouvelles"
    assert message["List-Id"].startswith("Quotidien é ")
    text, html = parts(message)
    assert "Hi Zoë Ångström 😀," in text
    assert "Hi Zoë Ångström 😀," in html


def test_display_names_with_specials_are_quoted() -> None:
    message = parse(build(name='Doe, John "JD"'))
    assert message["To"].addresses[0].display_name == 'Doe, John "JD"'
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert len(message["To"].addresses) == 1


# --- Message-ID --------------------------------------------------------------------------


def test_message_id_is_stable_per_issue_and_subscriber() -> None:
    first = parse(messages.personalize(template(), person(3)))["Message-ID"]
    again = parse(messages.personalize(template(), person(3)))["Message-ID"]
    other_subscriber = parse(messages.personalize(template(), person(4)))["Message-ID"]
    other_issue = parse(messages.personalize(template(issue_id=8), person(3)))["Message-ID"]
    assert first == again
    assert first != other_subscriber
    assert first != other_issue
    assert re.fullmatch(r"<7\.3\.[0-9a-f]{12}@news\.example\.org>", first)


# --- header injection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        (ENCODED_INJECTION, "Zoë"),
        ("Digest", ENCODED_INJECTION),
        (RAW_INJECTION, "Zoë"),
        ("Digest", RAW_INJECTION),
        (RAW_INJECTION + "\r\n\r\nbody", RAW_INJECTION + "\nX-Evil: 1"),
    ],
)
def test_header_injection_adds_no_header(subject: str, name: str) -> None:
    data = build(subject, name=name)
    message = parse(data)
    assert "Bcc" not in message
    assert b"\r\nBcc:" not in data
    assert set(message.keys()) == BASE_HEADERS
    assert len(message.keys()) == len(BASE_HEADERS)
    assert message.defects == []
    assert [a.addr_spec for a in message["To"].addresses] == ["zoe@example.org"]
    for value in (message["Subject"], message["To"].addresses[0].display_name):
        assert "\r" not in value and "\n" not in value
        assert "=?" not in value
    assert_wire_format(data)


def test_reply_to_cannot_inject_headers() -> None:
    message = parse(build(reply_to="editor@news.example.org\r\nBcc: victim@example.org"))
    assert "Bcc" not in message
    assert set(message.keys()) == BASE_HEADERS | {"Reply-To"}


# --- tokens ------------------------------------------------------------------------------

SECRET = "correct horse battery staple"


def test_token_round_trip() -> None:
    token = make_token(SECRET, "unsubscribe", 42, "daily", NOW)
    data = read_token(SECRET, token, "unsubscribe", NOW + timedelta(days=3))
    assert (data.purpose, data.subscriber_id, data.digest_id) == ("unsubscribe", 42, "daily")
    assert data.issued_at == NOW
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)


def test_token_for_all_digests() -> None:
    token = make_token(SECRET, "preferences", 7, "", NOW)
    assert read_token(SECRET, token, "preferences", NOW).digest_id == ""


def test_tokens_differ_per_subscriber() -> None:
    assert make_token(SECRET, "unsubscribe", 1, "daily", NOW) != make_token(
        SECRET, "unsubscribe", 2, "daily", NOW
    )


def _forged_payload(token: str) -> str:
    """The token with subscriber 42 changed to 43 and the old MAC kept."""
    import base64

    payload, _, mac = token.partition(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b":42:", b":43:")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac


@pytest.mark.parametrize(
    "tamper",
    [
        _forged_payload,
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.partition(".")[0],
        lambda t: t + "x",
        lambda t: "",
        lambda t: "not-a-token",
    ],
    ids=["payload", "mac", "no-mac", "extra", "empty", "garbage"],
)
def test_tampered_token_is_rejected(tamper) -> None:
    token = make_token(SECRET, "unsubscribe", 42, "daily", NOW)
    with pytest.raises(TokenError):
        read_token(SECRET, tamper(token), "unsubscribe", NOW)


def test_token_for_another_purpose_is_rejected() -> None:
    token = make_token(SECRET, "preferences", 42, "", NOW)
    with pytest.raises(TokenError, match="not meant for this page"):
        read_token(SECRET, token, "unsubscribe", NOW)


def test_token_with_wrong_secret_is_rejected() -> None:
    token = make_token(SECRET, "unsubscribe", 42, "daily", NOW)
    with pytest.raises(TokenError):
        read_token("another secret", token, "unsubscribe", NOW)


def test_expired_token_is_rejected() -> None:
    token = make_token(SECRET, "unsubscribe", 42, "daily", NOW)
    max_age = timedelta(days=30)
    assert read_token(SECRET, token, "unsubscribe", NOW + max_age, max_age=max_age)
    with pytest.raises(TokenError, match="expired"):
        read_token(
            SECRET, token, "unsubscribe", NOW + max_age + timedelta(seconds=1), max_age=max_age
        )


def test_token_with_non_ascii_characters_is_rejected() -> None:
    token = make_token(SECRET, "unsubscribe", 42, "daily", NOW)
    with pytest.raises(TokenError):
        read_token(SECRET, token + "é", "unsubscribe", NOW)
