"""A simulated futures venue to run a ``PositionManager`` against: ``PaperExchange``.

``PaperExchange`` implements the exchange-client methods the manager calls (and the order
methods a bot calls) on an in-memory market whose prices follow a seeded random walk. Everything
is deterministic for a given ``seed``: prices, candles, fills, random venue events. Time is
simulated (``paper.time``, epoch seconds) and moves only when you call ``step()`` /
``advance(n)``; nothing sleeps and nothing reads the wall clock.

Things a real venue does to a bot can be scripted (``close_externally``, ``reduce_externally``,
``set_price``, ``fail_next``, ``answer_empty_next``) or drawn at random per step
(``event_rates``). Everything the venue does is recorded in ``paper.history``.

Example::

    from position_manager_rs import PositionManager
    from position_manager_rs.paper import PaperExchange

    paper = PaperExchange(seed=1)
    manager = PositionManager(paper, 0.02)
    paper.create_market_order("BTC/USDT:USDT", "buy", 10, 10)
    manager.sync_existing_positions()          # imports the venue's position
    paper.close_externally("BTC/USDT:USDT")     # closed by hand on the exchange UI
    list(manager.update_positions())            # ... and the manager drops it

Model (simplified on purpose): one-way mode (one position per symbol) or, with
``position_mode='hedge'``, a long and a short leg per symbol held independently; isolated margin
without a wallet (orders are never refused for lack of funds), mark price = last price, no fees.
Amounts are contracts (lots); a contract is worth ``contractSize`` units of the base currency, so
a position's value is ``contracts * contractSize * price`` (as on KuCoin futures).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ._core import ManualClock
from .protocols import DuplicateClientOrderId

__all__ = [
    "ANSWER_LOSS_METHODS",
    "CLIENT_METHODS",
    "DEFAULT_START_TIME",
    "DEFAULT_SYMBOLS",
    "EXTERNAL_EVENT_KINDS",
    "RANDOM_EVENT_KINDS",
    "DuplicateClientOrderId",
    "PaperExchange",
    "PaperExchangeError",
]

#: 2026-01-01 00:00:00 UTC: the default simulated start (fixed, so runs are reproducible).
DEFAULT_START_TIME = 1767225600.0

#: The symbols a ``PaperExchange()`` lists by default.
DEFAULT_SYMBOLS: tuple[str, ...] = (
    "BTC/USDT:USDT",
    "ETH/USDT:USDT",
    "SOL/USDT:USDT",
    "XRP/USDT:USDT",
)

# Known markets: start price, contract size (KuCoin-like lots), typical hourly volume (lots).
# Symbols not listed start at 100.0 with a contract size of 1.0 unless given otherwise.
_KNOWN_MARKETS: dict[str, tuple[float, float, float]] = {
    "BTC/USDT:USDT": (90000.0, 0.001, 40000.0),
    "ETH/USDT:USDT": (3000.0, 0.01, 60000.0),
    "SOL/USDT:USDT": (125.0, 0.1, 50000.0),
    "XRP/USDT:USDT": (1.9, 10.0, 30000.0),
    "DOGE/USDT:USDT": (0.13, 100.0, 20000.0),
    "ADA/USDT:USDT": (0.35, 10.0, 20000.0),
    "BNB/USDT:USDT": (850.0, 0.01, 10000.0),
    "LTC/USDT:USDT": (75.0, 0.1, 8000.0),
}
_UNKNOWN_MARKET = (100.0, 1.0, 10000.0)

#: The client methods (the ones ``fail_next`` can make raise and ``calls`` records).
CLIENT_METHODS: tuple[str, ...] = (
    "get_open_positions",
    "get_ticker",
    "get_tickers",
    "get_ohlcv",
    "create_market_order",
    "create_limit_order",
    "wait_for_order_fill",
    "cancel_order",
    "close_position",
    "get_market_limits",
    "get_order_by_client_id",
)

#: The client methods that act on the venue, whose answer ``lose_answer_next`` can lose after the
#: venue has acted.
ANSWER_LOSS_METHODS: tuple[str, ...] = (
    "create_market_order",
    "create_limit_order",
    "cancel_order",
    "close_position",
)

#: The keys ``event_rates`` accepts: probabilities per ``step()`` of a random venue event.
RANDOM_EVENT_KINDS: tuple[str, ...] = (
    "manual_close",
    "partial_reduction",
    "transient_empty",
    "exception",
)

#: History kinds that are done *to* the bot (not answers to its own orders).
EXTERNAL_EVENT_KINDS: frozenset[str] = frozenset(
    {
        "manual_close",
        "partial_reduction",
        "liquidation",
        "price_jump",
        "transient_empty",
        "exception",
        "answer_lost",
        "stale_positions",
    }
)

# Methods a random 'exception' event picks from (the ones the manager's update cycle calls; it
# reads the prices with get_tickers and falls back to get_ticker per symbol when that fails).
_RANDOM_FAILURE_METHODS = ("get_open_positions", "get_tickers", "get_ohlcv", "close_position")

_HOUR = 3600.0
_EPS = 1e-9

ErrorSpec = Union[BaseException, type[BaseException], None]


@dataclass(frozen=True)
class _Failure:
    """One armed failure of a client method: ``fail_next``'s (scripted) or a random event's."""

    error: ErrorSpec
    random: bool = False


@dataclass(frozen=True)
class _LostAnswer:
    """One armed ``lose_answer_next``: raise ``error`` after acting, or answer None."""

    error: ErrorSpec
    answer_none: bool


class PaperExchangeError(ConnectionError):
    """The error a ``PaperExchange`` client method raises after ``fail_next`` (by default).

    A ``ConnectionError`` subclass, like the network failures a real client may let through.
    """


# What a venue accepts as a client order id (Binance's rule: 1-36 of these characters).
_CLIENT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-")
_CLIENT_ID_MAX = 36


@dataclass
class _Market:
    symbol: str
    price: float
    contract_size: float
    decimals: int
    hourly_volume: float
    rng: random.Random
    candles: list[list[float]] = field(default_factory=list)  # closed hourly candles
    forming: list[float] = field(default_factory=list)  # the current hour's candle


@dataclass
class _Position:
    symbol: str
    side: str  # 'long' | 'short'
    contracts: float
    entry_price: float
    leverage: float
    opened_ms: int
    updated_ms: int


@dataclass
class _Order:
    id: str
    symbol: str
    type: str  # 'market' | 'limit'
    side: str  # 'buy' | 'sell'
    amount: float
    price: float | None
    leverage: float
    reduce_only: bool
    post_only: bool
    timestamp: int
    filled: float = 0.0
    notional: float = 0.0  # sum of fill quantity * fill price (for the average)
    status: str = "open"  # 'open' | 'closed' | 'canceled'
    realized_pnl: float = 0.0
    client_order_id: str = ""
    leg: str | None = None  # hedge mode: the leg ('long'/'short') it opens or reduces


def _price_decimals(price: float) -> int:
    """Decimals that keep about six significant digits (90000 -> 1, 1.9 -> 5)."""
    if price <= 0:
        return 8
    return int(min(8, max(0, 5 - math.floor(math.log10(price)))))


def _iso(ts: float) -> str:
    dt = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _naive_utc(ts: float) -> _dt.datetime:
    """Epoch seconds as the naive UTC datetime a ``ManualClock`` shows."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).replace(tzinfo=None)


def _check_position_side(side: Any, reduce_only: bool, position_side: Any) -> None:
    """Raises ``ValueError`` for a ``position_side`` that is not a leg or does not fit ``side``
    (as ``CcxtClient`` does: the caller's mistake, nothing is placed)."""
    if position_side is None:
        return
    if position_side not in ("long", "short"):
        raise ValueError(f"position_side must be None, 'long' or 'short', got {position_side!r}")
    if side not in ("buy", "sell"):
        return  # rejected as an invalid side by the order itself
    implied = "long" if (side == "buy") != bool(reduce_only) else "short"
    if position_side != implied:
        kind = "reduce-only " if reduce_only else ""
        verb = "reduces" if reduce_only else "opens"
        raise ValueError(
            f"a {kind}{side} order {verb} the {implied} leg, not position_side={position_side!r}"
        )


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    x = float(value)
    if not math.isfinite(x):
        return None
    return x


def _number_arg(
    name: str, value: Any, rule: str = "", ok: Callable[[float], bool] | None = None
) -> float:
    """``value`` as a finite float for which ``ok`` holds (``rule`` says what it needs, e.g.
    ``"> 0"``); ``TypeError`` (not a number) or ``ValueError`` (NaN, infinite, breaks the rule)
    naming ``name`` and the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    x = float(value)
    if not math.isfinite(x):
        need = f"a finite number {rule}" if rule else "a finite number"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    if ok is not None and not ok(x):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return x


def _int_arg(name: str, value: Any, *, low: int = 0) -> int:
    """``value`` as an int >= ``low``; ``TypeError`` (not an int, a bool included) or
    ``ValueError`` (too small) naming ``name`` and the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _check_error_spec(error: Any) -> None:
    """``TypeError`` unless ``error`` is None, an exception instance or an exception class."""
    if error is None or isinstance(error, BaseException):
        return
    if isinstance(error, type) and issubclass(error, BaseException):
        return
    raise TypeError(
        "error must be None, an exception instance or an exception class, "
        f"got {error!r} ({type(error).__name__})"
    )


