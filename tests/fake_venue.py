"""A fake Binance USD-M futures venue over real HTTP, for testing ``CcxtClient`` with real ccxt.

``FakeBinanceUsdm`` is a small threaded HTTP server (``http.server.ThreadingHTTPServer`` on
``127.0.0.1``, an ephemeral port) speaking the part of Binance's USD-M futures REST dialect that
``ccxt.binanceusdm`` uses for the adapter's calls:

==========  ===========================  ======================================================
method      path                         what
==========  ===========================  ======================================================
GET         /fapi/v1/exchangeInfo        markets (``load_markets``)
GET         /fapi/v1/time                server time
GET         /fapi/v1/ticker/24hr         24 h ticker (``fetch_ticker``)
GET         /fapi/v1/klines              candles (``fetch_ohlcv``), synthesised around the price
GET  signed /fapi/v1/leverageBracket     maintenance-margin brackets (``fetch_positions``)
GET  signed /fapi/v3/positionRisk        positions (``fetch_positions``; v2 is served too)
POST signed /fapi/v1/order               new order: MARKET / LIMIT, ``reduceOnly``, GTX post-only,
                                         ``newClientOrderId``
GET  signed /fapi/v1/order               query order by ``orderId`` or ``origClientOrderId``
DELETE sig. /fapi/v1/order               cancel order (``cancel_order``), same keys
POST signed /fapi/v1/leverage            set leverage (``set_leverage``)
GET  signed /fapi/v1/positionSide/dual   position mode (``fetch_position_mode``): one-way
==========  ===========================  ======================================================

Signed endpoints require the ``X-MBX-APIKEY`` header and ``timestamp`` + ``signature`` parameters
but accept any signature. Errors are Binance's ``{"code": -NNNN, "msg": ...}`` with HTTP 400.
Any other path answers 404 and is recorded in ``venue.unexpected``.

State: one-way-mode positions per symbol (signed size, entry price), leverage per symbol, orders,
prices. Market orders fill at once at the current price, but — as Binance does when asked for a
quick acknowledgement — the creation answer reports them ``NEW`` with nothing filled yet
(``report_fill_on_create = True`` reports the fill); the fill shows through query order.
A limit order that crosses the price fills at once (a GTX post-only one is refused with -5022);
otherwise it rests until ``set_price`` moves the price through it.

Client order ids, as Binance documents them: ``newClientOrderId`` must match
``^[.A-Z:/a-z0-9_-]{1,36}$`` (else -4015 "Client order id is not valid."), is echoed as
``clientOrderId`` (one is generated when none is sent) and must be unique *among open orders*
(else -4116 "ClientOrderId is duplicated."): an id whose order already filled or was cancelled can
be used again. Query and cancel take ``orderId`` or ``origClientOrderId`` (the most recent order
with that id); neither is -1102, no such order -2013 "Order does not exist.".

Fault injection: ``answer_empty_positions(n)`` (the next *n* position lists are ``[]`` although
positions exist), ``fail_next(path, n, status)`` (HTTP 5xx, 429 — with Binance's body — or any
status/body), ``delay_next(path, seconds)`` (a slow answer, to trigger client timeouts).

Pointing ccxt at it (what ``venue.make_exchange()`` does): every entry of
``exchange.urls['api']`` is rewritten to ``<venue base URL><its original path>``, e.g.
``https://fapi.binance.com/fapi/v1`` -> ``http://127.0.0.1:PORT/fapi/v1``, so ccxt's requests keep
their Binance paths and nothing can reach the internet (unexpected spot/sapi calls hit the venue
and are recorded). Options: ``fetchCurrencies=False`` (otherwise ``load_markets`` calls the spot
wallet endpoint ``/sapi/v1/capital/config/getall``), ``enableRateLimit=False`` (no throttling
pauses), a short ``timeout``. ccxt picks its USD-M error table by URL prefix
(``https://fapi.binance.com/``), which a loopback URL does not match, so the USD-M table is merged
into the exchange's common table: error codes are then classified as they are in production.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

Payload = Any
Answer = tuple[int, Payload]

_CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

_INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}


@dataclass(frozen=True)
class MarketSpec:
    """One USD-M perpetual: its Binance id, assets and trading filters."""

    id: str
    base: str
    price: float
    price_precision: int
    quantity_precision: int
    tick_size: str
    step_size: str
    min_qty: str
    max_qty: str
    market_max_qty: str
    min_notional: str
    maint_margin_ratio: float = 0.004

    @property
    def symbol(self) -> str:
        """The ccxt unified symbol, e.g. ``BTC/USDT:USDT``."""
        return f"{self.base}/USDT:USDT"


DEFAULT_MARKETS = (
    MarketSpec("BTCUSDT", "BTC", 50000.0, 2, 3, "0.10", "0.001", "0.001", "1000", "120", "100"),
    MarketSpec("ETHUSDT", "ETH", 3000.0, 2, 3, "0.01", "0.001", "0.001", "10000", "2000", "20"),
    MarketSpec("SOLUSDT", "SOL", 150.0, 4, 0, "0.0100", "1", "1", "1000000", "100000", "5"),
)


class VenueError(Exception):
    """A Binance error answer: HTTP ``status`` with ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass
