"""The feed build (disk, store and network I/O): plan every feed, rebuild what changed, write.

One pass over the store's cheap article index (:meth:`Store.feed_index`, no bodies)
plans every document: the main feed, per-tag and per-author feeds, RFC 5005 archive
pages, ``feeds.opml`` and ``index.html``. Each feed file gets a fingerprint of all its
inputs (channel, the entries' ids, content hashes and dates, the writer's version). A
file whose fingerprint matches the last build and which still exists is left alone
without being rebuilt; the others are rebuilt by :mod:`publisher.syndicate.model`, compared
byte for byte, and written atomically only when the bytes differ, so unchanged files
keep their mtime. Archive pages that are full and have a newer page after them are
never rewritten. After a build that changed feeds, a configured WebSub hub is pinged;
a failing hub is retried on the next build and never fails the build: it is warned about
once per run of failures, with the reason, and noted when it recovers.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from publisher.config import Config
from publisher.files import write_atomic
from publisher.models import Article
from publisher.store import FeedIndexRow, Store
from publisher.syndicate import model, websub
from publisher.syndicate.listings import FeedGroup, index_html, opml
from publisher.syndicate.model import Channel

log = logging.getLogger(__name__)

# Bump when the bytes the writer produces for the same input change, so that a new
# version rebuilds every feed once instead of trusting old fingerprints.
WRITER_VERSION = "2"
OPML_FILE = "feeds.opml"
INDEX_FILE = "index.html"
_ID_CHUNK = 500
_FROZEN = "frozen:"


@dataclass
class FeedsReport:
    """Which feed files were rewritten and which were already up to date."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    entries: int = 0
    feeds: int = 0
    websub: str = ""
    warnings: list[str] = field(default_factory=list)


def slugify(text: str) -> str:
    """A file-name-safe ASCII slug of a tag or author name (never empty)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].strip("-")
    return slug or "t-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def unique_slugs(names: Iterable[str]) -> dict[str, str]:
    """A slug per name; names whose slugs collide get a short hash suffix.

    A name that is its own slug (``research``) keeps it, so adding ``Research`` later
    never moves the URL of the ``research`` feed.
    """
    by_slug: dict[str, list[str]] = {}
    for name in names:
        by_slug.setdefault(slugify(name), []).append(name)
    out: dict[str, str] = {}
    for slug, group in by_slug.items():
        for name in group:
            if len(group) == 1 or name == slug:
                out[name] = slug
            else:
                out[name] = f"{slug}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:6]}"
    return out


def _write_if_changed(path: Path, data: bytes, report: FeedsReport) -> bool:
    """Write ``data`` atomically unless ``path`` already holds exactly these bytes."""
    try:
        if path.read_bytes() == data:
            report.unchanged.append(path)
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    report.written.append(path)
    return True


@dataclass
class _Doc:
    """One planned output file."""

    path: str  # relative to output_dir, with "/"
    rows: Sequence[FeedIndexRow]
    render: Callable[[list[Article]], bytes]
    key: str  # everything besides the rows that decides the bytes
    topic: str = ""  # public URL to announce to the WebSub hub when it changes
    frozen: bool = False  # a complete archive page: never rewritten once written

    def fingerprint(self, tokens: dict[int, bytes]) -> str:
        """A hash of every input of this file; ``tokens`` caches each row's part."""
        digest = hashlib.sha256(f"{WRITER_VERSION}\n{self.key}\n".encode())
        for r in self.rows:
            token = tokens.get(r.id)
            if token is None:
                token = tokens[r.id] = (
                    f"{r.id}:{r.content_hash}:{r.published_at.isoformat()}:"
                    f"{r.updated_at.isoformat()}\n".encode()
                )
            digest.update(token)
        return digest.hexdigest()


