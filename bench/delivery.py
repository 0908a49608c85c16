"""End-to-end delivery rate against the limit of this machine, peak RSS and planning time.

One digest of 15 articles (about 40 KB of HTML) goes to N subscribers through SMTP into a
sink in its own process (aiosmtpd with a handler that only counts), with
``connections = 4``. In one run it prints:

- (a) publisher's rate: ``publisher send DIGEST`` as a subprocess, from its start to its
  exit (every delivery recorded), over the deliveries planned beforehand;
- (b) the baseline: the same number of pre-built identical messages pushed through
  smtplib over the same number of connections into the same sink;
- a/b (target >= 0.8), the peak RSS of the send process (target < 300 MB at 100,000) and
  the time to create the issue and plan its deliveries (target < 3 s at 100,000).

With ``--postfix`` the sink is a real mail server instead: a throwaway Postfix instance
(needs root and ``apt-get install postfix``) with its own config, queue and Maildir in a
temporary folder, listening on 127.0.0.1 on a free port. Both (a) and (b) go into it; after
each, the bench waits until Postfix has delivered every message into the Maildir (or the
Maildir stops growing for ``--postfix-timeout`` seconds) and reports how long that took.
The rates are still measured from the client's side (accepted by Postfix, i.e. queued).
The instance is stopped and its folder removed at the end, also on Ctrl-C or SIGTERM.

Run: .venv/bin/python bench/delivery.py [--n 20000] [--connections 4] [--postfix]
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import resource
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
DOMAIN = "example.org"  # of every recipient (seeded subscribers and the baseline's)


def free_port() -> int:
    """A port that was free a moment ago (aiosmtpd cannot be given port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the sink (its own process) -------------------------------------------------------------


class CountingHandler:
    """Counts accepted messages; keeps nothing."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.count += len(envelope.rcpt_tos)
        return "250 OK"


def run_sink(port: int) -> None:
    """Serve SMTP on ``port`` until SIGTERM, then print the number of messages received."""
    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    controller.stop()
    print(handler.count, flush=True)


class Sink:
    """A sink process on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> int:
        """Stop the sink; return how many messages it received."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return int(out.split()[-1])


# -- the Postfix sink (--postfix) -----------------------------------------------------------

POSTFIX_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixSink:
    """A throwaway Postfix on a free port that delivers all mail for DOMAIN into one Maildir.

    Everything lives in ``folder``: ``etc`` (main.cf, master.cf), ``spool`` (the queue),
    ``lib`` (data), ``mail/sink/`` (the Maildir) and ``maillog``. No chroot, no syslog, and
    nothing of the system's own Postfix (if any) is used or touched.
    """

    def __init__(self, folder: Path) -> None:
        self.postfix = shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin:/sbin")
        if self.postfix is None:
            raise SystemExit(
                "--postfix needs Postfix, which is not installed. As root: "
                "echo 'postfix postfix/main_mailer_type select No configuration' "
                "| debconf-set-selections && apt-get install postfix"
            )
        if os.geteuid() != 0:
            raise SystemExit("--postfix needs root (Postfix's master runs as root)")
        try:
            pwd.getpwnam("postfix")
            grp.getgrnam("postdrop")
            nobody = pwd.getpwnam("nobody")
        except KeyError as exc:
            raise SystemExit(f"--postfix: missing user or group {exc}; reinstall postfix") from exc
        self.port = free_port()
        self.root = folder
        self.config = folder / "etc"
        self.maillog = folder / "maillog"
        self.maildir = folder / "mail" / "sink"
        self.started = False
        # Unprivileged Postfix daemons and the delivery user must be able to reach the
        # folder, and tempfile makes the bench's folder (the parent) 0700.
        for path in (folder, folder.parent):
            path.chmod(path.stat().st_mode | 0o011)
        self.config.mkdir()
        (folder / "spool").mkdir()  # root's; ``postfix start`` makes what is inside
        (folder / "mail").mkdir()
        os.chown(folder / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.config / "main.cf").write_text(
            f"""\
compatibility_level = 3.6
queue_directory = {folder / "spool"}
data_directory = {folder / "lib"}
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = {self.maillog}
maillog_file_prefixes = {folder}
myhostname = sink.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
default_transport = error:this bench sink delivers to {DOMAIN} only
relay_transport = $default_transport
smtpd_peername_lookup = no
smtpd_tls_security_level = none
message_size_limit = 50000000
virtual_mailbox_limit = 0
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {folder / "mail"}
virtual_mailbox_maps = static:sink/
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
alias_maps =
alias_database =
biff = no
""",
            encoding="utf-8",
        )
        (self.config / "master.cf").write_text(
            POSTFIX_MASTER_CF.format(listen=f"127.0.0.1:{self.port}"), encoding="utf-8"
        )
        postconf = str(Path(self.postfix).with_name("postconf"))
        self.version = self._run(postconf, "-h", "mail_version").strip()
        self.started = True
        try:
            self._run(self.postfix, "start")
            self._wait_listening()
        except BaseException:  # failed or interrupted half-way: the master may be running
            self.stop()
            raise

    def _run(self, *command: str) -> str:
        done = subprocess.run(
            [command[0], "-c", str(self.config), *command[1:]], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(command)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}{self.log_tail()}"
            )
        return done.stdout

    def _wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    if sock.recv(512).startswith(b"220"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"Postfix does not answer on port {self.port}\n{self.log_tail()}")
            time.sleep(0.1)

    def delivered(self) -> int:
        """How many messages are in the Maildir (``new/``; nothing reads them)."""
        try:
            with os.scandir(self.maildir / "new") as entries:
                return sum(1 for _ in entries)
        except FileNotFoundError:
            return 0

    def wait(self, expected: int, stall: float) -> tuple[int, float]:
        """Wait until the Maildir holds ``expected`` messages or stops growing for ``stall`` s.

        Returns the count and the seconds waited.
        """
        start = last_change = time.monotonic()
        count = self.delivered()
        while count < expected:
            time.sleep(0.2)
            now, previous = time.monotonic(), count
            count = self.delivered()
            if count != previous:
                last_change = now
            elif now - last_change > stall:
                print(f"Postfix: only {count} of {expected} delivered, none for {stall:.0f} s\n"
                      f"{self.log_tail(problems_only=True)}", file=sys.stderr)  # fmt: skip
                break
        return count, time.monotonic() - start

    def log_tail(self, lines: int = 15, problems_only: bool = False) -> str:
        try:
            log = self.maillog.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return f"(no {self.maillog})"
        if problems_only:
            keys = ("warning:", "error:", "fatal:", "panic:", "reject:", "status=deferred",
                    "status=bounced")  # fmt: skip
            log = [line for line in log if any(key in line for key in keys)]
        return "\n".join(f"  {line}" for line in log[-lines:])

    def stop(self) -> int:
        """Stop the instance (its master and all its daemons); return the Maildir count."""
        if self.started:
            self.started = False
            done = subprocess.run(
                [self.postfix, "-c", str(self.config), "stop"], capture_output=True, text=True
            )
            pid_file = self.root / "spool" / "pid" / "master.pid"
            if done.returncode != 0 and pid_file.exists():  # e.g. interrupted during start
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass
        return self.delivered()


# -- set-up ---------------------------------------------------------------------------------


def write_config(folder: Path, port: int, connections: int) -> Path:
    """A config with one daily digest, SMTP to the sink, a SQLite store in ``folder``."""
    (folder / "content").mkdir()
    path = folder / "config.toml"
    path.write_text(
        f"""
[site]
title = "Pleura Health News"
url = "https://news.example.org"
postal_address = "1 Example Street, Springfield"

[store]
url = "sqlite:///{folder / "bench.db"}"

[[sources]]
name = "bench"
path = "content"

[[digests]]
id = "daily"
title = "Pleura Daily"
schedule = "0 7 * * *"
max_articles = 15

[delivery]
transport = "smtp"
from = "newsletter@news.example.org"
connections = {connections}
batch_size = 500

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"

[web]
base_url = "https://news.example.org/mail"
secret_env = "BENCH_SECRET"
""",
        encoding="utf-8",
    )
    return path


def seed(app: object, n: int) -> None:
    """15 articles of about 2.5 KB each, and ``n`` active subscribers of the digest."""
    from publisher.models import Article, Citation
    from publisher.store.schema import subscribers, subscriptions

    store = app.store  # type: ignore[attr-defined]
    body = "<p>" + "Researchers report careful, incremental progress in the field. " * 36 + "</p>"
    for i in range(15):
        store.upsert_article(
            Article(
                source="bench", guid=f"a{i}",
                title=f"Sample article number {i} on pleural mesothelioma research",
                url=f"https://news.example.org/a{i}/", published_at=NOW - timedelta(hours=i + 1),
                updated_at=NOW - timedelta(hours=i + 1), content_html=body,
                summary="A fictional summary of two sentences. It has enough words to look real.",
                author="Dana Whitfield", tags=("research",), content_hash=f"h{i}",
                citations=(Citation("Example A, et al. A paper. J Examples, 2026",
                                    "https://journals.example.org/1"),),
            ),
            NOW, "news.example.org",
        )  # fmt: skip
    chunk = 10_000
    with store.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows = [
                {"email": f"reader{i:07d}@{DOMAIN}", "name": f"Reader {i}", "status": "active",
                 "created_at": NOW, "updated_at": NOW}
                for i in range(start, min(n, start + chunk))
            ]  # fmt: skip
            conn.execute(insert(subscribers), rows)
        ids = conn.scalars(select(subscribers.c.id)).all()
        for start in range(0, len(ids), chunk):
            conn.execute(
                insert(subscriptions),
                [
                    {"subscriber_id": sid, "digest_id": "daily", "frequency": "every",
                     "tags": "[]", "created_at": NOW}
                    for sid in ids[start : start + chunk]
                ],
            )  # fmt: skip


# -- the two measurements -------------------------------------------------------------------


def baseline(port: int, message: bytes, n: int, connections: int) -> float:
    """(b): ``n`` copies of one pre-built message over ``connections`` smtplib sessions."""
    shares = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]

    def push(count: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for i in range(count):
            if i and i % 1000 == 0:  # same reconnect cadence as max_messages_per_connection
                smtp.quit()
                smtp = smtplib.SMTP("127.0.0.1", port)
            smtp.sendmail("newsletter@news.example.org", [f"reader@{DOMAIN}"], message)
        smtp.quit()

    threads = [threading.Thread(target=push, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def publisher_send(config: Path) -> tuple[float, int, str]:
    """(a): ``publisher send daily`` as a subprocess: seconds, peak RSS in KiB, its stdout."""
    env = {**os.environ, "BENCH_SECRET": "bench", "PUBLISHER_NOW": NOW.isoformat()}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "send", "daily"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=config.parent,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C or SIGTERM: do not leave it sending
        proc.kill()
        proc.wait()
        raise
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"publisher send exited {proc.returncode}: {out}")
    return elapsed, usage.ru_maxrss, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="subscribers (default 20000)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--postfix", action="store_true",
        help="sink into a throwaway Postfix that delivers to a Maildir (root; apt-get install postfix)",
    )  # fmt: skip
    parser.add_argument(
        "--postfix-timeout", type=float, default=120, metavar="S",
        help="with --postfix, give up waiting when the Maildir has not grown for S seconds",
    )  # fmt: skip
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that SIGTERM cleans up like Ctrl-C

    signal.signal(signal.SIGTERM, interrupted)

    sys.path.insert(0, str(REPO))
    from publisher.app import open_app
    from publisher.compose import messages
    from publisher.config import load
    from publisher.services import composing, sending

    b_drain = a_drain = None
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        folder = Path(tmp)
        if args.postfix:
            (folder / "postfix").mkdir()
            sink: Sink | PostfixSink = PostfixSink(folder / "postfix")
        else:
            sink = Sink()
        try:
            config = load(write_config(folder, sink.port, args.connections))
            app = open_app(config, clock=lambda: NOW)
            seed(app, args.n)

            start = time.perf_counter()
            [queued] = sending.send_digest(app, "daily", queue_only=True)
            planning = time.perf_counter() - start
            assert queued.planned == args.n, queued
            issue = queued.issue
            assert issue is not None

            # One real message of this issue, for the baseline and for its size.
            digest = config.digest("daily")
            rendered = composing.render_issue(
                app, digest, app.store.articles_by_id(issue.article_ids), issue.created_at
            )
            template = messages.prepare(
                rendered, issue_id=issue.id, site_title=config.site.title,
                site_url=config.site.url, digest_id="daily", digest_title=digest.title,
                from_addr=config.delivery.from_, reply_to="", now=issue.created_at,
            )  # fmt: skip
            message = messages.personalize(
                template,
                messages.Personal(
                    1, f"reader@{DOMAIN}", "Reader", "https://x/u/t", "https://x/p/t"
                ),
            )
            app.store.close()

            b_seconds = baseline(sink.port, message, args.n, args.connections)
            if isinstance(sink, PostfixSink):  # let (b) drain so it does not slow down (a)
                b_drain = sink.wait(args.n, args.postfix_timeout)
            a_seconds, rss_kib, out = publisher_send(config.path)
            if isinstance(sink, PostfixSink):
                a_drain = sink.wait(2 * args.n, args.postfix_timeout)
        finally:
            received = sink.stop()

    a, b = args.n / a_seconds, args.n / b_seconds
    print(f"subscribers          {args.n}  ({args.connections} connections)")
    print(f"issue                {len(rendered.html) / 1024:.0f} KB of inlined HTML, "
          f"message {len(message) / 1024:.0f} KB")  # fmt: skip
    print(f"planning             {planning:.2f} s  (create the issue + queue {args.n} deliveries)")
    print(f"(a) publisher send   {a:.0f} msg/s  ({a_seconds:.1f} s, process start to exit)")
    print(f"(b) smtplib baseline {b:.0f} msg/s  ({b_seconds:.1f} s, pre-built identical messages)")
    print(f"a/b                  {a / b:.2f}  (target >= 0.8)")
    print(f"peak RSS of send     {rss_kib / 1024:.0f} MB  (target < 300 MB at 100,000)")
    if isinstance(sink, PostfixSink):
        assert b_drain is not None and a_drain is not None
        print(f"sink                 Postfix {sink.version} on 127.0.0.1:{sink.port}, "
              "delivering to one Maildir")  # fmt: skip
        print(f"(b) delivered        {b_drain[0]} in the Maildir "
              f"{b_drain[1]:.1f} s after the last was accepted")  # fmt: skip
        print(f"(a) delivered        {a_drain[0] - b_drain[0]} in the Maildir "
              f"{a_drain[1]:.1f} s after send exited")  # fmt: skip
    print(f"sink received        {received} (expected {2 * args.n})")
    print(f"send said            {out.strip()}")
    print(
        f"bench process RSS    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--sink":
        run_sink(int(sys.argv[2]))
    else:
        try:
            main()
        except KeyboardInterrupt:
            sys.exit("interrupted (the sink was stopped and the temporary folder removed)")
