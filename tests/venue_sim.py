"""A venue-neutral futures ledger behind a loopback HTTP server, spoken to in one venue's dialect.

``tests/venue_dialects.py`` holds one dialect per venue (KuCoin futures, Binance USD-M, Bybit,
OKX, Bitget, Gate, BingX, Hyperliquid, MEXC, HTX): the REST paths a real ccxt exchange class
calls for what ``CcxtClient`` needs, answered with payloads in that venue's documented format.
This module holds what they share:

* ``Ledger``: positions per (symbol, leg) in one-way or hedge mode, prices, leverage, margin mode,
  orders, fills. A one-way account holds at most one leg per symbol (buy and sell net out); a
  hedge-mode account holds a long and a short leg side by side, and every order must say which
  leg it opens or reduces (the dialect reads the venue's field and refuses an order without it,
  as the venues do).
* ``FakeVenue``: a ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port). ``make_exchange()``
  builds the real ccxt class and rewrites every URL of ``exchange.urls['api']`` to
  ``http://127.0.0.1:PORT/<original host>/<original path>``, so requests keep their venue paths
  and nothing can leave the machine; a path the dialect does not serve answers 404 and is
  recorded in ``venue.unexpected``.
* Faults: ``fail_next(route, n, status, body)`` (an HTTP error or a venue error body; a route
  may name request parameters, ``path?key=value``, to fail one scope of a shared path),
  ``lose_next_order_answer(n)`` (the order is executed, its answer lost),
  ``answer_next_order_with(body)`` (the order is executed, then answered with ``body``),
  ``answer_next_order_late(seconds, n)`` (the order is executed and answered, too late for a
  client that stopped waiting),
  ``answer_empty_positions(n)``, ``lag_positions_next(n)`` (the positions route shows the legs as
  they are now for the next ``n`` reads, whatever fills meanwhile).
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

Payload = Any


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Market:
    """One perpetual as the ledger sees it (sizes in contracts of ``contract_size``).

    By default a linear perpetual settled in its quote currency (USDT). The last three fields
    describe a market of another *position scope*, one a venue lists only when its position
    list is asked for that scope (``venue_dialects.SCOPES``; no default market sets them):
    ``settle`` a settle currency other than the quote (an inverse market's coin), ``inverse``
    a coin-margined market, ``dex`` a Hyperliquid HIP-3 dex. The ledger's P/L stays linear for
    every market (``contract_size`` is whatever the venue states, e.g. USD per contract for an
    inverse one): the fakes keep, list and close such positions; they do not model coin P/L.
    """

    base: str
    price: float
    contract_size: float = 1.0
    lot: float = 1.0  # contracts per lot (minimum order and step)
    quote: str = "USDT"  # also the settle currency unless ``settle`` says otherwise
    settle: str = ""  # the settle currency when it is not the quote ('' : the quote)
    inverse: bool = False  # coin-margined (settled in ``settle``, the base coin)
    dex: str = ""  # Hyperliquid: the HIP-3 dex the market is listed on ('' : the main dex)

    @property
    def settle_coin(self) -> str:
        return self.settle or self.quote

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}:{self.settle_coin}"


@dataclass
class Leg:
    contracts: float  # > 0
    entry: float
    opened: int = field(default_factory=now_ms)
    # The position's own margin mode (True: cross) where it is not the account's (``None``):
    # one opened by hand in the other mode (``Ledger.open(..., cross=...)``).
    cross: bool | None = None
    # Which position this is: copies (a lagging list's) keep it, a new position gets its own.
    serial: int = field(default_factory=itertools.count(1).__next__, compare=False)


@dataclass
class Order:
    id: str
    symbol: str
    side: str  # buy / sell
    amount: float  # contracts
    price: float | None
    kind: str  # market / limit
    reduce_only: bool
    leg: str  # long / short: the leg opened or reduced
    client_id: str | None
    status: str = "open"  # open / closed / canceled / rejected
    filled: float = 0.0
    average: float | None = None
    leverage: float | None = None
    created: int = field(default_factory=now_ms)
    extra: dict[str, Any] = field(default_factory=dict)


class VenueRefusal(Exception):
    """The venue refuses the request: the dialect turns it into its own error body."""

    def __init__(self, reason: str, message: str, key: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason  # a key of the dialect's error table
        self.message = message
        # A refusal for the margin mode named: the position (symbol, leg) whose mode it is not
        # (``None``: a flat symbol, the account's mode).
        self.key = key


class Ledger:
    """Positions, orders and prices of one account, venue-neutral. All methods are thread-safe."""

    def __init__(self, markets: tuple[Market, ...], *, hedge: bool = False) -> None:
        self.lock = threading.RLock()
        self.markets = {m.symbol: m for m in markets}
        self.hedge = hedge
        self.prices = {m.symbol: m.price for m in markets}
        self.legs: dict[tuple[str, str], Leg] = {}
        self.leverage: dict[tuple[str, str], float] = {}  # (symbol, leg) -> leverage
        self.cross = True
        self.orders: dict[str, Order] = {}
        self._next_id = 7_000_001

    # ---- controls (tests)

    def open(
        self,
        symbol: str,
        leg: str,
        contracts: float,
        entry: float | None = None,
        *,
        cross: bool | None = None,
    ) -> None:
        """A position as if opened earlier (one-way: replaces the symbol's position);
        ``cross``: its margin mode when it is not the account's (``self.cross``)."""
        with self.lock:
            if not self.hedge:
                self.legs.pop((symbol, "long"), None)
                self.legs.pop((symbol, "short"), None)
            price = entry if entry is not None else self.prices[symbol]
            cross = self._mode_beside(symbol, leg, cross)
            self.legs[(symbol, leg)] = Leg(float(contracts), float(price), cross=cross)

    def _mode_beside(self, symbol: str, leg: str, cross: bool | None) -> bool | None:
        """The own margin mode of a position opened on ``leg`` of ``symbol``: ``cross``, but
        where the mode is the symbol's (``margin_per_symbol``, hedge mode) the other held
        leg's."""
        other = (symbol, "short" if leg == "long" else "long")
        if self.margin_per_symbol and self.hedge and other in self.legs:
            return self.legs[other].cross
        return cross

    #: Whether the margin mode is the symbol's, both legs' in hedge mode (``Dialect``'s, set by
    #: ``FakeVenue``): a leg opened beside a held one takes its mode.
    margin_per_symbol = False

    def margin_key(self, symbol: str, leg: str | None = None) -> tuple[str, str] | None:
        """The position whose margin mode an order on ``symbol`` must name: the named leg
        (one-way, ``None``: the held one) if held, else — where the mode is the symbol's
        (``margin_per_symbol``) — the other held leg, else ``None`` (the account's mode)."""
        with self.lock:
            one = leg if leg is not None else self.held_leg(symbol)
            if one is not None and (symbol, one) in self.legs:
                return (symbol, one)
            if self.margin_per_symbol and leg is not None:
                other = self.held_leg(symbol)
                return (symbol, other) if other is not None else None
            return None

    def cross_of(self, symbol: str, leg: str | None = None) -> bool:
        """Whether the position an order on ``symbol`` acts on is in cross margin: the named
        leg's (one-way, ``None``: the held one's; ``margin_per_symbol``: else the other
        held leg's) own mode, else the account's. Venues that name a margin mode in every
        order (OKX, Bitget, MEXC, HTX) refuse one in another mode than the position's."""
        with self.lock:
            key = self.margin_key(symbol, leg)
            held = self.legs.get(key) if key is not None else None
            if held is not None and held.cross is not None:
                return held.cross
            return self.cross

    def note_listed(self, legs: dict[tuple[str, str], Leg]) -> None:
        """Called with the legs each successful position read served (lagging or not; none for
        an empty answer), under the lock: a hook for the soaks' ledgers."""

    def remove(self, symbol: str, leg: str | None = None) -> None:
        with self.lock:
            for one in ("long", "short") if leg is None else (leg,):
                self.legs.pop((symbol, one), None)

    def size(self, symbol: str, leg: str) -> float:
        with self.lock:
            held = self.legs.get((symbol, leg))
            return held.contracts if held else 0.0

    def held_leg(self, symbol: str) -> str | None:
        """The one open leg of ``symbol`` in one-way mode (``None``: flat)."""
        with self.lock:
            for one in ("long", "short"):
                if (symbol, one) in self.legs:
                    return one
            return None

    def held(self) -> list[tuple[str, str, Leg]]:
        with self.lock:
            return [(s, leg, p) for (s, leg), p in sorted(self.legs.items())]

    def lev(self, symbol: str, leg: str = "long") -> float:
        with self.lock:
            return self.leverage.get((symbol, leg), 5.0)

    def set_lev(self, symbol: str, value: float, leg: str | None = None) -> None:
        with self.lock:
            for one in ("long", "short") if leg is None else (leg,):
                self.leverage[(symbol, one)] = float(value)

    # ---- orders (dialects)

    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    def place(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        reduce_only: bool,
        leg: str | None,
        kind: str = "market",
        price: float | None = None,
        client_id: str | None = None,
        leverage: float | None = None,
    ) -> Order:
        """Check and execute an order. ``leg``: the leg named by the order (``None``: not named).

        Hedge mode needs a named leg; a reduce-only order must reduce an open leg by at most its
        size. Market orders (and limit orders that cross) fill at once at the current price.
        """
        with self.lock:
            if symbol not in self.markets:
                raise VenueRefusal("symbol", f"unknown symbol {symbol}")
            market = self.markets[symbol]
            if amount <= 0 or abs(amount / market.lot - round(amount / market.lot)) > 1e-9:
                raise VenueRefusal("amount", f"invalid amount {amount}")
            if self.hedge and leg is None:
                raise VenueRefusal("mode", "hedge mode: the order must name its position side")
            if not self.hedge and leg is not None and leg not in ("long", "short"):
                raise VenueRefusal("mode", "one-way mode: no position side")
            if self.hedge:
                target = str(leg)
                expected = "long" if (side == "buy") != reduce_only else "short"
                if target != expected:
                    raise VenueRefusal("mode", f"{side} cannot act on the {target} leg")
            else:
                current = [one for one in ("long", "short") if (symbol, one) in self.legs]
                if current:
                    target = current[0]
                else:
                    target = "long" if side == "buy" else "short"
                if reduce_only and (not current or (target == "long") == (side == "buy")):
                    raise VenueRefusal("reduce", "reduce-only order would not reduce")
            if reduce_only:
                held = self.legs.get((symbol, target))
                if held is None or held.contracts < amount - 1e-12:
                    raise VenueRefusal("reduce", "reduce-only order would not reduce")
            order = Order(
                self.new_id(),
                symbol,
                side,
                float(amount),
                price,
                kind,
                reduce_only,
                target,
                client_id,
                leverage=leverage,
            )
            self.orders[order.id] = order
            last = self.prices[symbol]
            crosses = price is None or kind == "market"
            if not crosses and price is not None:
                crosses = (side == "buy" and price >= last) or (side == "sell" and price <= last)
            if crosses:
                self._fill(order, last)
            return order

    def _fill(self, order: Order, price: float) -> None:
        symbol, side, qty = order.symbol, order.side, order.amount
        if self.hedge:
            key = (symbol, order.leg)
            held = self.legs.get(key)
            if order.reduce_only or (order.leg == "long") != (side == "buy"):
                assert held is not None
                held.contracts = round(held.contracts - qty, 10)
                if held.contracts <= 0:
                    del self.legs[key]
            elif held is None:
                self.legs[key] = Leg(qty, price, cross=self._mode_beside(symbol, order.leg, None))
            else:
                total = held.contracts + qty
                held.entry = (held.contracts * held.entry + qty * price) / total
                held.contracts = total
        else:
            signed = qty if side == "buy" else -qty
            net = self.size(symbol, "long") - self.size(symbol, "short")
            old = self.legs.get((symbol, "long")) or self.legs.get((symbol, "short"))
            new = round(net + signed, 10)
            own_mode = old.cross if old is not None else None
            entry = price
            if old is not None and net != 0 and (net > 0) == (signed > 0):
                entry = (abs(net) * old.entry + qty * price) / abs(new)
            elif old is not None and new != 0 and (new > 0) == (net > 0):
                entry = old.entry
            self.legs.pop((symbol, "long"), None)
            self.legs.pop((symbol, "short"), None)
            if new != 0:
                leg = Leg(abs(new), entry, cross=own_mode)
                if old is not None and net != 0 and (new > 0) == (net > 0):
                    leg.serial = old.serial  # the same position, resized (not a new one)
                self.legs[(symbol, "long" if new > 0 else "short")] = leg
        order.status = "closed"
        order.filled = qty
        order.average = price

    def find(self, order_id: str | None = None, client_id: str | None = None) -> Order | None:
        with self.lock:
            if order_id is not None:
                return self.orders.get(str(order_id))
            matches = [o for o in self.orders.values() if o.client_id == client_id]
            return matches[-1] if matches else None

    def cancel(self, order_id: str) -> Order:
        with self.lock:
            order = self.orders.get(str(order_id))
            if order is None or order.status != "open":
                raise VenueRefusal("order", f"order {order_id} does not exist or is done")
            order.status = "canceled"
            return order

    def orders_sent(self) -> list[Order]:
        with self.lock:
            return list(self.orders.values())


@dataclass
class Request:
    method: str
    host: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    # Seconds the answer waits before it is written (``answer_next_order_late``).
    late: float = 0.0


@dataclass
class _Fault:
    path: str
    remaining: int
    status: int
    body: Payload
    after: bool = False  # the venue acts, then the answer is this fault (a lost answer)
    late: float = 0.0  # with ``after``: the venue acts and answers as usual, this late


class Dialect:
    """One venue's REST dialect: ccxt's class, its routes, its error envelope."""

    #: ccxt class name
    ccxt_name = ""
    #: (method, path) -> the name of the dialect's method that answers it (called as
    #: ``method(venue, request)``), or a handler(venue, request) -> payload
    routes: ClassVar[dict[tuple[str, str], str | Callable[[FakeVenue, Request], Payload]]] = {}
    #: the positions route (for faults)
    positions_route = ""
    order_route = ""
    credentials: ClassVar[dict[str, Any]] = {"apiKey": "key", "secret": "secret"}
    options: ClassVar[dict[str, Any]] = {}
    #: the markets it lists (sizes in ccxt's contracts of the venue)
    markets: tuple[Market, ...] = ()

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        """The venue's error answer for a refusal (HTTP status, body)."""
        return 400, {"error": refusal.message}

    def rate_limited(self) -> tuple[int, Payload]:
        """The venue's rate-limit answer."""
        return 429, {"error": "too many requests"}

    def ok(self, payload: Payload) -> Payload:
        """Wraps a successful answer in the venue's envelope."""
        return payload

    def prepare(self, exchange: Any) -> None:
        """Per-venue tweaks of the ccxt object after the URLs point at the fake."""

    def is_order(self, request: Request) -> bool:
        """Whether ``request`` places an order (venues with one action route override this)."""
        return request.path == self.order_route

    def is_positions(self, request: Request) -> bool:
        """Whether ``request`` reads the position list."""
        return request.path == self.positions_route

    def matches(self, route: str, request: Request) -> bool:
        """Whether a fault armed on ``route`` applies to ``request``. A route may name request
        parameters after a ``?`` (``/v5/position/list?settleCoin=USDC``): the fault then applies
        only to requests on that route that carry those values (one scope of a shared route)."""
        if "?" in route:
            path, _, query = route.partition("?")
            wanted = parse_qsl(query, keep_blank_values=True)
            return self.matches(path, request) and all(
                str(request.params.get(key) or "") == value for key, value in wanted
            )  # an empty value: the parameter is absent or empty
        if route == self.order_route:
            return self.is_order(request)
        if route == self.positions_route:
            return self.is_positions(request)
        return request.path == route

    #: Seconds after an order ends during which the venue still finds it by its client order
    #: id (``None``: always); later the client cannot tell, and says so.
    client_id_window: float | None = None
    #: Whether every order names its leg by itself (Gate: the sign of a dual-mode order).
    leg_from_sign = False
    #: Whether the venue has a hedge mode at all (Hyperliquid: one-way only).
    has_hedge_mode = True
    #: Whether position entries carry the position's leverage.
    reports_leverage = True
    #: Whether a flat account's hedge mode can be read (``CcxtClient(position_mode='auto')``
    #: names the legs from the first order); otherwise the user sets ``position_mode='hedge'``.
    mode_readable_when_flat = True
    #: Whether a position has a margin mode of its own that every order names, so one opened
    #: by hand in the other mode than the account's sits beside the bot's (OKX, Bitget, MEXC,
    #: HTX; ``Ledger.open(..., cross=...)``).
    margin_per_position = False
    #: Whether the margin mode is the symbol's, not each leg's, in hedge mode (Bitget: its
    #: ``set-margin-mode`` names a symbol and no side): a leg opened beside one in the other
    #: mode than the account's takes that mode, and an order for it must name it.
    margin_per_symbol = False


_V = TypeVar("_V", bound="FakeVenue")


class FakeVenue:
    """A ledger behind an HTTP server speaking ``dialect``. Context manager."""

    def __init__(self, dialect: Dialect, ledger: Ledger) -> None:
        self.dialect = dialect
        self.ledger = ledger
        ledger.margin_per_symbol = dialect.margin_per_symbol
        self.requests: list[Request] = []
        self.unexpected: list[Request] = []
        # Every refusal the venue answered: (method, path, the reason's key).
        self.refusals: list[tuple[str, str, str]] = []
        # The legs the last read of ``positions_route`` showed (lagging or not), and the requests
        # refused for the margin mode they named although that read showed the position they
        # act on in the mode it is in (what the client can know: a defect), apart from those
        # the read could not have told (a list lagging a change by hand).
        self.last_listed: dict[tuple[str, str], Leg] = {}
        self.margin_refused: list[str] = []
        self.margin_refused_unlisted: list[str] = []
        self.faults: list[_Fault] = []
        self.empty_positions = 0
        self._served_empty = False  # the positions answer being made is an empty one
        self._lagged: tuple[int, dict[tuple[str, str], Leg]] = (0, {})
        self.listed_late: set[str] = set()  # symbols the venue lists that ccxt has not loaded
        # (answers left, rewrite): successful position-list answers go through ``rewrite``
        # (``rewrite_positions_next``); every answer is kept by path in ``answers``.
        self._rewrite: tuple[int, Callable[[Payload], tuple[int, Payload]] | None] = (0, None)
        # Armed by ``rewrite_next``: [method, route, answers left, rewrite].
        self._rewrites: list[list[Any]] = []
        self.answers: dict[tuple[str, str], Payload] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self: _V) -> _V:
        venue = self

        class Handler(_Handler):
            pass

        Handler.venue = venue
        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def make_exchange(self, module: Any = None, **config: Any) -> Any:
        """The real ccxt class of the dialect with dummy credentials, pointed at this venue."""
        return make_exchange(self.dialect, self.base_url, module, **config)

    # ---- faults and inspection

    def fail_next(self, path: str, n: int = 1, status: int = 503, body: Payload = None) -> None:
        """The next ``n`` requests on ``path`` answer ``status`` with ``body`` (``None``: the
        venue's rate-limit answer for 429, an HTML gateway page otherwise)."""
        with self.ledger.lock:
            self.faults.append(_Fault(path, n, status, body))

    def lose_next_order_answer(
        self, n: int = 1, status: int = 504, route: str | None = None
    ) -> None:
        """The next ``n`` orders are executed, then answered with ``status`` (a gateway timeout
        page): the order exists, its answer is lost. ``route``: orders created on another path
        than the dialect's ``order_route`` (a second position scope's)."""
        with self.ledger.lock:
            self.faults.append(
                _Fault(route or self.dialect.order_route, n, status, None, after=True)
            )

    def answer_next_order_with(self, body: Payload, status: int = 200, n: int = 1) -> None:
        """The next ``n`` orders are executed, then answered with ``body`` (the venue's own
        answer for an order whose outcome it does not know, such as OKX ``51149``)."""
        with self.ledger.lock:
            self.faults.append(_Fault(self.dialect.order_route, n, status, body, after=True))

    def answer_next_order_late(self, seconds: float, n: int = 1) -> None:
        """The next ``n`` orders are executed and answered as usual, but ``seconds`` late: a
        client that stops waiting sooner (its own timeout) never reads the answer, though the
        order exists."""
        with self.ledger.lock:
            self.faults.append(
                _Fault(self.dialect.order_route, n, 200, None, after=True, late=seconds)
            )

    def calm(self) -> None:
        """Disarms every fault not yet used up (a fault armed on a route waits for its next
        request, however late that comes)."""
        with self.ledger.lock:
            self.faults.clear()
            self.empty_positions = 0
            self._lagged = (0, {})
            self._rewrite = (0, None)
            self._rewrites.clear()

    def rewrite_positions_next(
        self, rewrite: Callable[[Payload], tuple[int, Payload]], n: int = 1
    ) -> None:
        """The next ``n`` successful position-list answers are ``rewrite(payload)`` (a status
        and a body) instead: a venue answering malformed lists, or something else."""
        with self.ledger.lock:
            self._rewrite = (n, rewrite)

    def rewrite_next(
        self,
        method: str,
        route: str,
        rewrite: Callable[[Payload], tuple[int, Payload]],
        n: int = 1,
    ) -> None:
        """The next ``n`` requests ``method`` on ``route`` (``Dialect.matches``) are served as
        usual (an order is executed, a look-up finds what it finds), then answered with
        ``rewrite(answer)`` (a status and a body) instead: the venue's answer, malformed after
        it acted. ``answer`` is the body the venue would have sent (its error body for a
        refusal)."""
        with self.ledger.lock:
            self._rewrites.append([method, route, n, rewrite])

    def answer_empty_positions(self, n: int = 1) -> None:
        with self.ledger.lock:
            self.empty_positions = n

    def legs_now(self) -> dict[tuple[str, str], Leg]:
        """A copy of the ledger's legs as they are now (for :meth:`lag_positions_next`)."""
        with self.ledger.lock:
            return {k: replace(v) for k, v in self.ledger.legs.items()}

    def lag_positions_next(
        self, n: int = 1, legs: dict[tuple[str, str], Leg] | None = None
    ) -> None:
        """The next ``n`` position reads show ``legs`` (default: the legs as they are now),
        whatever fills meanwhile: a venue whose position list lags its fills."""
        with self.ledger.lock:
            self._lagged = (n, self.legs_now() if legs is None else legs)

    def take_empty(self) -> bool:
        """Whether this positions answer is to be empty (counts one down)."""
        with self.ledger.lock:
            if self.empty_positions > 0:
                self.empty_positions -= 1
                self._served_empty = True
                return True
            return False

    def _note_margin_refusal(self, request: Request, refusal: VenueRefusal) -> None:
        where = f"{request.method} {request.path} {refusal.key}"
        key = refusal.key
        held = self.ledger.legs.get(key) if key is not None else None
        shown = self.last_listed.get(key) if key is not None else None
        mode = self.ledger.cross
        if (
            held is not None
            and shown is not None
            and (shown.cross if shown.cross is not None else mode)
            == (held.cross if held.cross is not None else mode)
        ):
            self.margin_refused.append(where)
        else:
            self.margin_refused_unlisted.append(where)

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        with self.ledger.lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method)
            ]

    # ---- dispatch

    def fault_for(self, request: Request) -> _Fault | None:
        """The armed fault ``request`` meets, if any: the first with requests left whose path
        it matches (not used up by this)."""
        with self.ledger.lock:
            return next(
                (
                    f
                    for f in self.faults
                    if f.remaining > 0 and self.dialect.matches(f.path, request)
                ),
                None,
            )

    def handle(self, request: Request) -> tuple[int, Payload]:
        with self.ledger.lock:
            self.requests.append(request)
            lost: _Fault | None = None
            fault = self.fault_for(request)
            if fault is not None:
                fault.remaining -= 1
                if not fault.after:
                    return self._fault_answer(fault)
                lost = fault
            handler = self._route(request)
            if handler is None:
                self.unexpected.append(request)
                return 404, {"error": f"no route {request.method} {request.path}"}
            lagged, then = self._lagged
            lag = lagged > 0 and self.dialect.is_positions(request)
            if lag:
                self._lagged = (lagged - 1, then)
                now, self.ledger.legs = self.ledger.legs, {k: replace(v) for k, v in then.items()}
            self._served_empty = False
            try:
                answer: tuple[int, Payload] = 200, self.dialect.ok(handler(self, request))
                served = {} if self._served_empty else self.ledger.legs
                if request.method == "GET" and request.path == self.dialect.positions_route:
                    self.last_listed = {k: replace(v) for k, v in served.items()}
                if self.dialect.is_positions(request):
                    self.ledger.note_listed(served)
                self.answers[(request.path, str(request.params.get("type") or ""))] = answer[1]
                left, rewrite = self._rewrite
                if left > 0 and rewrite is not None and self.dialect.is_positions(request):
                    self._rewrite = (left - 1, rewrite)
                    answer = rewrite(copy.deepcopy(answer[1]))
            except VenueRefusal as refusal:
                self.refusals.append((request.method, request.path, refusal.reason))
                if refusal.reason in ("margin", "td_mode"):
                    self._note_margin_refusal(request, refusal)
                answer = self.dialect.error(refusal)
            finally:
                if lag:
                    self.ledger.legs = now
            for armed in self._rewrites:
                method, route, left, rewrite = armed
                if (
                    left > 0
                    and request.method == method
                    and _on_route(self.dialect, route, request)
                ):
                    armed[2] = left - 1
                    answer = rewrite(copy.deepcopy(answer[1]))
                    break
            if lost is not None and lost.late:
                request.late = lost.late
                return answer
            return answer if lost is None else self._fault_answer(lost)

    def _route(self, request: Request) -> Callable[[FakeVenue, Request], Payload] | None:
        """The handler of ``request``: its exact path, else a pattern whose ``*`` segments stand
        for one path segment each (an id: ``/orders/*``, ``/positions/*/leverage``)."""
        handler = self.dialect.routes.get((request.method, request.path))
        if handler is None:
            segments = request.path.split("/")
            for (method, pattern), candidate in self.dialect.routes.items():
                parts = pattern.split("/")
                if method != request.method or "*" not in parts or len(parts) != len(segments):
                    continue
                if all(p in ("*", seg) for p, seg in zip(parts, segments)):
                    handler = candidate
                    break
        if isinstance(handler, str):
            return getattr(self.dialect, handler)
        return handler

    def _fault_answer(self, fault: _Fault) -> tuple[int, Payload]:
        if fault.body is not None:
            return fault.status, fault.body
        if fault.status == 429:
            return self.dialect.rate_limited()
        return fault.status, f"<html><body>{fault.status} Bad Gateway</body></html>"


