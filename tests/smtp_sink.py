"""A real aiosmtpd server in its own process that logs ``rcpt message-id`` per message.

The process tests need thousands of messages a second through a real SMTP server; in the
pytest process aiosmtpd shares the GIL with the test. Here it has a core of its own and
appends one line per accepted recipient to a file, flushed at once, which the test reads.

    python -m tests.smtp_sink PORT LOGFILE
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

_MESSAGE_ID = re.compile(rb"^Message-ID: (\S+)\r?$", re.M | re.I)


class LoggingHandler:
    """Accepts everything; logs each recipient with the message's Message-ID."""

    def __init__(self, log: Path) -> None:
        self.out = log.open("a", buffering=1, encoding="utf-8")

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        match = _MESSAGE_ID.search(envelope.original_content)
        mid = match[1].decode() if match else "-"
        for rcpt in envelope.rcpt_tos:
            self.out.write(f"{rcpt} {mid}\n")
        return "250 2.0.0 accepted"


def serve(port: int, log: Path) -> None:
    """Serve until SIGTERM."""
    from aiosmtpd.controller import Controller

    controller = Controller(
        LoggingHandler(log), hostname="127.0.0.1", port=port, data_size_limit=0
    )
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    controller.stop()


class Sink:
    """The sink process, seen from a test."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        log.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.smtp_sink", str(port), str(log)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def lines(self) -> list[tuple[str, str]]:
        """(recipient, Message-ID) of every message received so far."""
        text = self.log.read_text(encoding="utf-8")
        return [tuple(line.split(" ", 1)) for line in text.splitlines() if " " in line]  # type: ignore[misc]

    def count(self) -> int:
        """How many messages arrived so far."""
        with self.log.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 16), b""))

    def per_rcpt(self) -> Counter[str]:
        """Messages per recipient."""
        return Counter(rcpt for rcpt, _ in self.lines())

    def wait_for(self, count: int, timeout: float = 120) -> None:
        """Until ``count`` messages arrived."""
        deadline = time.monotonic() + timeout
        while self.count() < count:
            assert time.monotonic() < deadline, f"only {self.count()} of {count} arrived"
            time.sleep(0.01)

    def stop(self) -> None:
        """End the process."""
        self.proc.terminate()
        self.proc.wait(timeout=10)


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
