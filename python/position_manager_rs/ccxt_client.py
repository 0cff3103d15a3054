"""``CcxtClient``: the exchange client ``PositionManager`` needs, on top of any ccxt exchange.

Wrap a configured ccxt (synchronous) exchange object and hand the wrapper to the manager::

    import ccxt
    from position_manager_rs import PositionManager
    from position_manager_rs.ccxt_client import CcxtClient

    exchange = ccxt.binanceusdm({"apiKey": "...", "secret": "..."})
    manager = PositionManager(CcxtClient(exchange))

The adapter is pure duck typing: this module never imports ccxt (the package works without it);
anything with ccxt's unified method names works (``fetch_positions``, ``fetch_ticker``,
``fetch_ohlcv``, ``create_order``, ``fetch_order``, ``cancel_order``, ``set_leverage``,
``load_markets``, plus the ``has`` and ``precisionMode`` attributes).

Failure semantics (the point of this adapter):

* Reads raise on failure (``get_open_positions``, ``get_ticker``, ``get_ohlcv``,
  ``get_market_limits``): an exception means "unknown". In particular ``get_open_positions`` never
  answers ``[]`` for an error, since an empty list tells the manager every position is gone.
* Orders: a *definitive rejection* by the exchange (a ccxt ``InvalidOrder``,
  ``InsufficientFunds`` or ``BadRequest``, including their subclasses such as ``OrderNotFound``,
  ``BadSymbol`` or ``OrderImmediatelyFillable``) returns ``None``: nothing was placed. Any other
  failure (network error, timeout, rate limit, 5xx, an unclassified exchange error) is an
  *unknown outcome* and is raised: the order may exist, so the caller must re-check the exchange
  rather than assume nothing happened.
* ``close_position`` returns ``True`` only when a reduce-only order was accepted, ``False`` when
  there is no open position to close or the close order was definitively rejected, and raises
  when the outcome is unknown. It never reports a close that did not happen.

Client order ids (``client_order_ids = True``): the order methods take ``client_order_id=ID``
and send it as ccxt's unified ``params={'clientOrderId': ID}``; ``get_order_by_client_id(ID,
symbol)`` looks the order up (``fetch_order(None, symbol, {'clientOrderId': ID})``): the order
dict, ``None`` when the exchange has no such order (``OrderNotFound``), and it raises when it
cannot tell. An id is sent at most once by one adapter instance (a second order with it raises
``DuplicateClientOrderId`` without a request, since some venues — Binance — only refuse an id
that is still *open*); a venue's own duplicate refusal raises too. Right after an order with an
unknown outcome the venue may not know the id yet, so for ids this instance sent less than
``not_found_grace`` seconds ago "not found" raises instead of answering ``None``.

One-way position mode is assumed (one position per symbol); in hedge mode ``close_position``
closes the first open entry the exchange lists for the symbol. The adapter adds no locking or
retries of its own: use ccxt's options for those (``enableRateLimit``, ``timeout``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable

from .protocols import DuplicateClientOrderId

__all__ = [
    "DEFINITIVE_REJECTIONS",
    "TERMINAL_ORDER_STATUSES",
    "CcxtClient",
    "is_definitive_rejection",
    "is_duplicate_client_order_id",
]

#: Names of the ccxt exception classes (or their ancestors) that mean "the exchange refused the
#: request and nothing was done": an order call failing with one of them returns ``None``.
DEFINITIVE_REJECTIONS: frozenset[str] = frozenset(
    {"InvalidOrder", "InsufficientFunds", "BadRequest"}
)

#: ccxt order statuses after which an order never fills any further.
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"closed", "canceled", "expired", "rejected"})

# ccxt's ``precisionMode`` values (ccxt.base.decimal_to_precision), copied so that this module
# does not import ccxt.
_DECIMAL_PLACES = 2
_SIGNIFICANT_DIGITS = 3
_TICK_SIZE = 4

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


def is_definitive_rejection(error: BaseException) -> bool:
    """Whether ``error`` is a ccxt exception meaning "the exchange refused; nothing was placed".

    True for ccxt's ``InvalidOrder``, ``InsufficientFunds`` and ``BadRequest`` and their
    subclasses. Classified by the names of the exception's ccxt classes, so ccxt is not imported.
    """
    for cls in type(error).__mro__:
        if cls.__name__ in DEFINITIVE_REJECTIONS and cls.__module__.split(".")[0] == "ccxt":
            return True
    return False


def _is_ccxt_error(error: BaseException, name: str) -> bool:
    """Whether ``error`` is ccxt's exception class ``name`` or a subclass of it (by name)."""
    return any(
        cls.__name__ == name and cls.__module__.split(".")[0] == "ccxt"
        for cls in type(error).__mro__
    )


