"""The child process of tests/test_crash_safety.py (not a test module).

``python crash_saver.py PATH START`` builds two known, different books (50 and 51 positions),
prints ``ready``, then saves them to PATH in turn forever: save number ``g`` (from START on)
writes the 50-position book when ``g`` is even and the 51-position one when odd, with
``generation = g`` on its first position, and prints ``g`` once the save has returned. The test
kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Any

from position_manager_rs import Position, PositionManager

# A client these tests never call: the manager only keeps its book here.
NO_CLIENT: Any = object()

BASE_TIME = datetime(2025, 1, 2, 3, 4, 5, 600000)


def book_size(generation: int) -> int:
    return 50 if generation % 2 == 0 else 51


def book(n: int) -> PositionManager:
    """The ``n``-position book (every field and some attributes depend on ``n``)."""
    pm = PositionManager(NO_CLIENT)
    for i in range(n):
        side = "long" if (i + n) % 3 else "short"
        entry = 100.0 + i * 1.25 + n / 7
        stop = entry * (0.97 if side == "long" else 1.03)
        target = entry * (1.09 if side == "long" else 0.91)
        p = Position(f"C{i:03d}/USDT:USDT", side, entry, 0.5 + i + n, 3 + i % 20, stop, target)
        p.entry_time = BASE_TIME + timedelta(minutes=i + n)
        p.last_pnl_time = BASE_TIME + timedelta(minutes=2 * i + n, microseconds=i)
        p.max_favorable_excursion = i / (n + 3)
        p.partial_exits_taken = (i + n) % 3
        p.trailing_stop_activated = bool((i + n) % 2)
        if side == "long":
            p.highest_price = entry * 1.01
        else:
            p.lowest_price = entry * 0.99
        p.strategy = f"strategy-{(i * n) % 5}"
        p.entry_volatility = (i + 1) / (n + 11)
        p.market_regime = {"trend": "up" if i % 2 else "down", "book": n, "i": i}
        pm.positions[p.symbol] = p
    return pm


def records(pm: PositionManager) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """What must survive: every position's fields and attributes, in book order."""
    return [(s, p.to_dict(), dict(vars(p))) for s, p in pm.positions.items()]


def main(argv: list[str]) -> None:
    path, generation = argv[1], int(argv[2])
    books = {50: book(50), 51: book(51)}
    print("ready", flush=True)
    while True:
        pm = books[book_size(generation)]
        first = next(iter(pm.positions.values()))
        first.generation = generation
        pm.save_state(path)
        print(generation, flush=True)
        generation += 1


if __name__ == "__main__":
    main(sys.argv)
