"""A small trading bot with the RAD bot's threads, its lying client and a ledger on the venue side.

What it reproduces (``../shared/spec/original-behavior.md`` §4, §5 and
``../shared/spec/bot-integration.md``):

* ``BotLikeClient`` wraps a ``PaperExchange`` exactly like the bot's ``KuCoinClient`` answers:
  ``get_open_positions()`` is ``[]`` on *any* failure (also when one entry has
  ``contracts=None``), ``get_ticker`` ``None``, ``get_ohlcv`` ``[]``, ``create_market_order``
  ``None`` on any failure — including an order the venue executed whose answer was lost — and
  ``close_position`` re-reads its own list and answers ``True`` *without an order* when the
  symbol is not in it (also when that re-read failed and gave ``[]``). Amounts are truncated to
  whole lots, as ccxt's ``amount_to_precision`` does. It has **no** ``client_order_ids`` flag.
* ``Bot``: the main loop (a periodic ``sync_existing_positions()`` and the trader, which opens a
  symbol when ``has_position`` is False, positionally, then sets the bot's attributes on
  ``positions[symbol]``), a position-monitor thread that runs ``update_positions()`` only while
  ``get_open_positions_count() > 0``, a dashboard thread iterating ``positions.items()`` with a
  ``get_ticker`` inside the loop, and a shutdown that closes every tracked position with reason
  ``'shutdown'``.
* The venue side is judged from the paper exchange's own history: every order the client sends
  carries a client order id that names the *intent* it belongs to (one ``open_position`` call,
  one update cycle, one shutdown close), so each fill is booked against its intent.

Two ways to run:

* ``lockstep=True`` (deterministic): the threads are real, but take turns once per venue tick
  (main → monitor → dashboard) under a driver with deadlines; the same seed and schedule give the
  same run, figure for figure.
* ``lockstep=False`` (free running): the threads run on their own short real-time intervals while
  the driver moves the venue on; interleavings differ from run to run.

The manager's clock is frozen and follows the venue's simulated time (one tick at a time).
"""

from __future__ import annotations

import math
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from reliability_helpers import book_problems

from position_manager_rs import PaperExchange, PositionManager
from position_manager_rs.testing import FrozenClock, freeze_clock, unfreeze_clock

EPS = 1e-9


class Deadlock(AssertionError):
    """A thread did not finish its turn (or join) within its deadline."""


# ============================================================================ the bot's client


@dataclass
class SentOrder:
    """One order the client sent to the venue."""

    client_order_id: str
    intent: int
    method: str  # 'create_market_order' or 'close_position' (the client's own close)
    symbol: str
    side: str
    amount: float
    reduce_only: bool
    answered: bool = False  # the caller got an order dict back


@dataclass
class Intent:
    """One thing the bot asked the manager to do."""

    number: int
    kind: str  # 'open', 'cycle', 'sync', 'shutdown', 'final', 'other'
    symbol: str | None
    tick: int


