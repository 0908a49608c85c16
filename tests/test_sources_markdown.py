"""Tests for publisher.collect.markdown: collecting a folder of Markdown articles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.collect import markdown
from publisher.config import SourceConfig
from publisher.errors import ContentError
from publisher.models import Article, Citation

SITE = "https://news.example.org"
CONTENT = Path(__file__).resolve().parent.parent / "content"

GOOD_ONE = """\
---
title: "Good one"
date: 2026-11-20T09:30:00+01:00
author: "Dana Whitfield"
tags: [Research, surgery]
---
First good article.
"""

GOOD_TWO = """\
---
title: Good two
date: "2026-11-21T10:00:00Z"
---
Second good article.
"""

# file name -> (content, a fragment the error line must contain)
BROKEN: dict[str, tuple[bytes, str]] = {
    "broken-yaml.md": (
        b'---\ntitle: "unterminated\ndate: 2026-11-20T09:00:00Z\n---\nBody.\n',
        "broken front matter",
    ),
    "no-title.md": (
        b"---\ndate: 2026-11-20T09:00:00Z\nauthor: Someone\n---\nBody.\n",
        "no title in front matter",
    ),
    "naive-date.md": (
        b"---\ntitle: Naive\ndate: 2026-11-20T09:00:00\n---\nBody.\n",
        "has no time zone",
    ),
    "no-front-matter.md": (
        b"# Just a heading\n\nNo front matter here.\n",
        "no front matter",
    ),
    "unknown-key.md": (
        b"---\ntitle: Unknown\ndate: 2026-11-20T09:00:00Z\ncolour: blue\n---\nBody.\n",
        "unknown front matter key(s): colour",
    ),
    "latin1.md": (
        "---\ntitle: Café\ndate: 2026-11-20T09:00:00Z\n---\nCrème brûlée.\n".encode("latin-1"),
        "not UTF-8",
    ),
}


def md(front: str, body: str = "Body text.\n") -> bytes:
    """A Markdown file with ``front`` (YAML lines) below a title and a date."""
    head = "title: Story\ndate: 2026-11-20T09:00:00Z\n"
    return f"---\n{head}{front}---\n{body}".encode()


def parse(raw: bytes, rel_path: str = "story.md") -> Article:
    return markdown.parse_article(raw, rel_path, "newsroom", SITE)


def source(path: Path) -> SourceConfig:
    return SourceConfig(name="newsroom", type="markdown", path=path)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    (folder / "2026").mkdir(parents=True)
    (folder / "good-one.md").write_text(GOOD_ONE, encoding="utf-8")
    (folder / "2026" / "good-two.md").write_text(GOOD_TWO, encoding="utf-8")
    (folder / "notes.txt").write_text("not an article", encoding="utf-8")
    for name, (raw, _) in BROKEN.items():
        (folder / name).write_bytes(raw)
    return folder


# --- collect() -------------------------------------------------------------------------


def test_collect_returns_the_good_articles(mixed_folder: Path) -> None:
    articles, _ = markdown.collect(source(mixed_folder), SITE)
    assert sorted(a.guid for a in articles) == ["2026/good-two", "good-one"]
    assert {a.source for a in articles} == {"newsroom"}
    good_one = next(a for a in articles if a.guid == "good-one")
    assert good_one.title == "Good one"
    assert good_one.author == "Dana Whitfield"
    assert good_one.published_at == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def test_collect_reports_each_broken_file_once_with_path_and_reason(mixed_folder: Path) -> None:
    _, errors = markdown.collect(source(mixed_folder), SITE)
    assert len(errors) == len(BROKEN)
    for name, (_, reason) in BROKEN.items():
        path = str(mixed_folder / name)
        lines = [line for line in errors if line.startswith(f"{path}: ")]
        assert len(lines) == 1, (name, errors)
        assert reason in lines[0], lines[0]
        assert "\n" not in lines[0]


def test_collect_missing_folder_is_one_error(tmp_path: Path) -> None:
    articles, errors = markdown.collect(source(tmp_path / "missing"), SITE)
    assert articles == []
    assert len(errors) == 1
    assert str(tmp_path / "missing") in errors[0]
    assert "folder not found" in errors[0]


def test_impossible_date_is_one_error_line_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(GOOD_ONE, encoding="utf-8")
    (tmp_path / "bad-date.md").write_bytes(
        b"---\ntitle: Bad date\ndate: 2026-02-30T09:00:00Z\n---\nBody.\n"
    )
    articles, errors = markdown.collect(source(tmp_path), SITE)
    assert [a.guid for a in articles] == ["good"]
    assert len(errors) == 1
    assert str(tmp_path / "bad-date.md") in errors[0]


def test_utf8_file_with_byte_order_mark_is_read() -> None:
    article = parse(b"\xef\xbb\xbf" + md(""))
    assert article.title == "Story"


def test_collect_the_shipped_content() -> None:
    articles, errors = markdown.collect(source(CONTENT), SITE)
    assert errors == []
    assert len(articles) == 7
    assert len({a.guid for a in articles}) == 7
    for article in articles:
        assert article.title
        assert article.published_at.tzinfo is not None
        assert article.published_at.utcoffset() == timedelta(0)
        assert article.updated_at >= article.published_at
        assert article.url.startswith(f"{SITE}/")
        assert article.content_html
        assert len(article.citations) >= 1
        assert all(c.text for c in article.citations)


# --- parse_article ---------------------------------------------------------------------


def test_dates_are_converted_to_utc() -> None:
    raw = (
        b"---\ntitle: Story\ndate: 2026-11-20T09:00:00+02:00\n"
        b"updated: '2026-11-22T12:00:00-05:00'\n---\nBody.\n"
    )
    article = parse(raw)
    assert article.published_at == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert article.updated_at == datetime(2026, 11, 22, 17, 0, tzinfo=UTC)


def test_updated_before_published_is_clamped() -> None:
    article = parse(md("updated: 2025-01-01T00:00:00Z\n"))
    assert article.updated_at == article.published_at


def test_date_without_time_is_rejected() -> None:
    raw = b"---\ntitle: Story\ndate: 2026-11-20\n---\nBody.\n"
    with pytest.raises(ContentError, match="has no time"):
        parse(raw)


def test_relative_links_and_images_become_absolute() -> None:
    body = (
        "See [the method](method/) and [about us](/about/).\n\n"
        "![chart](chart.png)\n\n![hero](/images/hero.jpg)\n\n"
        "[anchor](#results) and [mail](mailto:desk@example.org)\n"
    )
    article = parse(md("image: /images/cover.jpg\n", body), "findings.md")
    html = article.content_html
    assert article.url == f"{SITE}/findings/"
    assert f'href="{SITE}/findings/method/"' in html
    assert f'href="{SITE}/about/"' in html
    assert f'src="{SITE}/findings/chart.png"' in html
    assert f'src="{SITE}/images/hero.jpg"' in html
    assert 'href="#results"' in html
    assert 'href="mailto:desk@example.org"' in html
    assert article.image == f"{SITE}/images/cover.jpg"


def test_relative_links_resolve_against_the_canonical_url() -> None:
    canonical = f"{SITE}/2026/11/findings/"
    article = parse(md(f"canonical_url: {canonical}\n", "[data](data.csv)\n"))
    assert f'href="{canonical}data.csv"' in article.content_html


def test_unsafe_html_is_removed() -> None:
    body = (
        "<script>alert('x')</script>\n\n"
        '<p onclick="steal()">Hello <b>reader</b></p>\n\n'
        '<a href="javascript:alert(1)">click</a>\n\n'
        "[md link](javascript:alert(2))\n\n"
        '<iframe src="https://evil.example.com/"></iframe>\n'
    )
    html = parse(md("", body)).content_html
    assert "<script" not in html
    assert "alert('x')" not in html
    assert "onclick" not in html
    assert "steal()" not in html
    assert "<iframe" not in html
    assert "Hello <b>reader</b>" in html
    assert ">click</a>" in html
    urls = re.findall(r'(?:href|src)="([^"]*)"', html)
    assert not [u for u in urls if not u.startswith("https://")], urls
    assert 'href="javascript' not in html.lower()


def test_canonical_url_and_image_must_be_http() -> None:
    raw = md("canonical_url: 'javascript:alert(1)'\nimage: 'javascript:alert(2)'\n")
    try:
        article = parse(raw)
    except ContentError:
        return  # rejecting the article is also correct
    assert article.url.startswith(("https://", "http://"))
    assert article.image is None or article.image.startswith(("https://", "http://"))


@pytest.mark.parametrize(
    ("rel_path", "front", "guid"),
    [
        ("story.md", "", "story"),
        ("2026/11/story.md", "", "2026/11/story"),
        ("story.md", "guid: urn:newsroom:42\n", "urn:newsroom:42"),
    ],
)
def test_guid(rel_path: str, front: str, guid: str) -> None:
    assert parse(md(front), rel_path).guid == guid


def test_same_bytes_same_hash_edited_bytes_different_hash() -> None:
    raw = md("", "Original text.\n")
    first, again = parse(raw), parse(raw)
    edited = parse(md("", "Original text, corrected.\n"))
    assert len(first.content_hash) == 64
    assert first.content_hash == again.content_hash
    assert edited.content_hash != first.content_hash
    assert edited.guid == first.guid


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (
            "tags: [Research, research, ' Clinical-Trials ', RESEARCH]\n",
            ("research", "clinical-trials"),
        ),
        ("tags: 'Research, Surgery,research, '\n", ("research", "surgery")),
        ("tags: single\n", ("single",)),
        ("", ()),
    ],
)
def test_tags_are_normalized(tags: str, expected: tuple[str, ...]) -> None:
    assert parse(md(tags)).tags == expected


def test_tags_must_be_a_list_or_string() -> None:
    with pytest.raises(ContentError, match="'tags' must be a list"):
        parse(md("tags: {a: 1}\n"))


def test_citations_are_parsed() -> None:
    front = (
        "citations:\n"
        "  - text: 'Marchetti L, et al. Registry review, 2026'\n"
        "    url: https://journals.example.org/jpo/12/3/211\n"
        "  - text: Local copy\n"
        "    url: /papers/review.pdf\n"
        "  - text: Bad link\n"
        "    url: 'javascript:alert(1)'\n"
        "  - Personal communication\n"
    )
    assert parse(md(front)).citations == (
        Citation(
            "Marchetti L, et al. Registry review, 2026", "https://journals.example.org/jpo/12/3/211"
        ),
        Citation("Local copy", f"{SITE}/papers/review.pdf"),
        Citation("Bad link", ""),
        Citation("Personal communication", ""),
    )


def test_citation_without_text_is_rejected() -> None:
    with pytest.raises(ContentError, match="need a 'text'"):
        parse(md("citations:\n  - url: https://example.org/\n"))


def test_summary_from_front_matter() -> None:
    article = parse(md("summary: 'A short\\nsummary.'\n".replace("'", '"')))
    assert article.summary == "A short summary."


def test_summary_falls_back_to_an_excerpt() -> None:
    words = [f"word{i}" for i in range(100)]
    body = "# Heading\n\n" + " ".join(words[:50]) + "\n\n" + " ".join(words[50:]) + "\n"
    article = parse(md("", body))
    assert article.summary.startswith("Heading word0 word1")
    assert article.summary.endswith("…")
    assert len(article.summary.split()) == markdown.SUMMARY_WORDS
    assert "<" not in article.summary


def test_short_body_excerpt_is_the_whole_text() -> None:
    article = parse(md("", "Just *two* words.\n"))
    assert article.summary == "Just two words."


def test_url_is_canonical_url_when_present() -> None:
    article = parse(md("canonical_url: https://other.example.com/original/\n"))
    assert article.url == "https://other.example.com/original/"
    assert article.canonical_url == "https://other.example.com/original/"


def test_url_defaults_to_site_and_slug() -> None:
    assert parse(md(""), "2026/my-story.md").url == f"{SITE}/my-story/"
    assert parse(md("slug: custom-slug\n"), "my-story.md").url == f"{SITE}/custom-slug/"
    article = markdown.parse_article(md(""), "my-story.md", "newsroom", f"{SITE}/")
    assert article.url == f"{SITE}/my-story/"
    assert article.canonical_url is None


def test_title_and_author_are_single_lines() -> None:
    raw = (
        b'---\ntitle: "Breaking\\r\\nBcc: victim@example.org"\n'
        b'author: "=?utf-8?q?Eve=0D=0ABcc:=20x@example.org?="\n'
        b"date: 2026-11-20T09:00:00Z\n---\nBody.\n"
    )
    article = parse(raw)
    assert article.title == "Breaking Bcc: victim@example.org"
    assert "\r" not in article.author and "\n" not in article.author
    assert "=?" not in article.author
