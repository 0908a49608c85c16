"""Tests for publisher.compose.sanitize: header text, article HTML and plain-text excerpts."""

from __future__ import annotations

import re

import pytest

from publisher.compose.sanitize import (
    absolute_url,
    clean_header_text,
    clean_html,
    excerpt,
    html_to_text,
)

BASE = "https://news.example.org/2026/11/story/"
INJECTION = "=?utf-8?q?x=0D=0ABcc:=20victim@example.org?="


def urls_in(html: str) -> list[str]:
    return re.findall(r'(?:href|src|cite)="([^"]*)"', html)


# --- clean_header_text -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello\r\nBcc: victim@example.org", "Hello Bcc: victim@example.org"),
        ("one\rtwo\nthree", "one two three"),
        ("nul\x00bell\x07esc\x1bdel\x7fend", "nul bell esc del end"),
        ("tab\tvt\x0bff\x0cend", "tab vt ff end"),
        ("nel\x85ls\u2028ps\u2029end", "nel ls ps end"),
        ("  lots   of \t spaces  ", "lots of spaces"),
    ],
)
def test_clean_header_text_makes_one_line(raw: str, expected: str) -> None:
    assert clean_header_text(raw) == expected


def test_encoded_word_with_crlf_becomes_one_line() -> None:
    cleaned = clean_header_text(INJECTION)
    assert cleaned == "x Bcc: victim@example.org"
    assert "\r" not in cleaned and "\n" not in cleaned
    assert "=?" not in cleaned


def test_encoded_word_after_text_is_decoded_and_flattened() -> None:
    cleaned = clean_header_text(f"Hi {INJECTION}")
    assert cleaned == "Hi x Bcc: victim@example.org"


def test_encoded_words_split_across_the_line_break() -> None:
    cleaned = clean_header_text(
        "Hi =?utf-8?q?x=0D=0A?= =?utf-8?b?QmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?="
    )
    assert "\r" not in cleaned and "\n" not in cleaned
    assert "=?" not in cleaned
    assert cleaned.endswith("Bcc: victim@example.org")


def test_doubly_encoded_word_is_decoded_or_defanged() -> None:
    # An encoded word whose decoded text is itself an encoded word carrying CR/LF.
    inner = INJECTION.replace("=", "=3D").replace("?", "=3F")
    cleaned = clean_header_text(f"=?utf-8?q?{inner}?=")
    assert "\r" not in cleaned and "\n" not in cleaned
    assert "=?" not in cleaned


def test_encoded_word_with_unknown_charset_is_defanged() -> None:
    cleaned = clean_header_text("=?x-no-such-charset?q?Bcc:=0D=0Ax?=")
    assert "=?" not in cleaned
    assert "\r" not in cleaned and "\n" not in cleaned


def test_legitimate_encoded_words_are_decoded() -> None:
    assert clean_header_text("=?utf-8?b?w6l0w6k=?= in =?utf-8?q?Z=C3=BCrich?=") == "été in Zürich"


def test_non_ascii_text_is_kept_and_normalized() -> None:
    assert clean_header_text("Zoe\u0301 ☕ 😀") == "Zoé ☕ 😀"


def test_clean_header_text_truncates() -> None:
    assert clean_header_text("a" * 300) == "a" * 250
    assert clean_header_text("word " * 10, max_length=12) == "word word wo"
    assert clean_header_text("abc   def", max_length=4) == "abc"


# --- clean_html ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "gone"),
    [
        ("<p>ok</p><script>alert(1)</script>", ["<script", "alert"]),
        ("<style>p { color: red }</style><p>ok</p>", ["<style", "color"]),
        ('<iframe src="https://evil.example.com/"></iframe><p>ok</p>', ["<iframe", "evil"]),
        ('<form action="/steal"><input name="pw"></form><p>ok</p>', ["<form", "<input", "steal"]),
        ('<p onclick="steal()" onmouseover="x()">ok</p>', ["onclick", "onmouseover", "steal"]),
        ('<img src="/a.png" onerror="steal()"><p>ok</p>', ["onerror", "steal"]),
        ('<a href="javascript:alert(1)">ok</a>', ["javascript", "href"]),
        ('<a href="  JaVaScRiPt:alert(1)">ok</a>', ["javascript", "href"]),
        ('<a href="java&#x09;script:alert(1)">ok</a>', ["script", "href"]),
        ('<a href="data:text/html,hi">ok</a>', ["data:", "href"]),
        ('<img src="data:image/png;base64,AAAA" alt="ok">', ["data:", "src"]),
        ('<p style="background:url(x)" class="c" id="i">ok</p>', ["style", "class", "id="]),
        ('<base href="https://evil.example.com/"><p>ok</p>', ["<base", "evil"]),
    ],
)
def test_clean_html_removes_dangerous_content(html: str, gone: list[str]) -> None:
    cleaned = clean_html(html, BASE)
    assert "ok" in cleaned
    for fragment in gone:
        assert fragment.lower() not in cleaned.lower(), cleaned