def _channels(
    config: Config, index: Sequence[FeedIndexRow], pages: int
) -> tuple[
    Channel, list[tuple[Channel, list[FeedIndexRow]]], list[tuple[Channel, list[FeedIndexRow]]]
]:
    """The main channel, and the per-tag and per-author channels with their newest rows."""
    site, feeds = config.site, config.feeds
    base = config.feeds_url.rstrip("/")
    common: dict[str, Any] = {
        "site_url": site.url,
        "feeds_url": config.feeds_url,
        "language": site.language,
        "author": site.author,
        "hub": feeds.websub_hub,
        "ttl": feeds.ttl,
    }
    prev = f"{base}/{model.archive_path(pages)}" if pages else ""
    main = Channel(title=site.title, description=site.description, prev_archive=prev, **common)

    def grouped(
        enabled: bool, keys: Callable[[FeedIndexRow], Iterable[str]]
    ) -> dict[str, list[FeedIndexRow]]:
        out: dict[str, list[FeedIndexRow]] = {}
        if not enabled:
            return out
        for row in index:  # newest first
            for name in dict.fromkeys(keys(row)):
                bucket = out.setdefault(name, [])
                if len(bucket) < feeds.limit:
                    bucket.append(row)
        return out

    def channels(
        groups: dict[str, list[FeedIndexRow]], folder: str, describe: str
    ) -> list[tuple[Channel, list[FeedIndexRow]]]:
        out = []
        for name, slug in sorted(unique_slugs(groups).items(), key=lambda kv: kv[1]):
            prefix = f"{folder}/{slug}."
            channel = Channel(
                title=f"{site.title}: {name}",
                description=describe.format(name),
                prefix=prefix,
                feed_id=f"{base}/{prefix}{model.FILENAMES['atom']}",
                **common,
            )
            out.append((channel, groups[name]))
        return out

    tags = grouped(feeds.per_tag, lambda r: r.tags)
    authors = grouped(feeds.per_author, lambda r: [r.author] if r.author else [])
    tag_channels = channels(tags, "tags", "Articles tagged {}")
    author_channels = channels(authors, "authors", "Articles by {}")
    return main, tag_channels, author_channels


