"""Benchmark: the journal (``journal=``): events journaled per second and the update cycle's
overhead, per database and ``journal_sync`` mode.

    python benches/bench_journal.py                    # SQLite (a file in the working directory)
    python benches/bench_journal.py --postgres URL     # and PostgreSQL (a database it may write)
    python benches/bench_journal.py --quick

Events: one manager changes its book call after call (assign a position, modify its targets);
each call records one event, written (one transaction) before the call returns. Cycle: a full
``update_positions()`` over 10 and 100 positions through a plain Python client whose price moves
a little every cycle, so every position's state changes and the end-of-cycle checkpoint writes
every row (the worst case); the baseline is the same manager without a journal.

Prints Markdown tables (median of the repetitions).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from position_manager_rs import Position, PositionManager, __version__

MODES = ("full", "normal", "off")


class MovingClient:
    """Prebuilt answers; the price rises a little with every cycle (a new high each time)."""

    def __init__(self, symbols: list[str], price: float) -> None:
        self._positions = [
            {"symbol": s, "side": "long", "contracts": 1.0, "entryPrice": price, "leverage": 10}
            for s in symbols
        ]
        self.price = price
        self._candles: list[list[float]] = []

    def get_open_positions(self) -> list[dict[str, Any]]:
        self.price *= 1.00001
        return self._positions

    def get_ticker(self, symbol: str) -> dict[str, float]:
        return {"last": self.price}

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[list[float]]:
        return self._candles

    def close_position(self, symbol: str) -> bool:
        return True


def events_per_second(journal: str | None, sync: str, n: int, repeats: int) -> float:
    rates = []
    for r in range(repeats):
        kwargs: dict[str, Any] = {}
        if journal is not None:
            kwargs = {"journal": journal, "account": f"events-{sync}-{r}", "journal_sync": sync}
        client: Any = object()
        pm = PositionManager(client, event_history=100, **kwargs)
        symbols = [f"E{i}/USDT:USDT" for i in range(20)]
        for s in symbols:
            pm.positions[s] = Position(s, "long", 100.0, 1.0, 10, 90.0, 120.0)
        t = time.perf_counter()
        for i in range(n):
            s = symbols[i % len(symbols)]
            pm.modify_position_targets(s, 90.0 + (i % 7), 120.0 + (i % 5))
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def cycle_ms(journal: str | None, sync: str, positions: int, cycles: int, repeats: int) -> float:
    times = []
    for r in range(repeats):
        symbols = [f"C{i}/USDT:USDT" for i in range(positions)]
        client = MovingClient(symbols, 100.0)
        kwargs: dict[str, Any] = {}
        if journal is not None:
            kwargs = {
                "journal": journal,
                "account": f"cycle-{positions}-{sync}-{r}",
                "journal_sync": sync,
            }
        pm = PositionManager(client, 0.02, event_history=100, **kwargs)
        for s in symbols:
            pm.positions[s] = Position(s, "long", 100.0, 1.0, 10, 50.0, 200.0)
        for p in pm.positions.values():
            p.strategy = "breakout"
        list(pm.update_positions())  # warm-up
        t = time.perf_counter()
        for _ in range(cycles):
            for _ in pm.update_positions():
                raise AssertionError("no position should close in this benchmark")
        times.append((time.perf_counter() - t) / cycles * 1e3)
        assert len(pm.positions) == positions
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL to benchmark too")
    parser.add_argument("--quick", action="store_true", help="fewer events and cycles")
    args = parser.parse_args()
    n_events = 300 if args.quick else 2000
    cycles = 10 if args.quick else 50
    repeats = 3
    print(f"position_manager_rs {__version__}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(dir=os.getcwd(), prefix=".bench-journal-") as tmp:
        targets: list[tuple[str, str]] = [("SQLite", str(Path(tmp) / "bench.db"))]
        if args.postgres:
            targets.append(("PostgreSQL", args.postgres))
        print("\n| journal | journal_sync | events / s (median) |")
        print("|---|---|---:|")
        print(f"| none | — | {events_per_second(None, 'full', n_events * 5, repeats):,.0f} |")
        for name, url in targets:
            for mode in MODES:
                rate = events_per_second(url, mode, n_events, repeats)
                print(f"| {name} | {mode} | {rate:,.0f} |", flush=True)
        print("\n| journal | journal_sync | positions | ms / cycle (median) | overhead |")
        print("|---|---|---:|---:|---:|")
        for positions in (10, 100):
            base = cycle_ms(None, "full", positions, cycles, repeats)
            print(f"| none | — | {positions} | {base:.2f} | — |")
            for name, url in targets:
                for mode in MODES:
                    ms = cycle_ms(url, mode, positions, cycles, repeats)
                    print(
                        f"| {name} | {mode} | {positions} | {ms:.2f} | +{ms - base:.2f} ms |",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
