"""Benchmark: the update cycle's CPU cost per position, warm and cold, simple and adaptive.

*Warm*: cycles back to back (what `bench_update.py` and `bench_adaptive.py` time). *Cold*: each
timed cycle comes after other Python work, as in a bot, which runs its strategy, scanner and
dashboard between two cycles: here building, sorting and serialising a few megabytes of dicts
and lists (about 20 ms), which pushes the manager's code and data out of the CPU caches and its
branches out of the predictors. Only the cycle is timed.

*Simple*: the client answers no candles (`bench_update.py`'s client). *Adaptive*: 100 hourly
candles per position (`bench_adaptive.py`'s client). Both are plain Python clients answering
prebuilt objects, no exit fires, logging unconfigured (records below WARNING are dropped). The
figure is the cycle's wall time divided by the number of positions, the median of many cycles.

    python benches/bench_cold.py            # 10, 100 and 1000 positions
    python benches/bench_cold.py --quick    # fewer cycles
    python benches/bench_cold.py --parts    # where a small cycle's fixed cost goes

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import statistics
import sys
import time
from typing import Any, Callable

from bench_adaptive import CandleClient, hourly_candles
from bench_update import PrecomputedClient

from position_manager_rs import Position, PositionManager, __version__

_rng = random.Random(7)
_BLOB: list[dict[str, Any]] = [
    {"id": i, "name": f"item-{i}", "score": _rng.random(), "tags": [str(i % 7), "x"]}
    for i in range(20_000)
]


def other_work() -> int:
    """About 20 ms of ordinary Python work over a few megabytes of objects."""
    rows: list[dict[str, Any]] = [dict(r, score=r["score"] * 1.01) for r in _BLOB]
    rows.sort(key=lambda r: float(r["score"]))
    text = json.dumps(rows[:5_000])
    return len(text) + sum(len(r["tags"]) for r in rows)


def manager(kind: str, n_positions: int) -> PositionManager:
    symbols = [f"SYM{i}/USDT:USDT" for i in range(n_positions)]
    if kind == "simple":
        price = 100.0
        client: Any = PrecomputedClient(symbols, price)
        leverage = 10
    else:
        candles = hourly_candles()
        price = candles[-1][4]
        client = CandleClient(symbols, price, candles)
        leverage = 1
    pm = PositionManager(client, 0.02)
    for s in symbols:
        pm.positions[s] = Position(s, "long", price, 1.0, leverage, price * 0.5, price * 2.0)
    return pm


def one_cycle(pm: PositionManager) -> float:
    t = time.perf_counter()
    for _ in pm.update_positions():
        raise AssertionError("no position should close in this benchmark")
    return time.perf_counter() - t


def measure(kind: str, n_positions: int, cycles: int, cold: bool) -> float:
    """Median µs per position per cycle."""
    pm = manager(kind, n_positions)
    one_cycle(pm)  # warm-up (first-use costs: imports, interned names)
    samples = []
    for _ in range(cycles):
        if cold:
            other_work()
        samples.append(one_cycle(pm) / n_positions * 1e6)
    assert len(pm.positions) == n_positions
    return statistics.median(samples)


def parts(samples: int) -> None:
    """Where a small cycle's fixed cost goes, warm and cold (µs per call, median)."""
    empty = manager("simple", 0)
    one = manager("simple", 1)
    logger = logging.getLogger("TradingBot.Position")
    rows: list[tuple[str, Callable[[], Any]]] = [
        ("a trivial manager call (get_open_positions_count)", empty.get_open_positions_count),
        ("a cycle over an empty book (the list, the level refresh)", lambda: one_cycle(empty)),
        ("a cycle over one position", lambda: one_cycle(one)),
        (
            "9 Logger.isEnabledFor calls (what the level refresh asks)",
            lambda: [logger.isEnabledFor(level) for level in (10, 20, 30) * 3],
        ),
    ]
    print("| what | warm µs | cold µs |")
    print("|---|---:|---:|")
    for name, fn in rows:
        warm, cold = [], []
        for _ in range(samples):
            t = time.perf_counter()
            fn()
            warm.append((time.perf_counter() - t) * 1e6)
        for _ in range(samples // 4):
            other_work()
            t = time.perf_counter()
            fn()
            cold.append((time.perf_counter() - t) * 1e6)
        print(f"| {name} | {statistics.median(warm):.2f} | {statistics.median(cold):.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles")
    parser.add_argument("--positions", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument(
        "--parts", action="store_true", help="where a small cycle's fixed cost goes, instead"
    )
    args = parser.parse_args()
    t = time.perf_counter()
    other_work()
    work_ms = (time.perf_counter() - t) * 1000
    print(
        f"position_manager_rs {__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; other work between cold cycles: {work_ms:.1f} ms\n"
    )
    if args.parts:
        parts(400 if args.quick else 2000)
        return 0
    print("| cycle | positions | warm µs / position | cold µs / position | cycles |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("simple", "adaptive"):
        for n in args.positions:
            cycles = max(20, (4_000 if kind == "simple" else 1_000) // n)
            if args.quick:
                cycles = max(10, cycles // 4)
            warm = measure(kind, n, cycles * 4, cold=False)
            cold = measure(kind, n, cycles, cold=True)
            print(f"| {kind} | {n} | {warm:.2f} | {cold:.2f} | {cycles} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
