"""SIGTERM in the middle of a send, for ``publisher worker`` and for the ``publisher run`` daemon.

Both run as real subprocesses on the real clock against an aiosmtpd server in this process.
The signal comes while messages are going out; the process must finish the messages in
flight, record every one that went, put the rest back in the queue and exit 0. A later run
(``worker --until-idle``, ``run --once``) sends the rest, and nobody gets a message twice.
(``publisher send`` is covered in test_delivery_process.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from publisher.app import open_app
from publisher.config import load
from publisher.services import collecting
from tests.conftest import SmtpServer, run_cli, write_config
from tests.test_delivery import ScriptedHandler, add_many, scripted  # noqa: F401
from tests.test_delivery_process import _by_status

N = 150


def _popen(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "test-secret"}
    env.pop("PUBLISHER_NOW", None)  # the real clock
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=config.parent,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "then"),
    [(("worker",), ("worker", "--until-idle")), (("run",), ("run", "--once"))],
    ids=["worker", "run"],
)
def test_sigterm_mid_send_drains_records_exits_0_and_a_later_run_finishes(
    tmp_path: Path,
    scripted: SmtpServer,  # noqa: F811
    command: tuple[str, ...],
    then: tuple[str, ...],
) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    config = write_config(tmp_path, transport="smtp", smtp=scripted)
    config.write_text(
        config.read_text().replace(
            "retry_base_seconds = 60\n",
            "retry_base_seconds = 60\nconnections = 2\nrate_limit = 60\n",
        )
    )
    app = open_app(load(config))
    collecting.collect(app)
    add_many(app.store, N)
    store = app.store
    if command == ("worker",):
        run_cli(config, "send", "daily", "--queue-only")  # the worker sends a queued issue
    proc = _popen(config, *command)
    try:
        deadline = time.monotonic() + 120
        while handler.count() < 20:
            assert proc.poll() is None, f"publisher exited early: {proc.communicate()}"
            assert time.monotonic() < deadline, "the send did not get going"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "received signal" in err

    counts = _by_status(store)
    received = handler.count()
    assert received < N  # it stopped in the middle
    assert counts["sending"] == 0  # nothing left claimed
    assert counts["sent"] == received  # every message that went out is recorded
    assert counts["queued"] == N - received

    later = run_cli(config, *then)
    assert f"{N - received} sent" in later.stdout, later.stdout
    assert handler.per_rcpt() == Counter({f"user{i:06d}@example.org": 1 for i in range(N)})
    assert _by_status(store) == Counter({"sent": N})
    store.close()
