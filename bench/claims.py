"""Claim scaling on PostgreSQL: one worker's send rate from a big queue against a small one.

For each queue size (default 50,000 and 1,000,000) it builds a scratch database: the sample
articles, one issue, N subscribers and N queued deliveries, inserted with
``INSERT ... SELECT generate_series`` and ANALYZEd. It then prints the plan of the claim
query (``EXPLAIN ANALYZE``) and runs one ``publisher worker`` into a minimal asyncio SMTP
responder (so the client is what gets measured), timing ``--measure`` messages after the
first ``--warmup``, and stops it. The sizes are measured in turn for ``--rounds`` rounds
(a shared machine's load then falls on both alike); the databases are dropped at the end.
The last line compares the median rates (target: the big queue at least 0.8 of the small).
Each worker run goes on where the last one stopped, further into its queue.

Run: .venv/bin/python bench/claims.py [--sizes 50000 1000000] [--measure 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ADMIN = os.environ.get("PUBLISHER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN_ENGINE = create_engine(ADMIN, isolation_level="AUTOCOMMIT")


# -- the sink: a minimal SMTP responder in its own process ---------------------------------


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: list[int]) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await reader.readuntil(b"\r\n.\r\n")
            counter[0] += 1
            writer.write(b"250 2.0.0 ok\r\n")
        elif verb == b"EHLO":
            writer.write(b"250-sink\r\n250 8BITMIME\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()


def run_sink(port: int, count_file: str) -> None:
    """Answer SMTP on ``port``; write the message count into ``count_file`` every 20 ms."""
    counter = [0]

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _session(r, w, counter), "127.0.0.1", port, limit=1 << 24
        )
        print("ready", flush=True)
        async with server:
            while True:
                Path(count_file).write_text(str(counter[0]))
                await asyncio.sleep(0.02)

    asyncio.run(main())


# -- the bench ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(url: str, n: int, folder: Path, config: Path) -> int:
    """Collect the sample articles, make one issue and N queued deliveries; return its id."""
    from publisher.app import open_app
    from publisher.config import load
    from publisher.services import collecting

    app = open_app(load(config), clock=lambda: datetime(2026, 12, 1, 12, tzinfo=UTC))
    collecting.collect(app)
    articles = [a.id for a in app.store.recent_articles(10) if a.id is not None]
    issue, _ = app.store.create_issue("daily", "bench", "Bench issue", articles, app.clock())
    started = time.monotonic()
    with app.store.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (email, name, status, created_at, updated_at) "
            "SELECT 'user' || g || '@example.org', 'Reader ' || g, 'active', now(), now() "
            "FROM generate_series(1, :n) g"), {"n": n})  # fmt: skip
        conn.execute(text(
            "INSERT INTO subscriptions (subscriber_id, digest_id, frequency, tags, created_at) "
            "SELECT id, 'daily', 'every', '[]', now() FROM subscribers"))  # fmt: skip
        conn.execute(text(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, "
            "updated_at) SELECT :issue, id, 'queued', 0, now() - interval '1 minute', now() "
            "FROM subscribers ORDER BY id"), {"issue": issue.id})  # fmt: skip
    with app.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"  built {n:,} subscribers and queued deliveries in {time.monotonic() - started:.1f} s")
    app.store.close()
    return issue.id


def explain(url: str, issue_id: int) -> None:
    """Print the plan of the claim query, captured as the store sends it."""
    from sqlalchemy import event

    from publisher.store import Store

    store = Store.open(url, migrate=False)
    captured: list[tuple[str, object]] = []

    def spy(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if "FOR UPDATE" in statement:
            captured.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", spy)
    # A real claim (lease 1 s, no owner: the worker takes these rows over once it ends).
    store.claim_batch(issue_id, "bench", datetime.now(UTC), 200, 1)
    event.remove(store.engine, "before_cursor_execute", spy)
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        queued = captured[-1][0]
        # The same claim ordered the way it was before 0006 (by id alone), for comparison.
        before = queued.replace("ORDER BY deliveries.next_attempt_at, deliveries.id", "ORDER BY deliveries.id")
        for label, (statement, parameters) in [
            *(("claim", c) for c in captured), ("before 0006: ORDER BY id", (before, captured[-1][1]))
        ]:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            print(f"  plan ({label}):")
            for (line,) in cursor.fetchall():
                print("    " + line)
            raw.rollback()
    finally:
        raw.close()
    store.close()


def measure(config: Path, sink_count: Path, warmup: int, count: int) -> float:
    """Start a worker; time ``count`` messages after the first ``warmup``; stop it."""
    env = {**os.environ, "PUBLISHER_TEST_SECRET": "bench"}
    env.pop("PUBLISHER_NOW", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(config), "worker"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=config.parent,
    )  # fmt: skip

    def seen() -> int:
        try:
            return int(sink_count.read_text() or 0)
        except (OSError, ValueError):
            return 0

    try:
        base = seen()
        while seen() - base < warmup:
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.01)
        began, start = time.monotonic(), seen()
        while seen() - start < count:
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.01)
        return (seen() - start) / (time.monotonic() - began)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def prepare(n: int, args: argparse.Namespace, port: int, folder: Path) -> tuple[str, Path]:
    """A scratch database with a queue of ``n`` and a config for it; print the claim plan."""
    from tests.conftest import write_config

    name = f"publisher_bench_claims_{n}"
    with ADMIN_ENGINE.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    folder.mkdir()
    config = write_config(folder, store_url=url, transport="smtp")
    text_ = config.read_text().replace(
        "retry_base_seconds = 60\n",
        f"retry_base_seconds = 60\nconnections = {args.connections}\nbatch_size = 200\n",
    )
    text_ += f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    config.write_text(text_)
    print(f"queue of {n:,}:")
    issue_id = build(url, n, folder, config)
    explain(url, issue_id)
    return name, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--measure", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sink", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(int(args.sink[0]), args.sink[1])
        return
    port = free_port()
    names: list[str] = []
    rates: dict[int, list[float]] = {n: [] for n in args.sizes}
    with tempfile.TemporaryDirectory() as tmp:
        sink_count = Path(tmp) / "count"
        sink = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(port), str(sink_count)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        try:
            configs = {}
            for n in args.sizes:
                name, configs[n] = prepare(n, args, port, Path(tmp) / str(n))
                names.append(name)
            # Alternate the sizes, so that the load of a shared machine falls on both alike.
            for round_ in range(args.rounds):
                for n in args.sizes:
                    rate = measure(configs[n], sink_count, args.warmup, args.measure)
                    rates[n].append(rate)
                    print(f"round {round_ + 1}: queue of {n:,}: one worker, {args.connections} connections: {rate:,.0f} msg/s")
        finally:
            sink.terminate()
            sink.wait(timeout=10)
            with ADMIN_ENGINE.connect() as conn:
                for name in names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    best = {n: statistics.median(r) for n, r in rates.items()}
    small, big = min(best), max(best)
    print(
        f"median rate from {big:,} / from {small:,}: {best[big]:,.0f} / {best[small]:,.0f} = "
        f"{best[big] / best[small]:.2f} (target >= 0.8)"
    )


if __name__ == "__main__":
    main()