class _Fault:
    path: str
    method: str | None
    remaining: int
    status: int = 503
    body: Payload = None
    delay: float = 0.0


@dataclass
class _Position:
    amount: float = 0.0  # signed: > 0 long, < 0 short
    entry: float = 0.0
    updated: int = 0


@dataclass
class Request:
    """One request the venue received (failed on purpose or not)."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _num(x: float, decimals: int = 8) -> str:
    """Binance-style decimal string."""
    return f"{x:.{decimals}f}"


class FakeBinanceUsdm:
    """The fake venue. Use as a context manager or ``start()`` / ``stop()``.

    Controls take unified symbols (``BTC/USDT:USDT``) or Binance ids (``BTCUSDT``).
    """

    api_key = "fake-api-key"
    secret = "fake-secret"

    def __init__(self, markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS) -> None:
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.markets = {m.id: m for m in markets}
        self.prices = {m.id: m.price for m in markets}
        self.leverage = {m.id: 20 for m in markets}
        self.positions: dict[str, _Position] = {}
        self.phantoms: dict[str, float] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.unexpected: list[Request] = []
        self.report_fill_on_create = False
        self._faults: list[_Fault] = []
        self._empty_position_answers = 0
        self._next_order_id = 8_000_000_000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], tuple[bool, Callable[[dict[str, str]], Payload]]] = {
            ("GET", "/fapi/v1/ping"): (False, lambda p: {}),
            ("GET", "/fapi/v1/time"): (False, lambda p: {"serverTime": _now_ms()}),
            ("GET", "/fapi/v1/exchangeInfo"): (False, self._exchange_info),
            ("GET", "/fapi/v1/ticker/24hr"): (False, self._ticker_24hr),
            ("GET", "/fapi/v1/klines"): (False, self._klines),
            ("GET", "/fapi/v1/leverageBracket"): (True, self._leverage_brackets),
            ("GET", "/fapi/v2/positionRisk"): (True, lambda p: self._position_risk(p, v2=True)),
            ("GET", "/fapi/v3/positionRisk"): (True, lambda p: self._position_risk(p, v2=False)),
            ("POST", "/fapi/v1/order"): (True, self._new_order),
            ("GET", "/fapi/v1/order"): (True, self._query_order),
            ("DELETE", "/fapi/v1/order"): (True, self._cancel_order),
            ("POST", "/fapi/v1/leverage"): (True, self._set_leverage),
            ("GET", "/fapi/v1/positionSide/dual"): (True, lambda p: {"dualSidePosition": False}),
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBinanceUsdm:
        """Start serving on 127.0.0.1 (ephemeral port) in a daemon thread."""
        venue = self

        class Handler(_Handler):
            pass

        Handler.venue = venue
        server = _QuietServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (wakes delayed answers, waits at most 5 s for the server thread)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                raise RuntimeError("fake venue did not stop within 5 s")

    def __enter__(self) -> FakeBinanceUsdm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._server is not None, "venue not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------ ccxt

    def make_exchange(self, *, timeout_ms: int = 3000, **config: Any) -> Any:
        """A ``ccxt.binanceusdm`` with dummy keys, pointed at this venue (see module docstring)."""
        import ccxt  # type: ignore[import-untyped]

        options = {"fetchCurrencies": False, "adjustForTimeDifference": False}
        options.update(config.pop("options", {}))
        exchange = ccxt.binanceusdm(
            {
                "apiKey": self.api_key,
                "secret": self.secret,
                "enableRateLimit": False,
                "timeout": timeout_ms,
                "options": options,
                **config,
            }
        )
        self.point(exchange)
        return exchange

    def point(self, exchange: Any) -> None:
        """Rewrite ``exchange.urls['api']`` to this venue and use ccxt's USD-M error table."""
        api = {
            name: self.base_url + urlsplit(url).path for name, url in exchange.urls["api"].items()
        }
        exchange.urls = {**exchange.urls, "api": api}
        linear = exchange.exceptions.get("linear", {})
        exchange.exceptions = {
            **exchange.exceptions,
            "exact": {**exchange.exceptions["exact"], **linear.get("exact", {})},
            "broad": {**exchange.exceptions["broad"], **linear.get("broad", {})},
        }

    # ------------------------------------------------------------------ controls

    def _id(self, symbol: str) -> str:
        if symbol in self.markets:
            return symbol
        for m in self.markets.values():
            if m.symbol == symbol:
                return m.id
        raise KeyError(symbol)

    def set_price(self, symbol: str, price: float) -> None:
        """Move the price; resting limit orders the new price reaches fill at their price."""
        with self._lock:
            mid = self._id(symbol)
            self.prices[mid] = float(price)
            for order in list(self.orders.values()):
                if order["symbol"] != mid or order["status"] != "NEW":
                    continue
                limit = float(order["price"])
                if (order["side"] == "BUY" and price <= limit) or (
                    order["side"] == "SELL" and price >= limit
                ):
                    self._fill(order, limit)

    def open_position(
        self,
        symbol: str,
        side: str,
        contracts: float,
        entry_price: float | None = None,
        leverage: int | None = None,
    ) -> None:
        """Create (replace) a position directly, as if opened earlier."""
        with self._lock:
            mid = self._id(symbol)
            sign = 1.0 if side == "long" else -1.0
            entry = float(entry_price if entry_price is not None else self.prices[mid])
            self.positions[mid] = _Position(sign * float(contracts), entry, _now_ms())
            if leverage is not None:
                self.leverage[mid] = int(leverage)

    def remove_position(self, symbol: str) -> None:
        """The position disappears (closed by hand on the venue, or liquidated)."""
        with self._lock:
            self.positions.pop(self._id(symbol), None)

    def position_size(self, symbol: str) -> float:
        """Signed size of the position (0.0 when flat)."""
        with self._lock:
            pos = self.positions.get(self._id(symbol))
            return pos.amount if pos else 0.0

    def add_phantom(self, symbol: str, entry_price: float) -> None:
        """List a zero-size entry with an entry price for ``symbol`` (a closed leftover)."""
        with self._lock:
            self.phantoms[self._id(symbol)] = float(entry_price)

    def answer_empty_positions(self, n: int = 1) -> None:
        """Answer the next ``n`` position lists with ``[]`` although positions exist."""
        with self._lock:
            self._empty_position_answers = n

    def fail_next(
        self,
        path: str,
        n: int = 1,
        status: int = 503,
        *,
        method: str | None = None,
        body: Payload = None,
    ) -> None:
        """Fail the next ``n`` requests on ``path`` (any method unless given) with ``status``.

        Default bodies: Binance's ``-1003`` for 429, an HTML gateway page for other 5xx; pass a
        dict (sent as JSON) or a string to answer something else.
        """
        with self._lock:
            self._faults.append(_Fault(path, method, n, status, body))

    def delay_next(self, path: str, seconds: float, n: int = 1) -> None:
        """Answer the next ``n`` requests on ``path`` only after ``seconds`` (or at stop)."""
        with self._lock:
            self._faults.append(_Fault(path, None, n, status=0, delay=seconds))

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        """The requests received on ``path`` (optionally only with ``method``)."""
        with self._lock:
            return [r for r in self.requests if r.path == path and method in (None, r.method)]

    # ------------------------------------------------------------------ dispatch

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path == path and fault.method in (None, method) and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    def handle(self, method: str, path: str, params: dict[str, str], headers: Any) -> Answer:
        """Answer one request: ``(HTTP status, JSON payload or raw text)``; status 0: no answer."""
        request = Request(method, path, dict(params))
        route = self._routes.get((method, path))
        with self._lock:
            self.requests.append(request)
            if route is None:
                self.unexpected.append(request)
        fault = self._take_fault(method, path)
        if fault is not None and fault.delay:
            # The request is then processed as usual (an order sent in a request the client
            # gave up on is still placed), unless the venue is stopping: then no answer at all.
            if self._stopping.wait(fault.delay):
                return 0, None
            fault = None
        if fault is not None:
            if fault.body is not None:
                return fault.status, fault.body
            if fault.status == 429:
                return 429, {"code": -1003, "msg": "Too many requests; please use the websocket."}
            return fault.status, f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
        if route is None:
            return 404, {"code": -5000, "msg": f"Path {path}, Method {method} is invalid"}
        signed, answer = route
        signed_ok = "signature" in params and "timestamp" in params
        if signed and not (headers.get("X-MBX-APIKEY") and signed_ok):
            return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        try:
            with self._lock:
                return 200, answer(params)
        except VenueError as e:
            return e.status, {"code": e.code, "msg": e.msg}

    def _market(self, params: dict[str, str]) -> MarketSpec:
        market = self.markets.get(params.get("symbol", ""))
        if market is None:
            raise VenueError(-1121, "Invalid symbol.")
        return market

    # ------------------------------------------------------------------ public endpoints

    def _symbol_info(self, m: MarketSpec) -> dict[str, Any]:
        return {
            "symbol": m.id,
            "pair": m.id,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": m.base,
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": m.price_precision,
            "quantityPrecision": m.quantity_precision,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": m.tick_size,
                    "maxPrice": "4529764",
                    "tickSize": m.tick_size,
                },
                {
                    "filterType": "LOT_SIZE",
                    "stepSize": m.step_size,
                    "minQty": m.min_qty,
                    "maxQty": m.max_qty,
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "stepSize": m.step_size,
                    "minQty": m.min_qty,
                    "maxQty": m.market_max_qty,
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": m.min_notional},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }

    def _exchange_info(self, params: dict[str, str]) -> Payload:
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [self._symbol_info(m) for m in self.markets.values()],
        }

    def _ticker(self, m: MarketSpec) -> dict[str, Any]:
        last = self.prices[m.id]
        open_ = last * 0.98
        now = _now_ms()
        d = m.price_precision
        return {
            "symbol": m.id,
            "priceChange": _num(last - open_, d),
            "priceChangePercent": _num((last - open_) / open_ * 100, 3),
            "weightedAvgPrice": _num(last * 0.995, d),
            "lastPrice": _num(last, d),
            "lastQty": "0.010",
            "openPrice": _num(open_, d),
            "highPrice": _num(last * 1.01, d),
            "lowPrice": _num(last * 0.97, d),
            "volume": "12345.678",
            "quoteVolume": _num(12345.678 * last, 2),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    def _ticker_24hr(self, params: dict[str, str]) -> Payload:
        if "symbol" not in params:
            return [self._ticker(m) for m in self.markets.values()]
        return self._ticker(self._market(params))

    def _klines(self, params: dict[str, str]) -> Payload:
        m = self._market(params)
        interval = _INTERVALS_MS.get(params.get("interval", ""))
        if interval is None:
            raise VenueError(-1120, "Invalid interval.")
        limit = min(int(params.get("limit", "500")), 1500)
        last = self.prices[m.id]
        current_open = _now_ms() // interval * interval
        rows = []
        d = m.price_precision
        for i in range(limit):
            back = limit - 1 - i  # candles before the current one
            close = last * (1 + 0.002 * math.sin(back)) if back else last
            open_ = last * (1 + 0.002 * math.sin(back + 1))
            t = current_open - back * interval
            rows.append(
                [
                    t,
                    _num(open_, d),
                    _num(max(open_, close) * 1.001, d),
                    _num(min(open_, close) * 0.999, d),
                    _num(close, d),
                    "100.000",
                    t + interval - 1,
                    _num(100 * close, 2),
                    50,
                    "50.000",
                    _num(50 * close, 2),
                    "0",
                ]
            )
        return rows

    # ------------------------------------------------------------------ account endpoints

    def _leverage_brackets(self, params: dict[str, str]) -> Payload:
        return [
            {
                "symbol": m.id,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": 125,
                        "notionalCap": 5_000_000,
                        "notionalFloor": 0,
                        "maintMarginRatio": m.maint_margin_ratio,
                        "cum": 0.0,
                    },
                    {
                        "bracket": 2,
                        "initialLeverage": 50,
                        "notionalCap": 50_000_000,
                        "notionalFloor": 5_000_000,
                        "maintMarginRatio": 0.01,
                        "cum": 30_000.0,
                    },
                ],
            }
            for m in self.markets.values()
        ]

    def _position_row(self, m: MarketSpec, amount: float, entry: float, v2: bool) -> dict[str, Any]:
        mark = self.prices[m.id]
        lev = self.leverage[m.id]
        notional = amount * mark
        mmr = m.maint_margin_ratio
        if amount > 0:
            liquidation = entry * (1 - 1 / lev + mmr)
        elif amount < 0:
            liquidation = entry * (1 + 1 / lev - mmr)
        else:
            liquidation = 0.0
        margin = abs(notional) / lev
        pos = self.positions.get(m.id)
        row: dict[str, Any] = {
            "symbol": m.id,
            "positionSide": "BOTH",
            "positionAmt": _num(amount, m.quantity_precision),
            "entryPrice": _num(entry),
            "breakEvenPrice": _num(entry),
            "markPrice": _num(mark),
            "unRealizedProfit": _num(amount * (mark - entry)),
            "liquidationPrice": _num(liquidation),
            "isolatedMargin": "0",
            "notional": _num(notional),
            "marginAsset": "USDT",
            "isolatedWallet": "0",
            "initialMargin": _num(margin),
            "maintMargin": _num(abs(notional) * mmr),
            "positionInitialMargin": _num(margin),
            "openOrderInitialMargin": "0",
            "adl": 1,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": pos.updated if pos else 0,
        }
        if v2:
            row.update(
                {
                    "leverage": str(lev),
                    "marginType": "cross",
                    "isAutoAddMargin": "false",
                    "maxNotionalValue": "5000000",
                }
            )
        return row

    def _position_risk(self, params: dict[str, str], v2: bool) -> Payload:
        if self._empty_position_answers > 0:
            self._empty_position_answers -= 1
            return []
        wanted = params.get("symbol")
        rows = []
        for m in self.markets.values():
            if wanted is not None and m.id != wanted:
                continue
            pos = self.positions.get(m.id)
            if pos is not None and pos.amount != 0:
                rows.append(self._position_row(m, pos.amount, pos.entry, v2))
            elif m.id in self.phantoms:
                rows.append(self._position_row(m, 0.0, self.phantoms[m.id], v2))
        return rows

    def _set_leverage(self, params: dict[str, str]) -> Payload:
        m = self._market(params)
        try:
            lev = int(params.get("leverage", ""))
        except ValueError:
            raise VenueError(-1102, "Mandatory parameter 'leverage' was not sent.") from None
        if not 1 <= lev <= 125:
            raise VenueError(-4028, f"Leverage {lev} is not valid")
        self.leverage[m.id] = lev
        return {"leverage": lev, "maxNotionalValue": "5000000", "symbol": m.id}

    # ------------------------------------------------------------------ orders

    def _order_json(self, order: dict[str, Any], *, ack: bool = False) -> dict[str, Any]:
        m = self.markets[order["symbol"]]
        out = dict(order)
        if ack:
            out.update({"status": "NEW", "executedQty": "0", "cumQty": "0", "cumQuote": "0"})
            out["avgPrice"] = "0.00"
        out["origQty"] = _num(order["origQty"], m.quantity_precision)
        if not ack:
            out["executedQty"] = _num(order["executedQty"], m.quantity_precision)
            out["cumQty"] = out["executedQty"]
            out["cumQuote"] = _num(order["cumQuote"], 5)
            out["avgPrice"] = _num(order["avgPrice"], m.price_precision)
        out["price"] = _num(order["price"], m.price_precision)
        return out

    def _apply_fill(self, mid: str, signed_qty: float, price: float) -> None:
        pos = self.positions.setdefault(mid, _Position())
        old = pos.amount
        new = round(old + signed_qty, 8)
        if old == 0 or (old > 0) == (signed_qty > 0):
            pos.entry = (abs(old) * pos.entry + abs(signed_qty) * price) / abs(new)
        elif new != 0 and (new > 0) != (old > 0):
            pos.entry = price  # flipped through zero
        pos.amount = new
        pos.updated = _now_ms()
        if new == 0:
            del self.positions[mid]

    def _fill(self, order: dict[str, Any], price: float) -> None:
        qty = order["origQty"]
        sign = 1.0 if order["side"] == "BUY" else -1.0
        if order["reduceOnly"]:
            held = self.positions.get(order["symbol"])
            if held is None or (held.amount > 0) == (sign > 0) or abs(held.amount) < qty:
                order.update({"status": "EXPIRED", "updateTime": _now_ms()})
                return
        self._apply_fill(order["symbol"], sign * qty, price)
        order.update(
            {
                "status": "FILLED",
                "executedQty": qty,
                "cumQuote": qty * price,
                "avgPrice": price,
                "updateTime": _now_ms(),
            }
        )

    def _new_order(self, params: dict[str, str]) -> Payload:
        m = self._market(params)
        side = params.get("side", "")
        kind = params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise VenueError(-1117, "Invalid side.")
        if kind not in ("MARKET", "LIMIT"):
            raise VenueError(-1116, "Invalid orderType.")
        try:
            qty = float(params["quantity"])
        except (KeyError, ValueError):
            raise VenueError(-1102, "Mandatory parameter 'quantity' was not sent.") from None
        if qty <= 0:
            raise VenueError(-4003, "Quantity less than or equal to zero.")
        client_id = params.get("newClientOrderId")
        if client_id is not None:
            if not _CLIENT_ORDER_ID.match(client_id):
                raise VenueError(-4015, "Client order id is not valid.")
            if any(
                o["clientOrderId"] == client_id and o["status"] == "NEW"
                for o in self.orders.values()
            ):
                raise VenueError(-4116, "ClientOrderId is duplicated.")
        steps = qty / float(m.step_size)
        if abs(steps - round(steps)) > 1e-6:
            raise VenueError(-1111, "Precision is over the maximum defined for this asset.")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        sign = 1.0 if side == "BUY" else -1.0
        last = self.prices[m.id]
        if reduce_only:
            held = self.positions.get(m.id)
            if held is None or (held.amount > 0) == (sign > 0) or abs(held.amount) < qty - 1e-12:
                raise VenueError(-2022, "ReduceOnly Order is rejected.")
        tif = ""
        price = 0.0
        crosses = True
        if kind == "LIMIT":
            tif = params.get("timeInForce", "")
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise VenueError(-1102, "Mandatory parameter 'timeInForce' was not sent.")
            try:
                price = float(params["price"])
            except (KeyError, ValueError):
                raise VenueError(-1102, "Mandatory parameter 'price' was not sent.") from None
            crosses = (side == "BUY" and price >= last) or (side == "SELL" and price <= last)
            if crosses and tif == "GTX":
                raise VenueError(
                    -5022,
                    "Due to the order could not be executed as maker, the Post Only order will "
                    "be rejected. The order will not be recorded in the order history",
                )
        if not reduce_only and qty * (price or last) < float(m.min_notional):
            raise VenueError(
                -4164,
                f"Order's notional must be no smaller than {m.min_notional} "
                "(unless you choose reduce only).",
            )
        now = _now_ms()
        self._next_order_id += 1
        order: dict[str, Any] = {
            "orderId": self._next_order_id,
            "symbol": m.id,
            "status": "NEW",
            "clientOrderId": client_id if client_id is not None else f"fake{self._next_order_id}",
            "price": price,
            "avgPrice": 0.0,
            "origQty": qty,
            "executedQty": 0.0,
            "cumQuote": 0.0,
            "timeInForce": tif or "GTC",
            "type": kind,
            "reduceOnly": reduce_only,
            "closePosition": False,
            "side": side,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": kind,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": now,
            "updateTime": now,
        }
        self.orders[order["orderId"]] = order
        if crosses:
            self._fill(order, last)
        ack = kind == "MARKET" and not self.report_fill_on_create
        return self._order_json(order, ack=ack)

    def _find_order(self, params: dict[str, str]) -> dict[str, Any]:
        m = self._market(params)
        order: dict[str, Any] | None = None
        if "orderId" in params:
            try:
                order = self.orders.get(int(params["orderId"]))
            except ValueError:
                order = None
        elif "origClientOrderId" in params:
            wanted = params["origClientOrderId"]
            matches = [
                o
                for o in self.orders.values()
                if o["clientOrderId"] == wanted and o["symbol"] == m.id
            ]
            order = matches[-1] if matches else None
        else:
            raise VenueError(
                -1102, "Param orderId or origClientOrderId must be sent, but both were empty/null!"
            )
        if order is None or order["symbol"] != m.id:
            raise VenueError(-2013, "Order does not exist.")
        return order

    def orders_with_client_id(self, client_order_id: str) -> list[dict[str, Any]]:
        """Every order placed with ``client_order_id`` (as stored), oldest first."""
        with self._lock:
            return [o for o in self.orders.values() if o["clientOrderId"] == client_order_id]

    def _query_order(self, params: dict[str, str]) -> Payload:
        return self._order_json(self._find_order(params))

    def _cancel_order(self, params: dict[str, str]) -> Payload:
        try:
            order = self._find_order(params)
        except VenueError:
            raise VenueError(-2011, "Unknown order sent.") from None
        if order["status"] != "NEW":
            raise VenueError(-2011, "Unknown order sent.")
        order.update({"status": "CANCELED", "updateTime": _now_ms()})
        return self._order_json(order)

    def open_orders(self, symbol: str) -> list[dict[str, Any]]:
        """Resting orders of ``symbol`` (as stored)."""
        with self._lock:
            mid = self._id(symbol)
            return [o for o in self.orders.values() if o["symbol"] == mid and o["status"] == "NEW"]


