"""Property tests on untrusted input: parsers only raise our errors, and the invariants
hold (no new mail headers, no script, well-formed XML)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from publisher.collect.feed import parse_feed
from publisher.collect.markdown import parse_article
from publisher.compose import messages
from publisher.compose.links import TokenError, make_token, read_token
from publisher.compose.render import RenderedIssue
from publisher.compose.sanitize import clean_header_text, clean_html
from publisher.config import SourceConfig
from publisher.errors import ContentError
from publisher.models import Article
from publisher.syndicate import model as syndication

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE = st.sampled_from(
    [
        "\r\nBcc: victim@example.org",
        "=?utf-8?q?x=0D=0ABcc:=20victim@example.org?=",
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "<a href='javascript:alert(1)'>x</a>",
        "]]>",
        "\x00\x0b\x1f\u2028\ufffe",
        "\u202eevil",
        "😀",
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=40), HOSTILE), max_size=6).map("".join)
HEADERS = {
    "from", "subject", "date", "list-id", "mime-version", "content-type", "to", "message-id",
    "list-unsubscribe", "list-unsubscribe-post",
}  # fmt: skip


@FUZZ
@given(title=TEXT, body=TEXT, tags=TEXT)
def test_markdown_parser_only_raises_content_errors(title: str, body: str, tags: str) -> None:
    raw = (
        f"---\ntitle: {title!r}\ndate: 2026-11-01T00:00:00Z\ntags: {tags!r}\n---\n{body}\n".encode(
            "utf-8", "surrogatepass"
        )
    )
    try:
        article = parse_article(raw, "fuzz.md", "s", "https://news.example.org")
    except ContentError:
        return
    assert "<script" not in article.content_html.lower()
    assert "\r" not in article.title and "\n" not in article.title


@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_markdown_parser(data: bytes) -> None:
    try:
        parse_article(data, "fuzz.md", "s", "https://news.example.org")
    except ContentError:
        pass


@FUZZ
@given(title=TEXT, body=TEXT, link=TEXT)
def test_feed_parser_only_raises_content_errors(title: str, body: str, link: str) -> None:
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;")

    doc = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{esc(title)}</title><link>{esc(link)}</link><description>{esc(body)}</description>"
        "</item></channel></rss>"
    ).encode("utf-8", "surrogatepass")
    source = SourceConfig(name="s", type="feed", url="https://partner.example/")
    for payload in (doc, doc[: len(doc) // 2], body.encode("utf-8", "surrogatepass")):
        try:
            articles = parse_feed(payload, "https://partner.example/feed", source, NOW)
        except ContentError:
            continue
        for article in articles:
            assert "<script" not in article.content_html.lower()
            assert "javascript:" not in article.content_html.lower()
            assert "\n" not in article.title and "\r" not in article.title


@FUZZ
@given(subject=TEXT, name=TEXT, title=TEXT)
def test_no_untrusted_text_adds_a_mail_header(subject: str, name: str, title: str) -> None:
    rendered = RenderedIssue(
        subject=clean_header_text(subject) or "x",
        html="<p>PUBLISHER_GREETING</p>",
        text="PUBLISHER_GREETING",
        preheader="",
    )
    template = messages.prepare(
        rendered, issue_id=1, site_title=title, site_url="https://news.example.org", digest_id="d",
        digest_title=title, from_addr="news@news.example.org", reply_to="", now=NOW,
    )  # fmt: skip
    person = messages.Personal(
        7, "reader@example.org", name, "https://x.example/u/t", "https://x.example/p/t"
    )
    raw = messages.personalize(template, person)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert {key.lower() for key in parsed.keys()} == HEADERS
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


@FUZZ
@given(token=st.text(max_size=120))
def test_token_verifier_only_raises_token_errors(token: str) -> None:
    try:
        read_token("secret", token, "unsubscribe", NOW)
    except TokenError:
        pass
    good = make_token("secret", "unsubscribe", 5, "daily", NOW)
    assert read_token("secret", good, "unsubscribe", NOW).subscriber_id == 5


@FUZZ
@given(title=TEXT, body=TEXT)
def test_feeds_stay_well_formed(title: str, body: str) -> None:
    article = Article(
        source="s", guid="g", title=clean_header_text(title) or "untitled", url="https://news.example.org/a/",
        published_at=NOW, updated_at=NOW, content_html=clean_html(body, "https://news.example.org/"),
        summary=clean_header_text(body), feed_id="tag:news.example.org,2026:g",
    )  # fmt: skip
    channel = syndication.Channel(
        title="T", site_url="https://news.example.org", feeds_url="https://news.example.org/feeds/",
        description="", language="en", author="",
    )  # fmt: skip
    for kind in ("rss", "atom"):
        etree.fromstring(syndication.build(kind, [article], channel, NOW))