class PaperExchange:
    """A deterministic, simulated futures exchange implementing the bot's exchange-client methods.

    Pass it as the ``client`` of a ``PositionManager`` (or of your bot). Prices move only when
    you call :meth:`step` / :meth:`advance`; every random draw comes from generators seeded with
    ``seed`` (never the global RNG, never the wall clock), so the same seed and the same calls
    give the same prices, candles, orders and events.

    Constructor options (all keyword, all optional):

    * ``seed`` (0): seeds the price walks, candle history, slippage and random events.
    * ``symbols``: the listed symbols (default :data:`DEFAULT_SYMBOLS`: BTC, ETH, SOL and XRP
      ``/USDT:USDT``).
    * ``prices``: start prices per symbol (defaults: realistic prices for known symbols, 100.0
      otherwise). A symbol given here but not in ``symbols`` is listed too.
    * ``volatility`` (0.004): standard deviation of the log return per tick, in ``[0, 1)``;
      ``ValueError`` too for one so high for ``tick_seconds`` and ``history_candles`` that the
      simulated history's prices would leave the range of a float.
    * ``tick_seconds`` (60.0): simulated seconds per tick.
    * ``history_candles`` (200): closed hourly candles generated before the start.
    * ``min_amount`` (1.0), ``amount_step`` (1.0), ``max_amount`` (1e6): order size rules in
      contracts; an order breaking them is rejected (``None``). :meth:`close_position` closes a
      position of any size.
    * ``contract_size``: one number for every symbol or a mapping per symbol (default: KuCoin-like
      lots, e.g. 0.001 BTC, 0.01 ETH, 0.1 SOL, 10 XRP; 1.0 for unknown symbols).
    * ``maintenance_margin`` (0.005): maintenance margin rate used for liquidation prices; an
      order's leverage must stay below ``1 / maintenance_margin`` (rejected otherwise).
    * ``event_rates``: probabilities per step of random venue events, keys from
      :data:`RANDOM_EVENT_KINDS` (``manual_close``, ``partial_reduction``, ``transient_empty``,
      ``exception``). Default: none.
    * ``start_time`` (:data:`DEFAULT_START_TIME`, 2026-01-01 UTC): simulated epoch seconds.
    * ``slippage`` (0.0): maximum relative slippage of market fills (seeded draw, always against
      the taker).
    * ``spread`` (0.0002): relative bid/ask spread of tickers (fills use the last price).
    * ``partial_fill_fraction`` (1.0): fraction of a limit order's amount that fills per tick in
      which the price crosses it (rounded down to ``amount_step``, at least one step); below 1.0
      limit orders fill in parts.
    * ``wait_ticks`` (0): how many ticks :meth:`wait_for_order_fill` may advance the market while
      the order is still open (0: it answers at once and never moves time).
    * ``clock``: a :class:`~position_manager_rs.ManualClock` the venue drives (default: a new
      one, ``paper.clock``). It shows the simulated time (naive UTC) from construction on and
      moves with every tick; pass it to the manager, ``PositionManager(paper,
      clock=paper.clock)``, so that entry times, ages, profit velocity and the 24 h rules
      follow paper time.
    * ``position_mode`` ('oneway'): 'hedge' holds a long and a short leg per symbol (see below).

    An option of the wrong type raises ``TypeError`` and one out of range (sizes, prices and
    ticks must be finite numbers > 0) ``ValueError``, naming the option and the value;
    ``symbols`` must be a sequence of symbols, not one str.

    State you can read: ``time`` (simulated epoch seconds), ``datetime``, ``clock``, ``symbols``,
    ``history`` (everything the venue did, see :meth:`step`), ``calls`` (every client call as
    ``(method, args, kwargs)``), ``realized_pnl`` (quote currency, all closes).

    Client order ids: ``client_order_ids = True`` tells the manager that the order methods take
    a ``client_order_id`` keyword and that :meth:`get_order_by_client_id` looks orders up by it.

    Position legs: ``position_mode`` ('oneway', the default, or 'hedge') is the account's mode.
    In hedge mode a symbol holds a long and a short leg side by side: a buy opens or adds to the
    long leg and a sell to the short one (they never net), and a reduce-only order must name the
    leg it reduces with ``position_side`` (refused otherwise, as hedge-mode venues refuse an
    order without its position side). ``position_legs = True`` in both modes: every
    :meth:`get_open_positions` entry carries ``side`` and ``hedged``, ``close_position(symbol,
    side=...)`` closes one leg only and the order methods take ``position_side`` ('long'/'short':
    the leg an order opens or reduces; one that does not fit ``side`` raises ``ValueError`` and
    places nothing), as ``CcxtClient`` does.
    """

    #: Capability flag read by the manager: the order methods accept ``client_order_id=...`` and
    #: :meth:`get_order_by_client_id` exists.
    client_order_ids = True
    #: Capability flag read by the manager: ``close_position(symbol, side=...)`` closes one leg
    #: and the order methods take ``position_side=...``; entries carry ``side`` and ``hedged``.
    position_legs = True

    def __init__(
        self,
        *,
        seed: int | str = 0,
        symbols: Sequence[str] | None = None,
        prices: Mapping[str, float] | None = None,
        volatility: float = 0.004,
        tick_seconds: float = 60.0,
        history_candles: int = 200,
        min_amount: float = 1.0,
        amount_step: float = 1.0,
        max_amount: float = 1_000_000.0,
        contract_size: float | Mapping[str, float] | None = None,
        maintenance_margin: float = 0.005,
        event_rates: Mapping[str, float] | None = None,
        start_time: float | None = None,
        slippage: float = 0.0,
        spread: float = 0.0002,
        partial_fill_fraction: float = 1.0,
        wait_ticks: int = 0,
        clock: ManualClock | None = None,
        position_mode: str = "oneway",
    ) -> None:
        if position_mode not in ("oneway", "hedge"):
            raise ValueError(f"position_mode must be 'oneway' or 'hedge', got {position_mode!r}")
        # A log return whose standard deviation is 100 % or more per tick is no market (and its
        # price walk leaves the range of a float within a few candles).
        volatility = _number_arg("volatility", volatility, "in [0, 1)", lambda x: 0 <= x < 1)
        tick_seconds = _number_arg("tick_seconds", tick_seconds, "> 0", lambda x: x > 0)
        history_candles = _int_arg("history_candles", history_candles)
        amount_step = _number_arg("amount_step", amount_step, "> 0", lambda x: x > 0)
        min_amount = _number_arg("min_amount", min_amount, "> 0", lambda x: x > 0)
        max_amount = _number_arg(
            "max_amount", max_amount, f">= min_amount ({min_amount})", lambda x: x >= min_amount
        )
        maintenance_margin = _number_arg(
            "maintenance_margin", maintenance_margin, "in [0, 1)", lambda x: 0 <= x < 1
        )
        slippage = _number_arg("slippage", slippage, "in [0, 1)", lambda x: 0 <= x < 1)
        spread = _number_arg("spread", spread, "in [0, 1)", lambda x: 0 <= x < 1)
        partial_fill_fraction = _number_arg(
            "partial_fill_fraction", partial_fill_fraction, "in (0, 1]", lambda x: 0 < x <= 1
        )
        wait_ticks = _int_arg("wait_ticks", wait_ticks)
        if start_time is None:
            start_time = DEFAULT_START_TIME
        start_time = _number_arg("start_time", start_time)
        try:
            start_clock = _naive_utc(start_time)
        except (OverflowError, OSError, ValueError):
            raise ValueError(
                f"start_time must be epoch seconds a datetime can show, got {start_time!r}"
            ) from None
        if clock is not None and not isinstance(clock, ManualClock):
            raise TypeError(
                f"clock must be a position_manager_rs.ManualClock or None, got {clock!r} "
                f"({type(clock).__name__})"
            )
        if event_rates is not None and not isinstance(event_rates, Mapping):
            raise TypeError(
                f"event_rates must be a mapping of event kind to probability or None, "
                f"got {event_rates!r}"
            )
        rates = dict(event_rates or {})
        for kind, rate in rates.items():
            if kind not in RANDOM_EVENT_KINDS:
                raise ValueError(f"unknown event kind {kind!r}; known: {RANDOM_EVENT_KINDS}")
            rates[kind] = _number_arg(
                f"event_rates[{kind!r}]", rate, "in [0, 1]", lambda x: 0 <= x <= 1
            )
        if isinstance(symbols, (str, bytes)) or (
            symbols is not None and not isinstance(symbols, Iterable)
        ):
            raise TypeError(
                f"symbols must be a sequence of symbols (e.g. ['BTC/USDT:USDT']) or None, "
                f"got {symbols!r}"
            )
        if prices is not None and not isinstance(prices, Mapping):
            raise TypeError(f"prices must be a mapping of symbol to price or None, got {prices!r}")
        if (
            contract_size is not None
            and not isinstance(contract_size, Mapping)
            and (isinstance(contract_size, bool) or not isinstance(contract_size, numbers.Real))
        ):
            raise TypeError(
                "contract_size must be a number, a mapping of symbol to number or None, "
                f"got {contract_size!r} ({type(contract_size).__name__})"
            )

        self.seed = seed
        #: 'oneway' or 'hedge' (see the class docstring).
        self.position_mode = position_mode
        self.hedge = position_mode == "hedge"
        self.volatility = volatility
        self.tick_seconds = tick_seconds
        self.min_amount = min_amount
        self.amount_step = amount_step
        self.max_amount = max_amount
        self.maintenance_margin = maintenance_margin
        self.event_rates: dict[str, float] = rates
        self.slippage = slippage
        self.spread = spread
        self.partial_fill_fraction = partial_fill_fraction
        self.wait_ticks = wait_ticks
        self.time: float = start_time
        #: The clock this venue drives: set to the simulated time now and on every tick.
        self.clock: ManualClock = ManualClock(start_clock) if clock is None else clock
        self.clock.set(start_clock)
        self.history: list[dict[str, Any]] = []
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.realized_pnl = 0.0

        self._lock = threading.RLock()
        self._order_rng = random.Random(f"{seed}/orders")
        self._event_rng = random.Random(f"{seed}/events")
        self._positions: dict[tuple[str, str], _Position] = {}  # (symbol, side) -> position
        self._orders: dict[str, _Order] = {}  # every order, for status look-ups
        self._open_orders: dict[str, _Order] = {}  # the resting ones, oldest first
        self._order_seq = 0
        self._failures: dict[str, deque[_Failure]] = {}
        self._empty_answers: deque[bool] = deque()  # one per armed empty answer: random?
        self._client_ids: dict[str, str] = {}  # client order id -> order id
        self._lost_answers: dict[str, deque[_LostAnswer]] = {}
        self._lagged_answers = 0
        self._lagged_list: list[dict[str, Any]] = []

        names = list(DEFAULT_SYMBOLS if symbols is None else symbols)
        for extra in prices or {}:
            if extra not in names:
                names.append(extra)
        if not names:
            raise ValueError("at least one symbol is needed")
        self._markets: dict[str, _Market] = {}
        for symbol in names:
            if not isinstance(symbol, str):
                raise TypeError(
                    f"symbols must be str symbols, got {symbol!r} ({type(symbol).__name__})"
                )
            if not symbol:
                raise ValueError(f"invalid symbol {symbol!r}")
            base_price, size, volume = _KNOWN_MARKETS.get(symbol, _UNKNOWN_MARKET)
            if prices is not None and symbol in prices:
                base_price = _number_arg(
                    f"prices[{symbol!r}]", prices[symbol], "> 0", lambda x: x > 0
                )
            if isinstance(contract_size, Mapping):
                if symbol in contract_size:
                    size = _number_arg(
                        f"contract_size[{symbol!r}]",
                        contract_size[symbol],
                        "> 0",
                        lambda x: x > 0,
                    )
            elif contract_size is not None:
                size = _number_arg("contract_size", contract_size, "> 0", lambda x: x > 0)
            if round(base_price, _price_decimals(base_price)) <= 0:
                raise ValueError(
                    f"prices[{symbol!r}] must be a price > 0 at its decimals, got {base_price!r}"
                )
            self._markets[symbol] = self._new_market(symbol, base_price, size, volume)
        self._build_history(history_candles)

    # ------------------------------------------------------------------ set-up helpers
    def _new_market(self, symbol: str, price: float, size: float, volume: float) -> _Market:
        decimals = _price_decimals(price)
        return _Market(
            symbol=symbol,
            price=round(price, decimals),
            contract_size=size,
            decimals=decimals,
            hourly_volume=volume,
            rng=random.Random(f"{self.seed}/price/{symbol}"),
        )

    def _ticks_per_hour(self) -> float:
        return _HOUR / self.tick_seconds

    def _build_history(self, count: int) -> None:
        hour_start = math.floor(self.time / _HOUR) * _HOUR
        substeps = max(1, min(12, round(self._ticks_per_hour())))
        sigma = self.volatility * math.sqrt(self._ticks_per_hour() / substeps)
        for m in self._markets.values():
            rng = random.Random(f"{self.seed}/history/{m.symbol}")
            raw: list[list[float]] = []
            p = 1.0
            for _ in range(count):
                o = h = low = p
                for _ in range(substeps):
                    p *= math.exp(rng.gauss(-0.5 * sigma * sigma, sigma))
                    h = max(h, p)
                    low = min(low, p)
                vol = m.hourly_volume * math.exp(rng.gauss(0.0, 0.4))
                raw.append([o, h, low, p, vol])
            if not (0.0 < p < math.inf):
                # The walk's drift (-sigma**2 / 2 per step) took it out of the floats over this
                # many candles: refused rather than divided by zero.
                raise ValueError(
                    f"volatility must be lower for tick_seconds={self.tick_seconds!r} and "
                    f"history_candles={count!r} (the simulated history's prices leave the range "
                    f"of a float), got {self.volatility!r}"
                )
            scale = m.price / p  # the last candle closes at the start price
            for i, (o, h, low, c, vol) in enumerate(raw):
                ts = int((hour_start - (count - i) * _HOUR) * 1000)
                m.candles.append(
                    [
                        ts,
                        round(o * scale, m.decimals),
                        round(h * scale, m.decimals),
                        round(low * scale, m.decimals),
                        round(c * scale, m.decimals),
                        round(vol, 3),
                    ]
                )
            m.forming = [int(hour_start * 1000), m.price, m.price, m.price, m.price, 0.0]

    # ------------------------------------------------------------------ small internals
    def _now_ms(self) -> int:
        return round(self.time * 1000)

    def _record(self, kind: str, symbol: str | None, **details: Any) -> dict[str, Any]:
        entry = {
            "seq": len(self.history) + 1,
            "time": self.time,
            "datetime": _iso(self.time),
            "symbol": symbol,
            "kind": kind,
            "details": details,
        }
        self.history.append(entry)
        return entry

    def _enter(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Records a client call and raises an injected failure if one is pending."""
        self.calls.append((method, args, kwargs))
        pending = self._failures.get(method)
        if pending:
            failure = pending.popleft()
            spec = failure.error
            if isinstance(spec, BaseException):
                error: BaseException = spec
            elif spec is None:
                error = PaperExchangeError(f"simulated {method} failure")
            else:
                error = spec(f"simulated {method} failure")
            extra = {"random": True} if failure.random else {}
            self._record("exception", None, method=method, error=repr(error), **extra)
            raise error

    def _round_amount(self, amount: float) -> float:
        steps = round(amount / self.amount_step)
        return round(steps * self.amount_step, 10)

    def _amount_problem(self, amount: Any) -> str | None:
        """Why ``amount`` is not a valid order size, or None when it is."""
        x = _as_float(amount)
        if x is None:
            return f"amount {amount!r} is not a number"
        if x < self.min_amount - _EPS:
            return f"amount {x} below the minimum {self.min_amount}"
        if x > self.max_amount + _EPS:
            return f"amount {x} above the maximum {self.max_amount}"
        steps = x / self.amount_step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
            return f"amount {x} is not a multiple of the step {self.amount_step}"
        return None

    def _next_order_id(self) -> str:
        self._order_seq += 1
        return f"paper-{self._order_seq}"

    @staticmethod
    def _client_id_problem(client_order_id: Any) -> str | None:
        """Why ``client_order_id`` is not an id the venue accepts, or None (None is accepted)."""
        if client_order_id is None:
            return None
        if (
            not isinstance(client_order_id, str)
            or not 1 <= len(client_order_id) <= _CLIENT_ID_MAX
            or not set(client_order_id) <= _CLIENT_ID_CHARS
        ):
            return (
                f"client order id {client_order_id!r} is not 1-{_CLIENT_ID_MAX} characters "
                "of A-Z a-z 0-9 . : / _ -"
            )
        return None

    def _check_duplicate(self, method: str, symbol: Any, client_order_id: Any) -> None:
        """Raises ``DuplicateClientOrderId`` (recorded as ``order_rejected``) for a used id."""
        if not isinstance(client_order_id, str):
            return
        used_by = self._client_ids.get(client_order_id)
        if used_by is None:
            return
        self._record(
            "order_rejected",
            symbol if isinstance(symbol, str) else None,
            reason=f"duplicate client order id {client_order_id!r} (order {used_by})",
            method=method,
            clientOrderId=client_order_id,
        )
        raise DuplicateClientOrderId(client_order_id, used_by)

    def _register(self, order: _Order, client_order_id: str | None) -> None:
        """Files a new order under its id and its client order id.

        Without one the venue makes one up, ``auto-<order id>``, or ``auto-<order id>.<k>`` with
        the smallest ``k`` >= 1 that is free when a client already took that id: a made-up id
        never collides with one in use (and the same calls always make up the same id).
        """
        if not client_order_id:
            client_order_id = f"auto-{order.id}"
            k = 0
            while client_order_id in self._client_ids:
                k += 1
                client_order_id = f"auto-{order.id}.{k}"
        order.client_order_id = client_order_id
        self._orders[order.id] = order
        self._client_ids[order.client_order_id] = order.id

    def _deliver(self, method: str, answer: Any) -> Any:
        """The answer of an acting call, unless ``lose_answer_next`` lost it (after acting)."""
        pending = self._lost_answers.get(method)
        if not pending:
            return answer
        lost = pending.popleft()
        if lost.answer_none:
            self._record("answer_lost", None, method=method, answer=repr(answer), raised=None)
            return None
        if isinstance(lost.error, BaseException):
            error: BaseException = lost.error
        else:
            cls = TimeoutError if lost.error is None else lost.error
            error = cls(f"simulated {method} timeout: the venue acted, the answer was lost")
        self._record("answer_lost", None, method=method, answer=repr(answer), raised=repr(error))
        raise error

    def _liquidation_price(self, pos: _Position) -> float:
        lev = pos.leverage if pos.leverage > 0 else 1.0
        if pos.side == "long":
            return pos.entry_price * (1.0 - 1.0 / lev + self.maintenance_margin)
        return pos.entry_price * (1.0 + 1.0 / lev - self.maintenance_margin)

    def _pnl(self, pos: _Position, price: float, contracts: float) -> float:
        size = self._markets[pos.symbol].contract_size
        sign = 1.0 if pos.side == "long" else -1.0
        return sign * (price - pos.entry_price) * contracts * size

    def _position_dict(self, pos: _Position) -> dict[str, Any]:
        m = self._markets[pos.symbol]
        mark = m.price
        notional = pos.contracts * m.contract_size * mark
        liq = self._liquidation_price(pos)
        upnl = self._pnl(pos, mark, pos.contracts)
        initial_margin = pos.contracts * m.contract_size * pos.entry_price / pos.leverage
        qty = pos.contracts if pos.side == "long" else -pos.contracts
        info: dict[str, Any] = {
            "realLeverage": float(pos.leverage),
            "currentQty": qty,
            "avgEntryPrice": pos.entry_price,
            "markPrice": mark,
            "liquidationPrice": liq,
            "crossMode": False,
            "openingTimestamp": pos.opened_ms,
        }
        if self.hedge:
            info["positionSide"] = pos.side.upper()
        return {
            "symbol": pos.symbol,
            "id": f"{pos.symbol}-{pos.side}-position" if self.hedge else f"{pos.symbol}-position",
            "side": pos.side,
            "hedged": self.hedge,
            "contracts": pos.contracts,
            "contractSize": m.contract_size,
            "entryPrice": pos.entry_price,
            "leverage": float(pos.leverage),
            "markPrice": mark,
            "liquidationPrice": liq,
            "unrealizedPnl": upnl,
            "notional": notional,
            "initialMargin": initial_margin,
            "maintenanceMargin": notional * self.maintenance_margin,
            "marginMode": "isolated",
            "percentage": (upnl / initial_margin * 100.0) if initial_margin else 0.0,
            "timestamp": pos.updated_ms,
            "datetime": _iso(pos.updated_ms / 1000.0),
            "info": info,
        }

    def _order_dict(self, order: _Order) -> dict[str, Any]:
        m = self._markets[order.symbol]
        average = order.notional / order.filled if order.filled > _EPS else None
        price = order.price if order.type == "limit" else average
        return {
            "id": order.id,
            "clientOrderId": order.client_order_id,
            "symbol": order.symbol,
            "type": order.type,
            "side": order.side,
            "amount": order.amount,
            "filled": order.filled,
            "remaining": round(order.amount - order.filled, 10),
            "average": average,
            "price": price,
            "cost": order.filled * m.contract_size * average if average is not None else 0.0,
            "status": order.status,
            "reduceOnly": order.reduce_only,
            "postOnly": order.post_only,
            "timestamp": order.timestamp,
            "datetime": _iso(order.timestamp / 1000.0),
            "info": {"leverage": order.leverage, "realizedPnl": order.realized_pnl}
            | ({"positionSide": order.leg.upper()} if order.leg else {}),
        }

    def _apply_fill(
        self,
        symbol: str,
        side: str,
        qty: float,
        price: float,
        leverage: float,
        leg: str | None = None,
    ) -> float:
        """Nets a fill against the symbol's position (hedge mode: against ``leg`` only, which
        it adds to or reduces and never flips); returns the realized P/L."""
        now = self._now_ms()
        direction = "long" if side == "buy" else "short"
        if self.hedge and leg is not None:
            return self._apply_leg_fill(symbol, direction, leg, qty, price, leverage, now)
        pos = self._position_of(symbol)
        realized = 0.0
        if pos is None:
            self._positions[(symbol, direction)] = _Position(
                symbol, direction, qty, price, leverage, now, now
            )
        elif pos.side == direction:
            total = round(pos.contracts + qty, 10)
            pos.entry_price = (pos.entry_price * pos.contracts + price * qty) / total
            pos.contracts = total
            pos.leverage = leverage
            pos.updated_ms = now
        else:
            closing = min(qty, pos.contracts)
            realized = self._pnl(pos, price, closing)
            rest = round(qty - closing, 10)
            pos.contracts = round(pos.contracts - closing, 10)
            pos.updated_ms = now
            if pos.contracts <= _EPS:
                self._drop_position(symbol, pos.side)
            if rest > _EPS:
                self._positions[(symbol, direction)] = _Position(
                    symbol, direction, rest, price, leverage, now, now
                )
        self.realized_pnl += realized
        return realized

    def _apply_leg_fill(
        self,
        symbol: str,
        direction: str,
        leg: str,
        qty: float,
        price: float,
        leverage: float,
        now: int,
    ) -> float:
        """Hedge mode: a fill adds to ``leg`` (same direction) or reduces it (callers cap it)."""
        pos = self._positions.get((symbol, leg))
        if leg == direction:
            if pos is None:
                self._positions[(symbol, leg)] = _Position(
                    symbol, leg, qty, price, leverage, now, now
                )
            else:
                total = round(pos.contracts + qty, 10)
                pos.entry_price = (pos.entry_price * pos.contracts + price * qty) / total
                pos.contracts = total
                pos.leverage = leverage
                pos.updated_ms = now
            return 0.0
        if pos is None:
            return 0.0
        closing = min(qty, pos.contracts)
        realized = self._pnl(pos, price, closing)
        pos.contracts = round(pos.contracts - closing, 10)
        pos.updated_ms = now
        if pos.contracts <= _EPS:
            self._drop_position(symbol, leg)
        self.realized_pnl += realized
        return realized

    def _position_of(self, symbol: str, side: str | None = None) -> _Position | None:
        """The position of ``symbol`` on ``side``; without ``side`` its one open position
        (``None`` when it has none, or two legs in hedge mode)."""
        if side is not None:
            return self._positions.get((symbol, side))
        legs = self._legs_of(symbol)
        return legs[0] if len(legs) == 1 else None

    def _legs_of(self, symbol: str) -> list[_Position]:
        """The open positions of ``symbol`` (hedge mode: up to two legs)."""
        return [p for (s, _side), p in self._positions.items() if s == symbol]

    def _held_names(self) -> list[str]:
        """What is held, for history entries: symbols (hedge mode: ``SYMBOL@side``)."""
        if self.hedge:
            return [f"{s}@{side}" for s, side in self._positions]
        return [s for s, _side in self._positions]

    def _drop_position(self, symbol: str, side: str) -> None:
        """Removes a position and cancels the reduce-only orders left without anything to reduce."""
        self._positions.pop((symbol, side), None)
        for order in list(self._open_orders.values()):
            if order.symbol == symbol and order.reduce_only and order.leg in (None, side):
                self._finish(order, "canceled")
                self._record("order_canceled", symbol, id=order.id, reason="position closed")

    def _finish(self, order: _Order, status: str) -> None:
        """Ends an order's life as 'closed' (filled) or 'canceled'."""
        order.status = status
        self._open_orders.pop(order.id, None)

    def _reduce_cap(self, symbol: str, side: str, leg: str | None = None) -> float | None:
        """The most a reduce-only order of ``side`` may fill (hedge mode: of ``leg``), or None
        if it reduces nothing."""
        if self.hedge and leg is None:
            return None
        pos = self._position_of(symbol, leg)
        if pos is None:
            return None
        if (pos.side == "long") != (side == "sell"):
            return None
        return pos.contracts

    def _reject(self, method: str, symbol: Any, reason: str) -> None:
        self._record(
            "order_rejected",
            symbol if isinstance(symbol, str) else None,
            reason=reason,
            method=method,
        )

    def _validate_order(
        self,
        method: str,
        symbol: Any,
        side: Any,
        amount: Any,
        leverage: Any,
        check_amount: bool = True,
    ) -> str | None:
        """Why an order is invalid, or None. ``check_amount=False`` (a ``close_position`` order,
        which closes the whole position whatever its size) skips the size rules."""
        if not isinstance(symbol, str) or symbol not in self._markets:
            return f"unknown symbol {symbol!r}"
        if side not in ("buy", "sell"):
            return f"side must be 'buy' or 'sell', got {side!r}"
        if check_amount:
            problem = self._amount_problem(amount)
            if problem:
                return problem
        lev = _as_float(leverage)
        if lev is None or not 1 <= lev <= 125:
            return f"leverage must be between 1 and 125, got {leverage!r}"
        if self.maintenance_margin >= 1.0 / lev:
            # The liquidation price would lie at or beyond the entry (on the winning side):
            # venues cap the leverage at what the maintenance margin leaves room for.
            return (
                f"leverage {lev} too high for the maintenance margin {self.maintenance_margin}: "
                f"leverage must stay below 1 / maintenance margin"
                f" = {1.0 / self.maintenance_margin:g}"
            )
        return None

    def _move_price(self, m: _Market) -> None:
        sigma = self.volatility
        step = m.rng.gauss(-0.5 * sigma * sigma, sigma)
        volume = m.hourly_volume / self._ticks_per_hour() * math.exp(m.rng.gauss(0.0, 0.5))
        new_price = round(m.price * math.exp(step), m.decimals)
        if new_price <= 0:
            new_price = 10.0 ** (-m.decimals)
        m.price = new_price
        self._update_candle(m, volume)

    def _update_candle(self, m: _Market, volume: float) -> None:
        hour_ms = int(math.floor(self.time / _HOUR) * _HOUR * 1000)
        while m.forming[0] < hour_ms:
            m.candles.append(m.forming)
            close = m.forming[4]
            m.forming = [int(m.forming[0]) + 3_600_000, close, close, close, close, 0.0]
        f = m.forming
        f[2] = max(f[2], m.price)
        f[3] = min(f[3], m.price)
        f[4] = m.price
        f[5] = round(f[5] + volume, 3)

    def _settle(self, m: _Market) -> None:
        """Fills crossed limit orders, then liquidates a position whose price was crossed."""
        for order in list(self._open_orders.values()):
            if order.symbol != m.symbol or order.status != "open" or order.price is None:
                continue
            crossed = m.price <= order.price if order.side == "buy" else m.price >= order.price
            if not crossed:
                continue
            remaining = round(order.amount - order.filled, 10)
            chunk = math.floor(order.amount * self.partial_fill_fraction / self.amount_step + 1e-9)
            qty = min(remaining, max(self.amount_step, chunk * self.amount_step))
            if order.reduce_only:
                cap = self._reduce_cap(order.symbol, order.side, order.leg)
                if cap is None:
                    self._finish(order, "canceled")
                    self._record(
                        "order_canceled", m.symbol, id=order.id, reason="nothing to reduce"
                    )
                    continue
                if qty >= cap - _EPS:
                    # This fill takes the whole position: the order is capped at what it could
                    # reduce (as one crossing when placed is) and ends 'closed' with it.
                    qty = cap
                    order.amount = round(order.filled + cap, 10)
            self._fill(order, qty, order.price)
        for pos in self._legs_of(m.symbol):
            liq = self._liquidation_price(pos)
            hit = m.price <= liq if pos.side == "long" else m.price >= liq
            if hit:
                pnl = self._pnl(pos, liq, pos.contracts)
                self.realized_pnl += pnl
                self._drop_position(m.symbol, pos.side)
                self._record(
                    "liquidation",
                    m.symbol,
                    side=pos.side,
                    contracts=pos.contracts,
                    entryPrice=pos.entry_price,
                    leverage=pos.leverage,
                    liquidationPrice=liq,
                    price=m.price,
                    realizedPnl=pnl,
                )

    def _fill(self, order: _Order, qty: float, price: float) -> None:
        qty = round(qty, 10)
        order.filled = round(order.filled + qty, 10)
        order.notional += qty * price
        if order.amount - order.filled <= _EPS:
            self._finish(order, "closed")  # before netting: not cancelled as reduce-only
        realized = self._apply_fill(order.symbol, order.side, qty, price, order.leverage, order.leg)
        order.realized_pnl += realized
        pos = self._position_of(order.symbol, order.leg)
        self._record(
            "fill",
            order.symbol,
            id=order.id,
            clientOrderId=order.client_order_id,
            type=order.type,
            side=order.side,
            contracts=qty,
            price=price,
            reduceOnly=order.reduce_only,
            realizedPnl=realized,
            position=None if pos is None else (pos.side, pos.contracts),
        )

    def _external_reduce(
        self, symbol: str, contracts: float, kind: str, side: str | None = None, **extra: Any
    ) -> bool:
        pos = self._position_of(symbol, side)
        if pos is None:
            return False
        qty = min(contracts, pos.contracts)
        price = self._markets[symbol].price
        pnl = self._pnl(pos, price, qty)
        self.realized_pnl += pnl
        side, before, entry = pos.side, pos.contracts, pos.entry_price
        pos.contracts = round(pos.contracts - qty, 10)
        pos.updated_ms = self._now_ms()
        if pos.contracts <= _EPS:
            self._drop_position(symbol, side)
        self._record(
            kind,
            symbol,
            side=side,
            contracts=qty,
            remaining=max(0.0, round(before - qty, 10)),
            entryPrice=entry,
            price=price,
            realizedPnl=pnl,
            **extra,
        )
        return True

    def _arm_failure(
        self, method: str, times: int, error: ErrorSpec, is_random: bool = False
    ) -> None:
        if method not in CLIENT_METHODS:
            raise ValueError(f"unknown client method {method!r}; known: {CLIENT_METHODS}")
        times = _int_arg("times", times)
        _check_error_spec(error)
        queue = self._failures.setdefault(method, deque())
        queue.extend([_Failure(error, is_random)] * times)

    def _random_events(self) -> None:
        rng = self._event_rng
        for kind in RANDOM_EVENT_KINDS:
            rate = self.event_rates.get(kind, 0.0)
            if rng.random() >= rate:
                continue
            if kind == "manual_close":
                held = list(self._positions.values())
                if held:
                    pos = rng.choice(held)
                    self._external_reduce(
                        pos.symbol, pos.contracts, "manual_close", pos.side, random=True
                    )
            elif kind == "partial_reduction":
                candidates = [
                    p
                    for p in self._positions.values()
                    if p.contracts >= 2 * self.amount_step - _EPS
                ]
                if candidates:
                    pos = rng.choice(candidates)
                    steps = round(pos.contracts / self.amount_step)
                    qty = self._round_amount(rng.randint(1, steps - 1) * self.amount_step)
                    self._external_reduce(
                        pos.symbol, qty, "partial_reduction", pos.side, random=True
                    )
            elif kind == "transient_empty":
                self._empty_answers.append(True)
            else:  # exception: armed unless a random one of that method is still pending
                method = rng.choice(_RANDOM_FAILURE_METHODS)
                if not any(f.random for f in self._failures.get(method, ())):
                    self._arm_failure(method, 1, None, is_random=True)

    # ------------------------------------------------------------------ simulated time
    @property
    def symbols(self) -> tuple[str, ...]:
        """The listed symbols, in listing order."""
        return tuple(self._markets)

    @property
    def datetime(self) -> _dt.datetime:
        """The simulated time as an aware UTC ``datetime``."""
        return _dt.datetime.fromtimestamp(self.time, tz=_dt.timezone.utc)

    def step(self) -> list[dict[str, Any]]:
        """Advances the market by one tick (``tick_seconds``) and returns what the venue did.

        In order: simulated time moves on; every price takes one seeded log-normal step (the
        current hour's candle is updated and, at an hour boundary, closed); open limit orders
        whose price was crossed fill (see ``partial_fill_fraction``); positions whose
        liquidation price was crossed are liquidated; random events are drawn from
        ``event_rates``.

        Returns the ``history`` entries added by this tick. A history entry is a dict
        ``{'seq', 'time', 'datetime', 'symbol', 'kind', 'details'}``; kinds: ``fill``,
        ``order_open``, ``order_canceled``, ``order_rejected`` (answers to the client's orders)
        and the external ones in :data:`EXTERNAL_EVENT_KINDS`: ``manual_close``,
        ``partial_reduction``, ``liquidation``, ``price_jump``, ``transient_empty`` (an empty
        position list was answered), ``exception`` (an injected failure was raised),
        ``answer_lost`` (an order call acted but its answer was lost), ``stale_positions`` (a
        lagging position list was answered).
        """
        with self._lock:
            start = len(self.history)
            self.time += self.tick_seconds
            self.clock.set(_naive_utc(self.time))
            for m in self._markets.values():
                self._move_price(m)
            for m in self._markets.values():
                self._settle(m)
            self._random_events()
            return self.history[start:]

    def advance(self, n: int = 1) -> list[dict[str, Any]]:
        """Runs :meth:`step` ``n`` times; returns all the history entries they added.

        ``n`` must be an int >= 0 (``TypeError`` / ``ValueError`` otherwise).
        """
        n = _int_arg("n", n)
        out: list[dict[str, Any]] = []
        for _ in range(n):
            out.extend(self.step())
        return out

    # ------------------------------------------------------------------ scripted events
    def set_price(self, symbol: str, price: float) -> list[dict[str, Any]]:
        """Moves ``symbol``'s price to ``price`` at once (a jump, without advancing time).

        The jump is recorded as ``price_jump`` and settled immediately: crossed limit orders
        fill and a position whose liquidation price lies beyond the new price is liquidated
        (so pick a price between a stop and the liquidation price to test a stop, beyond the
        liquidation price to test a liquidation). Returns the history entries added.
        Raises ``ValueError`` for an unknown symbol or a price that is not > 0 at the market's
        decimals (one that rounds to 0), ``TypeError`` for a price that is not a number.
        """
        with self._lock:
            m = self._market(symbol)
            p = _number_arg("price", price, "> 0", lambda x: x > 0)
            if round(p, m.decimals) <= 0:
                raise ValueError(
                    f"price must be > 0 at {symbol}'s {m.decimals} decimals, got {price!r} "
                    f"(rounds to 0)"
                )
            start = len(self.history)
            old = m.price
            m.price = round(p, m.decimals)
            self._update_candle(m, 0.0)
            self._record("price_jump", symbol, old=old, new=m.price)
            self._settle(m)
            return self.history[start:]

    def close_externally(self, symbol: str, side: str | None = None) -> bool:
        """Closes ``symbol``'s whole position at the current price outside the bot.

        As if closed by hand on the exchange's web UI. Recorded as ``manual_close`` (with the
        realized P/L). ``side`` ('long'/'short') names the leg; it is needed in hedge mode when
        both legs are open (``ValueError`` otherwise). Returns False when there is no position
        (on that side); raises ``ValueError`` for an unknown symbol.
        """
        with self._lock:
            self._market(symbol)
            pos = self._scripted_leg(symbol, side)
            if pos is None:
                return False
            return self._external_reduce(symbol, pos.contracts, "manual_close", pos.side)

    def _scripted_leg(self, symbol: str, side: str | None) -> _Position | None:
        """The position a scripted event acts on: ``side``'s, or the symbol's only one."""
        if side not in (None, "long", "short"):
            raise ValueError(f"side must be None, 'long' or 'short', got {side!r}")
        if side is None and len(self._legs_of(symbol)) > 1:
            raise ValueError(f"{symbol} holds a long and a short leg: name the side")
        return self._position_of(symbol, side)

    def reduce_externally(self, symbol: str, contracts: float, side: str | None = None) -> bool:
        """Reduces ``symbol``'s position by ``contracts`` outside the bot (auto-deleveraging).

        ``contracts`` must be > 0 and a multiple of ``amount_step`` (``ValueError`` otherwise);
        it is capped at the position size (reducing everything closes the position). Recorded
        as ``partial_reduction`` with the remaining size. ``side`` names the leg as in
        :meth:`close_externally`. Returns False when there is no position (on that side);
        raises ``ValueError`` for an unknown symbol.
        """
        with self._lock:
            self._market(symbol)
            pos = self._scripted_leg(symbol, side)
            x = _as_float(contracts)
            if x is None or x <= 0:
                raise ValueError(f"contracts must be a number > 0, got {contracts!r}")
            steps = x / self.amount_step
            if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
                raise ValueError(f"contracts {x} is not a multiple of the step {self.amount_step}")
            if pos is None:
                return False
            return self._external_reduce(
                symbol, self._round_amount(x), "partial_reduction", pos.side
            )

    def fail_next(self, method_name: str, times: int = 1, error: ErrorSpec = None) -> None:
        """Makes the next ``times`` calls of client method ``method_name`` raise.

        ``error`` is an exception instance (raised as is), an exception class (instantiated
        with a message) or None for a :class:`PaperExchangeError` (``TypeError`` otherwise,
        when armed). Each raise is recorded as ``exception``. ``method_name`` must be one of
        :data:`CLIENT_METHODS` (``ValueError`` otherwise) and ``times`` an int >= 0. Failures
        queue up: calling this twice arms both.
        """
        with self._lock:
            self._arm_failure(method_name, times, error)

    def answer_empty_next(self, times: int = 1) -> None:
        """Makes the next ``times`` ``get_open_positions()`` calls answer ``[]``.

        The positions stay open on the venue: this is the transient empty list real venues
        give under load. Each empty answer is recorded as ``transient_empty``. An armed
        ``fail_next('get_open_positions')`` takes precedence over it. ``times`` must be an
        int >= 0.
        """
        times = _int_arg("times", times)
        with self._lock:
            self._empty_answers.extend([False] * times)

    def lose_answer_next(
        self,
        method_name: str,
        times: int = 1,
        error: ErrorSpec = None,
        *,
        answer_none: bool = False,
    ) -> None:
        """Makes the next ``times`` calls of ``method_name`` act on the venue, then lose the answer.

        The order is placed and filled (the close executed, the cancel done) exactly as without
        this; then the call raises ``error`` (an instance, a class, or by default a
        ``TimeoutError``: the request timed out after the venue took it) — or, with
        ``answer_none=True``, returns None (a client that turns every failure into None). Each
        lost answer is recorded as ``answer_lost`` with the answer the venue gave. Only the
        acting methods of :data:`ANSWER_LOSS_METHODS` (``ValueError`` otherwise); ``times`` must
        be an int >= 0 and ``error`` None, an exception instance or an exception class
        (``TypeError`` otherwise). A failure armed with :meth:`fail_next` raises first (before
        acting) and leaves this armed.
        """
        if method_name not in ANSWER_LOSS_METHODS:
            raise ValueError(
                f"{method_name!r} cannot lose an answer; acting methods: {ANSWER_LOSS_METHODS}"
            )
        times = _int_arg("times", times)
        _check_error_spec(error)
        with self._lock:
            queue = self._lost_answers.setdefault(method_name, deque())
            queue.extend([_LostAnswer(error, bool(answer_none))] * times)

    def lag_positions_next(self, times: int = 1) -> None:
        """Makes the next ``times`` ``get_open_positions()`` answers show the list as it is now.

        Whatever the venue does meanwhile (an order fills, a position closes), those answers
        repeat the positions of this moment: the lagging position list of a busy venue. Each
        lagged answer is recorded as ``stale_positions``. ``fail_next`` and
        :meth:`answer_empty_next` take precedence over it. Calling it again re-takes the picture.
        ``times`` must be an int >= 0.
        """
        times = _int_arg("times", times)
        with self._lock:
            self._lagged_list = [self._position_dict(p) for p in self._positions.values()]
            self._lagged_answers += times

    # ------------------------------------------------------------------ inspection helpers
    def _market(self, symbol: str) -> _Market:
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str, got {symbol!r} ({type(symbol).__name__})")
        m = self._markets.get(symbol)
        if m is None:
            raise ValueError(f"unknown symbol {symbol!r}")
        return m

    def price(self, symbol: str) -> float:
        """The current (last = mark) price of ``symbol`` (``ValueError`` if unknown)."""
        with self._lock:
            return self._market(symbol).price

    def contract_size(self, symbol: str) -> float:
        """The contract size of ``symbol`` (``ValueError`` if unknown)."""
        with self._lock:
            return self._market(symbol).contract_size

    def position(self, symbol: str, side: str | None = None) -> dict[str, Any] | None:
        """``symbol``'s position as ``get_open_positions`` lists it, or None.

        An inspection helper: not recorded in ``calls``, never answers empty. ``side``
        ('long'/'short') names the leg; in hedge mode with both legs open it is needed
        (``ValueError`` otherwise).
        """
        with self._lock:
            pos = self._scripted_leg(symbol, side)
            return None if pos is None else self._position_dict(pos)

    def positions(self) -> list[dict[str, Any]]:
        """All open positions (like ``get_open_positions``, without faults or call records)."""
        with self._lock:
            return [self._position_dict(p) for p in self._positions.values()]

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """The open limit orders (of ``symbol`` when given), oldest first."""
        with self._lock:
            return [
                self._order_dict(o)
                for o in self._open_orders.values()
                if symbol is None or o.symbol == symbol
            ]

    def calls_of(self, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """The recorded ``(args, kwargs)`` of every call of client method ``method``."""
        with self._lock:
            return [(a, k) for name, a, k in self.calls if name == method]

    def events(self, kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The ``history`` entries, only those of ``kinds`` (a collection of kinds, e.g.
        ``['fill']``; a single str raises ``TypeError``) when given."""
        if isinstance(kinds, (str, bytes)):
            raise TypeError(
                f"kinds must be a collection of history kinds (e.g. [{kinds!r}]), got {kinds!r}"
            )
        with self._lock:
            if kinds is None:
                return list(self.history)
            wanted = set(kinds)
            return [e for e in self.history if e["kind"] in wanted]

    # ------------------------------------------------------------------ client methods
    def get_open_positions(self) -> list[dict[str, Any]]:
        """The open positions as ccxt unified position dicts (one per symbol; in hedge mode one
        per open leg, up to two per symbol).

        Keys: ``symbol``, ``side`` ('long'/'short'), ``hedged`` (the account is in hedge mode),
        ``contracts`` (> 0, lots), ``contractSize``,
        ``entryPrice``, ``leverage`` (float), ``markPrice``, ``liquidationPrice``,
        ``unrealizedPnl``, ``notional``, ``initialMargin``, ``maintenanceMargin``,
        ``marginMode``, ``percentage``, ``timestamp``, ``datetime``, ``info`` (``realLeverage``,
        ``currentQty`` signed, ``avgEntryPrice``, ...). Answers ``[]`` after
        :meth:`answer_empty_next`, an older list after :meth:`lag_positions_next`; raises after
        :meth:`fail_next`.
        """
        with self._lock:
            self._enter("get_open_positions", (), {})
            if self._empty_answers:
                extra = {"random": True} if self._empty_answers.popleft() else {}
                self._record("transient_empty", None, hidden=self._held_names(), **extra)
                return []
            if self._lagged_answers > 0:
                self._lagged_answers -= 1
                shown = [
                    f"{p['symbol']}@{p['side']}" if self.hedge else p["symbol"]
                    for p in self._lagged_list
                ]
                self._record("stale_positions", None, shown=shown, held=self._held_names())
                return [dict(p, info=dict(p["info"])) for p in self._lagged_list]
            return [self._position_dict(p) for p in self._positions.values()]

    def _ticker(self, symbol: Any) -> dict[str, Any] | None:
        m = self._markets.get(symbol) if isinstance(symbol, str) else None
        if m is None:
            return None
        half = m.price * self.spread / 2.0
        return {
            "symbol": symbol,
            "last": m.price,
            "bid": round(m.price - half, m.decimals + 2),
            "ask": round(m.price + half, m.decimals + 2),
            "timestamp": self._now_ms(),
            "datetime": _iso(self.time),
        }

    def get_ticker(self, symbol: str) -> dict[str, Any] | None:
        """``{'symbol', 'last', 'bid', 'ask', 'timestamp', 'datetime'}``; None if unknown."""
        with self._lock:
            self._enter("get_ticker", (symbol,), {})
            return self._ticker(symbol)

    def get_tickers(self, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The tickers of ``symbols`` in one call, ``{symbol: ticker}`` (each as
        :meth:`get_ticker` answers it, all at the same instant); unknown symbols are left out.

        Recorded in ``calls`` as ``('get_tickers', (symbols_as_a_list,), {})``; raises after
        :meth:`fail_next` ``('get_tickers')``. The manager asks it once per update cycle for
        every price (and ``get_ticker`` only for symbols it leaves out).
        """
        with self._lock:
            asked = list(symbols)
            self._enter("get_tickers", (asked,), {})
            answer = {}
            for symbol in asked:
                ticker = self._ticker(symbol)
                if ticker is not None:
                    answer[symbol] = ticker
            return answer

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[list[float]]:
        """The last ``limit`` hourly candles ``[ts_ms, open, high, low, close, volume]``.

        Oldest first; the last one is the current hour's forming candle (as exchanges answer).
        Only ``timeframe='1h'`` is supported (``ValueError`` otherwise). ``[]`` for an unknown
        symbol or a ``limit`` <= 0.
        """
        with self._lock:
            self._enter("get_ohlcv", (symbol,), {"timeframe": timeframe, "limit": limit})
            if timeframe != "1h":
                raise ValueError(f"PaperExchange only has '1h' candles, got {timeframe!r}")
            m = self._markets.get(symbol) if isinstance(symbol, str) else None
            if m is None or limit <= 0:
                return []
            closed = m.candles[-(limit - 1) :] if limit > 1 else []
            return [list(c) for c in closed] + [list(m.forming)]

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: float = 10,
        reduce_only: bool = False,
        is_critical: bool = False,
        client_order_id: str | None = None,
        position_side: str | None = None,
    ) -> dict[str, Any] | None:
        """Fills ``amount`` contracts at once at the current price; returns the order dict.

        The order dict: ``{'id', 'clientOrderId', 'symbol', 'type': 'market', 'side', 'amount',
        'filled', 'remaining', 'average', 'price', 'cost', 'status': 'closed', 'reduceOnly',
        'timestamp', ...}``. Fills at the last price, moved against the taker by a seeded draw
        of up to ``slippage``. A plain order nets against the position: same side adds (weighted
        average entry, leverage set to ``leverage``), opposite side reduces, closes or flips. A
        reduce-only order must be opposite to the position and is capped at its size (it never
        flips; ``amount``/``filled`` report the capped size).

        Returns None (recorded as ``order_rejected`` with the reason) for an unknown symbol, a
        side other than 'buy'/'sell', an amount below ``min_amount``, above ``max_amount`` or
        not a multiple of ``amount_step``, a leverage outside 1..125 or not below
        ``1 / maintenance_margin`` (the liquidation price would not be on the losing side of the
        entry: venues cap the leverage by their maintenance margin), or a reduce-only order
        with no position to reduce or on the wrong side. ``is_critical`` is accepted and
        ignored.

        ``client_order_id`` (see :meth:`get_order_by_client_id`) names the order; without it the
        venue makes one up (``clientOrderId`` is always in the answer). An id the venue has seen
        before raises :class:`DuplicateClientOrderId` and places nothing; an id that is not 1-36
        characters of ``A-Z a-z 0-9 . : / _ -`` is rejected (None).

        ``position_side`` ('long'/'short') names the leg the order opens (a buy opens 'long') or,
        reduce-only, reduces (a sell reduces 'long'); one that does not fit ``side`` raises
        ``ValueError`` and places nothing. In hedge mode a plain order opens or adds to the leg
        of its side (it never reduces the other one) and a reduce-only order without
        ``position_side`` is rejected (None): it must name the leg it reduces.
        """
        _check_position_side(side, reduce_only, position_side)
        with self._lock:
            kwargs: dict[str, Any] = {"reduce_only": reduce_only, "is_critical": is_critical}
            if client_order_id is not None:
                kwargs["client_order_id"] = client_order_id
            if position_side is not None:
                kwargs["position_side"] = position_side
            self._enter("create_market_order", (symbol, side, amount, leverage), kwargs)
            answer = self._market_order(
                symbol, side, amount, leverage, reduce_only, client_order_id, position_side
            )
            return self._deliver("create_market_order", answer)

    def _market_order(
        self,
        symbol: Any,
        side: Any,
        amount: Any,
        leverage: Any,
        reduce_only: bool,
        client_order_id: Any = None,
        position_side: str | None = None,
        whole_position: bool = False,
    ) -> dict[str, Any] | None:
        """Places and fills a market order. ``whole_position=True`` (``close_position``'s
        reduce-only order) fills exactly the position's contracts whatever the size rules say:
        a position bigger than ``max_amount`` (several orders) or smaller than ``min_amount``
        (left by a reduction) is closed all the same."""
        self._check_duplicate("create_market_order", symbol, client_order_id)
        problem = self._validate_order(
            "create_market_order", symbol, side, amount, leverage, not whole_position
        )
        if problem is None:
            problem = self._client_id_problem(client_order_id)
        leg = self._order_leg(side, reduce_only, position_side)
        if problem is None and self.hedge and leg is None:
            problem = "hedge mode: a reduce-only order must name its leg (position_side)"
        if problem is None and reduce_only and self._reduce_cap(symbol, side, leg) is None:
            problem = "reduce-only order with no position to reduce on that side"
        if problem is not None:
            self._reject("create_market_order", symbol, problem)
            return None
        qty = self._round_amount(float(amount))
        if reduce_only:
            cap = self._reduce_cap(symbol, side, leg)
            assert cap is not None
            qty = cap if whole_position else min(qty, cap)
        m = self._markets[symbol]
        price = m.price
        if self.slippage > 0:
            slip = self._order_rng.random() * self.slippage
            price = round(price * (1 + slip if side == "buy" else 1 - slip), m.decimals + 2)
        order = _Order(
            id=self._next_order_id(),
            symbol=symbol,
            type="market",
            side=side,
            amount=qty,
            price=None,
            leverage=float(leverage),
            reduce_only=bool(reduce_only),
            post_only=False,
            timestamp=self._now_ms(),
            leg=leg,
        )
        self._register(order, client_order_id)
        self._fill(order, qty, price)
        return self._order_dict(order)

    def _order_leg(self, side: Any, reduce_only: bool, position_side: str | None) -> str | None:
        """The leg an order acts on in hedge mode (``None``: one-way, or a reduce-only order
        that names no leg); ``position_side`` was checked against ``side`` already."""
        if not self.hedge or side not in ("buy", "sell"):
            return None
        if position_side is not None:
            return position_side
        if reduce_only:
            return None
        return "long" if side == "buy" else "short"

    def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        leverage: float = 10,
        post_only: bool = False,
        reduce_only: bool = False,
        is_critical: bool = False,
        client_order_id: str | None = None,
        position_side: str | None = None,
    ) -> dict[str, Any] | None:
        """Places a limit order; returns the order dict (``status 'open'``, ``filled 0``).

        The order rests until a tick's price crosses it (a buy fills when the price is at or
        below ``price``, a sell at or above), then fills at ``price`` — in one go, or in parts
        of ``partial_fill_fraction`` of the amount per crossing tick. A non-post-only order that
        crosses when placed fills at once at the current price (``status 'closed'``); a
        post-only one that would cross is rejected (None). Reduce-only orders follow the
        market-order rules (and are cancelled when their position goes away). Other rejections
        as :meth:`create_market_order`, plus a price that is not a number > 0.
        ``client_order_id`` and ``position_side`` as in :meth:`create_market_order`.
        """
        _check_position_side(side, reduce_only, position_side)
        with self._lock:
            kwargs: dict[str, Any] = {
                "post_only": post_only,
                "reduce_only": reduce_only,
                "is_critical": is_critical,
            }
            if client_order_id is not None:
                kwargs["client_order_id"] = client_order_id
            if position_side is not None:
                kwargs["position_side"] = position_side
            self._enter("create_limit_order", (symbol, side, amount, price, leverage), kwargs)
            answer = self._limit_order(
                symbol,
                side,
                amount,
                price,
                leverage,
                post_only,
                reduce_only,
                client_order_id,
                position_side,
            )
            return self._deliver("create_limit_order", answer)

    def _limit_order(
        self,
        symbol: Any,
        side: Any,
        amount: Any,
        price: Any,
        leverage: Any,
        post_only: bool,
        reduce_only: bool,
        client_order_id: Any,
        position_side: str | None = None,
    ) -> dict[str, Any] | None:
        with self._lock:  # re-entrant: the caller holds it too
            self._check_duplicate("create_limit_order", symbol, client_order_id)
            problem = self._validate_order("create_limit_order", symbol, side, amount, leverage)
            if problem is None:
                problem = self._client_id_problem(client_order_id)
            leg = self._order_leg(side, reduce_only, position_side)
            if problem is None and self.hedge and leg is None:
                problem = "hedge mode: a reduce-only order must name its leg (position_side)"
            limit = _as_float(price)
            if problem is None and (limit is None or limit <= 0):
                problem = f"price must be a number > 0, got {price!r}"
            if problem is None and reduce_only and self._reduce_cap(symbol, side, leg) is None:
                problem = "reduce-only order with no position to reduce on that side"
            if problem is None:
                assert limit is not None
                last = self._markets[symbol].price
                crosses = last <= limit if side == "buy" else last >= limit
                if crosses and post_only:
                    problem = f"post-only order at {limit} would cross the price {last}"
            if problem is not None:
                self._reject("create_limit_order", symbol, problem)
                return None
            assert limit is not None
            m = self._markets[symbol]
            order = _Order(
                id=self._next_order_id(),
                symbol=symbol,
                type="limit",
                side=side,
                amount=self._round_amount(float(amount)),
                price=limit,
                leverage=float(leverage),
                reduce_only=bool(reduce_only),
                post_only=bool(post_only),
                timestamp=self._now_ms(),
                leg=leg,
            )
            self._register(order, client_order_id)
            if crosses:
                qty = order.amount
                if reduce_only:
                    cap = self._reduce_cap(symbol, side, leg)
                    assert cap is not None
                    qty = min(qty, cap)
                    order.amount = qty
                self._fill(order, qty, m.price)
            else:
                self._open_orders[order.id] = order
                self._record(
                    "order_open",
                    symbol,
                    id=order.id,
                    clientOrderId=order.client_order_id,
                    side=side,
                    amount=order.amount,
                    price=limit,
                )
            return self._order_dict(order)

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: float = 30, check_interval: float = 2
    ) -> dict[str, Any] | None:
        """The order's status ``{'id', 'status', 'filled', 'remaining', 'amount', 'price',
        'average', 'cost', 'timestamp'}``; None for an unknown id (or another symbol's id).

        Never sleeps: ``timeout`` and ``check_interval`` are accepted and ignored. With the
        default ``wait_ticks=0`` it answers the current status at once and simulated time does
        not move; with ``wait_ticks=n`` it first runs up to ``n`` :meth:`step` calls while the
        order is still open (so the market, liquidations and random events move on too).
        """
        with self._lock:
            self._enter(
                "wait_for_order_fill",
                (order_id, symbol),
                {"timeout": timeout, "check_interval": check_interval},
            )
            order = self._orders.get(order_id) if isinstance(order_id, str) else None
            if order is None or order.symbol != symbol:
                return None
            for _ in range(self.wait_ticks):
                if order.status != "open":
                    break
                self.step()
            d = self._order_dict(order)
            return {k: d[k] for k in _STATUS_KEYS}

    def cancel_order(self, order_id: str, symbol: str) -> bool:
        """Cancels an open (possibly partly filled) order: True; False when unknown, of another
        symbol, already filled or already cancelled. Recorded as ``order_canceled``."""
        with self._lock:
            self._enter("cancel_order", (order_id, symbol), {})
            order = self._orders.get(order_id) if isinstance(order_id, str) else None
            if order is None or order.symbol != symbol or order.status != "open":
                return self._deliver("cancel_order", False)
            self._finish(order, "canceled")
            self._record("order_canceled", symbol, id=order_id, reason="cancel_order")
            return self._deliver("cancel_order", True)

    def close_position(
        self, symbol: str, client_order_id: str | None = None, side: str | None = None
    ) -> bool:
        """Closes ``symbol``'s whole position with a reduce-only market order.

        The order is for exactly the position's contracts, whatever its size: the order size
        rules (``min_amount``, ``max_amount``, ``amount_step``) do not apply to it, so a position
        built from several orders above ``max_amount`` or a rest below ``min_amount`` left by a
        reduction closes all the same.

        True when it was closed; **False when there is no position** (or the order was
        rejected): it never reports a close that did not happen. Failures injected into
        ``create_market_order`` do not apply here (only ``fail_next('close_position')``).
        ``client_order_id`` names the reduce-only order (as in :meth:`create_market_order`; an
        id seen before raises :class:`DuplicateClientOrderId`, even when there is no position).
        ``side`` ('long'/'short') closes that leg only (False when it is not open); without it
        the symbol's one open position is closed, and with both legs open (hedge mode) nothing
        is sent (False): name the leg. ``ValueError`` for any other ``side``.
        """
        if side not in (None, "long", "short"):
            raise ValueError(f"side must be None, 'long' or 'short', got {side!r}")
        with self._lock:
            kwargs: dict[str, Any] = {}
            if client_order_id is not None:
                kwargs["client_order_id"] = client_order_id
            if side is not None:
                kwargs["side"] = side
            self._enter("close_position", (symbol,), kwargs)
            self._check_duplicate("close_position", symbol, client_order_id)
            legs = self._legs_of(symbol) if isinstance(symbol, str) else []
            legs = [p for p in legs if side is None or p.side == side]
            if len(legs) != 1:
                return self._deliver("close_position", False)
            pos = legs[0]
            order_side = "sell" if pos.side == "long" else "buy"
            order = self._market_order(
                symbol,
                order_side,
                pos.contracts,
                pos.leverage,
                True,
                client_order_id,
                pos.side if self.hedge else None,
                whole_position=True,
            )
            closed = order is not None and (symbol, pos.side) not in self._positions
            return self._deliver("close_position", closed)

    def get_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any] | None:
        """The order placed with ``client_order_id`` on ``symbol``, or None if there is none.

        The answer is the order dict of :meth:`create_market_order` (``id``, ``clientOrderId``,
        ``symbol``, ``side``, ``amount``, ``filled``, ``average``, ``status`` 'open', 'closed' or
        'canceled', ``reduceOnly``, ...) as it stands now. None is definitive: no order with
        that id was ever placed on that symbol (a rejected order places nothing). Raises after
        ``fail_next('get_order_by_client_id')`` (the caller cannot tell).
        """
        with self._lock:
            self._enter("get_order_by_client_id", (client_order_id, symbol), {})
            order_id = (
                self._client_ids.get(client_order_id) if isinstance(client_order_id, str) else None
            )
            order = self._orders.get(order_id) if order_id is not None else None
            if order is None or order.symbol != symbol:
                return None
            return self._order_dict(order)

    def get_market_limits(self, symbol: str) -> dict[str, Any] | None:
        """``{'amount': {'min', 'max', 'step'}, 'cost': {'min', 'max'}}``; None if unknown.

        Amounts are contracts. Cost limits are None (no limit), as ccxt often reports them.
        """
        with self._lock:
            self._enter("get_market_limits", (symbol,), {})
            if not isinstance(symbol, str) or symbol not in self._markets:
                return None
            return {
                "amount": {
                    "min": self.min_amount,
                    "max": self.max_amount,
                    "step": self.amount_step,
                },
                "cost": {"min": None, "max": None},
            }


_STATUS_KEYS = (
    "id",
    "status",
    "filled",
    "remaining",
    "amount",
    "price",
    "average",
    "cost",
    "timestamp",
)
