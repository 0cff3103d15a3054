"""Benchmark: an adaptive `update_positions()` cycle over a slow network.

Every client call takes `--latency` seconds (default 0.05: a 50 ms round trip) and answers from
prebuilt objects (the position list, a ticker, 100 hourly candles on which no exit fires). The
cycle is timed for `max_concurrent_calls` N = 1, 4, 8, ... with and without batched prices
(`get_tickers`), and for each the script reports the number of sequential round trips: the
longest chain of client calls each of which started after the one before it had answered (the
critical path of the cycle; 1 + 2 x positions for the original's order).

Every run is checked against the sequential cycle: the same positions (every field), the same
events and the same closes (none here), under a frozen clock.

    python benches/bench_latency.py                    # 50 positions, 50 ms per call
    python benches/bench_latency.py --positions 10 --latency 0.1 --cycles 1

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from datetime import datetime
from typing import Any

from bench_adaptive import hourly_candles

from position_manager_rs import Position, PositionManager, __version__
from position_manager_rs.testing import frozen_clock


class LatencyClient:
    """A client whose every call takes `latency` seconds; records each call's start and end."""

    def __init__(self, symbols: list[str], price: float, latency: float) -> None:
        self._positions = [
            {"symbol": s, "side": "long", "contracts": 1.0, "entryPrice": price, "leverage": 1}
            for s in symbols
        ]
        self._ticker = {"last": price}
        self._candles = hourly_candles()
        self.latency = latency
        self.spans: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()

    def _call(self, name: str) -> None:
        start = time.perf_counter()
        time.sleep(self.latency)
        with self._lock:
            self.spans.append((start, time.perf_counter(), name))

    def get_open_positions(self) -> list[dict[str, Any]]:
        self._call("get_open_positions")
        return self._positions

    def get_ticker(self, symbol: str) -> dict[str, float]:
        self._call("get_ticker")
        return self._ticker

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[list[float]]:
        self._call("get_ohlcv")
        return self._candles

    def close_position(self, symbol: str) -> bool:
        self._call("close_position")
        return True


class BatchedLatencyClient(LatencyClient):
    """`LatencyClient` with `get_tickers`: every price in one call of the same latency."""

    def get_tickers(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        self._call("get_tickers")
        return {s: {"symbol": s, "last": self._ticker["last"]} for s in symbols}


def round_trips(spans: list[tuple[float, float, str]]) -> int:
    """The longest chain of calls each starting after the previous one ended."""
    ordered = sorted(spans, key=lambda s: s[1])
    chain: list[int] = []
    for i, (start, _, _) in enumerate(ordered):
        before = [chain[j] for j in range(i) if ordered[j][1] <= start]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def run(
    n_positions: int, latency: float, workers: int, batched: bool, cycles: int
) -> tuple[list[float], int, int, Any]:
    """Cycle times (s), round trips and calls of the last cycle, and what the book shows."""
    candles = hourly_candles()
    price = candles[-1][4]
    symbols = [f"SYM{i}/USDT:USDT" for i in range(n_positions)]
    cls = BatchedLatencyClient if batched else LatencyClient
    client = cls(symbols, price, latency)
    times = []
    with frozen_clock(datetime(2026, 1, 1, 12, 0, 0)):
        pm = PositionManager(client, 0.02, max_concurrent_calls=workers)
        for s in symbols:
            pm.positions[s] = Position(s, "long", price, 1.0, 1, price * 0.5, price * 2.0)
        for _ in range(cycles):
            client.spans.clear()
            t = time.perf_counter()
            closed = list(pm.update_positions())
            times.append(time.perf_counter() - t)
            assert closed == [], "no position should close in this benchmark"
        state = (
            {s: p.to_dict() for s, p in pm.positions.items()},
            [(e["kind"], e["symbol"], e["reason"]) for e in pm.events],
        )
    return times, round_trips(client.spans), len(client.spans), state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call")
    parser.add_argument("--cycles", type=int, default=3, help="cycles per setting (median)")
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[1, 4, 8, 16, 32, 50, 64], help="N values"
    )
    args = parser.parse_args()
    print(
        f"position_manager_rs {__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; {args.positions} positions, {args.latency * 1000:.0f} ms per "
        f"call, 100 hourly candles each; median of {args.cycles} cycles\n"
    )
    print(
        "| max_concurrent_calls | batched prices | cycle (s) | round trips | calls "
        "| same as sequential |"
    )
    print("|---:|---|---:|---:|---:|---|")
    reference = None
    for batched in (False, True):
        for workers in args.workers:
            times, trips, calls, state = run(
                args.positions, args.latency, workers, batched, args.cycles
            )
            if reference is None:
                reference = state
            same = "yes" if state == reference else "NO"
            print(
                f"| {workers} | {'yes' if batched else 'no'} | {statistics.median(times):.3f} "
                f"| {trips} | {calls} | {same} |"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
