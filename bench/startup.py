"""Start-up time of the CLI: ``publisher --help`` against a bare ``python -c 'import click'``.

Each command runs as a fresh subprocess of this interpreter, ``--runs`` times, interleaved
(so a shared machine's load falls on all alike), after one warm-up run each (the OS file
cache). It prints each median and the difference and ratio to ``import click``; the goal
(issue 13) is ``publisher --help`` within about 0.15 s of bare ``import click``.

Run: .venv/bin/python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "import click": [sys.executable, "-c", "import click"],
    "publisher --help": [sys.executable, "-m", "publisher", "--help"],
    "publisher status --help": [sys.executable, "-m", "publisher", "status", "--help"],
}
GOAL_SECONDS = 0.15


def time_once(argv: list[str]) -> float:
    """Wall-clock seconds of one run of ARGV (output discarded; a failure raises)."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    """The median seconds of each command over RUNS interleaved runs."""
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():
        time_once(argv)  # warm-up
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            samples[name].append(time_once(argv))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    """Measure and print the medians, differences and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Runs of each command (default 15).")
    args = parser.parse_args()
    medians = measure(args.runs)
    base = medians["import click"]
    print(f"{'command':<26} {'median':>8} {'- click':>8} {'ratio':>6}   ({args.runs} runs)")
    for name, seconds in medians.items():
        print(f"{name:<26} {seconds:>7.3f}s {seconds - base:>+7.3f}s {seconds / base:>5.2f}x")
    gap = medians["publisher --help"] - base
    verdict = "within" if gap <= GOAL_SECONDS else "NOT within"
    print(f"publisher --help is {gap:.3f}s over import click: {verdict} the {GOAL_SECONDS}s goal")


if __name__ == "__main__":
    main()
