"""A child process of ``test_timer_frame.py``: a manager on the default (system) clock whose
re-open hold is kept across a restart, or across a change of the process's time zone.

usage: timer_child.py journal-write DB | journal-restart DB | state-write PATH | state-load PATH
       | tz-jump TZ

The bot's client fails its reads, so a live BTC position is untracked and its re-open held
(``reopen_hold_seconds=3600``). ``*-write`` keeps the hold (a journal, or ``save_state``);
``journal-restart`` / ``state-load`` start a new manager on it with the venue still holding the
position and the reads still failing, and try to open BTC again. ``tz-jump`` changes ``TZ``
inside the process after the hold began, then tries. Prints one JSON line: ``opened`` (whether
the open went out) and ``contracts`` (what the venue holds).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bot_sim import BotLikeClient

from position_manager_rs import Journal, PaperExchange, PositionManager

SYMBOL = "BTC/USDT:USDT"


def main() -> None:
    phase, where = sys.argv[1], sys.argv[2]
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    journal = where if phase.startswith("journal") else None
    pm = PositionManager(
        client,
        0.02,
        ticker_retry_delays=(),
        reopen_hold_seconds=3600,
        journal=journal,
        account="h" if journal else None,
    )
    if phase in ("journal-write", "state-write", "tz-jump"):
        assert pm.open_position(SYMBOL, "BUY", 3, 10, 0.05) is True
        list(pm.update_positions())
        paper.fail_next("get_open_positions", times=2)
        list(pm.update_positions())
        assert not pm.has_position(SYMBOL), "two failed reads untracked it"
        if phase == "state-write":
            pm.save_state(where)
        if phase != "tz-jump":
            # What the restart will take back: the hold as the journal or the file keeps it.
            if journal is not None:
                with Journal(where) as reader:
                    kept = [h["symbol"] for h in reader.reopen_holds("h")]
            else:
                kept = [h["symbol"] for h in json.loads(Path(where).read_text())["holds"]]
            print(json.dumps({"held": kept == [SYMBOL]}))
            return
        os.environ["TZ"] = where
        time.tzset()
        time.sleep(1.1)  # past the second whose local offset the clock keeps
    else:
        paper.create_market_order(SYMBOL, "buy", 3, 10)  # the venue still holds it
        if phase == "state-load":
            pm.load_state(where)
    paper.fail_next("get_open_positions", times=4)  # the outage goes on
    opened = pm.open_position(SYMBOL, "BUY", 3, 10, 0.05)
    position = paper.position(SYMBOL)
    contracts = 0.0 if position is None else float(position["contracts"])
    print(json.dumps({"opened": opened, "contracts": contracts}))


if __name__ == "__main__":
    main()
