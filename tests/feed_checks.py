"""Structural feed checks with lxml and jsonschema (the W3C validator is not reachable).

``check_rss`` covers the RSS 2.0 required elements and RFC 822 dates, ``check_atom`` the
RFC 4287 required elements and RFC 3339 dates, ``check_json_feed`` validates against the
JSON Feed 1.1 schema shipped in tests/data. Each returns the parsed document and raises
AssertionError naming the element at fault.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM}}}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
SCHEMA = Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json"
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT)$"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
HTTP = re.compile(r"^https?://\S+$")


def feedparse(data: bytes) -> feedparser.FeedParserDict:
    """feedparser over bytes (never a path), asserting no bozo."""
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def _rfc822(value: str | None, where: str) -> None:
    assert value and RFC822.match(value), f"{where}: {value!r} is not an RFC 822 date"
    parsedate_to_datetime(value)


def _rfc3339(value: str | None, where: str) -> None:
    assert value and RFC3339.match(value), f"{where}: {value!r} is not an RFC 3339 date"


def check_rss(data: bytes, self_url: str | None = None) -> etree._Element:
    """RSS 2.0: required channel and item elements, dates, guid, enclosure, self link."""
    root = etree.fromstring(data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channels = root.findall("channel")
    assert len(channels) == 1, "exactly one <channel>"
    channel = channels[0]
    for name in ("title", "link", "description"):
        assert len(channel.findall(name)) == 1, f"channel needs one <{name}>"
        assert (channel.findtext(name) or "").strip(), f"channel <{name}> is empty"
    assert HTTP.match(channel.findtext("link") or "")
    for name in ("lastBuildDate", "pubDate"):
        if channel.find(name) is not None:
            _rfc822(channel.findtext(name), f"channel/{name}")
    for name in ("ttl", "language", "generator"):
        assert channel.find(name) is not None, f"channel <{name}> is missing"
    assert (channel.findtext("ttl") or "").isdigit()
    selfs = channel.findall(f"{A}link[@rel='self']")
    assert len(selfs) == 1, "one atom:link rel=self"
    if self_url:
        assert selfs[0].get("href") == self_url
    for n, item in enumerate(channel.findall("item")):
        where = f"item[{n}]"
        assert item.find("title") is not None or item.find("description") is not None, where
        assert HTTP.match(item.findtext("link") or ""), f"{where}/link"
        guid = item.find("guid")
        assert guid is not None and (guid.text or "").strip(), f"{where}/guid"
        permalink = guid.get("isPermaLink", "true")
        assert permalink in ("true", "false"), f"{where}/guid@isPermaLink"
        if permalink == "true":
            assert HTTP.match(guid.text or ""), f"{where}/guid is a permalink but not a URL"
        _rfc822(item.findtext("pubDate"), f"{where}/pubDate")
        assert item.find(CONTENT) is not None, f"{where}/content:encoded"
        assert item.find("author") is not None or item.find(DC_CREATOR) is not None, (
            f"{where} has no author or dc:creator"
        )
        for enclosure in item.findall("enclosure"):
            assert HTTP.match(enclosure.get("url") or ""), f"{where}/enclosure@url"
            assert (enclosure.get("length") or "").isdigit(), f"{where}/enclosure@length"
            assert re.match(r"^\w+/[\w.+-]+$", enclosure.get("type") or ""), f"{where}/@type"
        for category in item.findall("category"):
            assert (category.text or "").strip(), f"{where}/category is empty"
    return root


def check_atom(data: bytes, self_url: str | None = None) -> etree._Element:
    """RFC 4287: feed and entry required elements, dates, ids, authors, links."""
    root = etree.fromstring(data)
    assert root.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{A}{name}")) == 1, f"feed needs exactly one atom:{name}"
    assert IRI.match(root.findtext(f"{A}id") or ""), "feed atom:id is not an IRI"
    _rfc3339(root.findtext(f"{A}updated"), "feed/updated")
    feed_author = root.find(f"{A}author") is not None
    selfs = root.findall(f"{A}link[@rel='self']")
    assert len(selfs) == 1, "one link rel=self"
    if self_url:
        assert selfs[0].get("href") == self_url
    alternates = [
        (x.get("type"), x.get("hreflang"))
        for x in root.findall(f"{A}link")
        if x.get("rel", "alternate") == "alternate"
    ]
    assert len(alternates) == len(set(alternates)), "duplicate alternate links"
    for link in root.iter(f"{A}link"):
        assert link.get("href"), "atom:link without href"
    for n, entry in enumerate(root.findall(f"{A}entry")):
        where = f"entry[{n}]"
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1, f"{where} needs one atom:{name}"
        assert IRI.match(entry.findtext(f"{A}id") or ""), f"{where}/id is not an IRI"
        _rfc3339(entry.findtext(f"{A}updated"), f"{where}/updated")
        published = entry.findall(f"{A}published")
        assert len(published) <= 1
        if published:
            _rfc3339(published[0].text, f"{where}/published")
        assert feed_author or entry.find(f"{A}author/{A}name") is not None, f"{where} author"
        content = entry.findall(f"{A}content")
        assert len(content) <= 1
        if content:
            assert content[0].get("type", "text") in ("text", "html", "xhtml"), where
        else:
            assert entry.find(f"{A}link[@rel='alternate']") is not None, where
    return root


@cache
def _schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def check_json_feed(data: bytes, self_url: str | None = None) -> dict[str, Any]:
    """Valid UTF-8 JSON that the JSON Feed 1.1 schema accepts."""
    feed = json.loads(data.decode("utf-8"))
    jsonschema.Draft202012Validator(_schema()).validate(feed)
    if self_url:
        assert feed["feed_url"] == self_url
    return feed


def check_file(path: Path, self_url: str | None = None) -> Any:
    """Run the right check for a feed file by its name."""
    data = path.read_bytes()
    if path.name.endswith("rss.xml"):
        feedparse(data)
        return check_rss(data, self_url)
    if path.name.endswith("atom.xml"):
        feedparse(data)
        return check_atom(data, self_url)
    return check_json_feed(data, self_url)