def plan(config: Config, index: Sequence[FeedIndexRow], now: datetime) -> list[_Doc]:
    """Every file the build writes, with its inputs (nothing is built yet)."""
    feeds = config.feeds
    size = feeds.archive_page_size
    by_id = sorted(index, key=lambda r: r.id)  # archive pages are in order of first sight
    pages = -(-len(by_id) // size) if feeds.archive else 0
    main, tag_channels, author_channels = _channels(config, index, pages)
    docs: list[_Doc] = []

    def feed_docs(channel: Channel, rows: Sequence[FeedIndexRow]) -> None:
        for kind in feeds.formats:

            def render(articles: list[Article], kind: str = kind) -> bytes:
                return model.build(kind, articles, channel, now)

            docs.append(
                _Doc(
                    channel.path(kind),
                    rows,
                    render,
                    key=f"{kind}\n{channel!r}",
                    topic=channel.self_url(kind),
                )
            )

    feed_docs(main, index[: feeds.limit])
    for channel, rows in [*tag_channels, *author_channels]:
        feed_docs(channel, rows)
    for page in range(1, pages + 1):
        chunk = by_id[(page - 1) * size : page * size]
        chunk = sorted(chunk, key=lambda r: (r.published_at, r.id), reverse=True)
        has_next = page < pages

        def render_page(
            articles: list[Article], page: int = page, has_next: bool = has_next
        ) -> bytes:
            return model.atom_archive(articles, main, page, has_next, now)

        docs.append(
            _Doc(
                model.archive_path(page),
                chunk,
                render_page,
                key=f"archive\n{page}\n{has_next}\n{main!r}",
                frozen=has_next and len(chunk) == size,
            )
        )
    groups = [
        FeedGroup("Main feed", (main,)),
        FeedGroup("Topics", tuple(c for c, _ in tag_channels)),
        FeedGroup("Authors", tuple(c for c, _ in author_channels)),
    ]
    opml_bytes = opml(config.site.title, groups, feeds.formats)
    index_bytes = index_html(
        f"{config.site.title}: feeds",
        main,
        groups,
        feeds.formats,
        language=config.site.language,
        archive_pages=pages,
        opml_url=f"{config.feeds_url.rstrip('/')}/{OPML_FILE}",
    )
    docs.append(_Doc(OPML_FILE, (), lambda _a: opml_bytes, key=opml_bytes.hex()))
    docs.append(_Doc(INDEX_FILE, (), lambda _a: index_bytes, key=index_bytes.hex()))
    return docs


def _load(store: Store, ids: Iterable[int]) -> dict[int, Article]:
    wanted = sorted(set(ids))
    out: dict[int, Article] = {}
    for start in range(0, len(wanted), _ID_CHUNK):
        for article in store.articles_by_id(wanted[start : start + _ID_CHUNK]):
            assert article.id is not None
            out[article.id] = article
    return out


def write_feeds(
    config: Config,
    store: Store,
    now: datetime,
    *,
    force: bool = False,
    ping: Callable[[str, Sequence[str], float], None] | None = None,
) -> FeedsReport:
    """Build and write every configured feed; rebuild only what changed (see module doc).

    ``force`` ignores the remembered fingerprints (every file is rebuilt, and still
    written only when its bytes changed). ``ping`` replaces the WebSub HTTP call.
    """
    out = config.feeds.output_dir
    report = FeedsReport()
    index = store.feed_index()
    report.entries = min(len(index), config.feeds.limit)
    state = store.feeds_state()
    files: dict[str, str] = {} if force else dict(state.get("files", {}))
    docs = plan(config, index, now)
    report.feeds = sum(1 for d in docs if d.topic)
    stale: list[tuple[_Doc, str]] = []
    tokens: dict[int, bytes] = {}
    for doc in docs:
        path = out / doc.path
        fp = doc.fingerprint(tokens)
        if doc.frozen:
            fp = _FROZEN + fp
        known = files.get(doc.path, "")
        if (known == fp or (doc.frozen and known.startswith(_FROZEN))) and path.exists():
            report.unchanged.append(path)
            continue
        stale.append((doc, fp))
    articles = _load(store, (r.id for doc, _ in stale for r in doc.rows))
    changed_topics: list[str] = []
    for doc, fp in stale:
        try:
            data = doc.render([articles[r.id] for r in doc.rows if r.id in articles])
        except (ValueError, TypeError, etree.LxmlError) as exc:
            # Bad input never stops the build: report it, keep the last good file.
            report.warnings.append(f"{out / doc.path}: not rebuilt: {exc}")
            files.pop(doc.path, None)
            continue
        if _write_if_changed(out / doc.path, data, report) and doc.topic:
            changed_topics.append(doc.topic)
        files[doc.path] = fp
    pending: list[str] = list(state.get("websub_pending", []))
    failing: dict[str, Any] | None = state.get("websub_failing")
    hub = config.feeds.websub_hub
    if hub:
        topics = sorted(set(pending) | set(changed_topics))
        if topics:
            send = ping or _ping
            outcome = websub.announce(
                hub, topics, failing, now, lambda h, t: send(h, t, config.feeds.websub_timeout)
            )
            pending, failing = outcome.pending, outcome.failing
            report.websub = outcome.note
            if outcome.warning:
                log.warning("%s", outcome.warning)
                report.warnings.append(outcome.warning)
            elif outcome.note:
                log.info("websub: %s", outcome.note)
    else:
        pending, failing = [], None
    planned = {d.path for d in docs}
    new_state: dict[str, Any] = {
        "files": {k: v for k, v in files.items() if k in planned},
        "websub_pending": pending,
    }
    if failing:
        new_state["websub_failing"] = failing
    if new_state != state:
        store.save_feeds_state(new_state)
    return report


def _ping(hub: str, topics: Sequence[str], timeout: float) -> None:
    websub.publish(hub, topics, timeout=timeout)
