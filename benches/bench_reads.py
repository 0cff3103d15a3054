"""Benchmark: cheap reads and bounded memory (docs/benchmarks.md, "Reads, closes, events,
history and logging").

Each section compares the manager with what the original did in pure Python:

* ``close``   - ``close_position`` outside a cycle with many positions listed on the exchange,
  against a pure-Python close that scans the list for its symbol as the original does;
* ``reads``   - ``get_all_positions()``, ``len``, ``in``, ``[]`` and iteration of
  ``manager.positions`` (and the small accessors), against the original's dict under a
  ``threading.Lock``;
* ``events``  - reading ``manager.events`` at its 10 000 cap: time, Python memory built, and the
  longest time another Python thread was kept from running meanwhile; ``events_since(seq)``;
* ``history`` - bytes of memory each position gains over 500 update cycles (process RSS);
* ``logging`` - the update cycle with the bot's logging (handlers at INFO, loggers at DEBUG)
  against logging left unconfigured and the loggers at INFO.

    python benches/bench_reads.py                  # every section
    python benches/bench_reads.py close events     # some sections
    python benches/bench_reads.py --quick          # smaller sizes, fewer repetitions
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import platform
import statistics
import sys
import threading
import time
import timeit
import tracemalloc
from functools import partial
from typing import Any, Callable

from bench_update import PrecomputedClient
from cycle_timing import time_cycles

from position_manager_rs import Position, PositionManager, __version__

PRICE = 100.0


def entry(symbol: str) -> dict[str, Any]:
    """A ccxt-like unified position dict, as a bot's client lists it."""
    return {
        "symbol": symbol,
        "contracts": 1.0,
        "side": "long",
        "entryPrice": PRICE,
        "leverage": 10,
        "contractSize": 1.0,
        "markPrice": PRICE,
        "liquidationPrice": PRICE * 0.91,
        "info": {"realLeverage": 10},
    }


class ListingClient(PrecomputedClient):
    """`bench_update.py`'s prebuilt client, listing ccxt-like unified entries (contract size,
    mark and liquidation prices) as a bot's client does."""

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols, PRICE)
        self._positions = [entry(s) for s in symbols]


def symbols(n: int) -> list[str]:
    return [f"SYM{i}/USDT:USDT" for i in range(n)]


def tracked_manager(n: int, client: Any | None = None, **options: Any) -> PositionManager:
    names = symbols(n)
    pm = PositionManager(client or ListingClient(names), 0.02, **options)
    for s in names:
        pm.positions[s] = Position(s, "long", PRICE, 1.0, 10, PRICE * 0.5, PRICE * 2.0)
    return pm


# -- the original's shapes, in pure Python ------------------------------------------------------


