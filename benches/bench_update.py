"""Benchmark: one `update_positions()` cycle through a plain Python client.

The client's answers are precomputed (no candles, prices that trigger no exit), so the figure is
the manager's own cost per position per cycle plus the client calls it makes (one
`get_open_positions` per cycle; `get_ticker` and `get_ohlcv` per position).

    python benches/bench_update.py            # 10, 100, 1000 positions
    python benches/bench_update.py --quick    # fewer repetitions

Prints a Markdown table (microseconds per position per cycle, median of the repetitions).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import Any

from cycle_timing import time_cycles

from position_manager_rs import Position, PositionManager, __version__


class PrecomputedClient:
    """Answers from prebuilt objects: the cheapest client a bot could have."""

    def __init__(self, symbols: list[str], price: float) -> None:
        self._positions = [
            {"symbol": s, "side": "long", "contracts": 1.0, "entryPrice": price, "leverage": 10}
            for s in symbols
        ]
        self._ticker = {"last": price}
        self._candles: list[list[float]] = []

    def get_open_positions(self) -> list[dict[str, Any]]:
        return self._positions

    def get_ticker(self, symbol: str) -> dict[str, float]:
        return self._ticker

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[list[float]]:
        return self._candles

    def close_position(self, symbol: str) -> bool:
        return True


def client_call_cost(client: PrecomputedClient, n: int = 200_000) -> float:
    """Microseconds for one bare Python call of a client method (the floor of any design)."""
    t = time.perf_counter()
    for _ in range(n):
        client.get_ticker("X")
    return (time.perf_counter() - t) / n * 1e6


def bench(n_positions: int, cycles: int, repeats: int) -> tuple[float, float]:
    price = 100.0
    symbols = [f"SYM{i}/USDT:USDT" for i in range(n_positions)]
    client = PrecomputedClient(symbols, price)
    pm = PositionManager(client, 0.02)
    for s in symbols:
        # Stop and target far away: no exit fires, every position is examined every cycle.
        pm.positions[s] = Position(s, "long", price, 1.0, 10, price * 0.5, price * 2.0)
    return time_cycles(pm, cycles, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    python = platform.python_version()
    print(f"position_manager_rs {__version__}, Python {python}, {platform.machine()}")
    print(f"bare client method call: {client_call_cost(PrecomputedClient([], 1.0)):.2f} µs\n")
    print("| positions | cycles | µs / position / cycle (median) | best |")
    print("|---:|---:|---:|---:|")
    for n, cycles in ((10, 2000), (100, 200), (1000, 20)):
        med, best = bench(n, cycles if not args.quick else max(1, cycles // 4), repeats)
        print(f"| {n} | {cycles} | {med:.2f} | {best:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