def is_duplicate_client_order_id(error: BaseException) -> bool:
    """Whether ``error`` is an exchange's refusal of a client order id it has already seen.

    ccxt's ``DuplicateOrderId``, or a ccxt ``InvalidOrder``/``BadRequest`` whose message says
    so (Binance USD-M ``-4116 ClientOrderId is duplicated``, mapped by ccxt to ``InvalidOrder``).
    """
    if _is_ccxt_error(error, "DuplicateOrderId"):
        return True
    if not is_definitive_rejection(error):
        return False
    text = str(error).lower()
    return "duplicat" in text and (
        "clientorderid" in text
        or "client order id" in text
        or "clientoid" in text
        or "-4116" in text
    )


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a real number or a numeric string, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class CcxtClient:
    """The exchange client protocol of ``PositionManager`` on top of a ccxt exchange object.

    ``exchange`` is a synchronous ccxt exchange (``ccxt.binanceusdm(...)``,
    ``ccxt.kucoinfutures(...)``, ...) or any object with the same unified methods. ``sleep`` is
    what ``wait_for_order_fill`` pauses with and ``clock`` (monotonic seconds) what it measures
    its timeout with; both are injectable for tests. Messages go to ``logger`` (default: the
    bot's ``TradingBot`` logger).

    Client order ids (see the module docstring): ``not_found_grace`` (seconds, by ``clock``) is
    how long after this instance sent an id a "not found" lookup is still "cannot tell";
    ``remembered_ids`` bounds how many sent ids are kept for that and for refusing a reuse.
    """

    #: Capability flag read by the manager: the order methods accept ``client_order_id=...`` and
    #: ``get_order_by_client_id`` exists.
    client_order_ids = True

    def __init__(
        self,
        exchange: Any,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        not_found_grace: float = 10.0,
        remembered_ids: int = 100_000,
    ) -> None:
        if not (isinstance(not_found_grace, (int, float)) and not_found_grace >= 0):
            raise ValueError(f"not_found_grace must be a number >= 0, got {not_found_grace!r}")
        if not (isinstance(remembered_ids, int) and remembered_ids > 0):
            raise ValueError(f"remembered_ids must be an int > 0, got {remembered_ids!r}")
        self.exchange = exchange
        self.sleep = sleep
        self.clock = clock
        self.logger = logger if logger is not None else logging.getLogger("TradingBot")
        self.not_found_grace = float(not_found_grace)
        self.remembered_ids = remembered_ids
        self._sent_ids: OrderedDict[str, float] = OrderedDict()  # client order id -> sent at
        self._ids_lock = threading.Lock()

    def __repr__(self) -> str:
        name = getattr(self.exchange, "id", None) or type(self.exchange).__name__
        return f"CcxtClient({name})"

    # ------------------------------------------------------------------ helpers

    def _has(self, capability: str) -> bool:
        """Whether the exchange declares ``capability`` (ccxt's ``has`` map, camelCase key)."""
        has = getattr(self.exchange, "has", None)
        if not isinstance(has, Mapping):
            return False
        return bool(has.get(capability))

    def _set_leverage(self, symbol: str, leverage: Any) -> None:
        """Best-effort leverage change before an opening order: a failure is only logged."""
        if leverage is None or not self._has("setLeverage"):
            return
        try:
            self.exchange.set_leverage(leverage, symbol)
        except Exception as e:
            self.logger.warning(f"Could not set leverage {leverage}x for {symbol}: {e}")

    def _claim(self, client_order_id: str | None) -> None:
        """Notes that ``client_order_id`` is being sent; raises if this instance sent it before."""
        if client_order_id is None:
            return
        if not isinstance(client_order_id, str) or not client_order_id:
            raise TypeError(f"client_order_id must be a non-empty str, got {client_order_id!r}")
        with self._ids_lock:
            if client_order_id in self._sent_ids:
                raise DuplicateClientOrderId(client_order_id)
            self._sent_ids[client_order_id] = self.clock()
            while len(self._sent_ids) > self.remembered_ids:
                self._sent_ids.popitem(last=False)

    def _place(
        self,
        symbol: str,
        order_type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
        client_order_id: str | None = None,
    ) -> dict[str, Any] | None:
        """``create_order`` with the failure semantics of the module docstring."""
        if client_order_id is not None:
            params = {**params, "clientOrderId": client_order_id}
        try:
            order = self.exchange.create_order(symbol, order_type, side, amount, price, params)
        except Exception as e:
            if client_order_id is not None and is_duplicate_client_order_id(e):
                self.logger.error(
                    f"{order_type.capitalize()} order {side} {amount} {symbol}: client order id "
                    f"{client_order_id} already used on the exchange ({type(e).__name__}: {e})"
                )
                raise DuplicateClientOrderId(client_order_id) from e
            if is_definitive_rejection(e):
                self.logger.error(
                    f"{order_type.capitalize()} order {side} {amount} {symbol} rejected: "
                    f"{type(e).__name__}: {e}"
                )
                return None
            self.logger.error(
                f"{order_type.capitalize()} order {side} {amount} {symbol}: outcome unknown "
                f"({type(e).__name__}: {e})"
            )
            raise
        if not isinstance(order, Mapping):
            # Not a refusal either: whether an order exists is unknown.
            raise TypeError(f"create_order() answered {type(order).__name__}, not an order")
        answer = dict(order)
        if answer.get("clientOrderId") is None:
            answer["clientOrderId"] = client_order_id
        return answer

    def _complete_fill(self, order: dict[str, Any], symbol: str) -> dict[str, Any]:
        """Fetch the order once when its creation answer lacks fill data; merge what came back."""
        if order.get("filled") and order.get("average"):
            return order
        order_id = order.get("id")
        if order_id is None or not self._has("fetchOrder"):
            return order
        try:
            fetched = self.exchange.fetch_order(order_id, symbol)
        except Exception as e:
            # The order was accepted: report it as created rather than fail the call.
            self.logger.warning(f"Could not fetch fill of order {order_id} on {symbol}: {e}")
            return order
        if not isinstance(fetched, Mapping):
            return order
        merged = dict(order)
        merged.update({k: v for k, v in fetched.items() if v is not None})
        return merged

    # ------------------------------------------------------------------ reads

    def get_open_positions(self) -> list[dict[str, Any]]:
        """Open positions as ccxt unified position dicts (``exchange.fetch_positions()``).

        Entries whose ``contracts`` is ``None`` or zero, or that have no ``side``, are phantoms
        (closed positions some exchanges keep listing) and are dropped. Raises on any failure —
        including an answer that is not a list or an entry whose size is not a number — and never
        answers ``[]`` for an error: an empty list means "no open position".
        """
        answer = self.exchange.fetch_positions()
        if not isinstance(answer, (list, tuple)):
            raise TypeError(f"fetch_positions() answered {type(answer).__name__}, not a list")
        positions: list[dict[str, Any]] = []
        for entry in answer:
            if not isinstance(entry, Mapping):
                raise TypeError(f"fetch_positions() entry is {type(entry).__name__}, not a dict")
            contracts = entry.get("contracts")
            if contracts is None or not entry.get("side"):
                continue
            size = _number(contracts)
            if size is None or math.isnan(size):
                raise ValueError(
                    f"fetch_positions() entry for {entry.get('symbol')} has a non-numeric "
                    f"size: {contracts!r}"
                )
            if size == 0:
                continue
            positions.append(entry if isinstance(entry, dict) else dict(entry))
        return positions

    def get_ticker(self, symbol: str) -> dict[str, Any] | None:
        """The ccxt unified ticker of ``symbol`` (``fetch_ticker``; ``last`` is the price).

        Raises on failure.
        """
        ticker = self.exchange.fetch_ticker(symbol)
        if ticker is None:
            return None
        return dict(ticker)

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        """Candles ``[timestamp_ms, open, high, low, close, volume]``, oldest first.

        ``fetch_ohlcv(symbol, timeframe, limit=limit)``; raises on failure.
        """
        candles = self.exchange.fetch_ohlcv(symbol, timeframe, limit=limit)
        return list(candles) if candles is not None else []

    def get_market_limits(self, symbol: str) -> dict[str, Any] | None:
        """Order-size limits of ``symbol`` from ``load_markets()``; ``None`` for an unknown symbol.

        Returns ``{'amount': {'min', 'max', 'step'}, 'cost': {'min', 'max'}}`` (values may be
        ``None``). ``step`` is the amount precision as a step size: ccxt's ``TICK_SIZE`` precision
        mode gives it directly, ``DECIMAL_PLACES`` *n* gives ``10 ** -n``, ``SIGNIFICANT_DIGITS``
        gives ``None``. Raises when the markets cannot be loaded.
        """
        markets = self.exchange.load_markets()
        market = markets.get(symbol) if isinstance(markets, Mapping) else None
        if not isinstance(market, Mapping):
            return None
        limits = market.get("limits") or {}
        amount = limits.get("amount") or {}
        cost = limits.get("cost") or {}
        precision = market.get("precision") or {}
        return {
            "amount": {
                "min": amount.get("min"),
                "max": amount.get("max"),
                "step": self._amount_step(precision.get("amount")),
            },
            "cost": {"min": cost.get("min"), "max": cost.get("max")},
        }

    def _amount_step(self, precision: Any) -> float | None:
        """The amount precision of a market as a step size (see ``get_market_limits``)."""
        value = _number(precision)
        if value is None:
            return None
        mode = getattr(self.exchange, "precisionMode", _TICK_SIZE)
        if mode == _TICK_SIZE:
            return value
        if mode == _DECIMAL_PLACES:
            return float(10.0**-value)
        return None

    # ------------------------------------------------------------------ orders

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: int = 10,
        reduce_only: bool = False,
        is_critical: bool = False,
        client_order_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Place a market order; the ccxt unified order dict, or ``None`` if rejected.

        Before an opening (non-reduce-only) order the leverage is set when the exchange supports
        ``setLeverage`` (best effort: a failure is logged). The order is
        ``create_order(symbol, 'market', side, amount, None, params)`` with
        ``{'reduceOnly': True}`` when ``reduce_only``. When the answer carries no fill
        (``filled``/``average`` missing or zero) and the exchange can ``fetchOrder``, the order
        is fetched once to report them. A definitive rejection returns ``None``; an unknown
        outcome (network error, timeout, 5xx, ...) raises. ``is_critical`` is accepted for
        compatibility with the bot's client and has no effect. ``client_order_id`` is sent as
        ``params['clientOrderId']``; an id already sent (by this instance, or refused by the
        exchange as a duplicate) raises ``DuplicateClientOrderId``.
        """
        self._claim(client_order_id)
        if not reduce_only:
            self._set_leverage(symbol, leverage)
        params: dict[str, Any] = {"reduceOnly": True} if reduce_only else {}
        order = self._place(symbol, "market", side, amount, None, params, client_order_id)
        if order is None:
            return None
        return self._complete_fill(order, symbol)

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
        client_order_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Place a limit order; the ccxt unified order dict as created, or ``None`` if rejected.

        ``create_order(symbol, 'limit', side, amount, price, params)`` with ``postOnly`` and
        ``reduceOnly`` params when asked; the leverage is set first as for market orders. A
        post-only order the exchange refuses because it would take liquidity is a rejection
        (``None``). Failure semantics and ``client_order_id`` as ``create_market_order``.
        """
        self._claim(client_order_id)
        if not reduce_only:
            self._set_leverage(symbol, leverage)
        params: dict[str, Any] = {}
        if post_only:
            params["postOnly"] = True
        if reduce_only:
            params["reduceOnly"] = True
        return self._place(symbol, "limit", side, amount, price, params, client_order_id)

    def close_position(self, symbol: str, client_order_id: str | None = None) -> bool:
        """Close the open position of ``symbol`` with a reduce-only market order.

        Fetches the positions afresh; ``False`` when there is no open position for ``symbol``
        (never reports a close that did not happen) or when the close order is definitively
        rejected; ``True`` when the exchange accepted the order. Raises when the positions
        cannot be read or the order's outcome is unknown. The close order carries
        ``client_order_id`` when given (an id already sent raises ``DuplicateClientOrderId``
        before anything is read or sent).
        """
        if client_order_id is not None:
            with self._ids_lock:
                if client_order_id in self._sent_ids:
                    raise DuplicateClientOrderId(client_order_id)
        position = next((p for p in self.get_open_positions() if p.get("symbol") == symbol), None)
        if position is None:
            self.logger.info(f"No open position for {symbol} on the exchange: nothing to close")
            return False
        size = _number(position.get("contracts"))
        if size is None or size == 0:
            return False
        side = "sell" if position.get("side") == "long" else "buy"
        order = self.create_market_order(
            symbol,
            side,
            abs(size),
            reduce_only=True,
            is_critical=True,
            client_order_id=client_order_id,
        )
        return order is not None

    def get_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any] | None:
        """The order sent with ``client_order_id`` on ``symbol``; ``None`` if the exchange has none.

        ``fetch_order(None, symbol, {'clientOrderId': client_order_id})`` (ccxt's unified
        parameter; Binance sends it as ``origClientOrderId``). The ccxt order dict (``id``,
        ``clientOrderId``, ``symbol``, ``side``, ``amount``, ``filled``, ``average``, ``status``,
        ``reduceOnly``, ...). ``None`` only on the exchange's definitive "no such order" (ccxt
        ``OrderNotFound``) for an id this instance did not send within the last
        ``not_found_grace`` seconds; raises on anything else (network error, an exchange
        without ``fetchOrder``, an answer for another id): the caller cannot tell.
        """
        if not isinstance(client_order_id, str) or not client_order_id:
            raise TypeError(f"client_order_id must be a non-empty str, got {client_order_id!r}")
        if not self._has("fetchOrder"):
            raise NotImplementedError(f"{self!r}: the exchange cannot fetch orders")
        try:
            order = self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except Exception as e:
            if not _is_ccxt_error(e, "OrderNotFound"):
                raise
            with self._ids_lock:
                sent_at = self._sent_ids.get(client_order_id)
            if sent_at is not None and self.clock() - sent_at < self.not_found_grace:
                raise LookupError(
                    f"order {client_order_id} on {symbol} not found {self.clock() - sent_at:.1f} s "
                    f"after it was sent: the exchange may not know it yet ({e})"
                ) from e
            return None
        if not isinstance(order, Mapping):
            raise TypeError(f"fetch_order() answered {type(order).__name__}, not an order")
        answer = dict(order)
        found = answer.get("clientOrderId")
        if found is None:
            answer["clientOrderId"] = client_order_id
        elif found != client_order_id:
            raise ValueError(
                f"fetch_order() for client order id {client_order_id} answered order "
                f"{answer.get('id')} with client order id {found}"
            )
        return answer

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None:
        """Poll ``fetch_order`` until the order is done or ``timeout`` seconds have passed.

        Polls at once, then every ``check_interval`` seconds (through the injected ``sleep``)
        until the status is ``closed``, ``canceled``, ``expired`` or ``rejected``. The time
        waited is the sum of the pauses, bounded as well by ``clock``, so a slow exchange cannot
        stretch the wait. Returns the last status seen as ``{'id', 'status', 'filled',
        'remaining', 'amount', 'price', 'average', 'cost', 'timestamp'}`` (the status may still
        be ``'open'``), or ``None`` when every status fetch failed.
        """
        interval = max(float(check_interval), 0.01)
        started = self.clock()
        waited = 0.0
        last: dict[str, Any] | None = None
        while True:
            try:
                order = self.exchange.fetch_order(order_id, symbol)
            except Exception as e:
                self.logger.warning(f"Could not fetch status of order {order_id} on {symbol}: {e}")
            else:
                if isinstance(order, Mapping):
                    last = {key: order.get(key) for key in _STATUS_KEYS}
                    if last["id"] is None:
                        last["id"] = order_id
                    if last["status"] in TERMINAL_ORDER_STATUSES:
                        return last
            remaining = float(timeout) - max(waited, self.clock() - started)
            if remaining <= 0:
                return last
            pause = min(interval, remaining)
            self.sleep(pause)
            waited += pause

    def cancel_order(self, order_id: str, symbol: str) -> bool:
        """Cancel an order: ``True`` when the exchange accepted the cancellation, else ``False``.

        A failure (order already filled or unknown, network error, ...) is logged and gives
        ``False``; check the order's status to learn what happened to it.
        """
        try:
            self.exchange.cancel_order(order_id, symbol)
        except Exception as e:
            self.logger.warning(
                f"Could not cancel order {order_id} on {symbol}: {type(e).__name__}: {e}"
            )
            return False
        return True
