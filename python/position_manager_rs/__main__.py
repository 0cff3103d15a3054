"""Command line of ``position_manager_rs``: ``python -m position_manager_rs demo``.

The demo runs a ``PositionManager`` against the in-package paper exchange
(:class:`position_manager_rs.paper.PaperExchange`): it opens positions, runs update cycles while
the simulated market moves, and lets the venue do what real venues do to a bot (a manual close,
a liquidation, a transient empty position list, an API exception, a partial reduction), printing
a line for every notable thing. It ends with the positions still open and the manager's event
history. Everything is simulated and seeded: the same ``--seed`` prints the same output.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Callable, TextIO

from position_manager_rs import PositionManager
from position_manager_rs.paper import DEFAULT_SYMBOLS, EXTERNAL_EVENT_KINDS, PaperExchange

__all__ = ["main"]

#: Random venue event probabilities per tick for ``--events``.
EVENT_LEVELS: dict[str, dict[str, float]] = {
    "none": {},
    "low": {
        "manual_close": 0.002,
        "partial_reduction": 0.002,
        "transient_empty": 0.003,
        "exception": 0.004,
    },
    "high": {
        "manual_close": 0.01,
        "partial_reduction": 0.01,
        "transient_empty": 0.015,
        "exception": 0.02,
    },
}

# The scripted venue events, in the order they happen (see Demo.schedule).
SCRIPT = ("manual_close", "transient_empty", "exception", "liquidation", "partial_reduction")

NOTIONAL_USDT = 1000.0  # size of each position (contracts * contract size * price)
LEVERAGES = (10, 5, 20, 8)
STOP_LOSS_PERCENTAGE = 0.03
REOPEN_AFTER_CYCLES = 3
SYNC_EVERY_CYCLES = 10  # the bot re-syncs with the exchange every 10th main-loop cycle

_CSI = "\033["
_COLORS = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


class Style:
    """ANSI colouring that is a no-op when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        codes = ";".join(_COLORS[n] for n in names)
        return f"{_CSI}{codes}m{text}{_CSI}0m"

    def pnl(self, text: str, value: float | None) -> str:
        """Green for a gain, red for a loss."""
        if value is None or value == 0:
            return text
        return self(text, "green" if value > 0 else "red")


class _Capture(logging.Handler):
    """Keeps the manager's log records so the demo can show warnings as progress lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def drain(self) -> list[logging.LogRecord]:
        out, self.records = self.records, []
        return out


def _decimals(price: float) -> int:
    """Decimals that show a price with five significant digits (at least two)."""
    magnitude = math.floor(math.log10(abs(price))) if price else 0
    return int(min(8, max(2, 4 - magnitude)))


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.2%}"


def _lots(x: float) -> str:
    return f"{x:g}"


def _short(symbol: str) -> str:
    return symbol.split("/")[0]


def realized_usdt(
    events: Sequence[Mapping[str, Any]], contract_size: Callable[[str], float] | None = None
) -> tuple[float, int]:
    """The manager's realized P/L in quote currency (USDT) from its event history, and how
    many closes it sums.

    Every event with a ``pnl`` (a close, a partial close, a removal with a known outcome)
    realized that leveraged, after-fee return on the margin of the contracts it closed: the
    whole position for a close or removal, the drop in ``amount`` since the symbol's previous
    event for a partial close. USDT = pnl / leverage * entry price * contracts * contract size,
    the contract size from ``contract_size(symbol)`` when given (the venue's), else the one the
    event's position carries (which the manager learns from the exchange's position list).
    """
    total, count = 0.0, 0
    amounts: dict[str, float] = {}
    for event in events:
        p = event["position"]
        before = amounts.get(event["symbol"], p["amount"])
        amounts[event["symbol"]] = p["amount"]
        if event["pnl"] is None:
            continue
        closed = before - p["amount"] if event["kind"] == "partial_close" else p["amount"]
        size = contract_size(event["symbol"]) if contract_size else p.get("contract_size") or 1.0
        total += event["pnl"] / p["leverage"] * p["entry_price"] * closed * size
        count += 1
    return total, count


def _table(rows: Sequence[Sequence[str]], right: set[int], style: Style) -> list[str]:
    """Aligned text table; the first row is the header. Colouring is applied after padding."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        line = "  ".join(cells).rstrip()
        lines.append(style(line, "bold") if n == 0 else line)
    return lines