def _on_route(dialect: Dialect, route: str, request: Request) -> bool:
    """Whether ``request`` is on ``route``: ``Dialect.matches``, or a pattern whose ``*``
    segments stand for one path segment each (``/api/v1/orders/*``)."""
    if dialect.matches(route, request):
        return True
    parts, segments = route.split("/"), request.path.split("/")
    return (
        "*" in parts
        and len(parts) == len(segments)
        and all(p in ("*", seg) for p, seg in zip(parts, segments))
    )


def make_exchange(dialect: Dialect, base_url: str, module: Any = None, **config: Any) -> Any:
    """The real ccxt class of ``dialect`` with dummy credentials, every API URL pointed at the
    venue serving on ``base_url`` (also from another process: tests/venue_crash_child.py)."""
    if module is None:
        import ccxt  # type: ignore[import-untyped]

        module = ccxt
    options = {**dialect.options, **config.pop("options", {})}
    exchange = getattr(module, dialect.ccxt_name)(
        {
            **dialect.credentials,
            "enableRateLimit": False,
            "timeout": 3000,
            "options": options,
            **config,
        }
    )
    exchange.urls = {**exchange.urls, "api": _point(base_url, exchange.urls["api"])}
    dialect.prepare(exchange)
    return exchange


def _point(base_url: str, urls: Any) -> Any:
    if isinstance(urls, dict):
        return {k: _point(base_url, v) for k, v in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        return f"{base_url}/{parts.netloc}{parts.path}"
    return urls


class _Handler(BaseHTTPRequestHandler):
    venue: FakeVenue
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        host, _, path = parts.path.lstrip("/").partition("/")
        params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if raw.lstrip().startswith(("{", "[")):
                body = json.loads(raw)
                if isinstance(body, dict):
                    params.update(body)
                else:
                    params["_body"] = body
            else:
                params.update(parse_qsl(raw, keep_blank_values=True))
        request = Request(self.command, host, "/" + path, params, dict(self.headers.items()))
        status, payload = self.venue.handle(request)
        if request.late:
            time.sleep(request.late)  # the client may be gone: _QuietServer drops the error
        if isinstance(payload, bytes):  # a body of no text type (tests/test_order_payloads.py)
            data, ctype = payload, "application/octet-stream"
        elif isinstance(payload, str):
            data, ctype = payload.encode(), "text/html"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _serve


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


#: Coin-sized markets (Binance, Bybit, Bitget, BingX, Hyperliquid: a contract is one coin).
COIN_MARKETS = (
    Market("BTC", 50000.0, contract_size=1.0, lot=0.001),
    Market("ETH", 3000.0, contract_size=1.0, lot=0.01),
)
#: Contract-sized markets (KuCoin, OKX, Gate, MEXC, HTX: a contract is a fraction of a coin).
CONTRACT_MARKETS = (
    Market("BTC", 50000.0, contract_size=0.001, lot=1.0),
    Market("ETH", 3000.0, contract_size=0.01, lot=1.0),
)


@contextmanager
def running(
    dialect: Dialect, *, hedge: bool = False, **config: Any
) -> Iterator[tuple[FakeVenue, Any]]:
    """A started venue in ``dialect`` (one-way or hedge mode) and a ccxt exchange pointed at it."""
    with FakeVenue(dialect, Ledger(dialect.markets, hedge=hedge)) as venue:
        exchange = venue.make_exchange(**config)
        try:
            yield venue, exchange
        finally:
            session = getattr(exchange, "session", None)
            if session is not None and hasattr(session, "close"):
                session.close()
