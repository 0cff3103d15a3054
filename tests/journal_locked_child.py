"""Child process of tests/test_journal_locked.py: a journaled bot whose open may meet a journal
another process holds locked.

    python journal_locked_child.py JOURNAL ACCOUNT VENUE

It starts its manager over ``JOURNAL``, prints ``ready``, waits for a line on stdin, then opens
BTC long (2 contracts at 5x, 10 % stop) and prints ``returned True`` or ``returned False``. An
order that reaches the venue prints ``sent`` and is never answered (the process waits to be
killed, as one dying mid-request).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from file_venue import FileVenue, FileVenueClient

from position_manager_rs import PositionManager

BTC = "BTC/USDT:USDT"


class HangingClient(FileVenueClient):
    """Orders are taken by the venue, then never answered."""

    def _market(self, symbol: str, side: str, amount: float, leverage: float) -> Any:
        self.venue.fill(symbol, side, amount, leverage)
        sys.stdout.write("sent\n")
        sys.stdout.flush()
        time.sleep(600)
        return None


def main() -> None:
    url, account, path = sys.argv[1:4]
    pm = PositionManager(HangingClient(FileVenue(path)), journal=url, account=account)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    opened = pm.open_position(BTC, "BUY", 2, 5, 0.1)
    sys.stdout.write(f"returned {opened}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
