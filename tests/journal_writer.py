"""Child process of tests/test_journal_crash.py: a journaled manager that changes its book in a
loop until it is killed (or, with a count, until it is done).

    python journal_writer.py URL ACCOUNT SEED [COUNT]

It restores the account (printing ``ready`` and the symbols it restored as JSON), then makes
one change per call — assign a position, modify its targets, delete it — and after each call
returns prints the numbers of the events that call recorded: those events are in the journal
(written before the call returned), whatever happens next.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

from position_manager_rs import Position, PositionManager

SYMBOLS = [f"C{i}/USDT:USDT" for i in range(12)]


def main() -> None:
    url, account, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else None
    sync: Any = os.environ.get("PMRS_JOURNAL_SYNC", "full")
    client: Any = object()
    pm = PositionManager(client, journal=url, account=account, journal_sync=sync, event_history=100)
    recorded: list[int] = []
    pm.on_event(lambda e: recorded.append(e["seq"]))
    out = sys.stdout
    out.write("ready " + json.dumps(sorted(pm.positions)) + "\n")
    out.flush()
    rng = random.Random(seed)
    done = 0
    while count is None or done < count:
        symbol = rng.choice(SYMBOLS)
        price = round(rng.uniform(90, 110), 4)
        position: Any = pm.positions.get(symbol)
        if position is None:
            p = Position(symbol, "long", price, 1.0, 10, price * 0.95, price * 1.1)
            p.strategy = f"s{rng.randrange(1000)}"
            pm.positions[symbol] = p
        elif rng.random() < 0.5:
            pm.modify_position_targets(symbol, price * 0.9, price * 1.2)
        else:
            del pm.positions[symbol]
        if recorded:
            out.write(" ".join(map(str, recorded)) + "\n")
            out.flush()
            recorded.clear()
        done += 1
    out.write("done\n")
    out.flush()


if __name__ == "__main__":
    main()
