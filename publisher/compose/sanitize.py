"""Untrusted text made safe (pure, no I/O): article HTML, header values, plain-text excerpts.

* :func:`clean_html` runs article HTML through an nh3 allow-list and makes every link and
  image absolute against a base URL, so the same HTML is safe in feeds, emails and pages.
* :func:`clean_header_text` turns a title or name into one line that cannot start a new mail
  header, including RFC 2047 encoded words that decode to CR/LF (CVE-2024-6923).
* :func:`plain_text` strips markup from a title, author or tag name and keeps its text, so
  feeds, emails and pages all show plain text (the W3C Feed Validator warns on HTML in titles).
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_URL_ATTRIBUTES = {"href", "src", "cite"}


def absolute_url(url: str, base: str) -> str:
    """Resolve ``url`` against ``base``; fragments-only and mailto links are kept as they are."""
    url = url.strip()
    if not url or url.startswith("#") or url.lower().startswith("mailto:"):
        return url
    return urljoin(base, url)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (they would break every feed)."""
    return _XML_INVALID.sub("", text)


def clean_html(html: str, base_url: str) -> str:
    """Sanitize article HTML with the allow-list and make its URLs absolute against base_url."""

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES:
            return value
        resolved = absolute_url(value, base_url)
        scheme = urlsplit(resolved).scheme.lower()
        if resolved.startswith("#") or scheme in URL_SCHEMES:
            return resolved
        return None

    return nh3.clean(
        xml_safe(html),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=attribute_filter,
        link_rel="noopener",
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def clean_header_text(text: str, *, max_length: int = 250) -> str:
    """Return ``text`` as a single safe line for a mail header (or a feed title).

    Encoded words are decoded first, so their CR/LF is seen and removed like a raw one; the
    message builder then encodes the clean text itself.
    """
    for _ in range(3):
        if not _ENCODED_WORD.search(text):
            break
        try:
            text = str(make_header(decode_header(text)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            text = _ENCODED_WORD.sub(lambda m: m.group(0).replace("=?", "= ?"), text)
            break
    text = xml_safe(_CONTROL.sub(" ", unicodedata.normalize("NFC", text)))
    text = " ".join(text.split())
    if _ENCODED_WORD.search(text):
        # Still looks like an encoded word after decoding: defang it so no client decodes it.
        text = text.replace("=?", "= ?")
    return text[:max_length].rstrip()


class _PlainText(HTMLParser):
    """Collects the text of a short HTML string; complete script/style elements are dropped."""

    _SPACES = {"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden: list[str] | None = None  # text inside an open <script>/<style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden = []
        elif tag in self._SPACES:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SPACES:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = None  # code, not text
        elif tag in self._SPACES:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        (self.parts if self._hidden is None else self._hidden).append(data)

    def text(self) -> str:
        if self._hidden is None:
            return "".join(self.parts)
        # An unclosed <script> ("how to use the <script> tag") hides nothing: keep its text,
        # including what the parser still holds unread while it waits for </script>.
        return "".join([*self.parts, *self._hidden, self.rawdata])


def plain_text(text: str, *, html: bool = True, max_length: int = 250) -> str:
    """A title, author or tag name as one line of plain text: markup removed, its text kept.

    With ``html`` the value is HTML (front matter, a feed title marked as HTML), so its
    entities are decoded, once. Without it the value is already decoded text (a feed's
    plain-text title, a JSON Feed field): tags are still stripped, but an ``&`` stays as it
    is. The contents of complete ``<script>``/``<style>`` elements are code, not text, and
    are dropped. The result then goes through :func:`clean_header_text` (one line, no
    control characters, whitespace collapsed).
    """
    if "<" in text or (html and "&" in text):
        parser = _PlainText()
        # Escaping "&" first keeps already-decoded text as it is while tags are removed.
        parser.feed(text if html else text.replace("&", "&amp;"))
        parser.close()
        text = parser.text()
    return clean_header_text(text, max_length=max_length)


class _TextExtractor(HTMLParser):
    _BLOCKS = {"p", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "div"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            # Line breaks inside a paragraph are soft; blocks add their own "\n".
            self.parts.append(data.replace("\n", " "))


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment, one paragraph a line (for excerpts and search)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def excerpt(text: str, words: int) -> str:
    """The first ``words`` words of ``text``, with an ellipsis when it was cut."""
    parts = text.split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(",;:.") + "…"
