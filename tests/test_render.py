"""Digest rendering: golden files, HTML structure, clipping guard, text part, screenshots."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from lxml import html as lxml_html

from publisher.collect.markdown import parse_article
from publisher.compose import render
from publisher.compose.plaintext import is_url
from publisher.config import DigestConfig, SiteConfig
from publisher.models import Article, Citation
from publisher.store import Store
from tests.conftest import REPO, SmtpServer, require_tool, run_cli, write_config
from tests.golden_files import assert_golden

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SITE = SiteConfig(
    title="Pleura Health News",
    url="https://news.example.org",
    language="en",
    postal_address="Pleura Health News, 100 Example Street, Springfield",
)
DIGEST = DigestConfig(
    id="daily", title="Pleura Daily", timezone="America/New_York", subject="{title}: {date}"
)
LINKS = render.IssueLinks(
    view_url="https://news.example.org/mail/archive/daily/2026-11-28.html",
    more_url="https://news.example.org/mail/archive/",
    subscribe_url="https://news.example.org/mail/subscribe",
)


def sample_articles() -> list[Article]:
    articles = []
    for i, path in enumerate(sorted((REPO / "content").glob("*.md"))):
        article = parse_article(path.read_bytes(), path.name, "newsroom", SITE.url)
        articles.append(replace(article, id=i + 1, feed_id=f"tag:news.example.org,2026:{i}"))
    return sorted(articles, key=lambda a: a.published_at, reverse=True)


def render_sample(
    digest: DigestConfig = DIGEST, articles: list[Article] | None = None
) -> render.RenderedIssue:
    articles = articles if articles is not None else sample_articles()
    similar = {a.id: render.similar_articles(a, articles) for a in articles}
    return render.render_issue(
        render.load_templates(), SITE, digest, articles, NOW, similar=similar, links=LINKS
    )


def test_golden_html_and_text() -> None:
    rendered = render_sample()
    assert_golden("digest.html", rendered.html)
    assert_golden("digest.txt", rendered.text)


def test_html_structure() -> None:
    rendered = render_sample()
    html = rendered.html
    tree = lxml_html.fromstring(html.encode())
    assert tree.get("lang") == "en"
    assert tree.xpath('//meta[@name="color-scheme"]/@content') == ["light dark"]
    assert not tree.xpath("//script") and "<script" not in html.lower()
    assert "<!--[if mso]>" in html  # Outlook ghost tables
    style = "".join(tree.xpath("//style/text()"))
    assert (
        "@media only screen and (max-width: 620px)" in style
        and "prefers-color-scheme: dark" in style
    )
    # The preheader is the first thing in <body>.
    body = tree.xpath("//body")[0]
    assert body[0].get("class") == "preheader"
    assert body[0].text_content().startswith(rendered.preheader)
    # Content elements carry inline styles.
    for xpath in (
        '//td[@class="card"]',
        '//p[@class="summary"]',
        '//h2[@class="article-title"]/a',
        '//a[@class="button"]',
    ):
        nodes = tree.xpath(xpath)
        assert nodes and all(n.get("style") for n in nodes), xpath
    assert len(tree.xpath("//h1")) == 1 and len(tree.xpath("//h2")) == 7
    # Every link and image is absolute (or a per-subscriber placeholder).
    for url in tree.xpath("//a/@href | //img/@src"):
        assert url.startswith(("https://", "http://", "PUBLISHER_", "mailto:")), url
    for img in tree.xpath("//img"):
        assert img.get("alt") and img.get("width") and img.get("height")
    # The layout never exceeds 600 px.
    for width in tree.xpath("//table/@width"):
        assert width.endswith("%") or int(width) <= 600
    assert len(html.encode()) <= DIGEST.max_html_kb * 1024
    assert f'href="{LINKS.view_url}"' in html


def test_templates_hold_no_remote_stylesheet_and_autoescape_is_on() -> None:
    for path in (REPO / "templates").rglob("*.j2"):
        text = path.read_text(encoding="utf-8")
        links = re.findall(r"<link[^>]+stylesheet[^>]*>", text, re.I)
        # Web and console pages may link their own stylesheet; nothing may pull CSS from
        # elsewhere, and email templates link none at all (clients drop them; premailer inlines).
        assert not [link for link in links if re.search(r"href=[\"']?(https?:)?//", link)], path
        if "web" not in path.parts and "admin" not in path.parts:
            assert not links, path
    templates = render.load_templates()
    assert templates.env.autoescape("digest.html.j2") is True
    assert templates.env.autoescape("partials/article.html.j2") is True
    hostile = replace(
        sample_articles()[0], title="<script>alert(1)</script> & more", summary="<b>x</b>"
    )
    rendered = render_sample(articles=[hostile])
    assert "<script>alert(1)" not in rendered.html and "&lt;script&gt;alert(1)" in rendered.html
    assert "<script>alert(1)</script> & more" in rendered.text  # the text part is not HTML


def test_text_part_lines_and_numbered_links() -> None:
    text = render_sample().text
    for line in text.splitlines():
        # Only a URL alone on its line may be longer (it cannot be wrapped).
        assert len(line) <= 78 or is_url(line), line
    refs = re.findall(r"^\[(\d+)\] (\S+)$", text, re.M)
    assert [int(n) for n, _ in refs] == list(range(1, len(refs) + 1))
    assert "Read more: [" in text and "<" not in text.replace("<script>", "")


def test_utm_parameters_keep_the_existing_query() -> None:
    digest = replace(DIGEST, utm_source="newsletter", utm_medium="email", utm_campaign="daily")
    url = render.with_utm("https://news.example.org/a/?ref=home&utm_source=old#top", digest)
    assert (
        url
        == "https://news.example.org/a/?ref=home&utm_source=newsletter&utm_medium=email&utm_campaign=daily#top"
    )
    assert render.with_utm("mailto:x@example.org", digest) == "mailto:x@example.org"
    rendered = render_sample(digest)
    assert "utm_campaign=daily" in rendered.html and "utm_campaign=daily" in rendered.text


def test_similar_posts_share_the_most_tags_and_are_earlier() -> None:
    articles = sample_articles()
    newest = articles[0]
    similar = render.similar_articles(newest, articles)
    assert 0 < len(similar) <= 3
    assert all(a.published_at < newest.published_at for a in similar)
    overlaps = [len(set(a.tags) & set(newest.tags)) for a in similar]
    assert overlaps == sorted(overlaps, reverse=True) and overlaps[0] > 0
    assert render.similar_articles(replace(newest, tags=()), articles) == []


def _long_articles(n: int) -> list[Article]:
    body = "".join(
        f"<p>Paragraph {i}: " + "careful research words " * 60 + "</p>" for i in range(8)
    )
    return [
        Article(
            source="s", guid=f"g{i}", title=f"Long article {i}", url=f"https://news.example.org/{i}/",
            published_at=NOW - timedelta(hours=i), updated_at=NOW - timedelta(hours=i), content_html=body,
            summary="", tags=("research",), citations=(Citation("A citation", "https://journals.example.org/x"),),
            id=i + 1,
        )
        for i in range(n)
    ]  # fmt: skip


def test_gmail_clipping_guard_with_40_long_articles() -> None:
    digest = replace(DIGEST, full=True, max_html_kb=95)
    articles = _long_articles(40)
    rendered = render_sample(digest, articles)
    assert len(rendered.html.encode()) <= 95 * 1024
    assert "Paragraph 7" not in rendered.html  # full bodies became excerpts first
    more = re.search(r"(\d+) more articles on the web", rendered.html)
    assert more, "the list was cut with a link to the rest"
    shown = rendered.html.count('class="article-title"')
    assert shown >= 1 and shown + int(more.group(1)) == 40
    assert f"{more.group(1)} more articles on the web" in rendered.text

    # A small issue keeps its full bodies.
    small = render_sample(digest, articles[:2])
    assert "Paragraph 7" in small.html and "more articles on the web" not in small.html


def test_excerpt_words_when_there_is_no_summary() -> None:
    article = replace(_long_articles(1)[0], summary="")
    rendered = render_sample(replace(DIGEST, excerpt_words=12), [article])
    flat = rendered.text.replace("\n    ", " ")
    assert (
        "Paragraph 0: careful research words careful research words careful research words careful…"
        in flat
    )


def test_contrast_of_text_colours_is_at_least_4_5() -> None:
    css = (REPO / "templates" / "email.css").read_text(encoding="utf-8")

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def ratio(a: str, b: str) -> float:
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)

    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    light, dark = css.split("@media (prefers-color-scheme: dark)")
    text_colour = r"(?<![-\w])color: (#[0-9a-f]{6})"
    light_text = set(re.findall(text_colour, light.split("@media")[0]))
    dark_text = set(re.findall(text_colour, dark))
    light_text -= {"#f3f4f6"}  # the preheader is hidden on purpose
    light_text -= {"#ffffff"}  # white is only the button label, on the button colour:
    assert ratio("#ffffff", "#0b5394") >= 4.5
    assert light_text and dark_text
    for colour in light_text:
        assert ratio(colour, "#ffffff") >= 4.5, colour
    for colour in dark_text - {"#ffffff"}:
        assert ratio(colour, "#1f2937") >= 4.5, colour


def test_archive_page_holds_nothing_personal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run_cli(
        config, "subscribers", "add", "ana@example.org", "--name", "Anastasia", now=NOW.isoformat()
    )
    run_cli(config, "run", "--once", now="2026-11-28T15:00:00+00:00")
    page = tmp_path / "archive" / "daily" / "2026-11-28.html"
    index = (tmp_path / "archive" / "index.html").read_text(encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    assert "PUBLISHER_" not in html and "Anastasia" not in html and "/unsubscribe/" not in html
    assert "CRS/HIPEC Outcomes Keep Improving" in html
    assert 'href="daily/2026-11-28.html"' in index and 'type="application/atom+xml"' in index
    [eml] = (tmp_path / "outbox").glob("*.eml")
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert (
        "https://news.example.org/mail/archive/daily/2026-11-28.html"
        in mail.get_body(("html",)).get_content()
    )


def test_preview_options_and_test_send(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    now = "2026-11-28T15:00:00+00:00"
    run_cli(config, "subscribers", "add", "ana@example.org", "--name", "Ana", now=now)
    run_cli(config, "collect", now=now)
    out = tmp_path / "p.txt"
    run_cli(
        config,
        "preview",
        "daily",
        "--text",
        "--subscriber",
        "ana@example.org",
        "--out",
        str(out),
        now=now,
    )
    text = out.read_text(encoding="utf-8")
    assert "Hi Ana," in text and "https://news.example.org/mail/unsubscribe/" in text
    assert smtp_server.handler.messages == []

    result = run_cli(config, "send", "daily", "--to", "editor@example.org", now=now)
    assert "sent to editor@example.org" in result.stdout
    [message] = smtp_server.handler.parsed()
    assert str(message["Subject"]).startswith("[TEST] ")
    store = Store.open(f"sqlite:///{tmp_path / 'publisher.db'}")
    assert store.list_issues() == []  # no issue, no delivery recorded
    store.close()
    # The real send still goes out afterwards, once.
    assert "1 sent" in run_cli(config, "send", "daily", now=now).stdout


def test_screenshots_and_no_horizontal_scroll_at_375(tmp_path: Path) -> None:
    require_tool("chromium", hint="apt-get install chromium")
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "screenshots.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "width 375: scrollWidth 375 px, viewport 375 px: ok" in result.stdout
    for width in (375, 800):
        for scheme in ("light", "dark"):
            png = tmp_path / f"digest-{width}-{scheme}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_screenshot_page_is_the_personalised_issue() -> None:
    # bench/screenshots.py shoots the page a subscriber gets: personalised through
    # publisher.compose.messages, every placeholder filled in (one left would show as PUBLISHER_...).
    spec = importlib.util.spec_from_file_location("screenshots", REPO / "bench" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    page = screenshots.sample_html()
    assert "PUBLISHER_" not in page
    assert 'href="https://x.example/u/t"' in page and 'href="https://x.example/p/t"' in page
    assert "Hi Ana," in lxml_html.fromstring(page).text_content()


def test_operator_can_override_one_partial(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "footer.html.j2").write_text(
        '<tr><td class="footer"><p>Custom footer for {{ site.title }}</p>'
        '<p><a href="PUBLISHER_UNSUBSCRIBE_URL">Leave</a></p></td></tr>\n',
        encoding="utf-8",
    )
    templates = render.load_templates(tmp_path)
    rendered = render.render_issue(templates, SITE, DIGEST, sample_articles()[:1], NOW, links=LINKS)
    assert "Custom footer for Pleura Health News" in rendered.html
    assert 'class="article-title"' in rendered.html  # the other partials are the built-in ones
