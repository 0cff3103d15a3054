"""Shared helpers for the binding tests: fake exchange clients, positions, threads with deadlines.

The fakes are plain classes (not Mocks) so that they behave like the bot's real client: they are
thread-safe, keep their own exchange-side position set, and can be told to misbehave.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any, Callable

import pytest

from position_manager_rs import Position, PositionManager

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


def events_of(pm: PositionManager, symbol: str | None = None) -> list[dict[str, Any]]:
    """The manager's events, optionally only those of ``symbol``."""
    return [e for e in pm.events if symbol is None or e["symbol"] == symbol]
