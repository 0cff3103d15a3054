"""Child process of tests/test_venue_crash_soak.py: the bot's process, killed at any point.

    python venue_crash_child.py BASE_URL DIALECT HEDGE JOURNAL SEED

It trades through ``CcxtClient`` and the dialect's real ccxt class on the venue the test serves
on ``BASE_URL`` (tests/venue_sim.py, in the test's process, so the venue outlives every child),
with a manager journaled to ``JOURNAL`` (account: the dialect's name). It takes commands on
stdin, one per line, and answers on stdout:

- ``tick N``: sets the manager's clock to tick ``N`` (60 s a tick), runs the start-up sync if
  this process has not yet, then one tick of the bot — test_venue_soak.py's bot, trading a
  little more often: opens keys it does not hold (three opens in ten with a limit order first,
  which rests on the venue's book until it is cancelled or the price walks through it), closes
  one now and then, scales one in now and then, runs an update cycle and every tenth tick a
  sync. Before a scale-in it says ``scale SYMBOL LEG`` and
  waits for ``ok`` (the test's ledger then counts that one opening fill as no open on top);
  after it, ``scaled``. At the end of the tick: ``done N``.
- ``stop``: exits (``bye``).

The bot's draws depend only on the seed and the tick, so a restarted child goes on as the
killed one would have. The test kills it (SIGKILL) between ticks, or from the venue while an
order is at the venue: before the venue takes it, or after it did and before its answer.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import datetime, timedelta
from typing import TextIO

from soak_manager import soak_manager
from venue_dialects import DIALECTS
from venue_sim import make_exchange

from position_manager_rs import ManualClock

START = datetime(2026, 12, 1)
TICK_SECONDS = 60
LEGS = ("long", "short")


def clock_at(tick: int) -> datetime:
    return START + timedelta(seconds=TICK_SECONDS * (tick + 1))


class Bot:
    def __init__(self, argv: list[str], out: TextIO) -> None:
        self.base_url, self.name, hedge, self.journal, seed = argv
        self.hedge = hedge == "1"
        self.seed = int(seed)
        self.out = out
        self.markets = {m.symbol: m for m in DIALECTS[self.name].markets}
        self.clock = ManualClock(START)
        dialect = DIALECTS[self.name]()
        exchange = make_exchange(dialect, self.base_url)
        self.pm = soak_manager(exchange, dialect, self.hedge, self.journal, self.name, self.clock)
        self.synced = False

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def tick(self, tick: int) -> None:
        self.clock.set(clock_at(tick))
        pm = self.pm
        if not self.synced:
            pm.sync_existing_positions()
            self.synced = True
        rng = random.Random(f"{self.name} {self.hedge} {self.seed} t{tick}")
        for symbol, market in self.markets.items():
            for leg in LEGS if self.hedge else ("",):
                key = f"{symbol}@{leg}" if leg else symbol
                if not pm.has_position(key) and rng.random() < 0.08:
                    signal = {"long": "BUY", "short": "SELL"}.get(leg) or rng.choice(
                        ("BUY", "SELL")
                    )
                    lots = rng.choice((2, 3, 5))
                    limit = rng.random() < 0.3  # a post-only limit first, then market
                    pm.open_position(symbol, signal, lots * market.lot, 5, 0.03, use_limit=limit)
        if pm.positions and rng.random() < 0.05:
            pm.close_position(rng.choice(sorted(pm.positions)), "manual")
        if pm.positions and rng.random() < 0.05:
            key = rng.choice(sorted(pm.positions))
            symbol = key.partition("@")[0]
            lots = rng.choice((1, 2))
            try:
                ticker = pm.client.get_ticker(symbol)
            except Exception:  # the venue's faults reach the bot's own reads too
                ticker = None
            price = ticker.get("last") if isinstance(ticker, dict) else None
            if isinstance(price, float) and price > 0:
                self.say(f"scale {symbol} {pm.positions[key].side}")
                if sys.stdin.readline().strip() != "ok":
                    raise SystemExit("no ok from the test")
                pm.scale_in_position(key, lots * self.markets[symbol].lot, price)
                self.say("scaled")
        list(pm.update_positions())
        if tick % 10 == 9:
            pm.sync_existing_positions()
        self.say(f"done {tick}")


def main() -> None:
    # The protocol has stdout to itself: anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    bot = Bot(sys.argv[1:6], out)
    bot.say("ready")
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "tick":
            bot.tick(int(arg))
        elif command == "stop":
            break
    del bot.pm
    out.write("bye\n")
    out.flush()


if __name__ == "__main__":
    main()