class _Handler(BaseHTTPRequestHandler):
    """Routes HTTP requests to the venue; JSON in/out, keep-alive, quiet."""

    venue: FakeBinanceUsdm
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 10  # an idle or stuck connection is dropped rather than kept forever

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length).decode("utf-8", "replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        status, payload = self.venue.handle(self.command, parts.path, params, self.headers)
        if status == 0:  # venue stopping: drop the connection unanswered
            self.close_connection = True
            return
        if isinstance(payload, str):
            data, ctype = payload.encode(), "text/html"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _serve


class _QuietServer(ThreadingHTTPServer):
    """Does not print tracebacks for clients that went away (timeouts, closed sessions)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@contextmanager
def running_venue(*, timeout_ms: int = 3000) -> Iterator[tuple[FakeBinanceUsdm, Any]]:
    """Start a venue and a ``ccxt.binanceusdm`` pointed at it; stop both on exit.

    The exchange's HTTP timeout is ``timeout_ms``, so a stuck venue fails a call instead of
    stalling it.
    """
    venue = FakeBinanceUsdm().start()
    try:
        exchange = venue.make_exchange(timeout_ms=timeout_ms)
        try:
            yield venue, exchange
        finally:
            session = getattr(exchange, "session", None)
            if session is not None:
                session.close()
    finally:
        venue.stop()
