"""A fixed workload for counting a cycle's instructions with callgrind (docs/benchmarks.md,
"Instructions per cycle across a change"): a manager over N listed long positions through a
plain Python client, K update cycles.

    valgrind --tool=callgrind --collect-atstart=no \\
      --toggle-collect='pyo3::impl_::trampoline::iternextfunc' \\
      --toggle-collect='*__pymethod_update_positions__*' \\
      --callgrind-out-file=/tmp/cg.out .venv/bin/python benches/cycle_instructions.py 100 100

Instruction counts do not move with the machine's load, so two builds can be compared on a
busy machine (``PYTHONPATH`` picks the build)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from position_manager_rs import PositionManager


class Client:
    """Lists ``n`` long positions; every price 100; no candles."""

    def __init__(self, n: int) -> None:
        self.listed = [
            {
                "symbol": f"S{i}/USDT:USDT",
                "side": "long",
                "contracts": 1.0,
                "entryPrice": 100.0,
                "leverage": 10,
                "info": {},
            }
            for i in range(n)
        ]

    def get_open_positions(self) -> list[dict[str, Any]]:
        return self.listed

    def get_ticker(self, symbol: str) -> dict[str, float]:
        return {"last": 100.0}

    def get_ohlcv(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def close_position(self, symbol: str) -> bool:
        return True


def main(positions: int, cycles: int) -> None:
    logging.getLogger("TradingBot").setLevel(logging.WARNING)
    pm = PositionManager(Client(positions), ticker_retry_delays=(0, 0))
    pm.sync_existing_positions()
    for _ in range(cycles):
        list(pm.update_positions())


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
