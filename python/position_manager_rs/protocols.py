"""The exchange client the manager calls back: the bot's own client, described as Protocols.

Any object with these methods works (the bot's ``KuCoinClient``, ``CcxtClient``,
``PaperExchange``, a ``unittest.mock.Mock``). The manager calls them with exactly the shapes
shown below (positional versus keyword arguments as the original bot) and copes with any return
value: ``None``, ``[]``, malformed dicts, mocks and exceptions are handled without losing a
tracked position and without sending a second order blind.

``ExchangeClient`` lists what the update cycle, ``close_position`` and the syncs need;
``TradingClient`` adds the order methods that ``open_position``, ``scale_in_position`` and
``scale_out_position`` need. A client used only for monitoring may leave those out: the manager
looks a method up only when an operation needs it (a missing one is reported like any other
client error, and the operation returns ``False``/``None``).

Client order ids (optional): a client whose class has ``client_order_ids = True`` promises the
keyword ``client_order_id`` on its order methods and ``get_order_by_client_id``; the manager then
names every order it sends, so that an order whose answer was lost can be looked up instead of
being sent again. The manager tests ``getattr(client, "client_order_ids", False) is True``: any
other client (the bot's own, a ``Mock``) is called exactly as before, without the keyword.

Position legs (optional): a client whose class has ``position_legs = True`` promises that every
``get_open_positions()`` entry carries ``side`` and ``hedged``, that ``close_position(symbol,
side='long'|'short')`` closes that leg only, and that ``create_market_order(..., reduce_only=True,
is_critical=True, position_side='long'|'short')`` reduces that leg only. The manager names the
leg only on such a client (``getattr(client, "position_legs", False) is True``).

Sized closes (optional): a client whose class has ``sized_closes = True`` takes the keyword
``contracts`` on ``close_position``: the manager's size of the position (a number > 0), to size
the close with when the client's own position list shows another size (a list that lags a
reduction or a scale-in of the manager's that filled). ``CcxtClient`` sends the listed size, or
``contracts`` when the list differs from it by at least half an amount step.

Batched prices (optional): a client with a ``get_tickers(symbols)`` method of its own (found by
``inspect.getattr_static`` on the instance or its class, so a ``Mock``'s made-up attributes do
not count) is asked once per update cycle for every price: ``symbols`` is a list, each symbol
once, and the answer a dict ``{symbol: ticker}`` whose tickers carry ``last`` as
``get_ticker``'s do. Symbols it leaves out, or answers with something unusable, are asked
``get_ticker`` as before (see ``BatchTickersClient``).

Listed symbols (optional): a client with a ``watch_symbols(symbols)`` method of its own (found
as ``get_tickers`` is) is told, before every position list the manager reads, each symbol that
entered the book since it was last told (a list, each symbol once per client; all of them again
after ``manager.client = other``): positions the bot assigned or a restart loaded from a journal
or a state file included. Its ``get_open_positions()`` must then cover those symbols' markets
(``CcxtClient`` reads the venue's list for each kind of market it was told of: Bybit's USDC and
inverse positions are not in its default list). An exception fails that list read: the manager
keeps every position, as for a failed ``get_open_positions()``, and tells those symbols again
before the next one.

Threads: with ``PositionManager(..., max_concurrent_calls=N)`` and N > 1, ``get_ticker`` and
``get_ohlcv`` are called from up to N worker threads at once, so they must be thread-safe; every
other method is called from the thread that iterates ``update_positions()`` (or calls the
manager), as with the default of 1.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BatchTickersClient",
    "DuplicateClientOrderId",
    "ExchangeClient",
    "SymbolWatchingClient",
    "TradingClient",
]


class DuplicateClientOrderId(Exception):
    """An order was sent with a client order id that was already used; nothing new was placed.

    Raised (never answered ``None``) by ``PaperExchange`` and ``CcxtClient``: an order with that id
    may exist, so "not placed" would be the wrong conclusion for a caller that sent the id twice.
    Look it up with ``get_order_by_client_id`` to learn what became of the first order.
    ``order_id`` is the first order's venue id when known.
    """

    def __init__(self, client_order_id: str, order_id: str | None = None) -> None:
        first = f" by order {order_id}" if order_id is not None else ""
        super().__init__(f"client order id {client_order_id!r} already used{first}")
        self.client_order_id = client_order_id
        self.order_id = order_id


@runtime_checkable
class ExchangeClient(Protocol):
    """What ``PositionManager`` needs from the bot's exchange client to watch positions.

    Return shapes are ccxt's unified structures:

    * ``get_open_positions()`` -> list of position dicts with at least ``symbol``,
      ``contracts`` (> 0), ``side`` ('long'/'short'), ``entryPrice``, ``leverage`` (or
      ``info['realLeverage']``); ``contractSize``, ``liquidationPrice`` and ``markPrice`` when
      known. Raising (or returning anything but a list) means "unknown": nothing is removed.
      An entry may carry ``unreadable``, a text saying what could not be read
      (``CcxtClient``: ``"okx 'pos' is None"``): the manager then reads it as the symbol's
      presence only — a tracked position there is kept, nothing is imported, resized or
      flipped, a warning names it — whatever ``contracts`` and ``side`` say, even when they
      would make it a placeholder (``None``); a ``side`` of 'long'/'short' limits the presence
      to that leg. ``None``, ``False``, ``0`` and ``''`` mark nothing.
    * ``get_ticker(symbol)`` -> dict with ``last`` (float > 0), or ``None``.
    * ``get_ohlcv(symbol, timeframe='1h', limit=100)`` -> list of
      ``[timestamp_ms, open, high, low, close, volume]``, or ``[]``/``None``.
    * ``close_position(symbol)`` -> truthy only when the position was closed on the exchange.

    Calls, exactly: ``get_open_positions()``, ``get_ticker(symbol)``,
    ``get_ohlcv(symbol, timeframe='1h', limit=100)``, ``close_position(symbol)``.
    """

    def get_open_positions(self) -> list[dict[str, Any]]: ...

    def get_ticker(self, symbol: str) -> dict[str, Any] | None: ...

    def get_ohlcv(
        self, symbol: str, timeframe: str = "1h", limit: int = 100
    ) -> list[list[float]]: ...

    def close_position(self, symbol: str) -> bool: ...


@runtime_checkable
class SymbolWatchingClient(ExchangeClient, Protocol):
    """An ``ExchangeClient`` whose position lists cover the markets it is told of (optional;
    ``CcxtClient`` and ``AsyncCcxtClient`` are).

    * ``watch_symbols(symbols)``: from now on every ``get_open_positions()`` answer covers the
      positions of ``symbols``' markets. Called with a list of new symbols before the manager
      reads a list (see the module docstring); it answers nothing, and an exception fails that
      list read without losing a position.
    """

    def watch_symbols(self, symbols: list[str]) -> None: ...


@runtime_checkable
class BatchTickersClient(ExchangeClient, Protocol):
    """An ``ExchangeClient`` that also answers every price at once (optional; ``CcxtClient``,
    ``AsyncCcxtClient`` and ``PaperExchange`` do).

    * ``get_tickers(symbols)`` -> ``{symbol: ticker}``, each ticker a dict with ``last`` (float
      > 0) and, if it says, its ``symbol``. Called as ``get_tickers([symbol, ...])`` once per
      update cycle, before the first position is examined. A symbol left out (or answered
      ``None``) is asked ``get_ticker(symbol)`` with the retries; an unusable entry (not a dict,
      another symbol's ticker, ``last`` not a finite number > 0) is warned about and asked the
      same way; a call that raises or answers something else than a dict is warned about and
      every price is asked per symbol. It never makes the manager lose a position.
    """

    def get_tickers(self, symbols: list[str]) -> dict[str, dict[str, Any]]: ...


@runtime_checkable
class TradingClient(ExchangeClient, Protocol):
    """An ``ExchangeClient`` that can also place orders (opening, scaling in and out).

    Order answers are ccxt unified order dicts; the manager reads ``id``, ``status``
    ('open', 'closed', 'canceled', 'expired', 'rejected'), ``filled`` (contracts) and
    ``average`` (price). A falsy answer (``None``, ``{}``) means "not placed". When ``filled``
    or ``average`` is missing the manager falls back to the requested amount and the ticker (or
    limit) price.

    Calls, exactly:

    * ``create_market_order(symbol, side, amount, leverage)`` to open or scale in;
      ``create_market_order(symbol, side, amount, leverage, reduce_only=True,
      is_critical=True)`` to scale out (``side`` is 'buy'/'sell'; ``leverage`` an int when
      whole).
    * ``create_limit_order(symbol, side, amount, price, leverage, post_only=True)`` (only with
      ``open_position(..., use_limit=True)``).
    * ``wait_for_order_fill(order_id, symbol, timeout=10, check_interval=2)`` -> a status dict
      (``status``, ``filled``, ``average``) or ``None``: the limit open's wait for its fill;
      ``timeout=1, check_interval=1`` to check an order a cancel was sent for (it should have
      ended; a client that polls answers within a second or so either way).
    * ``cancel_order(order_id, symbol)`` -> truthy when cancelled.
    * ``get_market_limits(symbol)`` -> ``{'amount': {'min': ..., 'max': ..., 'step': ...},
      'cost': {...}}`` or ``None``; ``step`` (the lot size) is optional and, when given,
      scale-outs are rounded down to whole lots.

    Optional members (client order ids), used only when the class sets
    ``client_order_ids = True`` (``getattr(client, "client_order_ids", False) is True``):

    * ``client_order_ids: bool`` — the capability flag (a class attribute).
    * The order calls then carry ``client_order_id=ID`` (ASCII letters and digits, at most 32
      characters, unique per order): ``create_market_order(symbol, side, amount, leverage,
      client_order_id=ID)`` (plus ``reduce_only=True, is_critical=True`` to reduce),
      ``create_limit_order(symbol, side, amount, price, leverage, post_only=True,
      client_order_id=ID)`` and ``close_position(symbol, client_order_id=ID)`` (its reduce-only
      order carries the id). Every order answer carries ``clientOrderId``. An id already used
      raises (``DuplicateClientOrderId``) and places nothing new.
    * ``get_order_by_client_id(client_order_id, symbol)`` -> the ccxt order dict (``id``,
      ``clientOrderId``, ``symbol``, ``side``, ``amount``, ``filled``, ``average``, ``status`` in
      'open'/'closed'/'canceled'/'expired'/'rejected', ``reduceOnly``), or ``None`` when the venue
      has no order with that id (definitive: it was never placed); raises when it cannot tell.

    Optional members (position legs, hedge mode), used only when the class sets
    ``position_legs = True`` (``getattr(client, "position_legs", False) is True``;
    ``CcxtClient``, ``AsyncCcxtClient`` and ``PaperExchange`` do):

    * ``position_legs: bool`` — the capability flag (a class attribute).
    * Every ``get_open_positions()`` entry carries ccxt's ``side`` ('long'/'short') and
      ``hedged`` (``True`` when the venue holds the symbol in hedge mode: a symbol may then have
      two entries, one per leg).
    * ``close_position(symbol, side='long'|'short')`` closes that leg and never the other
      (``False`` when that leg is not open); without ``side`` a symbol with two open legs is not
      closed (``False``). With client order ids: ``close_position(symbol,
      client_order_id=ID, side=...)``; with ``sized_closes = True`` also ``contracts=N`` (the
      manager's size; ``CcxtClient`` and ``AsyncCcxtClient`` declare it).
    * ``create_market_order(symbol, side, amount, leverage, reduce_only=True, is_critical=True,
      position_side='long'|'short')`` reduces that leg only ('sell' reduces 'long', 'buy'
      reduces 'short'; a mismatch raises ``ValueError`` and sends nothing). Opening orders
      may carry ``position_side`` too ('buy' opens 'long').
    """

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: int | float = 10,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> dict[str, Any] | None: ...

    def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        leverage: int | float = 10,
        post_only: bool = False,
    ) -> dict[str, Any] | None: ...

    def wait_for_order_fill(
        self, order_id: Any, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None: ...

    def cancel_order(self, order_id: Any, symbol: str) -> bool: ...

    def get_market_limits(self, symbol: str) -> dict[str, Any] | None: ...
