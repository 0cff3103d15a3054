"""Child process of tests/test_orders_in_flight.py: a journaled bot killed while an order it sent
waits for its answer.

    python order_crash_child.py URL ACCOUNT VENUE SCENARIO

``VENUE`` is a JSON file the child's client trades on, so the venue outlives the process.
``SCENARIO``:

- ``open``: opens BTC long, 2 contracts at 5x with a 10 % stop;
- ``close``: tracks the venue's BTC position (the start-up sync), then closes it;
- ``limit``: opens BTC long, 2 contracts, with a limit order first (``use_limit``), the bot's
  client's way (no client order id): the order rests, and the process dies while it waits for
  the fill.

The venue takes the order (the file is rewritten), the client prints ``sent`` and then waits
for the kill: the answer never comes, as when a process dies mid-request (for ``limit``: the
limit order's answer came; the wait for its fill never ends).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from file_venue import FileVenue, FileVenueClient

from position_manager_rs import PositionManager

BTC = "BTC/USDT:USDT"


class HangingClient(FileVenueClient):
    """A ``FileVenueClient`` whose orders are taken by the venue, then never answered."""

    def _hang(self) -> None:
        sys.stdout.write("sent\n")
        sys.stdout.flush()
        time.sleep(600)

    def _market(self, symbol: str, side: str, amount: float, leverage: float) -> Any:
        self.venue.fill(symbol, side, amount, leverage)
        self._hang()
        return None

    def _close(self, symbol: str) -> bool:
        self.venue.close(symbol)
        self._hang()
        return False

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None:
        self._hang()
        return None


def main() -> None:
    url, account, path, scenario = sys.argv[1:5]
    pm = PositionManager(HangingClient(FileVenue(path)), journal=url, account=account)
    if scenario == "open":
        pm.open_position(BTC, "BUY", 2, 5, 0.1)
    elif scenario == "limit":
        pm.open_position(BTC, "BUY", 2, 5, 0.1, use_limit=True)
    else:
        pm.sync_existing_positions()
        sys.stdout.write("tracked\n")
        sys.stdout.flush()
        pm.close_position(BTC, "manual")
    sys.stdout.write("returned\n")  # never reached: the test kills the process first
    sys.stdout.flush()


if __name__ == "__main__":
    main()
