"""Start-up time of ``ganforge`` commands: wall time of each, several runs, the median.

    python benchmarks/cli_startup.py [--runs 7]

Each command runs as ``python -m ganforge ...`` in a fresh process (what a user waits for,
interpreter start included), next to ``python -c "import torch"`` and a bare interpreter
measured in the same run. The results are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ("python -c pass", ["-c", "pass"]),
    ('python -c "import torch"', ["-c", "import torch"]),
    ("ganforge --help", ["-m", "ganforge", "--help"]),
    ("ganforge --version", ["-m", "ganforge", "--version"]),
    ("ganforge run --help", ["-m", "ganforge", "run", "--help"]),
    ("ganforge translate --help", ["-m", "ganforge", "translate", "--help"]),
    ("ganforge list --kinds", ["-m", "ganforge", "list", "--kinds"]),
    ("ganforge list pools", ["-m", "ganforge", "list", "pools"]),
    ("ganforge list", ["-m", "ganforge", "list"]),
]


def time_once(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], check=True, capture_output=True, env={**os.environ, "COLUMNS": "120"}
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    opts = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {opts.runs} runs each (after one warm-up)"
    )
    print(f"{'command':<30} {'median':>8} {'min':>8} {'max':>8}")
    for label, args in COMMANDS:
        time_once(args)  # the first run fills the OS page cache
        times = [time_once(args) for _ in range(opts.runs)]
        print(f"{label:<30} {statistics.median(times):>7.3f}s {min(times):>7.3f}s {max(times):>7.3f}s")


if __name__ == "__main__":
    main()
