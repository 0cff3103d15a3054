"""Shared helpers for the binding tests: fake exchange clients, positions, threads with deadlines.

The fakes are plain classes (not Mocks) so that they behave like the bot's real client: they are
thread-safe, keep their own exchange-side position set, and can be told to misbehave.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any, Callable

import pytest

from position_manager_rs import PaperExchange, Position, PositionManager
from position_manager_rs.events import Event

DEFAULT_PRICE = 100.0


def exchange_entry(
    symbol: Any,
    side: Any = "long",
    contracts: Any = 1.0,
    entry_price: Any = DEFAULT_PRICE,
    leverage: Any = 10,
    **extra: Any,
) -> dict[str, Any]:
    """A ccxt-like unified position dict as ``get_open_positions()`` returns it."""
    entry = {
        "symbol": symbol,
        "contracts": contracts,
        "side": side,
        "entryPrice": entry_price,
        "leverage": leverage,
        "info": {"realLeverage": leverage},
    }
    entry.update(extra)
    return entry


def make_position(
    symbol: str,
    side: str = "long",
    entry_price: float = DEFAULT_PRICE,
    amount: float = 1.0,
    leverage: int = 10,
    stop_loss: float | None = None,
    take_profit: float | None = None,
) -> Position:
    """A Python-created Position with stop/TP 5 % / 15 % away from entry by default."""
    if stop_loss is None:
        stop_loss = entry_price * (0.95 if side == "long" else 1.05)
    if take_profit is None:
        take_profit = entry_price * (1.15 if side == "long" else 0.85)
    return Position(symbol, side, entry_price, amount, leverage, stop_loss, take_profit)


def make_manager(client: Any, **options: Any) -> PositionManager:
    """A manager without the original's 0.5 s / 1.0 s ticker retry pauses (tests stay fast)."""
    options.setdefault("ticker_retry_delays", (0.0, 0.0))
    return PositionManager(client, 0.02, **options)