def test_clean_html_keeps_allowed_tags() -> None:
    html = (
        "<h2>Head</h2><p><strong>b</strong> <em>i</em> <code>c</code></p>"
        '<ul><li>one</li></ul><ol start="3"><li>two</li></ol>'
        "<blockquote>q</blockquote><pre>pre</pre>"
        '<table><thead><tr><th scope="col">h</th></tr></thead>'
        '<tbody><tr><td colspan="2">d</td></tr></tbody></table>'
        '<figure><img src="https://cdn.example.org/a.png" alt="A" width="10">'
        "<figcaption>cap</figcaption></figure>"
    )
    assert clean_html(html, BASE) == html


def test_clean_html_makes_relative_urls_absolute() -> None:
    html = (
        '<a href="other/">a</a><a href="/about/">b</a><a href="../up.html">c</a>'
        '<img src="chart.png"><img src="/images/hero.jpg">'
        '<a href="//cdn.example.com/x">d</a><blockquote cite="/sources/1">q</blockquote>'
    )
    assert urls_in(clean_html(html, BASE)) == [
        "https://news.example.org/2026/11/story/other/",
        "https://news.example.org/about/",
        "https://news.example.org/2026/11/up.html",
        "https://news.example.org/2026/11/story/chart.png",
        "https://news.example.org/images/hero.jpg",
        "https://cdn.example.com/x",
        "https://news.example.org/sources/1",
    ]


def test_clean_html_keeps_fragments_and_mailto() -> None:
    cleaned = clean_html('<a href="#notes">n</a> <a href="mailto:desk@example.org">m</a>', BASE)
    assert urls_in(cleaned) == ["#notes", "mailto:desk@example.org"]


def test_clean_html_links_get_noopener() -> None:
    cleaned = clean_html('<a href="https://example.org/" rel="opener" target="_blank">x</a>', BASE)
    assert cleaned == '<a href="https://example.org/" rel="noopener">x</a>'


def test_absolute_url() -> None:
    assert absolute_url(" img/a.png ", BASE) == f"{BASE}img/a.png"
    assert absolute_url("https://other.example/x", BASE) == "https://other.example/x"
    assert absolute_url("#top", BASE) == "#top"
    assert absolute_url("MAILTO:a@example.org", BASE) == "MAILTO:a@example.org"
    assert absolute_url("", BASE) == ""


# --- html_to_text and excerpt ----------------------------------------------------------


def test_html_to_text() -> None:
    html = (
        "<h1>Title</h1><p>One &amp; <b>two</b>   three</p>"
        "<script>var hidden = 1;</script><style>p { x: y }</style>"
        "<ul><li>first</li><li>second</li></ul><p>caf&eacute;</p>"
    )
    assert html_to_text(html) == "Title\nOne & two three\nfirst\nsecond\ncafé"


def test_html_to_text_keeps_a_soft_wrapped_paragraph_on_one_line() -> None:
    assert html_to_text("<p>first half\nsecond half</p><p>next</p>") == (
        "first half second half\nnext"
    )


def test_html_to_text_of_empty_input() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p> </p><br>") == ""


def test_excerpt_keeps_short_text() -> None:
    assert excerpt("one  two\nthree", 3) == "one two three"


def test_excerpt_cuts_with_an_ellipsis() -> None:
    assert excerpt("one two three four five", 3) == "one two three…"


def test_excerpt_strips_trailing_punctuation_before_the_ellipsis() -> None:
    assert excerpt("first, second; third: fourth.", 1) == "first…"
    assert excerpt("first, second; third: fourth.", 2) == "first, second…"
