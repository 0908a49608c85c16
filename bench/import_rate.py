"""Subscriber import rate: ``publisher subscribers import`` of N rows on SQLite and PostgreSQL.

For each store, in one run, it prints:

- (a) publisher's rate: the real CLI (``python -m publisher subscribers import FILE``) as a
  subprocess into a fresh store, from start to exit, over N rows of the export shape (one
  subscription per row, a name, a frequency and a topic; 200 domains), and its peak RSS;
- (b) the baseline: the per-row path the import used before batching (a suppression lookup
  and ``Store.add_subscriber`` per row, about 7 statements), over ``--baseline-rows`` rows;
- (c) the ceiling: email-validator alone on the same addresses, one core.

The target is (a) >= 10,000 rows/s on both stores, and 1,000,000 rows in under 2 minutes.
``import_rate(url, n)`` is also what ``bench/scale.py`` can call for its import figure.

Run: .venv/bin/python bench/import_rate.py [--n 20000] [--store sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("PUBLISHER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONFIG = """
[site]
title = "Bench"
url = "https://news.example.org"
[store]
url = "{url}"
[[sources]]
name = "newsroom"
type = "markdown"
path = "content"
[[digests]]
id = "daily"
title = "Daily"
schedule = "0 7 * * *"
[delivery]
transport = "file"
from = "newsletter@news.example.org"
"""


def addresses(n: int) -> Iterator[str]:
    """N distinct addresses over 200 domains."""
    for i in range(n):
        yield f"reader.{i}@mail{i % 200}.example.org"


def write_csv(path: Path, n: int) -> None:
    """N rows in the export shape."""
    frequencies = ("every", "daily", "weekly")
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name,status,digest,frequency,tags\n")
        for i, address in enumerate(addresses(n)):
            handle.write(f"{address},Reader {i},active,daily,{frequencies[i % 3]},research\n")


def _pg_database() -> str:
    from sqlalchemy import create_engine, text

    name = f"publisher_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _fresh_url(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    return _pg_database()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fixed_cost(kind: str, folder: Path) -> float:
    """Seconds of a 1-row import: the process start, imports and store opening that every
    import pays once, whatever its size."""
    return import_rate(kind, 1, folder)[0]


def import_rate(kind: str, n: int, folder: Path) -> tuple[float, float, float, float]:
    """(seconds, rows/s, CPU seconds of the import process, peak RSS MiB) of the real CLI
    importing n rows into a fresh store. The CPU time tells a busy machine (wall time much
    longer than CPU time) from a slow import."""
    url = _fresh_url(kind, folder)
    try:
        (folder / "content").mkdir(exist_ok=True)
        config = folder / "config.toml"
        config.write_text(CONFIG.format(url=url), encoding="utf-8")
        csv_file = folder / f"subs-{n}.csv"
        if not csv_file.exists():
            write_csv(csv_file, n)
        # Migrate first, so only the import is timed (read-only commands such as `subscribers
        # list` do not migrate a fresh store).
        subprocess.run(
            [sys.executable, "-m", "publisher", "--config", str(config), "db", "upgrade"],
            check=True, capture_output=True, cwd=folder,
        )  # fmt: skip
        env = {**os.environ, "PUBLISHER_NOW": NOW.isoformat()}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        cpu = _cpu()
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "publisher", "--config", str(config), "subscribers", "import",
             str(csv_file)], capture_output=True, text=True, cwd=folder, env=env,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        cpu = _cpu() - cpu
        if result.returncode != 0 or f"imported {n} new" not in result.stdout:
            raise SystemExit(f"import failed: {result.stdout} {result.stderr[-2000:]}")
        rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        return seconds, n / seconds, cpu, rss
    finally:
        if kind == "postgresql":
            _drop_pg(url)


def baseline_rate(kind: str, n: int, folder: Path) -> float:
    """Rows/s of the old per-row path: suppression lookup + add_subscriber for each row."""
    from publisher.compose.subscriptions import email_hash, normalize_address
    from publisher.store import Store

    url = _fresh_url(kind, folder / "baseline") if kind == "postgresql" else (
        f"sqlite:///{folder / 'baseline.db'}"
    )
    store = Store.open(url)
    try:
        started = time.perf_counter()
        for address in addresses(n):
            email = normalize_address(address)
            store.is_suppressed(email_hash(email))
            store.add_subscriber(email, "Reader", ["daily"], NOW, reactivate=False, tags=["research"])
        return n / (time.perf_counter() - started)
    finally:
        store.close()
        if kind == "postgresql":
            _drop_pg(url)


def validator_rate(n: int) -> float:
    """Addresses/s of email-validator alone (syntax only), the per-core ceiling."""
    from email_validator import validate_email

    items = list(addresses(n))
    started = time.perf_counter()
    for address in items:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    return n / (time.perf_counter() - started)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="rows to import (default 20000)")
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip (b), e.g. at 1M")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    print(f"(c) email-validator alone: {validator_rate(min(args.n, 50_000)):,.0f} addresses/s")
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        folder = Path(tmp)
        (folder / "baseline").mkdir()
        for kind in kinds:
            fixed = fixed_cost(kind, folder)
            seconds, rate, cpu, rss = import_rate(kind, args.n, folder)
            base = float("nan") if args.no_baseline else baseline_rate(kind, args.baseline_rows, folder)
            target = "ok" if rate >= 10_000 else "BELOW 10,000"
            print(
                f"{kind:10}  (a) import {args.n:,} rows: {seconds:.1f} s, {rate:,.0f} rows/s "
                f"[{target}] ({cpu:.1f} CPU s in the import process: {args.n / cpu:,.0f} rows per "
                f"CPU s), {args.n / max(seconds - fixed, 1e-3):,.0f} rows/s after the {fixed:.1f} s "
                f"start-up, peak RSS {rss:.0f} MiB   (b) per-row baseline: {base:,.0f} rows/s   "
                f"a/b = {rate / base:.0f}x"
            )


if __name__ == "__main__":
    main()