class OriginalShape:
    """The original's containers and accessors: a dict guarded by a ``threading.Lock``, and a
    close that scans the exchange's list for its symbol (spec §2.5, §2.7; logging calls with
    eagerly built messages, as the original's f-strings)."""

    def __init__(self, client: Any, positions: dict[str, Any]) -> None:
        self.client = client
        self.positions = dict(positions)
        self._positions_lock = threading.Lock()
        self.logger = logging.getLogger("TradingBot")
        self.position_logger = logging.getLogger("TradingBot.Position")

    def get_all_positions(self) -> dict[str, Any]:
        with self._positions_lock:
            return dict(self.positions)

    def get_open_positions_count(self) -> int:
        with self._positions_lock:
            return len(self.positions)

    def has_position(self, symbol: str) -> bool:
        with self._positions_lock:
            return symbol in self.positions

    def get_position(self, symbol: str) -> Any:
        with self._positions_lock:
            return self.positions.get(symbol)

    def close_position(self, symbol: str, reason: str = "manual") -> float | None:
        try:
            with self._positions_lock:
                if symbol not in self.positions:
                    self.logger.debug(f"Position {symbol} not in local tracking, already closed")
                    return None
                position = self.positions[symbol]
            exchange_positions = self.client.get_open_positions()
            found = False
            for p in exchange_positions:
                if p.get("symbol") == symbol:
                    found = True
                    break
            if not found:
                self.logger.info(f"Position {symbol} not found on exchange")
                with self._positions_lock:
                    self.positions.pop(symbol, None)
                return None
            log = self.position_logger
            log.info("\n" + "=" * 80)
            log.info(f"CLOSING POSITION: {symbol}")
            log.info(f"  Reason: {reason}")
            log.info(f"  Side: {position.side.upper()}")
            log.info(f"  Entry Price: {position.entry_price:.2f}")
            log.info(f"  Entry Time: {position.entry_time:%Y-%m-%d %H:%M:%S}")
            ticker = self.client.get_ticker(symbol)
            if not ticker:
                return None
            price = ticker.get("last")
            log.info(f"  Exit Price: {price:.2f}")
            u = position.get_pnl(price)
            r = position.get_leveraged_pnl(price)
            rf = position.get_leveraged_pnl(price, include_fees=True)
            value = position.amount * position.entry_price
            pnl_usd = u * value * position.leverage
            fees_usd = value * 0.0012 * position.leverage
            log.info(f"  P/L (before fees): {r:+.2%} (${pnl_usd:+.2f})")
            log.info(f"  Trading fees: -0.12% (${-fees_usd:+.2f})")
            log.info(f"  P/L (after fees): {rf:+.2%} (${pnl_usd - fees_usd:+.2f})")
            log.info(f"  Max Favorable Excursion: {position.max_favorable_excursion:.2%}")
            log.info("  Closing position on exchange...")
            if not self.client.close_position(symbol):
                return None
            log.info("  ✓ Position closed on exchange")
            self.logger.info(
                f"Closed {position.side} position: {symbol} @ {price:.2f}, "
                f"Entry: {position.entry_price:.2f}, P/L: {rf:.2%} (after fees), Reason: {reason}"
            )
            log.info("=" * 80 + "\n")
            with self._positions_lock:
                del self.positions[symbol]
            return rf
        except Exception as e:
            self.logger.error(f"Error closing position: {e}")
            return None


# -- helpers ------------------------------------------------------------------------------------


