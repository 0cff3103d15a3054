"""Child process of tests/test_venue_crash_soak.py: the bot's process, killed at any point.

    python venue_crash_child.py BASE_URL DIALECT HEDGE JOURNAL SEED [sync|asyncio]

It trades on the venue the test serves on ``BASE_URL`` (tests/venue_sim.py, in the test's
process, so the venue outlives every child), with a manager journaled to ``JOURNAL`` (account:
the dialect's name), as one of two bots (the last argument, ``sync`` by default):

- ``sync``: a synchronous bot, ``CcxtClient`` over the dialect's real ccxt class, calling the
  manager's methods;
- ``asyncio``: an asyncio bot, ``AsyncCcxtClient`` (``call_timeout=CALL_TIMEOUT``, made on the
  bot's running loop) over the dialect's ``ccxt.async_support`` class (aiohttp), awaiting the
  manager's ``a`` methods (``aopen_position``, ``aupdate_positions()``, ...) and making its own
  price read in a worker thread; on ``stop`` it closes the exchange's HTTP session.

The bot's tick is written once, as the calls it makes that may reach the venue (a generator of
``soak_manager.Call``, as test_venue_soak.py's bot is), and driven either way: the same draws,
the same calls in the same order, the same lines. It takes commands on stdin, one per line, and
answers on stdout:

- ``tick N [KEY ...]``: sets the manager's clock to tick ``N`` (60 s a tick), runs the start-up
  sync if this process has not yet, then one tick of the bot — test_venue_soak.py's bot, trading
  a little more often: opens keys it does not hold (three opens in ten with a limit order
  first, which rests on the venue's book until it is cancelled or the price walks through it)
  but the ``KEY``s named (a position opened by hand that no read has shown holds each: it draws
  as ever, and sends nothing), closes one now and then, scales one in now and then, runs an
  update cycle and every tenth tick a sync. Before a scale-in it reads the symbol's price
  through its client, says ``scale SYMBOL LEG`` and waits for ``ok`` (the test's ledger then
  counts that one opening fill as no open on top); after it, ``scaled``. At the end of the
  tick: ``done N``.
- ``stop``: exits (``bye``).

The bot's draws depend only on the seed and the tick, so a restarted child goes on as the
killed one would have. The test kills it (SIGKILL) between ticks, or from the venue while an
order is at the venue: before the venue takes it, or after it did and before its answer.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Generator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TextIO

from soak_manager import Call, acall, call, soak_manager
from venue_dialects import DIALECTS
from venue_sim import make_exchange

from position_manager_rs import ManualClock, PositionManager
from position_manager_rs.aio import AsyncCcxtClient
from position_manager_rs.ccxt_client import CcxtClient

START = datetime(2026, 12, 1)
TICK_SECONDS = 60
LEGS = ("long", "short")
DRIVERS = ("sync", "asyncio")
#: The asyncio bot's ``AsyncCcxtClient(call_timeout=...)``: test_venue_soak.CALL_TIMEOUT (not
#: imported, to keep each child's start quick; the test checks the two agree), shorter than the
#: venue's late answers (test_venue_soak.LATE).
CALL_TIMEOUT = 2.0

#: The bot's own price read through its client (``pm.client.get_ticker(symbol)``): no manager
#: method. The asyncio bot makes it in a worker thread (the client waits for the loop).
TICKER = "client.get_ticker"
#: The scale-in handshake with the test: ``scale SYMBOL LEG`` out, ``ok`` back.
HANDSHAKE = "handshake"

#: One tick of the bot: the calls it makes, each answered with its result (or the exception it
#: raised thrown in at its ``yield``).
Tick = Generator[Call, Any, None]


def clock_at(tick: int) -> datetime:
    return START + timedelta(seconds=TICK_SECONDS * (tick + 1))


def resume(program: Tick, answer: Any, error: Exception | None) -> Call | None:
    """The program's next call, given the last call's answer or exception; ``None`` when the
    tick is over."""
    try:
        return program.throw(error) if error is not None else program.send(answer)
    except StopIteration:
        return None


def ticked(arg: str) -> tuple[int, frozenset[str]]:
    """A ``tick`` command's arguments: the tick, then the keys its bot is to open none of."""
    tick, *spared = arg.split(" ")
    return int(tick), frozenset(spared)


