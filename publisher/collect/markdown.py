"""Markdown source: a folder of ``*.md`` files with YAML front matter (reads files).

Front matter keys: ``title`` (required), ``date`` (ISO 8601 with an offset, required),
``author``, ``tags`` (list or comma-separated), ``summary``, ``image``, ``canonical_url``,
``citations`` (list of ``{text, url}``), ``updated``, ``slug`` and ``guid``. The guid
defaults to the file's path below the folder without ``.md``, so renaming a file makes a
new article while editing it makes an update (found by the content hash).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt

from publisher.compose.sanitize import (
    absolute_url,
    clean_header_text,
    clean_html,
    excerpt,
    html_to_text,
    plain_text,
)
from publisher.config import SourceConfig
from publisher.errors import ContentError
from publisher.models import Article, Citation

SUMMARY_WORDS = 40
KNOWN_KEYS = {
    "title", "date", "author", "tags", "summary", "image", "canonical_url", "citations",
    "updated", "slug", "guid",
}  # fmt: skip

_md = MarkdownIt("commonmark", {"html": True, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def _datetime(value: Any, key: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ContentError(f"'{key}' {value.isoformat()} has no time zone (add e.g. +00:00)")
        return value.astimezone(UTC)
    if isinstance(value, date):
        raise ContentError(
            f"'{key}' {value.isoformat()} has no time (write e.g. {value}T09:00:00Z)"
        )
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ContentError(f"'{key}' {value!r} is not an ISO 8601 datetime") from exc
        return _datetime(parsed, key)
    raise ContentError(f"'{key}' must be a datetime, got {value!r}")


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ContentError(f"'tags' must be a list, got {value!r}")
    tags: list[str] = []
    for item in items:
        tag = plain_text(str(item)).lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _citations(value: Any, site_url: str) -> tuple[Citation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ContentError(f"'citations' must be a list of {{text, url}}, got {value!r}")
    out: list[Citation] = []
    for item in value:
        if isinstance(item, str):
            out.append(Citation(text=clean_header_text(item, max_length=1000)))
        elif isinstance(item, dict) and item.get("text"):
            url = absolute_url(str(item.get("url") or ""), site_url)
            if url and not url.startswith(("http://", "https://")):
                url = ""
            out.append(
                Citation(text=clean_header_text(str(item["text"]), max_length=1000), url=url)
            )
        else:
            raise ContentError(f"'citations' entries need a 'text', got {item!r}")
    return tuple(out)


def _http_url(value: Any, key: str, site_url: str) -> str | None:
    if not value:
        return None
    url = absolute_url(str(value), site_url)
    if not url.lower().startswith(("http://", "https://")):
        raise ContentError(f"'{key}' {value!r} is not an http(s) URL")
    return url


def parse_article(raw: bytes, rel_path: str, source: str, site_url: str) -> Article:
    """Parse one Markdown file's bytes into an Article (pure). Raises ContentError."""
    try:
        post = frontmatter.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ContentError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at front matter line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContentError(f"broken front matter{where}: {problem}") from exc
    except ValueError as exc:
        # PyYAML builds dates itself: 2026-02-30 raises a plain ValueError.
        raise ContentError(f"broken front matter: {exc}") from exc
    meta = post.metadata
    if not isinstance(meta, dict) or not meta:
        raise ContentError(
            "no front matter (start the file with a '---' block holding title and date)"
        )
    unknown = sorted(set(meta) - KNOWN_KEYS)
    if unknown:
        raise ContentError(f"unknown front matter key(s): {', '.join(unknown)}")
    # Titles, authors and tags are plain text everywhere: markup is stripped, entities decoded.
    title = plain_text(str(meta.get("title") or ""))
    if not title:
        raise ContentError("no title in front matter")
    if "date" not in meta:
        raise ContentError("no date in front matter")
    published_at = _datetime(meta["date"], "date")
    updated_at = _datetime(meta["updated"], "updated") if meta.get("updated") else published_at
    slug = str(meta.get("slug") or Path(rel_path).stem).strip("/")
    canonical = meta.get("canonical_url")
    canonical_url = _http_url(canonical, "canonical_url", site_url)
    url = canonical_url or f"{site_url.rstrip('/')}/{slug}/"
    html = clean_html(_md.render(post.content), url)
    summary = meta.get("summary")
    summary_text = (
        clean_header_text(str(summary), max_length=1000)
        if summary
        else excerpt(html_to_text(html), SUMMARY_WORDS)
    )
    image = meta.get("image")
    return Article(
        source=source,
        guid=str(meta.get("guid") or rel_path.removesuffix(".md")),
        title=title,
        url=url,
        published_at=published_at,
        updated_at=max(updated_at, published_at),
        content_html=html,
        summary=summary_text,
        author=plain_text(str(meta.get("author") or "")),
        tags=_tags(meta.get("tags")),
        image=_http_url(image, "image", site_url),
        canonical_url=canonical_url,
        citations=_citations(meta.get("citations"), site_url),
        content_hash=hashlib.sha256(raw).hexdigest(),
    )


def collect(source: SourceConfig, site_url: str) -> tuple[list[Article], list[str]]:
    """Read every ``*.md`` below ``source.path``; broken files become error lines."""
    assert source.path is not None
    root = source.path
    if not root.is_dir():
        return [], [f"{root}: source {source.name!r}: folder not found"]
    articles: list[Article] = []
    errors: list[str] = []
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root).as_posix()
        try:
            articles.append(parse_article(path.read_bytes(), rel, source.name, site_url))
        except ContentError as exc:
            errors.append(f"{path}: {exc}")
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror}")
    return articles, errors
