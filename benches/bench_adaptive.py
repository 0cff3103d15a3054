"""Benchmark: the adaptive `update_positions()` cycle through a plain Python client.

Every position gets 100 hourly candles, so the whole adaptive path runs for each of them:
candles read out of Python lists, validation, indicators, support/resistance, adaptive trailing
stop, dynamic take profit, advanced exit, smart exit, `should_close`. The client's answers are
prebuilt (one position list, one ticker, one candle list shared by every symbol) and no exit
fires, so every position is examined every cycle. The figure is the wall time of a cycle divided
by the number of positions: the manager's own work plus the client calls it makes (one
`get_open_positions` per cycle; `get_ticker` and `get_ohlcv` per position).

    python benches/bench_adaptive.py            # 1, 10, 100 positions
    python benches/bench_adaptive.py --quick    # fewer repetitions

Prints a Markdown table (microseconds per position per cycle, median of the repetitions).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from typing import Any

from cycle_timing import time_cycles

from position_manager_rs import Position, PositionManager, __version__


def hourly_candles(n: int = 100) -> list[list[float]]:
    """A gentle deterministic wave around 100: no exit rule fires on it."""
    rows = []
    close = 100.0
    for i in range(n):
        open_ = close
        close = 100.0 * (1.0 + 0.004 * math.sin(i / 3.0))
        high = max(open_, close) * 1.001
        low = min(open_, close) * 0.999
        rows.append([1_740_000_000_000 + 3_600_000 * i, open_, high, low, close, 1000.0 + i % 7])
    return rows


class CandleClient:
    """Answers from prebuilt objects: the cheapest client a bot could have."""

    def __init__(self, symbols: list[str], price: float, candles: list[list[float]]) -> None:
        self._positions = [
            {"symbol": s, "side": "long", "contracts": 1.0, "entryPrice": price, "leverage": 1}
            for s in symbols
        ]
        self._ticker = {"last": price}
        self._candles = candles

    def get_open_positions(self) -> list[dict[str, Any]]:
        return self._positions

    def get_ticker(self, symbol: str) -> dict[str, float]:
        return self._ticker

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[list[float]]:
        return self._candles

    def close_position(self, symbol: str) -> bool:
        return True


def bench(n_positions: int, cycles: int, repeats: int) -> tuple[float, float]:
    candles = hourly_candles()
    price = candles[-1][4]
    symbols = [f"SYM{i}/USDT:USDT" for i in range(n_positions)]
    client = CandleClient(symbols, price, candles)
    pm = PositionManager(client, 0.02)
    for s in symbols:
        # Leverage 1, stop and target far away: no exit fires, every position is examined.
        pm.positions[s] = Position(s, "long", price, 1.0, 1, price * 0.5, price * 2.0)
    return time_cycles(pm, cycles, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    print(
        f"position_manager_rs {__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; 100 hourly candles per position\n"
    )
    print("| positions | cycles | µs / position / cycle (median) | best |")
    print("|---:|---:|---:|---:|")
    for n, cycles in ((1, 20000), (10, 2000), (100, 200)):
        runs = cycles if not args.quick else max(1, cycles // 4)
        med, best = bench(n, runs, repeats)
        print(f"| {n} | {runs} | {med:.2f} | {best:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