class Demo:
    """One demo session: a paper exchange, a manager, a script of venue events."""

    def __init__(self, args: argparse.Namespace, out: TextIO, style: Style) -> None:
        self.args = args
        self.out = out
        self.style = style
        self.symbols: list[str] = args.symbols
        self.paper = PaperExchange(
            seed=args.seed,
            symbols=self.symbols,
            event_rates=EVENT_LEVELS[args.events],
            volatility=0.0015,
        )
        self.capture = _Capture()
        self.manager: Any = None
        self.last_seq = 0
        self.shown_history = 0
        self.yielded: set[str] = set()
        self.next_signal: dict[str, str] = {}
        self.freed_at: dict[str, int] = {}
        self.opened = 0
        span_hours = args.cycles * args.ticks * self.paper.tick_seconds / 3600.0
        self.time_format = "%H:%M" if span_hours < 23 else "%m-%d %H:%M"
        self.schedule = self._schedule(args.cycles)
        self.decimals = {s: _decimals(self.paper.price(s)) for s in self.symbols}

    # ---------------------------------------------------------------- output
    def px(self, symbol: str, value: float) -> str:
        """A price of ``symbol`` with that symbol's decimals and thousands separators."""
        decimals = self.decimals.setdefault(symbol, _decimals(value))
        return f"{value:,.{decimals}f}"

    def now(self) -> str:
        return self.paper.datetime.strftime(self.time_format)

    def line(self, tag: str, text: str, *colors: str) -> None:
        tag_text = self.style(f"{tag:<6}", *colors) if colors else f"{tag:<6}"
        print(f"{self.style(self.now(), 'dim')}  {tag_text} {text}", file=self.out, flush=True)

    def blank(self) -> None:
        print(file=self.out, flush=True)

    @staticmethod
    def _schedule(cycles: int) -> dict[int, str]:
        """Cycle -> scripted event: every run shows each of them (given >= 7 cycles)."""
        spacing = max(1, min(4, cycles // 7))
        return {2 + i * spacing: kind for i, kind in enumerate(SCRIPT)}

    # ---------------------------------------------------------------- actions
    def open(self, symbol: str) -> bool:
        signal = self.next_signal.get(symbol, "BUY" if self.opened % 2 == 0 else "SELL")
        price = self.paper.price(symbol)
        lots = max(
            self.paper.min_amount,
            round(NOTIONAL_USDT / (price * self.paper.contract_size(symbol))),
        )
        leverage = LEVERAGES[self.opened % len(LEVERAGES)]
        self.opened += 1
        ok = self.manager.open_position(symbol, signal, lots, leverage, STOP_LOSS_PERCENTAGE)
        self.next_signal[symbol] = "SELL" if signal == "BUY" else "BUY"
        self.show_venue()
        self.show_log()
        self.show_book()
        position = self.manager.positions.get(symbol)
        if not ok or position is None:
            self.line("warn", f"open_position({symbol!r}, {signal!r}, ...) failed", "yellow")
            return False
        tp = position.take_profit
        self.line(
            "open",
            f"{symbol:<15} {position.side:<5} {_lots(lots):>5} lots @ "
            f"{self.px(symbol, position.entry_price):>10}  {leverage:>2}x  "
            f"stop {self.px(symbol, position.stop_loss)}  "
            f"take-profit {'-' if tp is None else self.px(symbol, tp)}",
            "cyan",
        )
        return True

    def target(self, need_lots: float = 0.0) -> str | None:
        """A symbol open both on the venue and in the book (opening one if there is none)."""
        for symbol in self.symbols:
            venue = self.paper.position(symbol)
            if venue and symbol in self.manager.positions and venue["contracts"] >= need_lots:
                return symbol
        for symbol in self.symbols:
            if self.paper.position(symbol) is None and symbol not in self.manager.positions:
                if self.open(symbol):
                    return symbol
        return None

    def scripted(self, kind: str) -> None:
        paper = self.paper
        if kind == "transient_empty":
            paper.answer_empty_next(1)
            self.line("script", "the venue will answer the next position list with []", "magenta")
            return
        if kind == "exception":
            paper.fail_next("get_open_positions")
            self.line("script", "the venue's next get_open_positions() call will fail", "magenta")
            return
        symbol = self.target(need_lots=2 * paper.amount_step if kind == "partial_reduction" else 0)
        if symbol is None:
            self.line("script", f"{kind}: no open position to act on", "magenta")
            return
        if kind == "manual_close":
            self.line("script", f"{symbol} is closed by hand on the exchange's web UI", "magenta")
            paper.close_externally(symbol)
        elif kind == "liquidation":
            pos = paper.position(symbol)
            assert pos is not None
            liq = pos["liquidationPrice"]
            jump = liq * (0.99 if pos["side"] == "long" else 1.01)
            self.line("script", f"{symbol} gaps through its liquidation price", "magenta")
            paper.set_price(symbol, jump)
        else:  # partial_reduction
            pos = paper.position(symbol)
            assert pos is not None
            steps = int(pos["contracts"] // paper.amount_step)
            cut = max(1, steps // 2) * paper.amount_step
            self.line("script", f"{symbol} is partly auto-deleveraged by the venue", "magenta")
            paper.reduce_externally(symbol, cut)
        self.show_venue()

    def reopen(self, cycle: int) -> None:
        if cycle > self.args.cycles - REOPEN_AFTER_CYCLES:
            return
        for symbol in self.symbols:
            free = self.paper.position(symbol) is None and symbol not in self.manager.positions
            if not free:
                self.freed_at.pop(symbol, None)
                continue
            freed = self.freed_at.setdefault(symbol, cycle)
            if cycle - freed >= REOPEN_AFTER_CYCLES:
                self.freed_at.pop(symbol, None)
                self.open(symbol)

    # ---------------------------------------------------------------- progress
    def show_venue(self) -> None:
        history = self.paper.history
        for entry in history[self.shown_history :]:
            self._venue_line(entry)
        self.shown_history = len(history)

    def _venue_line(self, entry: dict[str, Any]) -> None:
        kind, symbol, d = entry["kind"], entry["symbol"], entry["details"]
        if kind not in EXTERNAL_EVENT_KINDS and kind != "order_rejected":
            return
        origin = "  (random)" if d.get("random") else ""
        if kind == "manual_close":
            pnl = d["realizedPnl"]
            text = (
                f"manual close       {symbol} {d['side']} {_lots(d['contracts'])} lots @ "
                f"{self.px(symbol, d['price'])}  "
                f"venue P/L {self.style.pnl(f'{pnl:+.2f}', pnl)} USDT"
            )
        elif kind == "partial_reduction":
            text = (
                f"partial reduction  {symbol} -{_lots(d['contracts'])} lots "
                f"@ {self.px(symbol, d['price'])}, {_lots(d['remaining'])} left"
            )
        elif kind == "liquidation":
            pnl = d["realizedPnl"]
            text = (
                f"LIQUIDATION        {symbol} {d['side']} {_lots(d['contracts'])} lots "
                f"{d['leverage']:g}x at {self.px(symbol, d['liquidationPrice'])}  "
                f"venue P/L {self.style.pnl(f'{pnl:+.2f}', pnl)} USDT"
            )
        elif kind == "price_jump":
            old, new = self.px(symbol, d["old"]), self.px(symbol, d["new"])
            text = f"price jump         {symbol} {old} -> {new}"
        elif kind == "transient_empty":
            text = f"empty answer       get_open_positions() -> [] ({len(d['hidden'])} open)"
        elif kind == "exception":
            text = f"API failure        {d['method']}() raised {d['error']}"
        else:  # order_rejected
            text = f"order rejected     {d['method']} {symbol}: {d['reason']}"
        self.line("venue", text + origin, "yellow")

    def show_log(self) -> None:
        for record in self.capture.drain():
            error = record.levelno >= logging.ERROR
            self.line(
                "error" if error else "warn", record.getMessage(), "red" if error else "yellow"
            )

    def show_book(self) -> None:
        for event in self.manager.events:
            if event["seq"] <= self.last_seq:
                continue
            self.last_seq = event["seq"]
            kind, symbol = event["kind"], event["symbol"]
            if kind == "opened" or (kind == "closed" and symbol in self.yielded):
                continue
            text = f"{kind:<13} {symbol:<15} {event['reason']}"
            if event["pnl"] is not None:
                text += "  " + self.style.pnl(_pct(event["pnl"]), event["pnl"]) + " net"
            self.line("book", text, "blue")

    def show_cycle(self, cycle: int) -> None:
        prices = "  ".join(f"{_short(s)} {self.px(s, self.paper.price(s))}" for s in self.symbols)
        self.line(
            "cycle",
            self.style(
                f"{cycle:>3}/{self.args.cycles}  open {len(self.manager.positions)}  {prices}",
                "dim",
            ),
            "dim",
        )

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        s, a = self.style, self.args
        start = self.paper.datetime
        print(
            s("position_manager_rs demo", "bold")
            + f": paper exchange, seed {a.seed}, {len(self.symbols)} symbols, {a.cycles} cycles "
            f"of {a.ticks * self.paper.tick_seconds / 60:g} simulated minutes, events {a.events}",
            file=self.out,
        )
        print(f"simulated start {start:%Y-%m-%d %H:%M} UTC", file=self.out)
        self.blank()
        interrupted = False
        # The manager reads the paper exchange's clock: its positions age in simulated time.
        self.manager = PositionManager(
            self.paper, 0.02, ticker_retry_delays=(0.0, 0.0), clock=self.paper.clock
        )
        try:
            for symbol in self.symbols:
                self.open(symbol)
            for cycle in range(1, a.cycles + 1):
                self.cycle(cycle)
                if a.speed > 0:
                    time.sleep(a.speed)
        except KeyboardInterrupt:
            interrupted = True
            self.blank()
            self.line("stop", "interrupted", "red")
        self.summary()
        return 130 if interrupted else 0

    def cycle(self, cycle: int) -> None:
        self.paper.advance(self.args.ticks)
        self.show_cycle(cycle)
        self.show_venue()
        kind = self.schedule.get(cycle)
        if kind is not None:
            self.scripted(kind)
        self.yielded = set()
        for symbol, pnl, position in self.manager.update_positions():
            self.yielded.add(symbol)
            self.show_venue()
            self.show_log()
            self.show_book()
            self.line(
                "close",
                f"{symbol:<15} {position.side:<5} {_lots(position.amount):>5} lots  "
                f"entry {self.px(symbol, position.entry_price)}  "
                f"exit {self.px(symbol, self.paper.price(symbol))}  "
                f"P/L {self.style.pnl(_pct(pnl), pnl)} net",
                "green" if pnl > 0 else "red",
            )
        self.show_venue()
        self.show_log()
        self.show_book()
        if cycle % SYNC_EVERY_CYCLES == 0:
            self.manager.sync_existing_positions()
            self.show_venue()
            self.show_log()
            self.show_book()
        self.reopen(cycle)

    def summary(self) -> None:
        s, paper = self.style, self.paper
        self.blank()
        print(
            s(f"Positions still open at {paper.datetime:%Y-%m-%d %H:%M} UTC", "bold"), file=self.out
        )
        rows = [
            [
                "symbol",
                "side",
                "entry",
                "amount",
                "venue",
                "lev",
                "stop",
                "take-profit",
                "last",
                "P/L gross",
            ]
        ]
        pnls: list[float] = []
        for symbol, position in self.manager.positions.items():
            last = paper.price(symbol) if symbol in paper.symbols else position.entry_price
            venue = paper.position(symbol)
            pnl = position.get_leveraged_pnl(last)
            pnls.append(pnl)
            tp = position.take_profit
            rows.append(
                [
                    symbol,
                    position.side,
                    self.px(symbol, position.entry_price),
                    _lots(position.amount),
                    "-" if venue is None else _lots(venue["contracts"]),
                    f"{position.leverage}x",
                    self.px(symbol, position.stop_loss),
                    "-" if tp is None else self.px(symbol, tp),
                    self.px(symbol, last),
                    _pct(pnl),
                ]
            )
        if len(rows) == 1:
            print("  (none)", file=self.out)
        else:
            lines = _table(rows, {2, 3, 4, 5, 6, 7, 8, 9}, s)
            print("  " + lines[0], file=self.out)
            for line, pnl in zip(lines[1:], pnls):
                print("  " + s.pnl(line, pnl), file=self.out)
            print(
                s("  P/L gross: leveraged return on margin at the last price, before fees", "dim"),
                file=self.out,
            )

        self.blank()
        events = self.manager.events
        print(s(f"Manager event history ({len(events)} events)", "bold"), file=self.out)
        rows = [["seq", "time", "symbol", "kind", "P/L net", "reason"]]
        for e in events:
            when = e["time"]
            rows.append(
                [
                    str(e["seq"]),
                    when.strftime(self.time_format) if isinstance(when, datetime) else str(when),
                    e["symbol"],
                    e["kind"],
                    _pct(e["pnl"]),
                    e["reason"],
                ]
            )
        for line in _table(rows, {0, 4}, s):
            print("  " + line, file=self.out)
        print(
            s(
                "  P/L net: leveraged, after the 0.12 % round-trip fee "
                "(a profit target's reason shows the gross P/L)",
                "dim",
            ),
            file=self.out,
        )

        self.blank()
        counts: dict[str, int] = {}
        for entry in paper.history:
            counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
        text = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "nothing"
        print(s("Venue", "bold") + f": {text}", file=self.out)
        self.blank()
        mine, closes = realized_usdt(events, paper.contract_size)
        venue_total = paper.realized_pnl
        print(s("Realized P/L (USDT)", "bold"), file=self.out)
        print(
            f"  manager {s.pnl(f'{mine:+10.2f}', mine)}  the {closes} closes and partial closes "
            "in its events, after fees, at its exit prices",
            file=self.out,
        )
        print(
            f"  venue   {s.pnl(f'{venue_total:+10.2f}', venue_total)}  every fill, the external "
            "closes and liquidations included, no fees",
            file=self.out,
        )
        self.out.flush()


# Bounds of the demo's numeric arguments: every value argparse accepts runs to its end.
MAX_SPEED_SECONDS = 60.0
MAX_CYCLES = 100_000
MAX_TICKS = 10_000


def _symbols(text: str) -> list[str]:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as surrogate escapes
        raise argparse.ArgumentTypeError("symbols must be UTF-8 text") from None
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol")
    if len(set(symbols)) != len(symbols):
        raise argparse.ArgumentTypeError("symbols must be distinct")
    for symbol in symbols:
        market, at, leg = symbol.rpartition("@")
        if at and market and leg in ("long", "short"):
            # The demo's manager runs in one-way mode (it has no hedge option): such a key is
            # refused by every open, and the demo ran on with nothing open.
            raise argparse.ArgumentTypeError(
                f"{symbol!r} is a hedge-mode key (SYMBOL@long / SYMBOL@short); the demo runs "
                f"in one-way mode: give the symbol itself ({market!r})"
            )
    return symbols


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_SPEED_SECONDS):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from 0 to {MAX_SPEED_SECONDS:g}, got {text!r}"
        )
    return value


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an int: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m position_manager_rs`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m position_manager_rs",
        description="position_manager_rs command line.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    demo = sub.add_parser(
        "demo",
        help="run a PositionManager against the simulated paper exchange",
        description=(
            "Runs a PositionManager against a seeded paper exchange: opens positions, runs "
            "update cycles while prices move, and scripts a manual close, a transient empty "
            "answer, an API exception, a liquidation and a partial reduction (from cycle 2 on; "
            "all of them need at least 7 cycles). The same seed prints the same output."
        ),
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument(
        "--symbols",
        type=_symbols,
        default=list(DEFAULT_SYMBOLS),
        help="comma-separated ccxt symbols, not hedge-mode keys (default: %(default)s)",
    )
    demo.add_argument(
        "--cycles",
        type=_int_between(1, MAX_CYCLES),
        default=30,
        help=f"update cycles, 1 to {MAX_CYCLES} (default 30)",
    )
    demo.add_argument(
        "--ticks",
        type=_int_between(1, MAX_TICKS),
        default=5,
        help=f"one-minute market ticks between cycles, 1 to {MAX_TICKS} (default 5)",
    )
    demo.add_argument(
        "--speed",
        type=_speed,
        default=0.2,
        help="seconds to sleep between cycles, 0 to 60; 0 = as fast as possible (default 0.2)",
    )
    demo.add_argument(
        "--events",
        choices=sorted(EVENT_LEVELS),
        default="low",
        help="rate of random venue events on top of the scripted ones (default low)",
    )
    demo.add_argument("--no-color", action="store_true", help="never colour the output")
    demo.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show the manager's own log records (-v: INFO, -vv: DEBUG)",
    )
    return parser


class _OutHandler(logging.StreamHandler):
    """``--verbose``'s handler. A reader that went away (``demo -v | head -1``) is not a
    "--- Logging error ---" traceback per record: the record is dropped, and the demo's own
    next line meets the same BrokenPipeError and ends the demo quietly (see ``main``)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            return
        super().handleError(record)


def _configure_logging(verbose: int, capture: logging.Handler, out: TextIO) -> Callable[[], None]:
    """Routes the manager's ``TradingBot*`` records; returns a function undoing it."""
    logger = logging.getLogger("TradingBot")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    logger.handlers = []
    logger.propagate = False
    if verbose:
        handler = _OutHandler(out)
        handler.setFormatter(logging.Formatter("        log    %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    else:
        logger.addHandler(capture)
        logger.setLevel(logging.WARNING)

    def restore() -> None:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]

    return restore


def run_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Runs the demo with parsed arguments; returns the exit code."""
    stream = sys.stdout if out is None else out
    if not hasattr(PositionManager, "open_position"):
        print(
            "error: this build of position_manager_rs has no PositionManager.open_position "
            "(rebuild the package: make dev)",
            file=sys.stderr,
        )
        return 2
    color = (
        not args.no_color
        and "NO_COLOR" not in os.environ
        and hasattr(stream, "isatty")
        and stream.isatty()
    )
    demo = Demo(args, stream, Style(color))
    restore = _configure_logging(args.verbose, demo.capture, stream)
    try:
        return demo.run()
    finally:
        restore()


#: Exit status when the reader of stdout went away (``demo | head -1``): 128 + SIGPIPE, what
#: the shell reports for a tool the default SIGPIPE action ended (``yes | head -1``). Not 0:
#: the demo did not run to its end, and ``set -o pipefail`` scripts see that as they do for
#: any other tool in such a pipeline.
EXIT_BROKEN_PIPE = 141


def _silence_stdout() -> None:
    """Points the process's stdout at ``os.devnull``, so that the interpreter's final flush of
    what ``sys.stdout`` still buffers does not raise (and print) a second BrokenPipeError."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (an embedding, a test's stream)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m position_manager_rs``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        try:
            return run_demo(args)
        except BrokenPipeError:
            # The reader closed the pipe: stop quietly, as a CLI does. Only this error is
            # caught; KeyboardInterrupt and SystemExit go through.
            _silence_stdout()
            return EXIT_BROKEN_PIPE
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
