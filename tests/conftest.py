"""Shared fixtures: a real aiosmtpd server, real SQLite files, the local PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "PUBLISHER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    """Whether this run is CI (``CI=true``), where nothing the suite needs may be missing."""
    return os.environ.get("CI") == "true"


def require_tool(name: str, *, hint: str = "") -> str:
    """The path of the program ``name``: skip the test when it is missing, fail under CI.

    A test that silently skips in CI proves nothing, so ``.ci/run`` installs every tool the
    suite names here and a missing one fails the run there.
    """
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed" + (f" ({hint})" if hint else "")
        if in_ci():
            pytest.fail(f"CI=true needs {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def require_module(name: str, *, hint: str = "") -> Any:
    """Import ``name``: skip the test when it is missing, fail under CI (see require_tool)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        reason = f"{name} cannot be imported: {exc}" + (f" ({hint})" if hint else "")
        if in_ci():
            pytest.fail(f"CI=true needs {reason}", pytrace=False)
        pytest.skip(reason)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (aiosmtpd's port=0 does not work)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RecordingHandler:
    """Records every accepted message; answers chosen recipients with a chosen reply.

    With ``hold_after`` set, messages past that many wait for their reply until ``released``
    is set: a send held mid-way, for a test to act while it is under way without racing it.
    """

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    hold_after: int | None = None
    released: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            while not self.released.is_set():
                await asyncio.sleep(0.05)
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 Message accepted for delivery"

    def parsed(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.messages]  # type: ignore[misc]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.parsed() if address in str(m["To"])]


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A real SQLite file under tmp_path."""
    return f"sqlite:///{tmp_path / 'publisher.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL; skipped when absent, unless CI=true."""
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
    except ImportError:  # pragma: no cover
        if in_ci():
            raise
        pytest.skip("psycopg is not installed (pip install publisher[postgres])")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"publisher_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        if in_ci():
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'publisher.db'}"
    return request.getfixturevalue("pg_url")


def write_config(
    folder: Path,
    *,
    store_url: str | None = None,
    transport: str = "file",
    smtp: SmtpServer | None = None,
    digests: str | None = None,
    extra: str = "",
) -> Path:
    """A config.toml under ``folder`` using a copy of the sample content."""
    content = folder / "content"
    if not content.exists():
        shutil.copytree(REPO / "content", content, ignore=shutil.ignore_patterns("*.csv"))
    digests = digests or (
        '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
        'timezone = "America/New_York"\nsubject = "{title}: {date}"\nmax_articles = 10\n'
    )
    smtp_table = (
        f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\ntimeout = 10\n'
        if smtp
        else ""
    )
    text = f"""
[site]
title = "Pleura Health News"
url = "https://news.example.org"
description = "Research news."
author = "Newsroom"
postal_address = "1 Example Street, Springfield"

[store]
url = "{store_url or "sqlite:///publisher.db"}"

[[sources]]
name = "newsroom"
type = "markdown"
path = "content"

[feeds]
output_dir = "feeds"
limit = 20

{digests}

[delivery]
transport = "{transport}"
outbox_dir = "outbox"
from = "newsletter@news.example.org"
retry_base_seconds = 60

{smtp_table}
[web]
base_url = "https://news.example.org/mail"
secret_env = "PUBLISHER_TEST_SECRET"
{extra}
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(
    config: Path,
    *args: str,
    now: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``publisher --config CONFIG ARGS`` as a real subprocess (``input``: its stdin)."""
    full_env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret", **(env or {})}
    if now:
        full_env["PUBLISHER_NOW"] = now
    result = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=config.parent,
        timeout=120,
        input=input,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"publisher {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def start_serve(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``publisher serve`` for ``config`` on ``port``, returned once it answers HTTP.

    Its output goes to ``serve-<port>.log`` beside the config, never to a pipe: a pipe that
    nobody reads fills up with uvicorn's access log and stalls the server mid-test.
    """
    log = config.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), "serve", "--port", str(port)],
            cwd=config.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return process  # any answer: uvicorn is up (/healthz is 503 while the store is not)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(f"publisher serve did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving(config: Path, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start_serve` for the duration of a ``with`` block."""
    process = start_serve(config, port, env)
    try:
        yield process
    finally:
        stop_process(process)
