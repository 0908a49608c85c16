"""What the API tests share: ``publisher serve`` on a free port, tokens, and a client.

The server's output goes to a file (tests.conftest.start_serve): the API tests make
thousands of requests, and uvicorn's access log would fill a pipe nobody reads.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import free_port, run_cli, serving, write_config

NOW = "2026-11-28T15:00:00+00:00"


@dataclasses.dataclass
class Live:
    config: Path
    url: str
    log: Path

    def token(self, name: str, scope: str, *extra: str) -> str:
        """A new API token, made as an operator makes one (``publisher tokens create``)."""
        result = run_cli(self.config, "tokens", "create", name, "--scope", scope, *extra, now=NOW)
        return result.stdout.strip()

    def client(self, token: str | None) -> httpx.Client:
        """An HTTP client of the API, authenticated with ``token`` (None: no header)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)


def serve(
    folder: Path, *, extra: str = "", store_url: str | None = None, now: str = NOW
) -> Iterator[Live]:
    """``publisher serve`` for a config under ``folder``, until the generator is closed."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(folder, store_url=store_url, extra=extra)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("https://news.example.org/mail", url), encoding="utf-8")
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret", "PUBLISHER_NOW": now}
    with serving(config, port, env):
        yield Live(config, url, folder / f"serve-{port}.log")
