"""Digest rendering (pure: templates, data and ``now`` in; subject, HTML and text out).

The issue is rendered and its CSS inlined by premailer **once**. Per-subscriber values are
left as placeholder tokens (``PUBLISHER_GREETING``, ``PUBLISHER_UNSUBSCRIBE_URL``,
``PUBLISHER_PREFERENCES_URL``) with no braces or spaces, because premailer rewrites
``{{ }}`` inside ``href``; :mod:`publisher.compose.messages` substitutes them for each recipient.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

# premailer's default parse cache is too small for a digest and then slower than no cache.
os.environ.setdefault("PREMAILER_CACHE_MAXSIZE", "2048")

import jinja2  # noqa: E402
from markupsafe import Markup  # noqa: E402

from publisher.compose import plaintext  # noqa: E402
from publisher.compose.sanitize import clean_header_text, excerpt, html_to_text  # noqa: E402
from publisher.compose.tracking import CANARY_URL, PIXEL_URL, link_placeholder  # noqa: E402
from publisher.config import DigestConfig, SiteConfig  # noqa: E402
from publisher.errors import DigestError  # noqa: E402
from publisher.models import Article  # noqa: E402


def builtin_templates() -> Path:
    """The folder of the built-in templates.

    A wheel carries a copy inside the package (``publisher/templates``, made by setup.py);
    a checkout or an editable install reads the repository's top-level ``templates/``.
    """
    package = Path(__file__).resolve().parents[1]
    shipped = package / "templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


BUILTIN_TEMPLATES = builtin_templates()
GREETING = "PUBLISHER_GREETING"
UNSUBSCRIBE_URL = "PUBLISHER_UNSUBSCRIBE_URL"
PREFERENCES_URL = "PUBLISHER_PREFERENCES_URL"
PREHEADER_CHARS = 140
# Room left under the size cap for what personalisation adds (name, two signed URLs).
PERSONAL_BYTES = 1024


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
    env.filters["wrap"] = plaintext.wrap
    try:
        css = env.loader.get_source(env, "email.css")[0]  # type: ignore[union-attr]
    except jinja2.TemplateNotFound as exc:
        raise DigestError(f"template email.css not found in {', '.join(search)}") from exc
    return Templates(env=env, css=css)


def _autoescape_html_only(name: str | None) -> bool:
    # The plain-text part must not be HTML-escaped; everything else is.
    return not (name or "").endswith(".txt.j2")


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


def stories(count: int) -> str:
    """The ``{stories}`` subject field: ``1 new story``, ``3 new stories``."""
    return f"{count} new {'story' if count == 1 else 'stories'}"


def subject_for(digest: DigestConfig, site: SiteConfig, count: int, now: datetime) -> str:
    """The issue's subject line from the digest's ``subject`` pattern, safe for a header.

    Fields: ``{title}``, ``{date}``, ``{site}``, ``{count}`` and ``{stories}``.
    """
    date = format_date(now, ZoneInfo(digest.timezone))
    raw = digest.subject.format(
        title=digest.title, date=date, site=site.title, count=count, stories=stories(count)
    )
    return clean_header_text(raw)


@dataclass(frozen=True)
class IssueLinks:
    """Where an issue's extra links point: its archive page, the site, the subscribe page.

    ``tracked`` maps an article URL (with its UTM parameters) to the id of its stored link:
    those links become ``PUBLISHER_LINK_<id>`` placeholders (click tracking), and the HTML
    part gets the canary link, and the pixel when ``pixel`` is set.
    """

    view_url: str = ""
    more_url: str = ""
    subscribe_url: str = ""
    tracked: Mapping[str, int] = field(default_factory=dict)
    pixel: bool = False

    def link(self, url: str, digest: DigestConfig) -> str:
        """The href of an article link: its stored link's placeholder when tracked."""
        target = with_utm(url, digest)
        link_id = self.tracked.get(target)
        return target if link_id is None else link_placeholder(link_id)


def with_utm(url: str, digest: DigestConfig) -> str:
    """``url`` with the digest's utm_* parameters added, keeping any existing query."""
    params = [
        (key, value)
        for key, value in (
            ("utm_source", digest.utm_source),
            ("utm_medium", digest.utm_medium),
            ("utm_campaign", digest.utm_campaign),
        )
        if value
    ]
    if not params or not url.startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in dict(params)]
    return urlunsplit(parts._replace(query=urlencode(query + params)))


def similar_articles(article: Article, pool: Sequence[Article], limit: int = 3) -> list[Article]:
    """Up to ``limit`` articles published before ``article`` sharing the most tags with it."""
    tags = set(article.tags)
    if not tags:
        return []
    scored = [
        (len(tags.intersection(other.tags)), other.published_at, other)
        for other in pool
        if other.id != article.id and other.published_at < article.published_at
    ]
    scored = [entry for entry in scored if entry[0] > 0]
    scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [other for _, _, other in scored[:limit]]


