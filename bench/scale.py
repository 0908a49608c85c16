"""Scale bench (subprocesses, database and network I/O): import, planning, send rate, RSS.

In one run it prints:

- **import**: ``publisher subscribers import`` of a generated CSV of N rows, in rows/s;
- **planning**: N subscribers inserted with ``INSERT ... SELECT generate_series`` (SQL, as
  an operator's existing list would be), then ``publisher send DIGEST --queue-only`` and
  ``--dry-run``: wall time of each, the count each printed, and peak RSS;
- **send RSS**: ``publisher send DIGEST`` resuming that N queue for ``--send-seconds``
  then stopped with SIGTERM (graceful stop): its peak RSS and its rate from the N queue;
- **send rate** at a fixed ``--send-n`` (20,000) recipients: 1 and 2
  ``publisher worker --until-idle`` processes against the same number of plain smtplib
  processes pushing prebuilt bytes (a message the sink received from publisher) into the
  same sink, with the ratio; and the duplicates the sink saw (expected 0).

The sink is a minimal asyncio SMTP responder in its own process (``--sink``): it parses
just enough SMTP to accept mail and counts recipients, so the client is what is measured.
The store is PostgreSQL when reachable (a scratch database per phase, created and dropped
here), else SQLite; ``--store sqlite`` forces SQLite.

Run: .venv/bin/python bench/scale.py [--n 100000] [--store postgresql|sqlite]
     .venv/bin/python bench/scale.py --n 1000000      (the full size: import, planning, RSS)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get(
    "PUBLISHER_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PUBLISHER = [sys.executable, "-m", "publisher"]


def free_port() -> int:
    """A port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the sink (its own process) ---------------------------------------------------------------


class SinkState:
    """Recipients seen (for duplicates) and one sample message."""

    def __init__(self, sample: Path) -> None:
        self.rcpts: Counter[str] = Counter()
        self.sample = sample


