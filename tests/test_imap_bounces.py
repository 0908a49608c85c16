"""Bounce polling against a real IMAP server (Dovecot, started by the fixture)."""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, in_ci, require_tool, run_cli, write_config

DATA = Path(__file__).parent / "data" / "bounces"
NOW = "2026-11-28T15:00:00+00:00"
USER, PASSWORD = "bounces@example.org", "imap-test-password"


@dataclass
class Imap:
    port: int

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(USER, PASSWORD)
        return client


@pytest.fixture
def imap_server() -> Iterator[Imap]:
    """A throwaway Dovecot on 127.0.0.1 with one user whose mail is a Maildir."""
    require_tool("dovecot", hint="apt-get install dovecot-imapd")
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("CI needs root to start Dovecot", pytrace=False)
        pytest.skip("starting Dovecot needs root")
    # Dovecot's own users must reach these files: pytest's tmp_path is private (0700).
    root = Path(tempfile.mkdtemp(prefix="publisher-dovecot-"))
    home = root / "home"
    home.mkdir()
    shutil.chown(home, "nobody", "nogroup")
    os.chmod(root, 0o755)
    port = free_port()
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
    config = root / "dovecot.conf"
    config.write_text(
        f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = publisher-test-{port}
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""",
        encoding="utf-8",
    )
    subprocess.run(["dovecot", "-c", str(config)], check=True, timeout=30)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                Imap(port).client().logout()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Imap(port)
    finally:
        pid = int((root / "run" / "master.pid").read_text().strip())
        os.kill(pid, signal.SIGTERM)
        # Wait for Dovecot's master to be gone before its folder is removed.
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _bounces_table(server: Imap, more: str = "") -> str:
    """The [bounces] table pointing at the test server; the password comes from the env."""
    return (
        f'\n[bounces]\nimap_host = "127.0.0.1"\nimap_port = {server.port}\nimap_security = "none"\n'
        f'imap_username = "{USER}"\nimap_password_env = "TEST_IMAP_PASSWORD"\n{more}'
    )


def test_poll_reads_bounces_and_moves_them(tmp_path: Path, imap_server: Imap) -> None:
    client = imap_server.client()
    for name in ("postfix-hard.eml", "gmail-hard.eml", "auto-reply.eml"):
        client.append("INBOX", None, None, (DATA / name).read_bytes().replace(b"\n", b"\r\n"))
    client.logout()
    config = write_config(
        tmp_path, extra=_bounces_table(imap_server, 'processed_folder = "Handled bounces"\n')
    )
    env = {"TEST_IMAP_PASSWORD": PASSWORD}
    run_cli(config, "subscribers", "add", "gone@example.org", now=NOW, env=env)
    result = run_cli(config, "bounces", "poll", now=NOW, env=env)
    assert (
        "3 message(s): 2 hard, 0 soft, 1 not bounces; 1 subscriber(s) marked bounced"
        in result.stdout
    )
    assert "2 message(s) moved to 'Handled bounces'" in result.stdout

    client = imap_server.client()
    _, inbox = client.select("INBOX")
    assert inbox == [b"1"]  # the out-of-office reply stays for a person
    _, moved = client.select('"Handled bounces"')
    assert moved == [b"2"]
    client.logout()
    assert (
        "gone@example.org"
        in run_cli(config, "subscribers", "list", "--status", "bounced", now=NOW).stdout
    )

    again = run_cli(config, "bounces", "poll", now=NOW, env=env)
    assert "1 message(s): 0 hard" in again.stdout


def test_wrong_password_is_one_clear_error(tmp_path: Path, imap_server: Imap) -> None:
    config = write_config(tmp_path, extra=_bounces_table(imap_server))
    result = run_cli(
        config, "bounces", "poll", now=NOW, env={"TEST_IMAP_PASSWORD": "wrong"}, check=False
    )
    assert result.returncode == 1
    assert f"imap 127.0.0.1:{imap_server.port}: cannot log in" in result.stderr
    unset = run_cli(config, "bounces", "poll", now=NOW, check=False)
    assert unset.returncode == 1 and "TEST_IMAP_PASSWORD" in unset.stderr


def test_daemon_polls_the_mailbox_before_sending(tmp_path: Path, imap_server: Imap) -> None:
    client = imap_server.client()
    client.append(
        "INBOX", None, None, (DATA / "postfix-hard.eml").read_bytes().replace(b"\n", b"\r\n")
    )
    client.logout()
    config = write_config(tmp_path, extra=_bounces_table(imap_server))
    run_cli(config, "subscribers", "add", "gone@example.org", now=NOW)
    run_cli(config, "subscribers", "add", "keep@example.org", now=NOW)
    env = {
        **os.environ,
        "TEST_IMAP_PASSWORD": PASSWORD,
        "PUBLISHER_NOW": NOW,
        "PUBLISHER_TEST_SECRET": "s",
    }
    daemon = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "run"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Wait until the daemon recorded the whole send, not a guessed time.
        deadline = time.monotonic() + 60
        while not _send_recorded(tmp_path / "publisher.db"):
            assert daemon.poll() is None, daemon.communicate()
            assert time.monotonic() < deadline, "the daemon did not send the issue"
            time.sleep(0.1)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, stderr
    assert "1 subscriber(s) marked bounced" in stderr
    recipients = [p.name for p in (tmp_path / "outbox").glob("*.eml")]
    assert len(recipients) == 1  # keep@ only: gone@ bounced before the send
    assert recipients[0].endswith("-0000002.eml")  # subscriber 2 is keep@


def _send_recorded(db: Path) -> bool:
    """Whether the store holds deliveries, none of them still queued or in flight."""
    if not db.exists():
        return False
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)) as conn:
        try:
            rows = dict(conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
        except sqlite3.OperationalError:  # the daemon has not created the tables yet
            return False
    return rows.get("sent", 0) >= 1 and not rows.get("queued") and not rows.get("sending")


def test_poll_reads_arf_complaints(tmp_path: Path, imap_server: Imap) -> None:
    arf = Path(__file__).parent / "data" / "arf"
    client = imap_server.client()
    for name in ("yahoo-abuse.eml", "rfc5965-generic.eml"):
        client.append("INBOX", None, None, (arf / name).read_bytes().replace(b"\n", b"\r\n"))
    client.logout()
    config = write_config(tmp_path, extra=_bounces_table(imap_server))
    env = {"TEST_IMAP_PASSWORD": PASSWORD}
    for address in ("eve@example.org", "fay@example.org", "gus@example.org"):
        run_cli(config, "subscribers", "add", address, now=NOW, env=env)
    result = run_cli(config, "bounces", "poll", now=NOW, env=env)
    assert "2 message(s): 0 hard, 0 soft, 0 not bounces" in result.stdout
    assert "complaints 2 ARF spam complaint report(s)" in result.stdout
    assert "0 subscriber(s) marked bounced" in result.stdout
    assert "2 message(s) moved" in result.stdout
    left = run_cli(config, "subscribers", "list", "--status", "unsubscribed", now=NOW).stdout
    assert "eve@example.org" in left and "fay@example.org" in left
    assert "gus@example.org" not in left
    again = run_cli(config, "subscribers", "add", "eve@example.org", now=NOW, check=False)
    assert again.returncode != 0 and "complain" in (again.stdout + again.stderr)