class BotLikeClient:
    """The bot's ``KuCoinClient`` (spec §4) on top of a ``PaperExchange``. See the module doc."""

    def __init__(
        self, paper: PaperExchange, *, sleep: Callable[[float], Any] = lambda s: None
    ) -> None:
        self.paper = paper
        self.sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        self._none_entries = 0
        self._close_rereads_empty = 0
        self._order_seq = 0
        self.intents: dict[int, Intent] = {0: Intent(0, "other", None, -1)}
        self.sent: dict[str, SentOrder] = {}
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # answers turned into [], None or False
        self.closes_without_order = 0  # close_position answered True without sending anything
        self.tick = 0

    # -- intents (the test's bookkeeping, invisible to the manager) -------------------------
    @contextmanager
    def intent(self, kind: str, symbol: str | None = None) -> Iterator[int]:
        with self._lock:
            number = len(self.intents)
            self.intents[number] = Intent(number, kind, symbol, self.tick)
        previous = getattr(self._local, "intent", 0)
        self._local.intent = number
        try:
            yield number
        finally:
            self._local.intent = previous

    def _new_order_id(self, method: str, symbol: str, side: str, amount: float, ro: bool) -> str:
        intent = getattr(self._local, "intent", 0)
        with self._lock:
            self._order_seq += 1
            cid = f"i{intent}o{self._order_seq}"
            self.sent[cid] = SentOrder(cid, intent, method, symbol, side, amount, ro)
        return cid

    def none_entry_next(self, times: int = 1) -> None:
        """The next ``times`` lists carry an entry with ``contracts=None`` (the client: ``[]``)."""
        with self._lock:
            self._none_entries += times

    def close_reread_fails_next(self, times: int = 1) -> None:
        """The re-read inside the next ``times`` ``close_position`` calls fails (gives ``[]``)."""
        with self._lock:
            self._close_rereads_empty += times

    def _close_reread(self) -> list[dict[str, Any]]:
        with self._lock:
            failed = self._close_rereads_empty > 0
            if failed:
                self._close_rereads_empty -= 1
        if failed:
            self.calls["get_open_positions"] += 1
            self.failures["get_open_positions"] += 1
            return []
        return self.get_open_positions()

    # -- reads ----------------------------------------------------------------------------
    def get_open_positions(self) -> list[dict[str, Any]]:
        self.calls["get_open_positions"] += 1
        try:
            positions = self.paper.get_open_positions()
            with self._lock:
                if self._none_entries > 0:
                    self._none_entries -= 1
                    positions = [*positions, {"symbol": "ADA/USDT:USDT", "contracts": None}]
            return [p for p in positions if float(p.get("contracts", 0)) > 0]
        except Exception:  # the original: "Error fetching positions" and []
            self.failures["get_open_positions"] += 1
            return []

    def get_ticker(self, symbol: str, priority: Any = None) -> dict[str, Any] | None:
        self.calls["get_ticker"] += 1
        try:
            return self.paper.get_ticker(symbol)
        except Exception:
            self.failures["get_ticker"] += 1
            return None

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        self.calls["get_ohlcv"] += 1
        try:
            return self.paper.get_ohlcv(symbol, timeframe=timeframe, limit=limit)
        except Exception:
            self.failures["get_ohlcv"] += 1
            return []

    def get_market_limits(self, symbol: str) -> dict[str, Any] | None:
        self.calls["get_market_limits"] += 1
        try:
            limits = self.paper.get_market_limits(symbol)
        except Exception:
            self.failures["get_market_limits"] += 1
            return None
        if limits is None:
            return None
        amount = limits["amount"]
        return {"amount": {"min": amount["min"], "max": amount["max"]}, "cost": limits["cost"]}

    # -- orders ---------------------------------------------------------------------------
    def _lots(self, amount: Any) -> float:
        """``amount_to_precision`` with truncation to whole steps (what ccxt does for KuCoin)."""
        step = self.paper.amount_step
        return math.floor(float(amount) / step + 1e-9) * step

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
        self.calls["create_market_order"] += 1
        return self._market(symbol, side, amount, leverage, reduce_only, "create_market_order")

    def _market(
        self, symbol: str, side: str, amount: Any, leverage: Any, reduce_only: bool, method: str
    ) -> dict[str, Any] | None:
        try:
            lots = self._lots(amount)
            if lots <= 0:
                self.failures["create_market_order"] += 1
                return None
            cid = self._new_order_id(method, symbol, side, lots, reduce_only)
            order = self.paper.create_market_order(
                symbol,
                side,
                lots,
                int(leverage),
                reduce_only=reduce_only,
                is_critical=reduce_only,
                client_order_id=cid,
            )
        except Exception:  # includes an order executed whose answer was lost
            self.failures["create_market_order"] += 1
            return None
        if order is None:
            self.failures["create_market_order"] += 1
            return None
        with self._lock:
            self.sent[cid].answered = True
        return order

    def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        leverage: int = 10,
        post_only: bool = False,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> dict[str, Any] | None:
        self.calls["create_limit_order"] += 1
        try:
            cid = self._new_order_id("create_limit_order", symbol, side, amount, reduce_only)
            return self.paper.create_limit_order(
                symbol,
                side,
                self._lots(amount),
                price,
                int(leverage),
                post_only=post_only,
                reduce_only=reduce_only,
                client_order_id=cid,
            )
        except Exception:
            self.failures["create_limit_order"] += 1
            return None

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None:
        self.calls["wait_for_order_fill"] += 1
        try:
            return self.paper.wait_for_order_fill(order_id, symbol, timeout, check_interval)
        except Exception:
            self.failures["wait_for_order_fill"] += 1
            return None

    def cancel_order(self, order_id: str, symbol: str) -> bool:
        self.calls["cancel_order"] += 1
        try:
            return bool(self.paper.cancel_order(order_id, symbol))
        except Exception:
            self.failures["cancel_order"] += 1
            return False

    def close_position(
        self,
        symbol: str,
        use_limit: bool = False,
        slippage_tolerance: float = 0.002,
        max_close_retries: int = 5,
    ) -> bool:
        """The original's close: re-read, True without an order when not listed, else retry."""
        self.calls["close_position"] += 1
        for attempt in range(max_close_retries):
            listed = next((p for p in self._close_reread() if p.get("symbol") == symbol), None)
            if listed is None:  # "Position {symbol} not found (may already be closed)"
                with self._lock:
                    self.closes_without_order += 1
                return True
            try:
                contracts = float(listed["contracts"])
                side = "sell" if listed.get("side") == "long" else "buy"
                leverage = listed.get("leverage") or (listed.get("info") or {}).get("realLeverage")
                leverage = int(float(leverage)) if leverage is not None else 10
            except (TypeError, ValueError, KeyError):
                leverage, side, contracts = 10, "sell", 0.0
            order = self._market(symbol, side, abs(contracts), leverage, True, "close_position")
            if order:
                return True
            self.sleep(min(2**attempt, 10))
        self.failures["close_position"] += 1
        return False


# ============================================================================ restarts

