"""The feed build through the real store: contents, ids, order, incremental writes, archives.

Every generated file is read back with feedparser (from bytes), checked structurally with
lxml (RFC 4287, RSS 2.0) or against the JSON Feed 1.1 schema in tests/data.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from lxml import etree

from publisher import config as config_module
from publisher.app import App
from publisher.models import Article
from publisher.services import feeds as feed_service
from publisher.store import Store
from publisher.syndicate import writer as feedwriter
from tests.feed_checks import A, check_atom, check_file, check_json_feed, check_rss, feedparse

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
SITE = "https://news.example.org"
FEEDS_URL = "https://news.example.org/feeds/"
FH = "{http://purl.org/syndication/history/1.0}"


def write_feeds_config(folder: Path, store_url: str, feeds: str = "") -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[site]
title = "Pleura Health News"
url = "{SITE}"
description = "Research news."
author = "Newsroom"

[store]
url = "{store_url}"

[feeds]
output_dir = "feeds"
public_url = "{FEEDS_URL}"
{feeds}
""",
        encoding="utf-8",
    )
    return path


def make_article(n: int, **changes: object) -> Article:
    published = datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(hours=n)
    fields: dict[str, object] = {
        "source": "newsroom",
        "guid": f"story-{n}",
        "title": f"Story {n}",
        "url": f"{SITE}/story-{n}/",
        "published_at": published,
        "updated_at": published,
        "content_html": f"<p>Body of story <b>{n}</b>.</p>",
        "summary": f"Summary {n}.",
        "author": ["Dana Whitfield", "Sam Okafor"][n % 2],
        "tags": ("research", ["surgery", "exposure", "trials"][n % 3]),
        "image": f"{SITE}/images/{n}.jpg",
        "content_hash": f"hash-{n}",
    }
    fields.update(changes)
    return Article(**fields)  # type: ignore[arg-type]


class Site:
    """A config, a real SQLite store and the app wired with a fixed clock."""

    def __init__(self, tmp_path: Path, feeds: str = "", now: datetime = NOW) -> None:
        self.path = write_feeds_config(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", feeds)
        self.config = config_module.load(self.path)
        self.store = Store.open(self.config.store_url)
        self.now = now
        self.app = App(config=self.config, store=self.store, clock=lambda: self.now)
        self.out = self.config.feeds.output_dir

    def add(self, *articles: Article) -> None:
        for article in articles:
            self.store.upsert_article(article, self.now, "news.example.org")

    def build(self, **kwargs: object) -> feedwriter.FeedsReport:
        return feed_service.write_feeds(self.app, **kwargs)  # type: ignore[arg-type]

    def read(self, rel: str) -> bytes:
        return (self.out / rel).read_bytes()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path, "limit = 5\nper_tag = true\nper_author = true\n")
    yield s
    s.store.close()