def per_call_ns(fn: Callable[[], object], repeats: int) -> float:
    """Best of `repeats` timings of `fn()`, nanoseconds per call."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeats, number=number)) / number * 1e9


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


# -- sections -----------------------------------------------------------------------------------


def bench_close(quick: bool) -> None:
    listed = 2_000 if quick else 10_000
    closes = 50 if quick else 200
    names = symbols(listed)
    client = ListingClient(names)
    pm = tracked_manager(listed, client)
    original = OriginalShape(
        client, {s: Position(s, "long", PRICE, 1.0, 10, PRICE * 0.5, PRICE * 2.0) for s in names}
    )
    ours: list[float] = []
    theirs: list[float] = []
    # Symbols spread over the list: the original's scan stops at its symbol.
    for s in names[:: listed // closes][:closes]:
        t = time.perf_counter()
        pnl = pm.close_position(s, "manual")
        ours.append(time.perf_counter() - t)
        assert pnl is not None, "the close must go through"
        t = time.perf_counter()
        pnl = original.close_position(s, "manual")
        theirs.append(time.perf_counter() - t)
        assert pnl is not None
    print(f"### close_position with {listed} positions listed and tracked ({closes} closes)\n")
    med_ours, med_theirs = statistics.median(ours), statistics.median(theirs)
    table(
        ["", "ms per close (median)", "best"],
        [
            ["position_manager_rs", f"{med_ours * 1e3:.3f}", f"{min(ours) * 1e3:.3f}"],
            ["original's shape (Python)", f"{med_theirs * 1e3:.3f}", f"{min(theirs) * 1e3:.3f}"],
            ["ratio", f"{med_ours / med_theirs:.2f}x", ""],
        ],
    )


Case = tuple[str, Callable[[], object], Callable[[], object]]


def iterate(m: Any) -> None:
    for _ in m:
        pass


def iterate_items(m: Any) -> None:
    for _ in m.items():
        pass


def read_cases(n: int) -> list[Case]:
    """(what, ours, the original's) for a book of `n` positions."""
    pm = tracked_manager(n)
    original = OriginalShape(None, dict(pm.positions.items()))
    view = pm.positions
    plain = original.positions
    hit = symbols(n)[n // 2]
    miss = "NOT/USDT:USDT"
    return [
        ("get_all_positions()", pm.get_all_positions, original.get_all_positions),
        ("len(m.positions)", lambda: len(pm.positions), lambda: len(original.positions)),
        ("len(positions)", lambda: len(view), lambda: len(plain)),
        ("symbol in positions", lambda: hit in view, lambda: hit in plain),
        ("missing in positions", lambda: miss in view, lambda: miss in plain),
        ("positions[symbol]", lambda: view[hit], lambda: plain[hit]),
        ("positions.get(symbol)", lambda: view.get(hit), lambda: plain.get(hit)),
        ("for s in positions", lambda: iterate(view), lambda: iterate(plain)),
        (
            "for s, p in positions.items()",
            lambda: iterate_items(view),
            lambda: iterate_items(plain),
        ),
        ("list(positions.values())", lambda: list(view.values()), lambda: list(plain.values())),
        (
            "get_open_positions_count()",
            pm.get_open_positions_count,
            original.get_open_positions_count,
        ),
        ("has_position(symbol)", lambda: pm.has_position(hit), lambda: original.has_position(hit)),
        ("get_position(symbol)", lambda: pm.get_position(hit), lambda: original.get_position(hit)),
    ]


def bench_reads(quick: bool) -> None:
    repeats = 3 if quick else 7
    rows = []
    for n in (10, 1_000) if quick else (10, 100, 1_000, 10_000):
        for name, mine, theirs in read_cases(n):
            a = per_call_ns(mine, repeats)
            b = per_call_ns(theirs, repeats)
            rows.append([str(n), name, fmt_ns(a), fmt_ns(b), f"{a / b:.2f}"])
    print("### Reads of the book against the original's dict (best of the repetitions)\n")
    table(["positions", "operation", "position_manager_rs", "original's dict", "ratio"], rows)


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def full_events_manager(n_events: int) -> PositionManager:
    pm = tracked_manager(20, event_history=n_events)
    names = symbols(20)
    for i in range(n_events):
        # Each call records one targets_changed event.
        pm.modify_position_targets(names[i % len(names)], PRICE * (0.5 + (i % 7) * 0.01), None)
    return pm


class Ticker(threading.Thread):
    """Another Python thread doing small work: records the longest gap between its steps."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.longest = 0.0
        self.steps = 0
        self.started_running = threading.Event()

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop.is_set():
            sum(range(50))
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now
            self.steps += 1
            self.started_running.set()


def bench_events(quick: bool) -> None:
    cap = 2_000 if quick else 10_000
    pm = full_events_manager(cap)
    events = pm.events
    assert len(events) == cap
    del events
    gc.collect()
    times = []
    for _ in range(3 if quick else 7):
        t = time.perf_counter()
        events = pm.events
        times.append(time.perf_counter() - t)
        del events
    tracemalloc.start()
    events = pm.events
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del events
    # The longest time another thread waited for the interpreter while full reads ran.
    blocks = []
    old_interval = sys.getswitchinterval()
    for _ in range(3 if quick else 5):
        ticker = Ticker()
        ticker.start()
        ticker.started_running.wait(5)
        time.sleep(0.02)
        ticker.longest = 0.0
        events = pm.events
        time.sleep(0.02)
        ticker.stop.set()
        ticker.join(5)
        blocks.append(ticker.longest)
        del events
    sys.setswitchinterval(old_interval)
    print(f"### Reading manager.events at its cap ({cap} events)\n")
    rows = [
        ["full read `manager.events`", f"{statistics.median(times) * 1e3:.1f} ms"],
        ["Python memory the full read builds", f"{size / 1e6:.1f} MB"],
        [
            "longest wait of another Python thread during a full read (worst of runs)",
            f"{max(blocks) * 1e3:.1f} ms",
        ],
    ]
    if hasattr(pm, "events_since"):
        last = pm.events_since(0)[-1]["seq"]
        since = [10, 100]
        for k in since:
            t = per_call_ns(partial(pm.events_since, last - k), 3)
            rows.append([f"`events_since(seq)`, {k} new events", fmt_ns(t)])
        t = per_call_ns(lambda: pm.events_since(last), 5)
        rows.append(["`events_since(seq)`, nothing new", fmt_ns(t)])
    table(["what", "figure"], rows)


def bench_history(quick: bool) -> None:
    n = 1_000 if quick else 10_000
    cycles = 500
    pm = tracked_manager(n)
    list(pm.update_positions())
    gc.collect()
    before = rss_bytes()
    for _ in range(cycles - 1):
        for _ in pm.update_positions():
            raise AssertionError("no position should close")
    gc.collect()
    after = rss_bytes()
    points = len(next(iter(pm.positions.values())).history)
    print(f"### Memory per position after {cycles} update cycles ({n} positions)\n")
    table(
        ["what", "figure"],
        [
            ["history points kept per position", str(points)],
            ["process RSS growth per position", f"{(after - before) / n / 1024:.2f} KiB"],
        ],
    )


class NullStream(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


def bot_logging(position_level: int) -> list[logging.Handler]:
    """The bot's set-up (spec §0.1): `TradingBot` with a file-like and a console handler at
    INFO, its children at `position_level` with no handlers of their own (records propagate)."""
    main = logging.getLogger("TradingBot")
    main.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s - %(levelname)s - %(message)s")
    handlers: list[logging.Handler] = []
    for _ in range(2):
        h = logging.StreamHandler(NullStream())
        h.setLevel(logging.INFO)
        h.setFormatter(fmt)
        main.addHandler(h)
        handlers.append(h)
    for child in ("TradingBot.Position", "TradingBot.Order"):
        logging.getLogger(child).setLevel(position_level)
    return handlers


def reset_logging(handlers: list[logging.Handler]) -> None:
    main = logging.getLogger("TradingBot")
    for h in handlers:
        main.removeHandler(h)
    for name in ("TradingBot", "TradingBot.Position", "TradingBot.Order"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def bench_logging(quick: bool) -> None:
    n = 100
    cycles = 50 if quick else 200
    repeats = 3 if quick else 7
    rows = []
    setups: list[tuple[str, int | None]] = [
        ("unconfigured (records below WARNING dropped)", None),
        ("bot: handlers at INFO, loggers at DEBUG", logging.DEBUG),
        ("handlers at INFO, loggers at INFO", logging.INFO),
    ]
    for name, level in setups:
        handlers = [] if level is None else bot_logging(level)
        try:
            median, best = time_cycles(tracked_manager(n), cycles, repeats)
            rows.append([name, f"{median:.2f}", f"{best:.2f}"])
        finally:
            reset_logging(handlers)
    print(f"### Update cycle cost by logging set-up ({n} positions, no candles)\n")
    table(["logging", "µs / position / cycle (median)", "best"], rows)


SECTIONS = {
    "close": bench_close,
    "reads": bench_reads,
    "events": bench_events,
    "history": bench_history,
    "logging": bench_logging,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    args = parser.parse_args()
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    print(f"position_manager_rs {__version__}, Python {platform.python_version()}\n")
    for name in args.sections or list(SECTIONS):
        SECTIONS[name](args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