def _article_context(
    article: Article, digest: DigestConfig, tz: ZoneInfo, full: bool, similar: Sequence[Article]
) -> dict[str, Any]:
    text = html_to_text(article.content_html)
    excerpt_text = article.summary or excerpt(text, digest.excerpt_words)
    return {
        "title": article.title,
        "url": article.url,
        "author": article.author,
        "date": format_date(article.published_at, tz),
        "tags": list(article.tags),
        "excerpt": excerpt_text,
        "body_html": Markup(article.content_html) if full else "",
        "text": text if full else excerpt_text,
        "image": article.image,
        "citations": [{"text": c.text, "url": c.url} for c in article.citations],
        "similar": [{"title": o.title, "url": o.url} for o in similar],
    }


def inline_css(html: str, css: str) -> str:
    """Inline ``css`` into ``html`` with premailer; @media and :hover rules stay in <style>."""
    # Imported here: premailer (with cssutils and lxml) is a quarter of a second of start-up
    # that commands which never render an issue should not pay.
    from premailer import Premailer

    return Premailer(
        html,
        css_text=css,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        disable_validation=True,
        cssutils_logging_level="CRITICAL",
    ).transform(pretty_print=False)


def _preheader(templates: Templates, digest: DigestConfig, articles: Sequence[Article]) -> str:
    if digest.preheader:
        try:
            text = templates.env.from_string(digest.preheader).render(
                digest=digest, articles=articles, count=len(articles)
            )
        except jinja2.TemplateError as exc:
            raise DigestError(f"digest {digest.id!r} preheader: {exc}") from exc
    else:
        text = " ".join(a.summary or a.title for a in articles[:2])
    return excerpt(" ".join(text.split()), 30)[:PREHEADER_CHARS]


def _render_once(
    templates: Templates,
    site: SiteConfig,
    digest: DigestConfig,
    articles: Sequence[Article],
    now: datetime,
    *,
    full: bool,
    shown: int,
    similar: Mapping[int, Sequence[Article]],
    links: IssueLinks,
    archive: bool,
) -> tuple[str, str]:
    tz = ZoneInfo(digest.timezone)
    visible = list(articles[:shown])
    hidden = len(articles) - len(visible)
    context = {
        "site": site,
        "digest": digest,
        "subject": subject_for(digest, site, len(articles), now),
        "preheader": _preheader(templates, digest, articles),
        "issue_date": format_date(now, tz),
        "total": len(articles),
        "articles": [
            _article_context(a, digest, tz, full, similar.get(a.id or -1, ())) for a in visible
        ],
        "more": {"count": hidden, "url": with_utm(links.more_url or site.url, digest)} if hidden else None,
        "view_url": links.view_url,
        "subscribe_url": links.subscribe_url or site.url,
        "archive": archive,
        "link": lambda url: links.link(url, digest),
        "canary_url": CANARY_URL if links.tracked and not archive else "",
        "pixel_url": PIXEL_URL if links.pixel and not archive else "",
    }
    refs = _LinkRefs()
    try:
        html = templates.env.get_template("digest.html.j2").render(context)
        text = templates.env.get_template("digest.txt.j2").render(context, ref=refs, refs=refs.all)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
        line = getattr(exc, "lineno", None)
        raise DigestError(f"{where}{f':{line}' if line else ''}: {exc}") from exc
    return inline_css(html, templates.css), text


def render_issue(
    templates: Templates,
    site: SiteConfig,
    digest: DigestConfig,
    articles: Sequence[Article],
    now: datetime,
    *,
    similar: Mapping[int, Sequence[Article]] | None = None,
    links: IssueLinks | None = None,
    archive: bool = False,
) -> RenderedIssue:
    """Render one issue: subject, CSS-inlined HTML and plain text, placeholders kept.

    Gmail clips a body over about 102 KB, so when the inlined HTML is larger than
    ``digest.max_html_kb``, full bodies become excerpts, and then the list is cut (found
    by bisection) with an "N more articles on the web" link, until it fits.
    """
    similar = similar or {}
    links = links or IssueLinks()
    cap = digest.max_html_kb * 1024 - PERSONAL_BYTES

    def attempt(full: bool, shown: int) -> tuple[str, str]:
        return _render_once(
            templates, site, digest, articles, now,
            full=full, shown=shown, similar=similar, links=links, archive=archive,
        )  # fmt: skip

    full = digest.full
    html, text = attempt(full, len(articles))
    if len(html.encode()) > cap and full:
        full = False
        html, text = attempt(full, len(articles))
    if len(html.encode()) > cap and len(articles) > 1:
        low, high = 1, len(articles) - 1  # the largest count that fits lies in [low, high]
        best = attempt(full, 1)
        while low <= high:
            middle = (low + high) // 2
            candidate = attempt(full, middle)
            if len(candidate[0].encode()) <= cap:
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        html, text = best
    return RenderedIssue(
        subject=subject_for(digest, site, len(articles), now),
        html=html,
        text=text,
        preheader=_preheader(templates, digest, articles),
    )