def test_every_feed_matches_the_store(site: Site) -> None:
    site.add(*(make_article(n) for n in range(8)))
    report = site.build()
    assert report.entries == 5 and not report.warnings
    stored = site.store.recent_articles(5)
    ids = [a.feed_id for a in stored]
    assert [a.guid for a in stored] == [f"story-{n}" for n in (7, 6, 5, 4, 3)]

    rss = site.read("rss.xml")
    root = check_rss(rss, FEEDS_URL + "rss.xml")
    parsed = feedparse(rss)
    assert [e.id for e in parsed.entries] == ids
    for entry, article in zip(parsed.entries, stored, strict=True):
        assert entry.published_parsed[:6] == article.published_at.timetuple()[:6]
        assert entry.content[0].value == article.content_html
        assert entry.summary == article.summary
        assert [t.term for t in entry.tags] == list(article.tags)
        assert entry.author == article.author
    enclosure = root.find("channel/item/enclosure")
    assert enclosure.attrib == {"url": f"{SITE}/images/7.jpg", "length": "0", "type": "image/jpeg"}
    assert root.findtext("channel/ttl") == "60"
    assert root.findtext("channel/language") == "en"
    assert root.findtext("channel/generator").startswith("publisher")
    assert {g.get("isPermaLink") for g in root.iter("guid")} == {"false"}

    atom = site.read("atom.xml")
    check_atom(atom, FEEDS_URL + "atom.xml")
    parsed = feedparse(atom)
    assert [e.id for e in parsed.entries] == ids
    for entry, article in zip(parsed.entries, stored, strict=True):
        assert entry.published_parsed[:6] == article.published_at.timetuple()[:6]
        assert entry.updated_parsed[:6] == article.updated_at.timetuple()[:6]
        assert entry.content[0].type == "text/html"
    links = {x.get("rel"): x.get("href") for x in etree.fromstring(atom).findall(f"{A}link")}
    assert links == {"self": FEEDS_URL + "atom.xml", "alternate": SITE}

    feed = check_json_feed(site.read("feed.json"), FEEDS_URL + "feed.json")
    assert [item["id"] for item in feed["items"]] == ids
    for item, article in zip(feed["items"], stored, strict=True):
        assert item["date_published"] == article.published_at.isoformat().replace("+00:00", "Z")
        assert item["image"] == article.image and item["tags"] == list(article.tags)
        assert item["authors"] == [{"name": article.author}]


