"""Child process of tests/test_orders_in_flight.py: a journaled bot killed while an order it sent
waits for its answer.

    python order_crash_child.py URL ACCOUNT VENUE SCENARIO

``VENUE`` is a JSON file the child's client trades on, so the venue outlives the process.
``SCENARIO``:

- ``open``: opens BTC long, 2 contracts at 5x with a 10 % stop;
- ``close``: tracks the venue's BTC position (the start-up sync), then closes it.

The venue takes the order (the file is rewritten), the client prints ``sent`` and then waits
for the kill: the answer never comes, as when a process dies mid-request.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from file_venue import FileVenue

from position_manager_rs import PositionManager

BTC = "BTC/USDT:USDT"


class HangingClient:
    """The bot's client shape over a ``FileVenue``; an order is taken, then never answered."""

    def __init__(self, venue: FileVenue) -> None:
        self.venue = venue

    def get_open_positions(self) -> list[dict[str, Any]]:
        return self.venue.positions()

    def get_ticker(self, symbol: str, priority: Any = None) -> dict[str, Any]:
        return {"last": self.venue.price}

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        return []

    def _hang(self) -> None:
        sys.stdout.write("sent\n")
        sys.stdout.flush()
        time.sleep(600)

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: int = 10,
        max_slippage: float = 0.01,
        validate_depth: bool = True,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> dict[str, Any] | None:
        self.venue.fill(symbol, side, float(amount), float(leverage))
        self._hang()
        return None

    def close_position(self, symbol: str) -> bool:
        self.venue.close(symbol)
        self._hang()
        return False


def main() -> None:
    url, account, path, scenario = sys.argv[1:5]
    pm = PositionManager(HangingClient(FileVenue(path)), journal=url, account=account)
    if scenario == "open":
        pm.open_position(BTC, "BUY", 2, 5, 0.1)
    else:
        pm.sync_existing_positions()
        sys.stdout.write("tracked\n")
        sys.stdout.flush()
        pm.close_position(BTC, "manual")
    sys.stdout.write("returned\n")  # never reached: the test kills the process first
    sys.stdout.flush()


if __name__ == "__main__":
    main()
