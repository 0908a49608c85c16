"""Golden file of one real personalised message, headers and quoted-printable body as sent,
with the fields that vary between runs masked; and the golden switch refused in CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

from tests.conftest import REPO, run_cli, write_config
from tests.golden_files import GOLDEN, assert_golden

NOW = "2026-11-28T15:00:00+00:00"
DIGEST = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "America/New_York"\nsubject = "{title}: {date}"\nmax_articles = 2\n'
)


def _soft_broken(value: bytes) -> re.Pattern[bytes]:
    """``value`` as it may appear in quoted-printable: a soft line break between any bytes."""
    return re.compile(b"(?:=\r\n)?".join(re.escape(value[i : i + 1]) for i in range(len(value))))


def mask(raw: bytes) -> str:
    """The message with its run-dependent values replaced by stable markers."""
    message = message_from_bytes(raw, policy=policy.default)
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [preferences] = re.findall(r"/preferences/(\S+)", text)
    # List-Unsubscribe and both parts hold the unsubscribe token; both parts the other.
    for token, marker, places in (
        (unsubscribe, b"UNSUBSCRIBE-TOKEN", 3),
        (preferences, b"PREFERENCES-TOKEN", 2),
    ):
        raw, count = _soft_broken(token.encode()).subn(marker, raw)
        assert count == places, (marker, count)
    raw = re.sub(rb"^Date: [^\r\n]+", b"Date: DATE", raw, flags=re.M)
    raw = re.sub(rb"^(Message-ID: <\d+\.\d+\.)[0-9a-f]+@", rb"\1HASH@", raw, flags=re.M)
    return raw.decode("ascii")


def test_golden_personalised_message(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=DIGEST)
    run_cli(config, "subscribers", "add", "ana@example.org", "--name", "Ana Núñez", now=NOW)
    run_cli(config, "collect", now=NOW)
    sent = run_cli(config, "send", "daily", now=NOW)
    assert "1 sent" in sent.stdout, sent.stdout
    [eml] = (tmp_path / "outbox").glob("*.eml")
    raw = eml.read_bytes()
    assert b"\r\n" in raw and re.search(rb"(?<!\r)\n", raw) is None  # CRLF only, as sent
    masked = mask(raw)
    assert "ana@example.org" in masked and "Content-Transfer-Encoding: quoted-printable" in masked
    assert_golden("message.eml", masked)


def test_regenerating_golden_files_is_refused_in_ci() -> None:
    before = {p.name: p.read_bytes() for p in GOLDEN.iterdir()}
    env = {**os.environ, "CI": "true", "PUBLISHER_REGEN_GOLDEN": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_render.py::test_golden_html_and_text"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "PUBLISHER_REGEN_GOLDEN=1 is refused with CI=true" in result.stdout
    assert {p.name: p.read_bytes() for p in GOLDEN.iterdir()} == before  # nothing rewritten
