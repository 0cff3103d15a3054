"""Benchmark: the sustained multi-threaded load of tests/test_load.py at full size.

``--threads`` workers (default 8) share ``--ops`` mixed operations (default 100 000) over
``--symbols`` symbols (default 1 000) against the thread-safe fake exchange of the tests: update
cycles, opens, closes, scale in/out, target changes, assignments, deletions, iteration, lookups,
syncs, reconciliations, manual closes on the exchange and price moves. Prints the operations per
second and the count of lost positions (defined in ``tests/reliability_helpers.py``, ``LoadRun``),
which must be 0.

    .venv/bin/python benches/bench_load.py                  # 100 000 operations
    .venv/bin/python benches/bench_load.py --ops 10000      # the CI size
    .venv/bin/python benches/bench_load.py --repeat 3       # three seeds

Exit status 1 if any position was lost or the book was inconsistent.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import platform
import sys
from pathlib import Path
from typing import Any

from position_manager_rs import __version__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=1800.0)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    helpers: Any = importlib.import_module("reliability_helpers")
    for name in ("TradingBot", "TradingBot.Position", "TradingBot.Order"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    print(
        f"position-manager-rs {__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {args.threads} threads, {args.symbols} symbols, {args.ops} ops"
    )
    print("| seed | ops | seconds | ops/s | lost | second close orders | orders to vanished |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    for i in range(args.repeat):
        run = helpers.LoadRun(
            seed=args.seed + i,
            threads=args.threads,
            symbols=args.symbols,
            operations=args.ops,
            deadline=args.deadline,
        )
        r = run.run()
        print(
            f"| {r.seed} | {r.operations} | {r.seconds:.2f} | {r.ops_per_second:,.0f} | "
            f"{r.lost} | {r.second_closes} | {r.vanished_closes} |"
        )
        if r.lost or r.problems:
            failed = True
            print(f"  LOST/INCONSISTENT: {r.summary()}")
            for line in (r.lost_untracked + r.stale_after_cycle + r.missing_after_sync)[:20]:
                print(f"    {line}")
            for line in r.problems[:20]:
                print(f"    {line}")
        print(f"  mix: {dict(sorted(r.op_counts.items()))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