RESTART_SYMBOL = "BTC/USDT:USDT"


def bots_manager(client: BotLikeClient, hold: float = 0.0, **options: Any) -> PositionManager:
    """A manager over the bot's own ``client`` on its paper venue's clock, holding re-opens for
    ``hold`` seconds; ``options`` go to the manager (``journal=``, ``account=``, ...)."""
    return PositionManager(
        client,
        clock=client.paper.clock,
        ticker_retry_delays=(),
        reopen_hold_seconds=hold,
        **options,
    )


def bot_with_btc(
    hold: float = 0.0, **options: Any
) -> tuple[PaperExchange, BotLikeClient, PositionManager]:
    """A paper venue, the bot's client over it, and a :func:`bots_manager` that opened 3
    ``RESTART_SYMBOL`` and ran one cycle whose list showed it (until a list has shown a fill,
    one list's absence does not untrack it: ``outcome_confirmations``)."""
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    pm = bots_manager(client, hold, **options)
    assert pm.open_position(RESTART_SYMBOL, "BUY", 3, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    return paper, client, pm


@dataclass
class SoakVerdict:
    """What a randomized run over a venue that takes client order ids found, judged on the
    venue's side (``test_named_orders_soak.py``, ``test_venue_soak.py``)."""

    # Opening fills on a position the venue already held.
    on_top: list[str] = field(default_factory=list)
    # Reduce-only orders and closes that found no position after the manager's own close.
    second_closes: list[str] = field(default_factory=list)
    # The same after the venue closed the position itself (by hand, liquidation): the manager
    # still protected a position that lists could still show or had not yet shown missing.
    after_outside_close: list[str] = field(default_factory=list)
    venue_ends: int = 0
    closed_positions: int = 0
    left_open: list[str] = field(default_factory=list)
    lookups: int = 0
    faults: int = 0


def ended_outside(entry: dict[str, Any]) -> bool:
    """Whether a venue history entry ended a position without an order: closed or reduced to
    nothing by hand, or liquidated."""
    kind, details = entry["kind"], entry["details"]
    return kind in ("manual_close", "liquidation") or (
        kind == "partial_reduction" and details.get("remaining", 1) <= EPS
    )


def venue_position_ends(paper: PaperExchange) -> int:
    """How many positions ended on the venue, from its history: closed by a fill, or
    :func:`ended_outside` an order."""
    return sum(
        ended_outside(entry)
        or (entry["kind"] == "fill" and entry["details"].get("position") is None)
        for entry in paper.history
    )


def cycle_on_failed_reads(pm: PositionManager, paper: PaperExchange) -> None:
    """One update cycle whose list and its re-read both fail: the bot's client answers ``[]``
    twice, which untracks every position and "confirms" every close awaiting confirmation."""
    paper.fail_next("get_open_positions", times=2)
    assert list(pm.update_positions()) == []


def lost_scale_out_on_failed_reads(pm: PositionManager, paper: PaperExchange, symbol: str) -> None:
    """A scale-out of one contract of ``symbol`` that the venue executes and whose answer is
    lost (``None``), after which the lists read to settle it fail (the bot's client answers
    ``[]`` twice): the order is taken to have closed the position."""
    place = paper.create_market_order

    def executes_then_reads_fail(*args: Any, **kwargs: Any) -> Any:
        paper.fail_next("get_open_positions", times=2)
        return place(*args, **kwargs)

    paper.lose_answer_next("create_market_order", answer_none=True)
    paper.create_market_order = executes_then_reads_fail  # type: ignore[method-assign]
    try:
        pm.scale_out_position(symbol, 1)
    finally:
        del paper.create_market_order


def with_breakout_targets(pm: PositionManager, symbol: str) -> None:
    """Gives ``symbol``'s position what only this manager knows: a ``strategy`` attribute and
    moved targets (a new import would have neither); :func:`assert_as_it_was` checks them."""
    pm.positions[symbol].strategy = "breakout"
    assert pm.modify_position_targets(symbol, 80_000.0, 120_000.0)


def assert_as_it_was(position: Any) -> None:
    """``position`` is the one :func:`with_breakout_targets` marked, not a new import."""
    assert (position.strategy, position.stop_loss, position.take_profit) == (
        "breakout",
        80_000.0,
        120_000.0,
    )


# ============================================================================ the bot


@dataclass
class BotConfig:
    """The bot's knobs (the RAD bot's names where it has them)."""

    symbols: tuple[str, ...] = (
        "BTC/USDT:USDT",
        "ETH/USDT:USDT",
        "SOL/USDT:USDT",
        "XRP/USDT:USDT",
    )
    lots: dict[str, float] = field(
        default_factory=lambda: {
            "BTC/USDT:USDT": 20.0,
            "ETH/USDT:USDT": 20.0,
            "SOL/USDT:USDT": 40.0,
            "XRP/USDT:USDT": 40.0,
        }
    )
    leverage: int = 5
    stop_loss_percentage: float = 0.03
    max_open_positions: int = 3
    signal_probability: float = 0.5
    sync_every: int = 10  # trading cycles between syncs
    dashboard_every: int = 5  # ticks between dashboard updates (lockstep)
    # Free running only: real-time intervals (seconds).
    live_loop_interval: float = 0.002
    position_update_interval: float = 0.01
    dashboard_interval: float = 0.02
    tick_interval: float = 0.02


@dataclass
class BotStats:
    """What the bot itself saw (its own logs, in effect)."""

    opens_tried: int = 0
    opens_ok: int = 0
    closed_trades: int = 0
    shutdown_closes_failed: list[str] = field(default_factory=list)
    attribute_misses: int = 0  # success, but positions[symbol] gone before the attributes
    errors: list[str] = field(default_factory=list)  # exceptions the bot caught (should be none)
    dashboard_errors: list[str] = field(default_factory=list)
    monitor_runs: int = 0
    monitor_skips: int = 0  # the monitor's turn while the book was empty


class Bot:
    """The RAD bot's threads around a ``PositionManager`` (see the module docstring)."""

    def __init__(
        self,
        manager: PositionManager,
        client: BotLikeClient,
        config: BotConfig,
        *,
        seed: int,
        lockstep: bool,
        turn_timeout: float = 10.0,
    ) -> None:
        self.pm = manager
        self.client = client
        self.config = config
        self.rng = random.Random(f"{seed}/signals")
        self.lockstep = lockstep
        self.turn_timeout = turn_timeout
        self.stats = BotStats()
        self.stop = threading.Event()
        self.cycle_count = 0
        self.tick = 0
        self._turns: dict[str, tuple[threading.Event, threading.Event]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- main thread: the trading cycle --------------------------------------------------
    def signal(self, symbol: str) -> str | None:
        draw = self.rng.random()
        side = self.rng.choice(("BUY", "SELL"))
        return side if draw < self.config.signal_probability else None

    def run_cycle(self) -> None:
        """``run_cycle``: a sync every ``sync_every`` cycles, then the scan and trades."""
        if self.cycle_count % self.config.sync_every == 0:
            with self.client.intent("sync"):
                self.pm.sync_existing_positions()
        self.cycle_count += 1
        for symbol in self.config.symbols:
            signal = self.signal(symbol)  # drawn for every symbol: the stream stays aligned
            if signal is not None:
                self.execute_trade(symbol, signal)

    def execute_trade(self, symbol: str, signal: str) -> None:
        pm, cfg = self.pm, self.config
        try:
            if pm.has_position(symbol):
                return
            held = list(pm.positions.keys())  # diversification
            values = list(pm.positions.values())  # correlations and heat
            _ = [p.symbol.replace("USDT", "").replace("PERP", "") for p in values]
            _ = sum(getattr(p, "leverage", 0) for p in values) / max(1, len(values))
            if pm.get_open_positions_count() >= cfg.max_open_positions or len(held) >= 99:
                return
            for _s, pos in pm.positions.items():
                getattr(pos, "amount", 0)
                getattr(pos, "entry_price", 0)
            self.stats.opens_tried += 1
            with self.client.intent("open", symbol):
                success = pm.open_position(
                    symbol, signal, cfg.lots[symbol], cfg.leverage, cfg.stop_loss_percentage
                )
            if success:
                self.stats.opens_ok += 1
            if success and symbol in pm.positions:
                try:
                    p = pm.positions[symbol]
                    p.strategy = "trend_following"
                    p.rl_strategy = "ppo"
                    p.market_regime = "trending"
                    p.entry_volatility = 0.02
                except (AttributeError, KeyError):
                    self.stats.attribute_misses += 1
        except Exception:
            self.stats.errors.append(f"execute_trade {symbol}: {traceback.format_exc()}")

    # -- monitor thread -------------------------------------------------------------------
    def monitor_turn(self) -> None:
        """One look of the PositionMonitor: cycles only while the book is not empty."""
        if self.pm.get_open_positions_count() > 0:
            self.stats.monitor_runs += 1
            self.update_open_positions()
        else:
            self.stats.monitor_skips += 1

    def update_open_positions(self) -> None:
        try:
            with self.client.intent("cycle"):
                for symbol, pnl, position in self.pm.update_positions():
                    try:
                        held_for = datetime.now() - position.entry_time
                        _ = held_for.total_seconds()
                        if position.leverage > 0:
                            _ = pnl / position.leverage
                        _ = position.side == "long"
                        _ = (position.entry_price, position.amount)
                        strategy = getattr(position, "strategy", "unknown")
                        if hasattr(position, "strategy"):
                            strategy = position.strategy
                        for name in ("rl_strategy", "market_regime", "entry_volatility"):
                            if hasattr(position, name):
                                getattr(position, name)
                        _ = (strategy, f"{pnl:.2%}")
                        self.client.get_ohlcv(symbol, "1h", 100)
                        with self._lock:
                            self.stats.closed_trades += 1
                    except Exception:
                        self.stats.errors.append(f"closed trade {symbol}: {traceback.format_exc()}")
        except Exception:
            self.stats.errors.append(f"update_open_positions: {traceback.format_exc()}")

    # -- dashboard thread -----------------------------------------------------------------
    def dashboard_turn(self) -> None:
        pm = self.pm
        try:
            pm.get_open_positions_count()
            _ = sum(
                getattr(p, "amount", 0) * getattr(p, "entry_price", 0)
                for p in pm.positions.values()
            )
            for symbol, pos in pm.positions.items():
                self.client.get_ticker(symbol)
                for name in (
                    "entry_price",
                    "amount",
                    "leverage",
                    "side",
                    "entry_time",
                    "stop_loss",
                    "take_profit",
                ):
                    getattr(pos, name, None)
            _ = list(pm.positions.values())
        except Exception:
            self.stats.dashboard_errors.append(traceback.format_exc())

    # -- threads --------------------------------------------------------------------------
    def _lockstep_worker(self, name: str, body: Callable[[], None]) -> Callable[[], None]:
        go, done = self._turns[name]

        def loop() -> None:
            while True:
                go.wait()
                go.clear()
                if self.stop.is_set():
                    done.set()
                    return
                try:
                    body()
                finally:
                    done.set()

        return loop

    def _free_monitor(self) -> None:
        last = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now - last >= self.config.position_update_interval:
                last = now
                self.monitor_turn()
            time.sleep(self.config.live_loop_interval)

    def _free_dashboard(self) -> None:
        while not self.stop.wait(self.config.dashboard_interval):
            self.dashboard_turn()

    def start_threads(self) -> None:
        if self.lockstep:
            for name, body in (("monitor", self.monitor_turn), ("dashboard", self.dashboard_turn)):
                self._turns[name] = (threading.Event(), threading.Event())
                t = threading.Thread(
                    target=self._lockstep_worker(name, body), name=f"bot-{name}", daemon=True
                )
                self._threads.append(t)
        else:
            for name, loop in (
                ("monitor", self._free_monitor),
                ("dashboard", self._free_dashboard),
            ):
                t = threading.Thread(target=loop, name=f"bot-{name}", daemon=True)
                self._threads.append(t)
        for t in self._threads:
            t.start()

    def turn(self, name: str) -> None:
        """Lets thread ``name`` run one iteration; fails when it does not finish in time."""
        go, done = self._turns[name]
        done.clear()
        go.set()
        if not done.wait(self.turn_timeout):
            raise Deadlock(
                f"the {name} thread did not finish its turn within {self.turn_timeout} s"
            )

    def stop_threads(self, timeout: float = 5.0) -> None:
        """Stops and joins the threads (the bot joins with 5 s timeouts; a hang fails)."""
        self.stop.set()
        for go, _done in self._turns.values():
            go.set()
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise Deadlock(f"threads still running {timeout} s after stop: {alive}")

    def shutdown(self) -> None:
        """Closes every tracked position with reason 'shutdown' (CLOSE_POSITIONS_ON_SHUTDOWN)."""
        for symbol in list(self.pm.positions.keys()):
            try:
                with self.client.intent("shutdown", symbol):
                    result = self.pm.close_position(symbol, "shutdown")
                if result is None:
                    self.stats.shutdown_closes_failed.append(symbol)
            except Exception:
                self.stats.errors.append(f"shutdown {symbol}: {traceback.format_exc()}")


# ============================================================================ faults


@dataclass(frozen=True)
class Fault:
    """One scripted venue or client misbehaviour, applied at the start of tick ``tick``."""

    tick: int
    kind: str
    args: tuple[Any, ...] = ()


FAULT_KINDS = (
    "empty",  # (n,): the next n position lists are [] although positions are open
    "none_entry",  # (n,): the next n lists carry an entry with contracts=None (client: [])
    "fail",  # (method, n): the next n calls of a paper method raise
    "lose",  # (method, answer_none): the next call acts, then its answer is lost
    "lag",  # (n,): the next n position lists show the positions as they are now
    "close_reread_empty",  # (n,): the client's own re-read in its next n closes fails
    "manual_close",  # (index,): the index-th held position (symbol order) closed by hand
    "reduce",  # (index, fraction): reduced by hand (auto-deleveraging)
    "liquidate",  # (index,): the price jumps beyond its liquidation price
    "jump",  # (index, relative move): a price jump
)


def scripted_faults(rounds: int = 1, period: int = 120) -> list[Fault]:
    """The CI schedule: every fault of the issue, spaced so that each plays out on its own;
    ``rounds`` repetitions, ``period`` ticks apart."""
    one = [
        Fault(12, "empty", (1,)),
        Fault(18, "fail", ("get_open_positions", 1)),
        Fault(24, "lose", ("create_market_order", False)),
        Fault(29, "manual_close", (0,)),
        Fault(30, "close_reread_empty", (1,)),
        Fault(35, "none_entry", (1,)),
        Fault(41, "reduce", (0, 0.5)),
        Fault(47, "fail", ("get_ticker", 3)),
        Fault(53, "liquidate", (0,)),
        Fault(58, "lose", ("create_market_order", True)),
        Fault(64, "empty", (2,)),
        Fault(71, "lag", (1,)),
        Fault(77, "fail", ("create_market_order", 1)),
        Fault(83, "jump", (1, -0.05)),
        Fault(88, "lose", ("create_market_order", False)),
        Fault(94, "empty", (1,)),
        Fault(99, "manual_close", (1,)),
        Fault(105, "fail", ("get_ohlcv", 2)),
        Fault(110, "empty", (1,)),
    ]
    return [Fault(f.tick + r * period, f.kind, f.args) for r in range(rounds) for f in one]


def random_faults(rng: random.Random, ticks: int, rate: float) -> list[Fault]:
    """A seeded random schedule for the long soak: about ``rate`` faults per tick."""
    out: list[Fault] = []
    for tick in range(1, ticks):
        if rng.random() >= rate:
            continue
        kind = rng.choice(FAULT_KINDS)
        args: tuple[Any, ...]
        if kind in ("empty", "none_entry", "lag", "close_reread_empty"):
            args = (rng.choice((1, 1, 1, 2, 3)),)
        elif kind == "fail":
            method = rng.choice(
                ("get_open_positions", "get_ticker", "get_ohlcv", "create_market_order")
            )
            args = (method, rng.choice((1, 2, 3)))
        elif kind == "lose":
            args = ("create_market_order", rng.random() < 0.5)
        elif kind in ("manual_close", "liquidate"):
            args = (rng.randrange(4),)
        elif kind == "reduce":
            args = (rng.randrange(4), rng.choice((0.25, 0.5, 0.75)))
        else:
            args = (rng.randrange(4), rng.uniform(-0.06, 0.06))
        out.append(Fault(tick, kind, args))
    return out


def apply_fault(fault: Fault, paper: PaperExchange, client: BotLikeClient) -> str:
    """Applies ``fault``; returns what happened (for the run's log)."""
    held = sorted(p["symbol"] for p in paper.positions())

    def pick(index: int) -> str | None:
        return held[index % len(held)] if held else None

    kind, args = fault.kind, fault.args
    if kind == "empty":
        paper.answer_empty_next(args[0])
    elif kind == "none_entry":
        client.none_entry_next(args[0])
    elif kind == "fail":
        paper.fail_next(args[0], args[1], TimeoutError)
    elif kind == "lose":
        paper.lose_answer_next(args[0], answer_none=args[1])
    elif kind == "lag":
        paper.lag_positions_next(args[0])
    elif kind == "close_reread_empty":
        client.close_reread_fails_next(args[0])
    else:
        symbol = pick(args[0])
        if symbol is None:
            return f"{kind}: nothing held"
        pos = paper.position(symbol)
        assert pos is not None
        if kind == "manual_close":
            paper.close_externally(symbol)
        elif kind == "reduce":
            lots = math.floor(pos["contracts"] * args[1])
            if lots < 1:
                return f"reduce {symbol}: too small"
            paper.reduce_externally(symbol, lots)
        elif kind == "liquidate":
            liq = pos["liquidationPrice"]
            paper.set_price(symbol, liq * (0.99 if pos["side"] == "long" else 1.01))
        else:
            paper.set_price(symbol, paper.price(symbol) * (1 + args[1]))
        return f"{kind} {symbol}"
    return f"{kind} {args}"


# ============================================================================ the run


@dataclass
class RunResult:
    """The venue-side verdict of one run."""

    seed: int
    ticks: int
    lockstep: bool
    seconds: float
    stats: BotStats
    fault_log: list[str]
    intents: int
    orders_sent: int
    orders_executed: int
    # Intents during which more than one opening order, or more than one order closing the
    # whole position, executed for one symbol: "one intent, two orders".
    orders_twice: list[str]
    # Opening fills on top of a position the venue already held for that symbol.
    opened_on_top: list[str]
    # Per venue position instance, partial reductions by the manager beyond the three targets.
    partials_beyond_targets: list[str]
    # Samples (one per tick) in which the venue held a position the book did not track.
    unmanaged_samples: int
    unmanaged_positions: int  # distinct venue position instances ever unmanaged
    longest_unmanaged_ticks: int
    # After the threads stopped, one update cycle and one sync: book vs venue differences.
    book_vs_venue: list[str]
    book_problems: list[str]
    # After the shutdown closes: what the venue still holds.
    left_open: list[str]
    manager_events: Counter[str]
    venue_kinds: Counter[str]
    client_calls: Counter[str]
    client_failures: Counter[str]
    closes_without_order: int

    def figures(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "ticks": self.ticks,
            "lockstep": self.lockstep,
            "seconds": round(self.seconds, 2),
            "opens tried/ok": f"{self.stats.opens_tried}/{self.stats.opens_ok}",
            "closed trades": self.stats.closed_trades,
            "intents": self.intents,
            "orders sent/executed": f"{self.orders_sent}/{self.orders_executed}",
            "orders twice for one intent": len(self.orders_twice),
            "opened on top": len(self.opened_on_top),
            "partials beyond targets": len(self.partials_beyond_targets),
            "unmanaged samples": self.unmanaged_samples,
            "positions unmanaged": self.unmanaged_positions,
            "longest unmanaged (ticks)": self.longest_unmanaged_ticks,
            "book vs venue diffs": len(self.book_vs_venue),
            "left open after shutdown": len(self.left_open),
            "closes answered True without an order": self.closes_without_order,
            "bot errors": len(self.stats.errors),
            "dashboard errors": len(self.stats.dashboard_errors),
            "monitor runs/skips": f"{self.stats.monitor_runs}/{self.stats.monitor_skips}",
        }

    def summary(self) -> str:
        return "bot loop: " + ", ".join(f"{k} {v}" for k, v in self.figures().items())


def _naive_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)


class BotRun:
    """One bot run against a paper venue, with its driver, faults and verdict."""

    def __init__(
        self,
        *,
        seed: int = 1,
        ticks: int = 240,
        faults: Sequence[Fault] | None = None,
        lockstep: bool = True,
        config: BotConfig | None = None,
        volatility: float = 0.002,
        event_rates: dict[str, float] | None = None,
        manager_options: dict[str, Any] | None = None,
        turn_timeout: float = 10.0,
    ) -> None:
        self.seed = seed
        self.ticks = ticks
        self.faults = list(scripted_faults(rounds=2) if faults is None else faults)
        self.lockstep = lockstep
        self.config = config or BotConfig()
        self.paper = PaperExchange(
            seed=seed,
            symbols=self.config.symbols,
            volatility=volatility,
            event_rates=event_rates,
        )
        sleep: Callable[[float], Any] = (
            (lambda s: None) if lockstep else (lambda s: time.sleep(s / 1000))
        )
        self.client = BotLikeClient(self.paper, sleep=sleep)
        options: dict[str, Any] = {"ticker_retry_delays": (0.0, 0.0)}
        options.update(manager_options or {})
        self.options = options
        self.turn_timeout = turn_timeout
        # Where the manager's state is saved once the bot has shut down (None: not saved).
        self.save_state_to: Path | None = None
        self.fault_log: list[str] = []
        self._unmanaged_since: dict[tuple[str, str, int], int] = {}
        self._unmanaged_seen: set[tuple[str, str, int]] = set()
        self.unmanaged_samples = 0
        self.longest_unmanaged = 0

    def _sample(self, pm: PositionManager, tick: int) -> None:
        """Venue positions the book does not track right now (one sample per tick)."""
        held = {
            (p["symbol"], p["side"], int(p["info"]["openingTimestamp"]))
            for p in self.paper.positions()
        }
        book = set(pm.positions.keys())
        unmanaged = {key for key in held if key[0] not in book}
        if unmanaged:
            self.unmanaged_samples += 1
        for key in unmanaged:
            self._unmanaged_seen.add(key)
            since = self._unmanaged_since.setdefault(key, tick)
            self.longest_unmanaged = max(self.longest_unmanaged, tick - since + 1)
        for key in list(self._unmanaged_since):
            if key not in unmanaged:
                del self._unmanaged_since[key]

    def run(self) -> RunResult:
        t0 = time.perf_counter()
        clock = freeze_clock(_naive_utc(self.paper.time))
        try:
            return self._run(clock, t0)
        finally:
            unfreeze_clock()

    def _run(self, clock: FrozenClock, t0: float) -> RunResult:
        pm = PositionManager(self.client, 0.02, **self.options)
        bot = Bot(
            pm,
            self.client,
            self.config,
            seed=self.seed,
            lockstep=self.lockstep,
            turn_timeout=self.turn_timeout,
        )
        by_tick: dict[int, list[Fault]] = {}
        for f in self.faults:
            by_tick.setdefault(f.tick, []).append(f)
        with self.client.intent("sync"):
            pm.sync_existing_positions()  # TradingBot.__init__
        bot.start_threads()
        try:
            for tick in range(self.ticks):
                self.client.tick = bot.tick = tick
                if tick:
                    self.paper.step()
                    clock.advance(seconds=self.paper.tick_seconds)
                for fault in by_tick.get(tick, []):
                    self.fault_log.append(f"t{tick} " + apply_fault(fault, self.paper, self.client))
                bot.run_cycle()
                if self.lockstep:
                    bot.turn("monitor")
                    if tick % self.config.dashboard_every == 0:
                        bot.turn("dashboard")
                else:
                    time.sleep(self.config.tick_interval)
                self._sample(pm, tick)
        finally:
            bot.stop_threads()
        seconds = time.perf_counter() - t0
        return self._verdict(pm, bot, seconds)

    def _verdict(self, pm: PositionManager, bot: Bot, seconds: float) -> RunResult:
        paper, client = self.paper, self.client
        # The book against the venue, once the venue answers normally: one cycle, one sync.
        with client.intent("final"):
            list(pm.update_positions())
            pm.sync_existing_positions()
        diffs = compare_book_and_venue(pm, paper)
        problems = book_problems(pm)
        bot.shutdown()
        if self.save_state_to is not None:
            pm.save_state(self.save_state_to)
        left = [f"{p['symbol']} {p['side']} {p['contracts']}" for p in paper.positions()]
        twice, on_top, partials, executed = ledger(paper, client)
        return RunResult(
            seed=self.seed,
            ticks=self.ticks,
            lockstep=self.lockstep,
            seconds=seconds,
            stats=bot.stats,
            fault_log=self.fault_log,
            intents=len(client.intents) - 1,
            orders_sent=len(client.sent),
            orders_executed=executed,
            orders_twice=twice,
            opened_on_top=on_top,
            partials_beyond_targets=partials,
            unmanaged_samples=self.unmanaged_samples,
            unmanaged_positions=len(self._unmanaged_seen),
            longest_unmanaged_ticks=self.longest_unmanaged,
            book_vs_venue=diffs,
            book_problems=problems,
            left_open=left,
            manager_events=Counter(f"{e['kind']}:{e['reason']}" for e in pm.events),
            venue_kinds=Counter(e["kind"] for e in paper.history),
            client_calls=client.calls,
            client_failures=client.failures,
            closes_without_order=client.closes_without_order,
        )


def compare_book_and_venue(pm: PositionManager, paper: PaperExchange) -> list[str]:
    """Every difference between the book and the venue (symbols, sides, sizes, entry prices)."""
    venue = {p["symbol"]: p for p in paper.positions()}
    book = dict(pm.positions.items())
    diffs: list[str] = []
    for symbol in sorted(set(venue) | set(book)):
        v, b = venue.get(symbol), book.get(symbol)
        if v is None:
            diffs.append(f"{symbol}: tracked ({b.side} {b.amount}) but not held")  # type: ignore[union-attr]
            continue
        if b is None:
            diffs.append(f"{symbol}: held ({v['side']} {v['contracts']}) but not tracked")
            continue
        if b.side != v["side"]:
            diffs.append(f"{symbol}: side {b.side} vs {v['side']}")
        if not math.isclose(b.amount, v["contracts"], rel_tol=1e-9, abs_tol=EPS):
            diffs.append(f"{symbol}: amount {b.amount} vs {v['contracts']}")
        if not math.isclose(b.entry_price, v["entryPrice"], rel_tol=1e-9):
            diffs.append(f"{symbol}: entry {b.entry_price} vs {v['entryPrice']}")
    return diffs


def ledger(
    paper: PaperExchange, client: BotLikeClient
) -> tuple[list[str], list[str], list[str], int]:
    """Books every fill of the client's orders against its intent (from the venue's history).

    Returns (orders twice for one intent, opens on top of a held position, partial reductions
    beyond the three targets per position instance, executed orders).
    """
    opens: Counter[tuple[int, str]] = Counter()
    full_closes: Counter[tuple[int, str]] = Counter()
    partials: Counter[tuple[str, int]] = Counter()  # (symbol, instance) -> partial reductions
    instance: dict[str, int] = {}
    instances = 0
    on_top: list[str] = []
    executed = 0
    for entry in paper.history:
        kind, symbol, d = entry["kind"], entry["symbol"], entry["details"]
        if ended_outside(entry):
            instance.pop(symbol, None)
            continue
        if kind != "fill":
            continue
        sent = client.sent.get(d.get("clientOrderId", ""))
        if sent is None:
            continue
        executed += 1
        after = d["position"]  # (side, contracts) after the fill, or None
        intent = client.intents[sent.intent]
        where = f"t{intent.tick} intent #{intent.number} ({intent.kind}) {symbol}"
        direction = "long" if d["side"] == "buy" else "short"
        if not d["reduceOnly"]:
            opens[(sent.intent, symbol)] += 1
            # Fresh: the fill is the whole position now. Anything else netted against a position
            # the venue held (added to it, reduced, closed or flipped it).
            fresh = (
                after is not None
                and after[0] == direction
                and abs(after[1] - d["contracts"]) <= EPS
            )
            if not fresh:
                on_top.append(f"{where}: {d['side']} {d['contracts']} onto {after}")
            if symbol not in instance or not fresh:
                instances += 1
                instance[symbol] = instances
        elif after is None:
            full_closes[(sent.intent, symbol)] += 1
            instance.pop(symbol, None)
        else:
            partials[(symbol, instance.get(symbol, 0))] += 1
    twice = [
        f"intent #{i} ({client.intents[i].kind}, t{client.intents[i].tick}) {s}: {n} opening orders"
        for (i, s), n in sorted(opens.items())
        if n > 1
    ] + [
        f"intent #{i} ({client.intents[i].kind}, t{client.intents[i].tick}) {s}: {n} closing orders"
        for (i, s), n in sorted(full_closes.items())
        if n > 1
    ]
    beyond = [
        f"{s} instance {k}: {n} partial reductions"
        for (s, k), n in sorted(partials.items())
        if n > 3
    ]
    return twice, on_top, beyond, executed
