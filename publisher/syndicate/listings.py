"""Pure lists of feeds: the OPML 2.0 file and the HTML index page with autodiscovery tags.

They list the channels that :mod:`publisher.syndicate.model` writes; like it, this module does
no I/O and reads no clock (the feed writer puts the bytes on disk).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from publisher.syndicate.model import MEDIA_TYPES, Channel, archive_path, xml_safe


@dataclass(frozen=True)
class FeedGroup:
    """A titled group of channels for the index (``Main``, ``Topics``, ``Authors``)."""

    title: str
    channels: tuple[Channel, ...]


def opml(title: str, groups: Sequence[FeedGroup], formats: Sequence[str]) -> bytes:
    """OPML 2.0 listing every feed (RSS when written, else the first format), by group."""
    kind = "rss" if "rss" in formats else formats[0]
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = xml_safe(title)
    body = etree.SubElement(root, "body")
    for group in groups:
        if not group.channels:
            continue
        outline = etree.SubElement(body, "outline", text=xml_safe(group.title))
        for channel in group.channels:
            etree.SubElement(
                outline,
                "outline",
                type="rss",
                text=xml_safe(channel.title),
                title=xml_safe(channel.title),
                xmlUrl=channel.self_url(kind),
                htmlUrl=channel.site_url,
            )
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


def index_html(
    title: str,
    main: Channel,
    groups: Sequence[FeedGroup],
    formats: Sequence[str],
    *,
    language: str = "en",
    archive_pages: int = 0,
    opml_url: str = "",
) -> bytes:
    """An HTML page listing every feed, with ``<link rel="alternate">`` autodiscovery tags.

    With ``archive_pages`` it also links the Atom archive pages, newest first.
    """
    esc = html.escape
    lines = [
        "<!DOCTYPE html>",
        f'<html lang="{esc(language)}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
    ]
    for kind in formats:
        lines.append(
            f'<link rel="alternate" type="{MEDIA_TYPES[kind]}" '
            f'title="{esc(main.title)} ({_LABELS[kind]})" href="{esc(main.self_url(kind))}">'
        )
    lines += ["</head>", "<body>", f"<h1>{esc(title)}</h1>"]
    if opml_url:
        lines.append(f'<p><a href="{esc(opml_url)}">All feeds as OPML</a></p>')
    for group in groups:
        if not group.channels:
            continue
        lines += [f"<h2>{esc(group.title)}</h2>", "<ul>"]
        for channel in group.channels:
            links = ", ".join(
                f'<a href="{esc(channel.self_url(kind))}">{_LABELS[kind]}</a>' for kind in formats
            )
            lines.append(f"<li>{esc(channel.title)}: {links}</li>")
        lines.append("</ul>")
    if archive_pages:
        base = main.feeds_url.rstrip("/")
        lines += ["<h2>Archive</h2>", "<ul>"]
        for page in range(archive_pages, 0, -1):
            lines.append(f'<li><a href="{esc(base)}/{archive_path(page)}">Page {page}</a></li>')
        lines.append("</ul>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(xml_safe(line) for line in lines).encode("utf-8")
