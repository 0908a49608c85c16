"""The plain-text part of a real personalised message keeps lines within 78 characters; a
URL that cannot be wrapped stands on a line of its own."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

from publisher.compose.plaintext import is_url, wrap
from tests.conftest import run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
LONG_URL = "https://news.example.org/2026/11/" + "a-very-long-slug-" * 6 + "end/"
LONG_ARTICLE = f"""---
title: "A deliberately long headline about {"Pneumonoultramicroscopicsilicovolcanoconiosis" * 2} and registries that keeps going"
date: 2026-11-27T09:00:00Z
author: "An Author With A Remarkably Long Name Who Also Lists Several Affiliations In The Byline"
canonical_url: {LONG_URL}
tags: [research]
summary: "See {LONG_URL} for the full protocol, which is longer than any line of a plain-text mail."
citations:
  - text: "Example A, et al. A citation whose title runs on and on. Journal of Examples, 2026"
    url: https://journals.example.org/{"segment/" * 12}final
---
Body.
"""


def _too_long(line: str) -> bool:
    return len(line) > 78 and not is_url(line)


def test_every_line_of_a_personalised_text_part_fits_in_78_columns(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "content" / "long.md").write_text(LONG_ARTICLE, encoding="utf-8")
    name = "Maximiliana " + "Longname-Doubleday " * 5
    run_cli(config, "subscribers", "add", "max@example.org", "--name", name, now=NOW)
    result = run_cli(config, "run", "--once", now=NOW)
    assert "1 sent" in result.stdout, result.stdout

    [eml] = sorted((tmp_path / "outbox").glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text_part = message.get_body(("plain",))
    assert text_part is not None and text_part["Content-Transfer-Encoding"] == "quoted-printable"
    text = text_part.get_content()  # quoted-printable decoded
    lines = text.splitlines()
    assert [line for line in lines if _too_long(line)] == []
    # The personal links are lone lines; they are longer than 78 here, so they had to be.
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>")
    assert len(unsubscribe) > 78 and unsubscribe in lines
    assert any(re.fullmatch(r"https://\S+/preferences/\S+", line) for line in lines)
    assert LONG_URL in lines  # too long for "[n] url": the number above, the URL alone
    assert any(line.startswith("Hi Maximiliana") for line in lines)  # the long greeting wraps
    # The long word of the title is split rather than overflowing.
    assert "Pneumonoultramicroscopicsilicovolcanoconiosis" in "".join(text.split())


def test_wrap_puts_only_unbreakable_urls_on_long_lines() -> None:
    url = "https://journals.example.org/" + "x" * 80
    text = wrap(f"Example A, a citation {url} [3] and more words", indent="  ", first="Source: ")
    assert text.splitlines() == ["Source: Example A, a citation", url, "  [3] and more words"]
    long_word = "y" * 100
    assert all(len(line) <= 78 for line in wrap(long_word, indent="    ").splitlines())
    assert wrap("https://short.example/x fits", first="- ") == "- https://short.example/x fits"