class FakeExchange:
    """A thread-safe fake of the bot's exchange client with its own exchange-side positions.

    * ``get_open_positions()`` lists the open positions (copies of ccxt-like dicts);
    * ``get_ticker(symbol)`` returns ``{'symbol', 'last'}`` from ``prices`` (default 100.0);
    * ``get_ohlcv(...)`` returns ``[]`` (no market data);
    * ``close_position(symbol)`` removes the position and returns True (``close_result`` False
      makes it refuse without closing).

    Orders (the ``TradingClient`` methods) act on those exchange-side positions:

    * ``create_market_order`` fills ``fill_ratio`` of the amount at the current price (a client
      that shrinks orders has ``fill_ratio < 1``) and answers a ccxt-like order dict; reduce-only
      orders reduce (never flip);
    * ``create_limit_order`` rests an open order; ``wait_for_order_fill`` fills ``limit_fill`` of
      it at the limit price (1.0: ``closed``; less: still ``open``, partly filled);
      ``cancel_order`` cancels it unless ``cancel_result`` is False (then it stays open);
    * ``get_market_limits`` answers ``min_amount`` and ``amount_step``.

    Every call is recorded in ``calls`` as ``(method, args, kwargs)``. ``latency`` is a
    ``(low, high)`` range of seconds slept at the start of each call. Each method can be
    replaced by assigning a callable to ``on_<method>``; it receives the same arguments and its
    return value (or exception) is the answer.
    """

    def __init__(
        self,
        positions: Iterable[dict[str, Any]] = (),
        *,
        latency: tuple[float, float] | None = None,
        seed: int = 0,
    ) -> None:
        self._lock = threading.RLock()
        self.positions: dict[str, dict[str, Any]] = {}
        for p in positions:
            self.positions[p["symbol"]] = dict(p)
        self.prices: dict[str, float] = {}
        self.latency = latency
        self.rng = random.Random(seed)
        self.close_result = True
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.closed_ok: list[str] = []
        self.on_get_open_positions: Callable[[], Any] | None = None
        self.on_get_ticker: Callable[[str], Any] | None = None
        self.on_get_ohlcv: Callable[..., Any] | None = None
        self.on_close_position: Callable[[str], Any] | None = None
        self.fill_ratio = 1.0
        self.limit_fill = 1.0
        self.cancel_result = True
        self.min_amount: float | None = None
        self.amount_step: float | None = None
        self.orders: dict[str, dict[str, Any]] = {}
        self.on_create_market_order: Callable[..., Any] | None = None
        self.on_create_limit_order: Callable[..., Any] | None = None
        self.on_wait_for_order_fill: Callable[..., Any] | None = None
        self.on_cancel_order: Callable[..., Any] | None = None
        self.on_get_market_limits: Callable[..., Any] | None = None

    # -- exchange-side state ------------------------------------------------------------
    def open(self, symbol: str, **fields: Any) -> None:
        with self._lock:
            self.positions[symbol] = exchange_entry(symbol, **fields)

    def drop(self, symbol: str) -> None:
        with self._lock:
            self.positions.pop(symbol, None)

    def symbols(self) -> set[str]:
        with self._lock:
            return set(self.positions)

    def set_price(self, symbol: str, price: float) -> None:
        with self._lock:
            self.prices[symbol] = price

    def calls_of(self, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        with self._lock:
            return [(a, k) for m, a, k in self.calls if m == method]

    # -- client API ---------------------------------------------------------------------
    def _enter(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.latency is not None:
            with self._lock:
                delay = self.rng.uniform(*self.latency)
            time.sleep(delay)
        with self._lock:
            self.calls.append((method, args, kwargs))

    def get_open_positions(self) -> Any:
        self._enter("get_open_positions")
        if self.on_get_open_positions is not None:
            return self.on_get_open_positions()
        with self._lock:
            return [dict(p) for p in self.positions.values()]

    def get_ticker(self, symbol: str) -> Any:
        self._enter("get_ticker", symbol)
        if self.on_get_ticker is not None:
            return self.on_get_ticker(symbol)
        with self._lock:
            return {"symbol": symbol, "last": self.prices.get(symbol, DEFAULT_PRICE)}

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        self._enter("get_ohlcv", symbol, timeframe=timeframe, limit=limit)
        if self.on_get_ohlcv is not None:
            return self.on_get_ohlcv(symbol, timeframe=timeframe, limit=limit)
        return []

    def close_position(self, symbol: str) -> Any:
        self._enter("close_position", symbol)
        if self.on_close_position is not None:
            return self.on_close_position(symbol)
        with self._lock:
            if not self.close_result:
                return False
            self.positions.pop(symbol, None)
            self.closed_ok.append(symbol)
            return True

    def _apply_fill(
        self, symbol: str, side: str, amount: float, price: float, leverage: Any, reduce: bool
    ) -> None:
        """Nets a fill into the exchange-side position (one-way mode)."""
        pos_side = "long" if side == "buy" else "short"
        current = self.positions.get(symbol)
        if current is None:
            if not reduce:
                self.positions[symbol] = exchange_entry(symbol, pos_side, amount, price, leverage)
            return
        size = float(current["contracts"])
        if current["side"] == pos_side and not reduce:
            total = size + amount
            current["entryPrice"] = (size * current["entryPrice"] + amount * price) / total
            current["contracts"] = total
        elif current["side"] != pos_side:
            left = size - min(size, amount)
            if left <= 1e-12:
                del self.positions[symbol]
            else:
                current["contracts"] = left

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: Any = 10,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> Any:
        kwargs = {"reduce_only": reduce_only, "is_critical": is_critical} if reduce_only else {}
        self._enter("create_market_order", symbol, side, amount, leverage, **kwargs)
        if self.on_create_market_order is not None:
            return self.on_create_market_order(symbol, side, amount, leverage, **kwargs)
        with self._lock:
            price = self.prices.get(symbol, DEFAULT_PRICE)
            filled = amount * self.fill_ratio
            self._apply_fill(symbol, side, filled, price, leverage, reduce_only)
            order_id = f"m{len(self.calls)}"
            order = {
                "id": order_id,
                "symbol": symbol,
                "side": side,
                "status": "closed",
                "amount": amount,
                "filled": filled,
                "remaining": amount - filled,
                "average": price,
            }
            self.orders[order_id] = order
            return dict(order)

    def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        leverage: Any = 10,
        post_only: bool = False,
    ) -> Any:
        self._enter(
            "create_limit_order", symbol, side, amount, price, leverage, post_only=post_only
        )
        if self.on_create_limit_order is not None:
            return self.on_create_limit_order(
                symbol, side, amount, price, leverage, post_only=post_only
            )
        with self._lock:
            order_id = f"l{len(self.calls)}"
            order = {
                "id": order_id,
                "symbol": symbol,
                "side": side,
                "status": "open",
                "amount": amount,
                "filled": 0.0,
                "remaining": amount,
                "price": price,
                "average": None,
                "leverage": leverage,
            }
            self.orders[order_id] = order
            return dict(order)

    def wait_for_order_fill(
        self, order_id: Any, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> Any:
        self._enter(
            "wait_for_order_fill", order_id, symbol, timeout=timeout, check_interval=check_interval
        )
        if self.on_wait_for_order_fill is not None:
            return self.on_wait_for_order_fill(
                order_id, symbol, timeout=timeout, check_interval=check_interval
            )
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                return None
            if order["status"] == "open":
                target = order["amount"] * self.limit_fill
                new = target - order["filled"]
                if new > 0:
                    self._apply_fill(
                        symbol, order["side"], new, order["price"], order["leverage"], False
                    )
                    order["filled"] = target
                    order["remaining"] = order["amount"] - target
                    order["average"] = order["price"]
                if order["remaining"] <= 1e-12:
                    order["status"] = "closed"
            return dict(order)

    def cancel_order(self, order_id: Any, symbol: str) -> Any:
        self._enter("cancel_order", order_id, symbol)
        if self.on_cancel_order is not None:
            return self.on_cancel_order(order_id, symbol)
        with self._lock:
            order = self.orders.get(order_id)
            if order is None or order["status"] != "open" or not self.cancel_result:
                return False
            order["status"] = "canceled"
            return True

    def get_market_limits(self, symbol: str) -> Any:
        self._enter("get_market_limits", symbol)
        if self.on_get_market_limits is not None:
            return self.on_get_market_limits(symbol)
        return {
            "amount": {"min": self.min_amount, "max": None, "step": self.amount_step},
            "cost": {"min": None, "max": None},
        }


def assert_ctrl_c_ends(fn: Callable[[], Any], after: float = 0.3, within: float = 5.0) -> None:
    """Sends this process SIGINT ``after`` seconds into ``fn()`` (run on the main thread) and
    checks that ``fn`` ended with ``KeyboardInterrupt`` less than ``within`` seconds after it
    started."""
    assert threading.current_thread() is threading.main_thread()

    def interrupt() -> None:
        time.sleep(after)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    started = time.monotonic()
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fn()
    finally:
        killer.join(10)
    assert time.monotonic() - started < within


def run_with_timeout(fn: Callable[[], Any], timeout: float = 10.0, what: str = "call") -> Any:
    """Runs ``fn`` in a daemon thread; fails the test (instead of hanging) if it does not finish.

    Returns ``fn``'s result and re-raises its exception.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # re-raised in the test thread
            result["error"] = e

    t = threading.Thread(target=target, name=f"timeout-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"{what} did not finish within {timeout} s (deadlock?)")
    if "error" in result:
        raise result["error"]
    return result.get("value")


# The address space a child run by ``run_memory_limited`` may use: ample for the interpreter and
# the module, far below what an allocation sized by hostile input would ask for.
CHILD_MEMORY_LIMIT = 4 << 30

MEMORY_LIMITED_PRELUDE = """
import resource
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
"""


def run_memory_limited(code: str, timeout: float = 120.0) -> str:
    """Runs ``code`` in a child interpreter under a 4 GiB address-space limit and a timeout.

    An input that would make the extension abort (a failed allocation, a panic) kills only the
    child; the test then fails on its exit status (134 for an abort) with its output. Returns
    the child's standard output, which the code prints its findings to.
    """
    source = MEMORY_LIMITED_PRELUDE.format(limit=CHILD_MEMORY_LIMIT) + textwrap.dedent(code)
    out = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, (
        f"the child exited with status {out.returncode}\n"
        f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
    )
    return out.stdout


class Workers:
    """Runs named worker functions in daemon threads, collecting any exception with its traceback.

    ``join(deadline)`` fails the test when a thread is still alive after the deadline (a deadlock
    must fail, never hang) or when any thread raised.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def spawn(self, name: str, fn: Callable[[], None]) -> None:
        def target() -> None:
            try:
                fn()
            except BaseException:
                with self._lock:
                    self.errors.append(f"[{name}] {traceback.format_exc()}")
                self.stop.set()

        t = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(t)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self, deadline: float) -> None:
        end = time.monotonic() + deadline
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        self.stop.set()
        if alive:
            pytest.fail(f"threads still running after {deadline} s (deadlock?): {alive}")
        if self.errors:
            pytest.fail("exceptions in worker threads:\n" + "\n".join(self.errors))


def events_of(pm: PositionManager, symbol: str | None = None) -> list[Event]:
    """The manager's events, optionally only those of ``symbol``."""
    return [e for e in pm.events if symbol is None or e["symbol"] == symbol]


class PaperWithoutAverage(PaperExchange):
    """A paper venue whose order answers carry no average fill price, as some venues' answers
    do: the manager then books the price it saw before the order as the entry, which differs
    from the venue's own entry by the fill's slippage. Only what the venue last *listed*
    identifies such a position when it is listed again after a removal."""

    def create_market_order(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        order = super().create_market_order(*args, **kwargs)
        return None if order is None else {k: v for k, v in order.items() if k != "average"}


def estimated_entry_venue() -> PaperWithoutAverage:
    """A :class:`PaperWithoutAverage` whose fills slip by up to 1 %."""
    return PaperWithoutAverage(seed=3, volatility=0.0, slippage=0.01)


def assert_the_same_position(pm: PositionManager, symbol: str, entry_price: float) -> None:
    """``pm`` tracks ``symbol`` as the position :func:`listed_with_an_estimated_entry` opened:
    its attribute and the manager's own entry, not an import's."""
    position = pm.positions[symbol]
    assert (position.strategy, position.entry_price) == ("breakout", entry_price)


def listed_with_an_estimated_entry(
    pm: PositionManager, paper: PaperExchange, symbol: str
) -> tuple[float, float]:
    """Opens ``symbol`` on ``pm`` (over a :class:`PaperWithoutAverage`) with a ``strategy``
    attribute and lets one cycle see the venue list it; returns the manager's entry and the
    venue's, which differ."""
    assert pm.open_position(symbol, "BUY", 3, 10, 0.05) is True
    pm.positions[symbol].strategy = "breakout"
    assert list(pm.update_positions()) == []
    own = pm.positions[symbol].entry_price
    venue = paper.position(symbol)
    assert venue is not None and abs(venue["entryPrice"] - own) > 1e-4 * own, (own, venue)
    return own, float(venue["entryPrice"])


def removed_with_an_estimated_entry(
    pm: PositionManager, paper: PaperExchange, symbol: str
) -> tuple[float, float]:
    """:func:`listed_with_an_estimated_entry`, then two empty answers untrack the position (a
    tombstone)."""
    own, venue = listed_with_an_estimated_entry(pm, paper, symbol)
    paper.answer_empty_next(2)
    assert list(pm.update_positions()) == []
    assert not pm.has_position(symbol)
    return own, venue


def untracked_by_empty_answers_then_back(pm: PositionManager, paper: PaperExchange) -> list[str]:
    """A restarted ``pm`` whose first cycle gets two empty answers (the venue still holds its
    positions: they are untracked), then a real list; returns the kinds of the events both
    cycles recorded."""
    before = len(pm.events)
    paper.answer_empty_next(2)
    assert list(pm.update_positions()) == []
    assert list(pm.positions) == []
    assert list(pm.update_positions()) == []
    return [e["kind"] for e in pm.events[before:]]


# What the manager's own fills left that no list has shown yet, across a restart: the venue's
# lists lag the fill, the bot stops before any list shows it, and the restarted manager's first
# lists still lag. One list cannot tell that lag from a position closed meanwhile; the
# restarted manager must weigh it as the stopped one would have (`outcome_confirmations`, 2).


def opened_behind_a_lagging_list(pm: PositionManager, paper: PaperExchange, symbol: str) -> None:
    """``pm`` opens 10 contracts of ``symbol``; the venue's next three lists (the open's own
    read, then the restarted manager's first cycle, which reads an empty list twice) show it
    as before the open."""
    paper.lag_positions_next(3)
    assert pm.open_position(symbol, "BUY", 10, 10, 0.05) is True


def scaled_in_behind_a_lagging_list(pm: PositionManager, paper: PaperExchange, symbol: str) -> None:
    """``pm`` opens 10 contracts of ``symbol``, a cycle lists them, then it scales in 5 while the
    venue's next two lists (the scale-in's own read, then the restarted manager's first cycle)
    show the 10."""
    assert pm.open_position(symbol, "BUY", 10, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    paper.lag_positions_next(2)
    assert pm.scale_in_position(symbol, 5, pm.positions[symbol].entry_price) is True
    assert pm.positions[symbol].amount == 15


def cycles_behind_the_lagging_list(
    pm: PositionManager, paper: PaperExchange, symbol: str, amount: float
) -> list[str]:
    """The restarted ``pm``'s first cycle (the list lags) and its second (it does not): after
    each, ``symbol`` must be tracked at ``amount``, as the venue holds it. Returns the kinds of
    the events both cycles recorded."""
    before = len(pm.events)
    for lagging in (True, False):
        assert list(pm.update_positions()) == []
        held = pm.positions.get(symbol)
        assert held is not None and held.amount == amount, (lagging, held, pm.events[before:])
    venue = paper.position(symbol)
    assert venue is not None and venue["contracts"] == amount
    return [e["kind"] for e in pm.events[before:]]


def closed_behind_a_lagging_list(pm: PositionManager, paper: PaperExchange, symbol: str) -> None:
    """``pm`` (over ``paper``, which takes client order ids) opens 100 contracts of ``symbol``,
    a cycle lists them, then the price falls through the stop and the next cycle closes the
    position: the venue's order fills, but its next two lists (the stop cycle's own, then the
    restarted manager's first) still show the position."""
    assert pm.open_position(symbol, "BUY", 100, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    paper.set_price(symbol, pm.positions[symbol].entry_price * 0.94)
    paper.lag_positions_next(2)
    assert [s for s, _, _ in pm.update_positions()] == [symbol]
    assert paper.position(symbol) is None, "the close filled"


def cycles_after_a_lagging_close(pm: PositionManager, paper: PaperExchange, symbol: str) -> None:
    """The restarted ``pm``'s first cycles after :func:`closed_behind_a_lagging_list`: the close
    is looked up (it filled), so the lagging list does not put the position back, and no second
    close goes out."""
    before = len(pm.events)
    for _ in range(3):
        assert list(pm.update_positions()) == []
        assert not pm.has_position(symbol)
    # Earlier builds put it back (`close_unconfirmed`), then recorded it `removed` (closed
    # outside the manager, reason and P/L judged) once the list caught up.
    assert [e["kind"] for e in pm.events[before:]] == [], "not tracked again"
    assert len(paper.calls_of("close_position")) == 1, "one close order"
    assert len(paper.calls_of("get_order_by_client_id")) == 1, "the close was looked up"