def test_topic_and_author_feeds_and_their_index(site: Site) -> None:
    site.add(*(make_article(n) for n in range(8)))
    site.build()
    expected = {
        "tags/research": [7, 6, 5, 4, 3],
        "tags/surgery": [6, 3, 0],
        "tags/exposure": [7, 4, 1],
        "tags/trials": [5, 2],
        "authors/dana-whitfield": [
            6,
            4,
            2,
            0,
        ],
        "authors/sam-okafor": [7, 5, 3, 1],
    }
    for prefix, numbers in expected.items():
        for name in ("rss.xml", "atom.xml", "feed.json"):
            rel = f"{prefix}.{name}"
            check_file(site.out / rel, FEEDS_URL + rel)
        parsed = feedparse(site.read(f"{prefix}.atom.xml"))
        assert [e.link for e in parsed.entries] == [f"{SITE}/story-{n}/" for n in numbers]
    research = feedparse(site.read("tags/research.rss.xml"))
    assert research.feed.title == "Pleura Health News: research"
    # The OPML lists every feed; the HTML index has autodiscovery links and lists them all.
    opml = etree.fromstring(site.read("feeds.opml"))
    urls = {o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")}
    assert urls == {FEEDS_URL + "rss.xml"} | {f"{FEEDS_URL}{p}.rss.xml" for p in expected}
    page = site.read("index.html").decode("utf-8")
    for kind, media in [("rss.xml", "rss"), ("atom.xml", "atom"), ("feed.json", "feed")]:
        assert f'rel="alternate" type="application/{media}' in page
        assert f'href="{FEEDS_URL}{kind}"' in page
    for prefix in expected:
        assert f"{FEEDS_URL}{prefix}.atom.xml" in page


def test_ids_are_stable_and_an_edit_keeps_id_and_published(site: Site) -> None:
    site.add(*(make_article(n) for n in range(3)))
    site.build()
    before = feedparse(site.read("atom.xml"))
    later = NOW + timedelta(days=3)
    site.now = later
    edited = make_article(1, content_html="<p>Corrected body.</p>", content_hash="hash-1-v2")
    site.add(edited)
    site.build()
    after = feedparse(site.read("atom.xml"))
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    old = next(e for e in before.entries if e.link.endswith("story-1/"))
    new = next(e for e in after.entries if e.link.endswith("story-1/"))
    assert new.published == old.published
    assert new.updated_parsed[:6] == later.timetuple()[:6] != old.updated_parsed[:6]
    assert new.content[0].value == "<p>Corrected body.</p>"
    item = next(
        i for i in json.loads(site.read("feed.json"))["items"] if i["url"].endswith("story-1/")
    )
    assert item["date_modified"] == "2026-12-01T15:00:00Z"
    assert item["date_published"] == "2026-11-01T10:00:00Z"
    rss = etree.fromstring(site.read("rss.xml"))
    assert parsedate_to_datetime(rss.findtext("channel/lastBuildDate")) == later


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


def _wait_for_mtime_tick(folder: Path, newest: int) -> None:
    """Wait until a file written now gets an mtime later than ``newest``.

    Only then would a needless rewrite show as a changed mtime; the filesystem's clock may
    tick coarsely, so this waits on the condition instead of sleeping a guessed time.
    """
    probe = folder / ".mtime-probe"
    deadline = time.monotonic() + 10
    while True:
        probe.write_bytes(b"x")
        if probe.stat().st_mtime_ns > newest:
            probe.unlink()
            return
        assert time.monotonic() < deadline, "the filesystem clock did not move"
        time.sleep(0.001)


def test_no_change_rebuild_writes_nothing_and_a_change_rewrites_only_its_feeds(
    site: Site,
) -> None:
    site.add(*(make_article(n) for n in range(8)))
    first = site.build()
    assert first.written and not first.unchanged
    files = _mtimes(site.out)
    contents = {rel: site.read(rel) for rel in files}
    _wait_for_mtime_tick(site.out.parent, max(files.values()))
    site.now = NOW + timedelta(days=30)  # the clock moves; nothing else does
    again = site.build()
    assert again.written == []
    assert len(again.unchanged) == len(files)
    assert _mtimes(site.out) == files
    assert {rel: site.read(rel) for rel in files} == contents
    # Even a forced rebuild (every file built again) leaves equal bytes and mtimes alone.
    forced = site.build(force=True)
    assert forced.written == [] and _mtimes(site.out) == files

    # A new "trials" article by Dana: only the feeds that hold it change.
    site.add(make_article(20, author="Dana Whitfield", tags=("trials",)))
    changed = site.build()
    rel = sorted(str(p.relative_to(site.out)) for p in changed.written)
    assert rel == sorted(
        [f"{p}{k}" for p in ("", "tags/trials.", "authors/dana-whitfield.")
         for k in ("rss.xml", "atom.xml", "feed.json")]
    )  # fmt: skip
    now_files = _mtimes(site.out)
    for name, mtime in files.items():
        if name not in rel:
            assert now_files[name] == mtime, name


def test_deleted_output_file_is_written_again(site: Site) -> None:
    site.add(make_article(1))
    site.build()
    (site.out / "rss.xml").unlink()
    report = site.build()
    assert [p.name for p in report.written] == ["rss.xml"]
    check_rss(site.read("rss.xml"))


def test_tags_whose_slugs_collide_get_distinct_files(site: Site) -> None:
    site.add(
        make_article(1, tags=("clinical trials",)),
        make_article(2, tags=("Clinical-Trials",)),
        make_article(3, tags=("clinical-trials",)),
        make_article(4, tags=("مقالات",)),
    )
    site.build()
    names = sorted(p.name for p in (site.out / "tags").glob("*.atom.xml"))
    assert "clinical-trials.atom.xml" in names
    assert len(names) == 4 and len({n.split(".")[0] for n in names}) == 4
    hits = feedparse(site.read("tags/clinical-trials.atom.xml")).entries
    assert [e.link for e in hits] == [f"{SITE}/story-3/"]


# --- archives (RFC 5005) -----------------------------------------------------------------


def _walk_archive(site: Site) -> list[list[str]]:
    """Follow prev-archive from the subscription document to the oldest page."""
    current = etree.fromstring(site.read("atom.xml"))
    href = current.find(f"{A}link[@rel='prev-archive']").get("href")
    pages: list[list[str]] = []
    seen: set[str] = set()
    while href:
        assert href.startswith(FEEDS_URL) and href not in seen
        seen.add(href)
        data = site.read(href.removeprefix(FEEDS_URL))
        page = check_atom(data, href)
        assert page.find(f"{FH}archive") is not None
        assert page.find(f"{A}link[@rel='current']").get("href") == FEEDS_URL + "atom.xml"
        pages.append([e.findtext(f"{A}id") for e in page.findall(f"{A}entry")])
        feedparse(data)
        prev = page.find(f"{A}link[@rel='prev-archive']")
        href = prev.get("href") if prev is not None else None
    return pages


def test_archive_chain_visits_every_article_once(tmp_path: Path) -> None:
    site = Site(tmp_path, "limit = 3\narchive = true\narchive_page_size = 4\n")
    site.add(*(make_article(n) for n in range(10)))
    site.build()
    pages = _walk_archive(site)
    assert [len(p) for p in pages] == [2, 4, 4]  # newest page first
    ids = [i for page in pages for i in page]
    stored = {a.feed_id for a in site.store.recent_articles(100)}
    assert Counter(ids) == Counter(stored)
    # The subscription document keeps only the newest 3; old entries stay reachable.
    assert len(feedparse(site.read("atom.xml")).entries) == 3
    # next-archive links go the other way.
    page1 = etree.fromstring(site.read("archive/1.atom.xml"))
    assert page1.find(f"{A}link[@rel='next-archive']").get("href").endswith("archive/2.atom.xml")
    assert page1.find(f"{A}link[@rel='prev-archive']") is None
    newest = etree.fromstring(site.read("archive/3.atom.xml"))
    assert newest.find(f"{A}link[@rel='next-archive']") is None
    index = site.read("index.html").decode()
    assert f"{FEEDS_URL}archive/1.atom.xml" in index
    site.store.close()


def test_complete_archive_pages_are_not_rewritten(tmp_path: Path) -> None:
    site = Site(tmp_path, "limit = 3\narchive = true\narchive_page_size = 4\n")
    site.add(*(make_article(n) for n in range(8)))  # exactly two full pages
    site.build()
    page2 = site.read("archive/2.atom.xml")
    assert etree.fromstring(page2).find(f"{A}link[@rel='next-archive']") is None
    frozen = site.read("archive/1.atom.xml")
    mtime = (site.out / "archive/1.atom.xml").stat().st_mtime_ns
    # An edit to an article on the complete page 1 does not rewrite it.
    site.add(make_article(0, title="Story 0, corrected", content_hash="hash-0-v2"))
    # A ninth article opens page 3; page 2 gains its next-archive link once, then freezes.
    site.add(make_article(8))
    site.build()
    assert site.read("archive/1.atom.xml") == frozen
    assert (site.out / "archive/1.atom.xml").stat().st_mtime_ns == mtime
    page2_now = etree.fromstring(site.read("archive/2.atom.xml"))
    assert page2_now.find(f"{A}link[@rel='next-archive']").get("href").endswith("3.atom.xml")
    assert [len(p) for p in _walk_archive(site)] == [1, 4, 4]
    mtime2 = (site.out / "archive/2.atom.xml").stat().st_mtime_ns
    site.add(make_article(9))
    report = site.build(force=False)
    assert site.out / "archive/2.atom.xml" in report.unchanged
    assert (site.out / "archive/2.atom.xml").stat().st_mtime_ns == mtime2
    site.store.close()


# --- hostile content ---------------------------------------------------------------------

HOSTILE_TITLE = "Ends ]]> here <script>alert(1)</script> & \x01\x0b bell\x07 😀 — שלום עולם"


def test_hostile_articles_give_well_formed_feeds(tmp_path: Path) -> None:
    site = Site(tmp_path, "limit = 10\nper_tag = true\nper_author = true\n")
    huge = "<p>" + ("Long body with words and ünïcode. " * 95_000) + "</p>"
    assert len(huge) > 3_000_000
    site.add(
        make_article(1, title=HOSTILE_TITLE, summary=HOSTILE_TITLE, author="مؤلف\x0c",
                     tags=("]]>", "emoji 😀", "\x02ctl")),
        make_article(2, content_html="<p>x</p><script>alert('body')</script>\x00"),
        make_article(3, content_html=huge, content_hash="huge"),
        make_article(4, title="مرحبا بالعالم — RTL ‮override‬", image=f"{SITE}/no-extension"),
    )  # fmt: skip
    report = site.build()
    assert not report.warnings
    for path in sorted(site.out.rglob("*")):
        if path.name.endswith(("rss.xml", "atom.xml", "feed.json")):
            check_file(path)
    atom = feedparse(site.read("atom.xml"))
    titles = {e.link: e.title for e in atom.entries}
    assert (
        titles[f"{SITE}/story-1/"]
        == "Ends ]]> here <script>alert(1)</script> &  bell 😀 — שלום עולם"
    )
    assert titles[f"{SITE}/story-4/"].startswith("مرحبا")
    body = next(e for e in atom.entries if e.link.endswith("story-3/")).content[0].value
    assert len(body) == len(huge)
    feed = json.loads(site.read("feed.json"))
    assert any(i["title"] == HOSTILE_TITLE for i in feed["items"])  # JSON escapes, not strips
    rss = etree.fromstring(site.read("rss.xml"))
    no_image = next(i for i in rss.iter("item") if i.findtext("link").endswith("story-4/"))
    assert no_image.find("enclosure") is None  # type unknown: no enclosure
    site.store.close()


def test_markdown_script_and_missing_date_through_the_cli(tmp_path: Path) -> None:
    from tests.conftest import run_cli, write_config

    config = write_config(tmp_path)
    content = tmp_path / "content"
    (content / "scripted.md").write_text(
        '---\ntitle: "Script ]]> test 😀"\ndate: 2026-11-27T09:00:00Z\n---\n'
        "Hello <script>alert(1)</script> world.\n",
        encoding="utf-8",
    )
    (content / "undated.md").write_text("---\ntitle: No date\n---\nBody.\n", encoding="utf-8")
    collected = run_cli(config, "collect", now="2026-11-28T15:00:00+00:00", check=False)
    assert collected.returncode == 1  # undated.md was skipped; the rest was stored
    assert "undated.md: no date in front matter" in collected.stderr
    built = run_cli(config, "feeds", now="2026-11-28T15:00:00+00:00")
    assert "feeds     wrote" in built.stdout
    for name in ("rss.xml", "atom.xml", "feed.json"):
        check_file(tmp_path / "feeds" / name)
    atom = feedparse((tmp_path / "feeds" / "atom.xml").read_bytes())
    [entry] = [e for e in atom.entries if e.title == "Script ]]> test 😀"]
    assert "<script" not in entry.content[0].value and "world" in entry.content[0].value
    assert not any(e.title == "No date" for e in atom.entries)


def test_naive_datetimes_are_rejected(site: Site) -> None:
    from publisher.syndicate import model as syndication

    naive = dataclasses.replace(make_article(1), published_at=datetime(2026, 1, 1))
    channel = syndication.Channel("t", SITE, FEEDS_URL, "", "en", "")
    with pytest.raises(ValueError, match="naive datetime"):
        syndication.build("rss", [naive], channel, NOW)


def test_empty_store_gives_valid_empty_feeds(tmp_path: Path) -> None:
    site = Site(tmp_path, "archive = true\nper_tag = true\n")
    site.build()
    for name in ("rss.xml", "atom.xml", "feed.json"):
        check_file(site.out / name)
    assert not (site.out / "archive").exists()
    assert os.path.exists(site.out / "index.html")
    site.store.close()