class Bot:
    pm: PositionManager

    def __init__(self, argv: list[str], out: TextIO) -> None:
        self.base_url, self.name, hedge, self.journal, seed = argv[:5]
        self.driver = argv[5] if len(argv) > 5 else "sync"
        if self.driver not in DRIVERS:
            raise SystemExit(f"unknown driver {self.driver!r}: one of {DRIVERS}")
        self.hedge = hedge == "1"
        self.seed = int(seed)
        self.out = out
        self.dialect = DIALECTS[self.name]()
        self.markets = {m.symbol: m for m in self.dialect.markets}
        self.clock = ManualClock(START)
        self.synced = False

    def manager(self, exchange: Any, client_class: Any = CcxtClient) -> PositionManager:
        return soak_manager(
            exchange, self.dialect, self.hedge, self.journal, self.name, self.clock, 1, client_class
        )

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def handshake(self, line: str) -> None:
        self.say(line)
        if sys.stdin.readline().strip() != "ok":
            raise SystemExit("no ok from the test")

    def tick(self, tick: int, spared: frozenset[str] = frozenset()) -> Tick:
        """One tick: the bot's decisions, each call that may reach the venue (or talks to the
        test) yielded to the driver. ``spared``: keys it opens none of (a position opened by
        hand that no read has shown holds them), drawing as ever."""
        self.clock.set(clock_at(tick))
        pm = self.pm
        if not self.synced:
            yield Call("sync_existing_positions")
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
                    amount = lots * market.lot
                    if key in spared:
                        continue
                    # open_position(symbol, signal, amount, leverage, stop, use_limit)
                    yield Call("open_position", (symbol, signal, amount, 5, 0.03, limit))
        if pm.positions and rng.random() < 0.05:
            yield Call("close_position", (rng.choice(sorted(pm.positions)), "manual"))
        if pm.positions and rng.random() < 0.05:
            key = rng.choice(sorted(pm.positions))
            symbol = key.partition("@")[0]
            lots = rng.choice((1, 2))
            try:
                ticker = yield Call(TICKER, (symbol,))
            except Exception:  # the venue's faults reach the bot's own reads too
                ticker = None
            price = ticker.get("last") if isinstance(ticker, dict) else None
            if isinstance(price, float) and price > 0:
                yield Call(HANDSHAKE, (f"scale {symbol} {pm.positions[key].side}",))
                amount = lots * self.markets[symbol].lot
                yield Call("scale_in_position", (key, amount, price))
                self.say("scaled")
        yield Call("update_positions")
        if tick % 10 == 9:
            yield Call("sync_existing_positions")
        self.say(f"done {tick}")

    # ---- the synchronous bot

    def make(self, c: Call) -> Any:
        if c.method == TICKER:
            return self.pm.client.get_ticker(*c.args)
        if c.method == HANDSHAKE:
            return self.handshake(*c.args)
        return call(self.pm, c)

    def run_tick(self, tick: int, spared: frozenset[str]) -> None:
        program = self.tick(tick, spared)
        c = resume(program, None, None)
        while c is not None:
            try:
                answer, error = self.make(c), None
            except Exception as exc:
                answer, error = None, exc
            c = resume(program, answer, error)

    def serve(self) -> None:
        self.pm = self.manager(make_exchange(self.dialect, self.base_url))
        self.say("ready")
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "tick":
                self.run_tick(*ticked(arg))
            elif command == "stop":
                break
        del self.pm

    # ---- the asyncio bot

    async def amake(self, c: Call) -> Any:
        if c.method == TICKER:
            return await asyncio.to_thread(self.pm.client.get_ticker, *c.args)
        if c.method == HANDSHAKE:
            # No manager call is in flight, but the loop keeps serving while the test answers.
            return await asyncio.to_thread(self.handshake, *c.args)
        return await acall(self.pm, c)

    async def arun_tick(self, tick: int, spared: frozenset[str]) -> None:
        program = self.tick(tick, spared)
        c = resume(program, None, None)
        while c is not None:
            try:
                answer, error = await self.amake(c), None
            except Exception as exc:
                answer, error = None, exc
            c = resume(program, answer, error)

    async def aserve(self) -> None:
        # Imported here: a synchronous child starts without it (a fifth of a second sooner).
        import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

        exchange = make_exchange(self.dialect, self.base_url, module=ccxt_async)
        try:
            # On the running loop: the client submits the exchange's calls to it.
            self.pm = self.manager(exchange, partial(AsyncCcxtClient, call_timeout=CALL_TIMEOUT))
            self.say("ready")
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    break
                command, _, arg = line.strip().partition(" ")
                if command == "tick":
                    await self.arun_tick(*ticked(arg))
                elif command == "stop":
                    break
            del self.pm
        finally:
            await exchange.close()  # the aiohttp session (only on stop: a kill leaves it)


def main() -> None:
    # The protocol has stdout to itself: anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    bot = Bot(sys.argv[1:], out)
    if bot.driver == "asyncio":
        asyncio.run(bot.aserve())
    else:
        bot.serve()
    out.write("bye\n")
    out.flush()


if __name__ == "__main__":
    main()
