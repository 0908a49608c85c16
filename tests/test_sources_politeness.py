"""The per-host politeness delay of remote feed sources, measured at real HTTP servers.

``publisher collect`` runs as a subprocess with the shipped delay (one second between two
requests to one host). Two local servers stand for two hosts (127.0.0.1 and 127.0.0.2):
each records when every request arrived and when its answer was sent. One host's feeds
must be fetched one at a time with the delay between them, while the other host's
feeds are fetched at the same time (the delay is per host, not global).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from publisher.services import collecting
from tests.conftest import run_cli, write_config

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{name}</title><link>http://{name}.example/</link>
<description>d</description><item><title>Item of {name}</title>
<link>http://{name}.example/1</link><guid>{name}-1</guid>
<pubDate>Wed, 25 Nov 2026 10:00:00 +0000</pubDate><description>x</description></item>
</channel></rss>"""


@dataclass
class Hit:
    path: str
    start: float
    end: float


@dataclass
class Host:
    """A local HTTP server serving ``/<name>.xml``; it records every request's timing."""

    address: str
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                start = time.monotonic()
                time.sleep(0.2)  # a server that takes a moment, so overlaps would show
                body = RSS.format(name=self.path.strip("/").removesuffix(".xml")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with host.lock:
                    host.hits.append(Hit(self.path, start, time.monotonic()))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((self.address, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://{self.address}:{self.server.server_address[1]}/{name}.xml"

    def timeline(self) -> list[Hit]:
        with self.lock:
            return sorted(self.hits, key=lambda h: h.start)


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    pair = (Host("127.0.0.1"), Host("127.0.0.2"))
    for host in pair:
        host.thread.start()
    try:
        yield pair
    finally:
        for host in pair:
            host.server.shutdown()
            host.server.server_close()


def test_one_host_is_fetched_one_at_a_time_with_the_delay_others_meanwhile(
    tmp_path: Path, hosts: tuple[Host, Host]
) -> None:
    first, second = hosts
    feeds = [(first, f"a{i}") for i in range(3)] + [(second, f"b{i}") for i in range(2)]
    sources = "".join(
        f'[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{host.url(name)}"\n'
        "allow_private = true\ntimeout = 5\n\n"
        for host, name in feeds
    )
    config = write_config(tmp_path)
    text = config.read_text().replace(
        '[[sources]]\nname = "newsroom"', sources + '[[sources]]\nname = "newsroom"'
    )
    config.write_text(text)
    result = run_cli(config, "collect", now="2026-11-28T12:00:00+00:00")
    assert "12 new" in result.stdout, result.stdout  # 5 feed items + the 7 sample articles

    delay = collecting.POLITENESS_SECONDS
    assert delay == 1.0  # the shipped value is what ran in the subprocess
    for host, count in ((first, 3), (second, 2)):
        timeline = host.timeline()
        assert len(timeline) == count, timeline
        for before, after in zip(timeline, timeline[1:], strict=False):
            # The next request to the host starts only after the previous answer, and
            # the delay later: never two at once, never back to back.
            assert after.start - before.end >= delay * 0.95, (host.address, timeline)
    # The second host did not wait for the first one's queue: their fetches overlapped.
    a, b = first.timeline(), second.timeline()
    assert b[0].start < a[-1].start and a[0].start < b[-1].start, (a, b)
