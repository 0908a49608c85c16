"""Digest rendering (pure: templates, data and ``now`` in; subject, HTML and text out).

The issue is rendered and its CSS inlined by premailer **once**. Per-subscriber values are
left as placeholder tokens (``PUBLISHER_GREETING``, ``PUBLISHER_UNSUBSCRIBE_URL``,
``PUBLISHER_PREFERENCES_URL``) with no braces or spaces, because premailer rewrites
``{{ }}`` inside ``href``; :mod:`publisher.messages` substitutes them for each recipient.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# premailer's default parse cache is too small for a digest and then slower than no cache.
os.environ.setdefault("PREMAILER_CACHE_MAXSIZE", "2048")

import jinja2  # noqa: E402
from premailer import Premailer  # noqa: E402

from publisher.config import DigestConfig, SiteConfig  # noqa: E402
from publisher.errors import DigestError  # noqa: E402
from publisher.models import Article  # noqa: E402
from publisher.sanitize import clean_header_text  # noqa: E402

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
GREETING = "PUBLISHER_GREETING"
UNSUBSCRIBE_URL = "PUBLISHER_UNSUBSCRIBE_URL"
PREFERENCES_URL = "PUBLISHER_PREFERENCES_URL"
PREHEADER_CHARS = 140


@dataclass(frozen=True)
class RenderedIssue:
    """An issue ready for personalisation: placeholders still in ``html`` and ``text``."""

    subject: str
    html: str
    text: str
    preheader: str


@dataclass(frozen=True)
class Templates:
    """The loaded Jinja2 environment plus the email CSS text."""

    env: jinja2.Environment
    css: str


def load_templates(override_dir: Path | None = None) -> Templates:
    """Load the templates (I/O at the edge): ``override_dir`` first, then the built-in ones."""
    search = [str(override_dir)] if override_dir else []
    search.append(str(BUILTIN_TEMPLATES))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=_autoescape_html_only,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    try:
        css = env.loader.get_source(env, "email.css")[0]  # type: ignore[union-attr]
    except jinja2.TemplateNotFound as exc:
        raise DigestError(f"template email.css not found in {', '.join(search)}") from exc
    return Templates(env=env, css=css)


def _autoescape_html_only(name: str | None) -> bool:
    # The plain-text part must not be HTML-escaped; everything else is.
    return not (name or "").endswith(".txt.j2")


def _wrap(text: str, width: int = 78, indent: str = "", first: str | None = None) -> str:
    """Fill ``text`` to ``width`` columns; ``first`` prefixes line one, ``indent`` the rest."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class _LinkRefs:
    """Numbered link references for the text part: ``[1] https://...``."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def all(self) -> list[str]:
        return list(self.urls)


def format_date(moment: datetime, tz: ZoneInfo) -> str:
    """A locale-free date such as ``28 November 2026`` in ``tz``."""
    local = moment.astimezone(tz)
    return f"{local.day} {local:%B %Y}"


def subject_for(digest: DigestConfig, site: SiteConfig, count: int, now: datetime) -> str:
    """The issue's subject line from the digest's ``subject`` pattern, safe for a header."""
    date = format_date(now, ZoneInfo(digest.timezone))
    raw = digest.subject.format(title=digest.title, date=date, site=site.title, count=count)
    return clean_header_text(raw)


def _article_context(article: Article, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "title": article.title,
        "url": article.url,
        "author": article.author,
        "date": format_date(article.published_at, tz),
        "tags": list(article.tags),
        "summary": article.summary,
        "image": article.image,
        "citations": [{"text": c.text, "url": c.url} for c in article.citations],
    }


def inline_css(html: str, css: str) -> str:
    """Inline ``css`` into ``html`` with premailer; @media and :hover rules stay in <style>."""
    return Premailer(
        html,
        css_text=css,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        disable_validation=True,
        cssutils_logging_level="CRITICAL",
    ).transform(pretty_print=False)


def render_issue(
    templates: Templates,
    site: SiteConfig,
    digest: DigestConfig,
    articles: list[Article],
    now: datetime,
) -> RenderedIssue:
    """Render one issue: subject, CSS-inlined HTML and plain text, placeholders kept."""
    tz = ZoneInfo(digest.timezone)
    subject = subject_for(digest, site, len(articles), now)
    preheader = " · ".join(a.title for a in articles)[:PREHEADER_CHARS]
    context = {
        "site": site,
        "digest": digest,
        "subject": subject,
        "preheader": preheader,
        "issue_date": format_date(now, tz),
        "articles": [_article_context(a, tz) for a in articles],
    }
    refs = _LinkRefs()
    try:
        html = templates.env.get_template("digest.html.j2").render(context)
        text = templates.env.get_template("digest.txt.j2").render(context, ref=refs, refs=refs.all)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
        line = getattr(exc, "lineno", None)
        raise DigestError(f"{where}{f':{line}' if line else ''}: {exc}") from exc
    return RenderedIssue(
        subject=subject, html=inline_css(html, templates.css), text=text, preheader=preheader
    )