async def _session(
    state: SinkState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    rcpts: list[str] = []
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
        elif verb == b"RCPT":
            rcpts.append(line[8:].strip().decode().strip("<>"))
            writer.write(b"250 ok\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go on\r\n")
            body = await reader.readuntil(b"\r\n.\r\n")
            if not state.sample.exists():
                state.sample.write_bytes(body[:-5].replace(b"\r\n..", b"\r\n."))
            state.rcpts.update(rcpts)
            rcpts = []
            writer.write(b"250 accepted\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        elif verb == b"XSTA":  # the bench asks: total and distinct recipients, then resets
            total, distinct = sum(state.rcpts.values()), len(state.rcpts)
            state.rcpts.clear()
            writer.write(f"250 {total} {distinct}\r\n".encode())
        else:  # MAIL, RSET, NOOP
            if verb == b"RSET":
                rcpts = []
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()


def run_sink(port: int, sample: Path) -> None:
    """Serve SMTP on ``port`` until killed."""
    state = SinkState(sample)

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _session(state, r, w), "127.0.0.1", port, limit=2**24
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def sink_stats(port: int) -> tuple[int, int]:
    """(messages, distinct recipients) since the last call."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        stream.write(b"XSTA\r\n")
        stream.flush()
        total, distinct = stream.readline().split()[1:3]
        stream.write(b"QUIT\r\n")
        stream.flush()
    return int(total), int(distinct)


def push(port: int, count: int, sample: Path) -> None:
    """The baseline client: ``count`` prebuilt messages over one smtplib connection."""
    message = sample.read_bytes()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for i in range(count):
        smtp.sendmail(
            "newsletter@news.example.org", [f"base{os.getpid()}-{i}@example.org"], message
        )
    smtp.quit()


# -- stores and sites -------------------------------------------------------------------------


class Stores:
    """A fresh store per phase: a scratch PostgreSQL database, or a SQLite file."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder, self.made = kind, folder, []  # type: list[str]
        self.admin = (
            create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT") if kind == "postgresql" else None
        )

    def new(self, phase: str) -> str:
        """The URL of a new, empty store."""
        if self.admin is None:
            return f"sqlite:///{self.folder / phase}.db"
        name = f"publisher_bench_{phase}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        """Drop every scratch database made here."""
        if self.admin is not None:
            with self.admin.connect() as conn:
                for name in self.made:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.admin.dispose()


def pg_reachable() -> bool:
    """Whether the bench's PostgreSQL answers."""
    try:
        engine = create_engine(PG_ADMIN)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "use SQLite"
        return False


def make_site(folder: Path, url: str, port: int) -> Path:
    """A site folder: one article from yesterday, a daily digest, SMTP to the sink."""
    (folder / "content").mkdir(parents=True)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = "Researchers report careful, incremental progress in the field. " * 60
    (folder / "content" / "note.md").write_text(
        f'---\ntitle: "Bench note"\ndate: {yesterday}\nauthor: "Newsroom"\ntags: [research]\n'
        f'summary: "A fictional note."\n---\n{body}\n',
        encoding="utf-8",
    )
    config = folder / "config.toml"
    config.write_text(
        f"""
[site]
title = "Pleura Health News"
url = "https://news.example.org"
postal_address = "1 Example Street, Springfield"

[store]
url = "{url}"

[[sources]]
name = "bench"
path = "content"

[[digests]]
id = "daily"
title = "Pleura Daily"
schedule = "0 0 * * *"
timezone = "UTC"

[delivery]
transport = "smtp"
from = "newsletter@news.example.org"
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
    return config


def cli(config: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``publisher --config CONFIG ARGS``."""
    env = {**os.environ, "BENCH_SECRET": "bench-secret"}
    return subprocess.Popen(
        [*PUBLISHER, "--config", str(config), *args],
        cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[str, int]:
    """Wait for ``proc``; return its stdout and peak RSS in KiB (exit 0 required)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"{proc.args} exited {proc.returncode}\n{out}\n{err}")
    return out, usage.ru_maxrss


def timed(config: Path, *args: str) -> tuple[float, str, int]:
    """Run one command; (seconds, stdout, peak RSS KiB)."""
    start = time.perf_counter()
    out, rss = finish(cli(config, *args))
    return time.perf_counter() - start, out, rss


def populate(url: str, n: int) -> float:
    """Insert ``n`` active subscribers of the digest with SQL; return the seconds taken."""
    engine = create_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (email, name, status, created_at, updated_at) "
            "SELECT 'reader' || g || '@example.org', 'Reader ' || g, 'active', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM generate_series(1, :n) AS g"
            if engine.dialect.name == "postgresql" else
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
            "INSERT INTO subscribers (email, name, status, created_at, updated_at) "
            "SELECT 'reader' || g || '@example.org', 'Reader ' || g, 'active', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM s"
        ), {"n": n})  # fmt: skip
        conn.execute(text(
            "INSERT INTO subscriptions (subscriber_id, digest_id, frequency, tags, created_at) "
            "SELECT id, 'daily', 'every', '[]', CURRENT_TIMESTAMP FROM subscribers"
        ))  # fmt: skip
    engine.dispose()
    return time.perf_counter() - start


def number(pattern: str, out: str) -> int:
    """The first integer captured by ``pattern`` in ``out`` (-1 if absent)."""
    found = re.search(pattern, out)
    return int(found.group(1)) if found else -1


# -- the phases -------------------------------------------------------------------------------


def bench_import(stores: Stores, root: Path, port: int, n: int) -> None:
    """``publisher subscribers import`` of ``n`` generated rows."""
    config = make_site(root / "import", stores.new("import"), port)
    csv_path = config.parent / "subscribers.csv"
    with csv_path.open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        out.writelines(f"reader{i}@example.org,Reader {i}\n" for i in range(n))
    timed(config, "db", "upgrade")
    seconds, out, rss = timed(config, "subscribers", "import", str(csv_path))
    print(
        f"import    {n:>9,} rows in {seconds:7.1f} s = {n / seconds:8,.0f} rows/s, peak RSS {rss / 1024:.0f} MB"
    )


def bench_planning(stores: Stores, root: Path, port: int, n: int, send_seconds: float) -> None:
    """Plan an issue for ``n`` subscribers; then a real send's RSS from that queue."""
    url = stores.new("plan")
    config = make_site(root / "plan", url, port)
    timed(config, "collect")
    loaded = populate(url, n)
    print(f"populate  {n:>9,} subscribers + subscriptions with SQL in {loaded:.1f} s")
    seconds, out, rss = timed(config, "send", "daily", "--dry-run")
    dry = number(r"for (\d+) subscriber", out)
    print(
        f"dry run   counted {dry:>9,} recipients in {seconds:7.1f} s, peak RSS {rss / 1024:.0f} MB"
    )
    seconds, out, rss = timed(config, "send", "daily", "--queue-only")
    queued = number(r"(\d+) queued", out)
    print(f"planning  queued  {queued:>9,} deliveries in {seconds:7.1f} s, peak RSS {rss / 1024:.0f} MB"
          f"  (target < 30 s at 1M; dry run == queued: {dry == queued})")  # fmt: skip
    sink_stats(port)
    proc = cli(config, "send", "daily")
    start = time.perf_counter()
    time.sleep(send_seconds)
    proc.send_signal(signal.SIGTERM)
    _, rss = finish(proc)
    sent, distinct = sink_stats(port)
    elapsed = time.perf_counter() - start
    print(f"send      {sent:>9,} sent from the {queued:,} queue in {elapsed:.0f} s "
          f"({sent / elapsed:,.0f} msg/s, incl. start-up), peak RSS {rss / 1024:.0f} MB (target < 300 MB), "
          f"duplicates {sent - distinct}")  # fmt: skip


def bench_send(stores: Stores, root: Path, port: int, sample: Path, n: int) -> None:
    """``n`` recipients: 1 and 2 workers against 1 and 2 smtplib pushers."""
    for procs in (1, 2):
        url = stores.new(f"send{procs}")
        config = make_site(root / f"send{procs}", url, port)
        timed(config, "collect")
        populate(url, n)
        timed(config, "send", "daily", "--queue-only")
        sink_stats(port)
        start = time.perf_counter()
        workers = [cli(config, "worker", "--until-idle") for _ in range(procs)]
        peak = max(finish(w)[1] for w in workers)
        ours = time.perf_counter() - start
        sent, distinct = sink_stats(port)
        start = time.perf_counter()
        pushers = [
            subprocess.Popen(
                [sys.executable, __file__, "--push", str(port), str(n // procs), str(sample)]
            )
            for _ in range(procs)
        ]
        for p in pushers:
            if p.wait() != 0:
                raise SystemExit("a baseline pusher failed")
        theirs = time.perf_counter() - start
        base, _ = sink_stats(port)
        print(f"send      {procs} worker(s): {sent:,} in {ours:5.1f} s = {sent / ours:6,.0f} msg/s | "
              f"{procs} smtplib: {base:,} in {theirs:5.1f} s = {base / theirs:6,.0f} msg/s | "
              f"ratio {(sent / ours) / (base / theirs):.2f} | duplicates {sent - distinct} | "
              f"worker peak RSS {peak / 1024:.0f} MB")  # fmt: skip


def main() -> None:
    """Parse the options and run every phase."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--n", type=int, default=100_000, help="subscribers for import and planning"
    )
    parser.add_argument("--import-n", type=int, help="rows to import (default: --n)")
    parser.add_argument(
        "--send-n", type=int, default=20_000, help="recipients of the send-rate runs"
    )
    parser.add_argument(
        "--send-seconds", type=float, default=20.0, help="how long the RSS send runs"
    )
    parser.add_argument(
        "--store", choices=("postgresql", "sqlite"), help="default: PostgreSQL if reachable"
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=("import", "planning", "send")
    )
    parser.add_argument("--sink", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--push", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return run_sink(int(args.sink[0]), Path(args.sink[1]))
    if args.push:
        return push(int(args.push[0]), int(args.push[1]), Path(args.push[2]))
    kind = args.store or ("postgresql" if pg_reachable() else "sqlite")
    root = Path(tempfile.mkdtemp(prefix="publisher-scale-"))
    stores = Stores(kind, root)
    port, sample = free_port(), root / "sample.eml"
    sink = subprocess.Popen([sys.executable, __file__, "--sink", str(port), str(sample)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    print(
        f"store     {kind}, N = {args.n:,}, send runs at {args.send_n:,} recipients, {os.cpu_count()} cores"
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        if "import" not in args.skip:
            bench_import(stores, root, port, args.import_n or args.n)
        if "planning" not in args.skip:
            bench_planning(stores, root, port, args.n, args.send_seconds)
        if "send" not in args.skip:
            bench_send(stores, root, port, sample, args.send_n)
    finally:
        sink.kill()
        sink.wait()
        stores.drop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
