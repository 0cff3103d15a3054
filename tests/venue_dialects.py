"""The ten venues' REST dialects over ``venue_sim.Ledger``: what the real ccxt classes read.

Each dialect answers the requests its ccxt class sends for ``CcxtClient``'s calls (markets,
ticker, candles, positions, leverage, position mode, orders) with payloads in the venue's
documented format — the field names and envelopes of the venue's REST API reference — in one-way
or hedge mode, and refuses what the venue refuses (an order without its leg in hedge mode, a
reduce-only order that would not reduce) with the venue's error body. Entries of a symbol in
``venue.listed_late`` are listed under a market id ccxt did not load (a listing after start).

``SCOPES`` (opt-in, at the end) holds, for the venues whose position list covers one scope of
markets at a time (Bybit, Bitget, Gate, HTX, BingX, Hyperliquid), one market of a second
scope and how ccxt reads that scope's list; ``scoped(key)`` builds the dialect and markets
with it. Without it every dialect lists exactly its default ``markets``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from venue_sim import (
    COIN_MARKETS,
    CONTRACT_MARKETS,
    Dialect,
    FakeVenue,
    Market,
    Order,
    Payload,
    Request,
    VenueRefusal,
    now_ms,
)


def _s(x: float | None, decimals: int = 8) -> str:
    """A decimal string as venues send numbers."""
    if x is None:
        return ""
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return text or "0"


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def _candles(venue: FakeVenue, symbol: str, limit: int, step_ms: int = 3_600_000) -> list[Any]:
    """``limit`` flat candles ending at the current price (time, o, h, l, c, volume)."""
    price = venue.ledger.prices[symbol]
    start = (now_ms() // step_ms) * step_ms - (limit - 1) * step_ms
    return [(start + i * step_ms, price, price, price, price, 10.0) for i in range(limit)]


def _late(venue: FakeVenue, symbol: str) -> bool:
    return symbol in venue.listed_late


class Bare(dict[str, Any]):
    """An answer the venue sends as it is, without its usual envelope (``Dialect.ok``)."""


def _joined_id(market: Market, default: str, joint: str, usdc: str | None = None) -> str:
    """A venue id of ``market`` for venues that join base and quote: ``default`` for a USDT
    market; ``BASE<joint>USD`` for a coin-margined one; ``BASE<usdc>`` for a USDC-settled one
    (when the venue names those so: Bybit's and Bitget's ``BTCPERP``)."""
    if market.inverse:
        return f"{market.base}{joint}{market.quote}"
    if usdc is not None and market.settle_coin == "USDC":
        return market.base + usdc
    return default


class _Base(Dialect):
    markets = COIN_MARKETS
    #: unified symbol -> venue market id
    ids: ClassVar[dict[str, str]] = {}

    def mid(self, venue: FakeVenue, symbol: str) -> str:
        """The venue id of ``symbol`` (a late listing gets an id ccxt cannot map)."""
        base = symbol.split("/")[0]
        if _late(venue, symbol):
            return self.late_id(base)
        market = venue.ledger.markets.get(symbol)
        return self.market_id(base) if market is None else self.market_id_of(market)

    def market_id(self, base: str) -> str:
        raise NotImplementedError

    def market_id_of(self, market: Market) -> str:
        """The venue id of ``market``: ``market_id`` of its base; a dialect whose markets of
        another scope (``SCOPES``) have ids of their own overrides this for them."""
        return self.market_id(market.base)

    def late_id(self, base: str) -> str:
        return self.market_id("NEW" + base)

    def symbol_of(self, venue: FakeVenue, market_id: str) -> str:
        for m in venue.ledger.markets.values():
            if self.market_id_of(m) == market_id:
                return m.symbol
        raise VenueRefusal("symbol", f"unknown market {market_id}")

    def market_of(self, venue: FakeVenue, market_id: str) -> Market:
        return venue.ledger.markets[self.symbol_of(venue, market_id)]

    def symbol_in(self, venue: FakeVenue, market_id: str, inverse: bool) -> str:
        """The symbol of ``market_id`` on a route of linear (``inverse`` False) or of
        coin-margined markets: a market of the other kind is unknown there."""
        symbol = self.symbol_of(venue, market_id)
        if venue.ledger.markets[symbol].inverse != inverse:
            raise VenueRefusal("symbol", f"unknown market {market_id}")
        return symbol

    def of_kind(self, venue: FakeVenue, inverse: bool) -> list[Market]:
        return [m for m in venue.ledger.markets.values() if m.inverse == inverse]

    def _ticker(self, venue: FakeVenue, market_id: str) -> Payload:
        """One market's ticker in the venue's format (dialects with a tickers endpoint)."""
        raise NotImplementedError

    def every_ticker(self, venue: FakeVenue, markets: list[Market] | None = None) -> list[Payload]:
        """Every listed market's ticker (of ``markets`` when given: one scope's), as a tickers
        request without a symbol answers."""
        listed = list(venue.ledger.markets.values()) if markets is None else markets
        return [self._ticker(venue, self.market_id_of(m)) for m in listed]

    def ticker_or_all(
        self, venue: FakeVenue, r: Request, param: str, markets: list[Market] | None = None
    ) -> Payload:
        """The ticker of the market ``r`` names in ``param``, or every market's (a list; of
        ``markets`` when given)."""
        if param not in r.params:
            return self.every_ticker(venue, markets)
        return self._ticker(venue, r.params[param])


# ============================================================================ Binance USD-M


class Binance(_Base):
    """Binance USD-M futures (``/fapi``): errors ``{"code": -NNNN, "msg": ...}``."""

    ccxt_name = "binanceusdm"
    positions_route = "/fapi/v3/positionRisk"
    order_route = "/fapi/v1/order"
    options: ClassVar[dict[str, Any]] = {
        "fetchCurrencies": False,
        "adjustForTimeDifference": False,
    }
    codes: ClassVar[dict[str, tuple[int, str]]] = {
        "mode": (-4061, "Order's position side does not match user's setting."),
        "reduce": (-2022, "ReduceOnly Order is rejected."),
        "amount": (-1111, "Precision is over the maximum defined for this asset."),
        "symbol": (-1121, "Invalid symbol."),
        "order": (-2013, "Order does not exist."),
        "unknown_order": (-2011, "Unknown order sent."),
    }
    #: /fapi/v3/positionRisk carries no leverage (docs/ccxt-client.md, Limits).
    reports_leverage = False

    def market_id(self, base: str) -> str:
        return base + "USDT"

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, (-1102, refusal.message))
        return 400, {"code": code, "msg": msg}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, {"code": -1003, "msg": "Too many requests; current limit is 2400 per minute."}

    def prepare(self, exchange: Any) -> None:
        linear = exchange.exceptions.get("linear", {})
        exchange.exceptions = {
            **exchange.exceptions,
            "exact": {**exchange.exceptions["exact"], **linear.get("exact", {})},
            "broad": {**exchange.exceptions["broad"], **linear.get("broad", {})},
        }

    def exchange_info(self, venue: FakeVenue, r: Request) -> Payload:
        symbols = []
        for m in venue.ledger.markets.values():
            symbols.append(
                {
                    "symbol": self.market_id(m.base),
                    "pair": self.market_id(m.base),
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "baseAsset": m.base,
                    "quoteAsset": "USDT",
                    "marginAsset": "USDT",
                    "pricePrecision": 2,
                    "quantityPrecision": 3,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "triggerProtect": "0.0500",
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "1000000",
                         "tickSize": "0.10"},
                        {"filterType": "LOT_SIZE", "minQty": _s(m.lot), "maxQty": "1000",
                         "stepSize": _s(m.lot)},
                        {"filterType": "MARKET_LOT_SIZE", "minQty": _s(m.lot), "maxQty": "120",
                         "stepSize": _s(m.lot)},
                        {"filterType": "MIN_NOTIONAL", "notional": "5"},
                    ],
                    "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                }
            )  # fmt: skip
        return {"timezone": "UTC", "serverTime": now_ms(), "assets": [], "symbols": symbols}

    def ticker(self, venue: FakeVenue, r: Request) -> Payload:
        """One symbol's 24 h ticker, or every symbol's (a list) without ``symbol``."""
        return self.ticker_or_all(venue, r, "symbol")

    def _ticker(self, venue: FakeVenue, market_id: str) -> Payload:
        p = _s(venue.ledger.prices[self.symbol_of(venue, market_id)])
        return {"symbol": market_id, "lastPrice": p, "openPrice": p, "highPrice": p,
                "lowPrice": p, "volume": "10", "quoteVolume": "100", "closeTime": now_ms(),
                "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": p}  # fmt: skip

    def klines(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        rows = _candles(venue, symbol, int(r.params.get("limit", 100)))
        return [[t, _s(o), _s(h), _s(lo), _s(c), _s(v), t + 3_599_999, "0", 1, "0", "0", "0"]
                for t, o, h, lo, c, v in rows]  # fmt: skip

    def brackets(self, venue: FakeVenue, r: Request) -> Payload:
        return [
            {"symbol": self.market_id(m.base), "brackets": [
                {"bracket": 1, "initialLeverage": 125, "notionalCap": 5_000_000,
                 "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}]}
            for m in venue.ledger.markets.values()
        ]  # fmt: skip

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        if venue.take_empty():
            return []
        ledger = venue.ledger
        rows = []
        for symbol, leg, held in ledger.held():
            amount = held.contracts if leg == "long" else -held.contracts
            rows.append(self._row(venue, symbol, leg, amount, held.entry))
        if ledger.hedge:  # Binance lists the idle leg of a symbol in hedge mode with size 0
            for symbol, leg, _held in ledger.held():
                other = "short" if leg == "long" else "long"
                if ledger.size(symbol, other) == 0:
                    rows.append(self._row(venue, symbol, other, 0.0, 0.0))
        return rows

    def _row(self, venue: FakeVenue, symbol: str, leg: str, amount: float, entry: float) -> Any:
        mark = venue.ledger.prices[symbol]
        side = ("LONG" if leg == "long" else "SHORT") if venue.ledger.hedge else "BOTH"
        return {
            "symbol": self.mid(venue, symbol), "positionSide": side, "positionAmt": _s(amount),
            "entryPrice": _s(entry), "breakEvenPrice": _s(entry), "markPrice": _s(mark),
            "unRealizedProfit": _s(amount * (mark - entry)), "liquidationPrice": "0",
            "isolatedMargin": "0", "notional": _s(amount * mark), "marginAsset": "USDT",
            "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
            "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": 0,
            "bidNotional": "0", "askNotional": "0", "updateTime": now_ms(),
        }  # fmt: skip

    def dual(self, venue: FakeVenue, r: Request) -> Payload:
        return {"dualSidePosition": venue.ledger.hedge}

    def leverage(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        venue.ledger.set_lev(symbol, float(r.params["leverage"]))
        return {"leverage": int(r.params["leverage"]), "maxNotionalValue": "1000000",
                "symbol": r.params["symbol"]}  # fmt: skip

    def new_order(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_of(venue, p["symbol"])
        position_side = p.get("positionSide", "BOTH")
        if venue.ledger.hedge and position_side == "BOTH":
            raise VenueRefusal("mode", "hedge mode needs positionSide")
        if not venue.ledger.hedge and position_side != "BOTH":
            raise VenueRefusal("mode", "one-way mode takes no positionSide")
        if venue.ledger.hedge and "reduceOnly" in p:
            raise VenueRefusal("param", "Parameter 'reduceOnly' sent when not required.")
        leg = position_side.lower() if venue.ledger.hedge else None
        side = p["side"].lower()
        reduce = _truthy(p.get("reduceOnly")) or (
            leg is not None and (leg == "long") != (side == "buy")
        )
        order = venue.ledger.place(
            symbol, side, float(p["quantity"]), reduce_only=reduce, leg=leg,
            kind=p["type"].lower(), price=float(p["price"]) if "price" in p else None,
            client_id=p.get("newClientOrderId"),
        )  # fmt: skip
        return self._order(venue, order, ack=True)

    def _order(self, venue: FakeVenue, o: Order, ack: bool = False) -> Payload:
        status = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED"}[o.status]
        filled, avg = (0.0, 0.0) if ack else (o.filled, o.average or 0.0)
        return {
            "orderId": int(o.id), "symbol": self.mid(venue, o.symbol),
            "status": "NEW" if ack else status, "clientOrderId": o.client_id or f"x-{o.id}",
            "price": _s(o.price or 0), "avgPrice": _s(avg), "origQty": _s(o.amount),
            "executedQty": _s(filled), "cumQty": _s(filled), "cumQuote": _s(filled * avg),
            "timeInForce": "GTC", "type": o.kind.upper(), "reduceOnly": o.reduce_only,
            "closePosition": False, "side": o.side.upper(),
            "positionSide": o.leg.upper() if venue.ledger.hedge else "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "origType": o.kind.upper(), "time": o.created, "updateTime": now_ms(),
        }  # fmt: skip

    def query_order(self, venue: FakeVenue, r: Request) -> Payload:
        o = venue.ledger.find(r.params.get("orderId"), r.params.get("origClientOrderId"))
        if o is None:
            raise VenueRefusal("order", "Order does not exist.")
        return self._order(venue, o)

    def cancel_order(self, venue: FakeVenue, r: Request) -> Payload:
        o = venue.ledger.find(r.params.get("orderId"), r.params.get("origClientOrderId"))
        if o is None or o.status != "open":
            raise VenueRefusal("unknown_order", "Unknown order sent.")
        return self._order(venue, venue.ledger.cancel(o.id))

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/fapi/v1/exchangeInfo"): "exchange_info",
        ("GET", "/fapi/v1/ticker/24hr"): "ticker",
        ("GET", "/fapi/v1/klines"): "klines",
        ("GET", "/fapi/v1/leverageBracket"): "brackets",
        ("GET", "/fapi/v3/positionRisk"): "positions",
        ("GET", "/fapi/v1/positionSide/dual"): "dual",
        ("POST", "/fapi/v1/leverage"): "leverage",
        ("POST", "/fapi/v1/order"): "new_order",
        ("GET", "/fapi/v1/order"): "query_order",
        ("DELETE", "/fapi/v1/order"): "cancel_order",
    }


DIALECTS: dict[str, type[Dialect]] = {"binanceusdm": Binance}


# ============================================================================ KuCoin futures


class KuCoin(_Base):
    """KuCoin futures (classic account): envelope ``{"code": "200000", "data": ...}``.

    A symbol's margin mode is the account's (``ledger.cross``); an order names its own in
    ``marginMode`` and KuCoin takes ``ISOLATED`` when it names none: an order whose mode is not
    the symbol's is refused with 330005 (ccxt issue 25592), and ``/api/v2/position/
    getMarginMode`` tells the symbol's mode."""

    ccxt_name = "kucoinfutures"
    markets = CONTRACT_MARKETS
    positions_route = "/api/v1/positions"
    order_route = "/api/v1/orders"
    credentials: ClassVar[dict[str, Any]] = {"apiKey": "key", "secret": "secret", "password": "pw"}
    codes: ClassVar[dict[str, tuple[str, str]]] = {
        "mode": ("330011", "the order's position side does not match the current position mode"),
        "margin": (
            "330005",
            "The order's margin mode does not match the selected one. Please switch and try again.",
        ),
        "reduce": ("300009", "No open positions to close."),
        "amount": ("100001", "The quantity is invalid."),
        "symbol": ("100001", "Contract parameter invalid."),
        "order": ("100004", "The order does not exist."),
        "cancel": ("100004", "The order cannot be canceled."),
    }

    def market_id(self, base: str) -> str:
        return ("XBT" if base == "BTC" else base) + "USDTM"

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}  # no spot wallet calls

    def ok(self, payload: Payload) -> Payload:
        return {"code": "200000", "data": payload}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, ("100001", refusal.message))
        return 200, {"code": code, "msg": msg}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, {"code": "429000", "msg": "Too Many Requests"}

    def contracts(self, venue: FakeVenue, r: Request) -> Payload:
        return [
            {
                "symbol": self.market_id(m.base), "rootSymbol": "USDT", "type": "FFWCSX",
                "firstOpenDate": 1585555200000,
                "baseCurrency": "XBT" if m.base == "BTC" else m.base,
                "quoteCurrency": "USDT", "settleCurrency": "USDT", "maxOrderQty": 1000000,
                "maxPrice": 1000000.0, "lotSize": m.lot, "tickSize": 0.1,
                "indexPriceTickSize": 0.01, "multiplier": m.contract_size,
                "initialMargin": 0.008, "maintainMargin": 0.004, "maxRiskLimit": 100000,
                "minRiskLimit": 100000, "riskStep": 50000, "makerFeeRate": 0.0002,
                "takerFeeRate": 0.0006, "takerFixFee": 0.0, "makerFixFee": 0.0,
                "isDeleverage": True, "isQuanto": True, "isInverse": False, "markMethod":
                "FairPrice", "fairMethod": "FundingRate", "status": "Open",
                "lastTradePrice": venue.ledger.prices[m.symbol],
                "markPrice": venue.ledger.prices[m.symbol], "maxLeverage": 125,
                "expireDate": None, "nextFundingRateTime": 21_600_000, "fundingFeeRate": 0.0001,
            }
            for m in venue.ledger.markets.values()
        ]  # fmt: skip

    def account_mode(self, venue: FakeVenue, r: Request) -> Payload:
        return {"selfAccountMode": "CLASSIC"}

    def position_mode(self, venue: FakeVenue, r: Request) -> Payload:
        return {"positionMode": 1 if venue.ledger.hedge else 0}

    def ticker(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        price = _s(venue.ledger.prices[symbol])
        return {"sequence": 1, "symbol": r.params["symbol"], "side": "buy", "size": 1,
                "price": price, "bestBidSize": 10, "bestBidPrice": price, "bestAskPrice": price,
                "tradeId": "1", "bestAskSize": 10, "ts": now_ms() * 1_000_000}  # fmt: skip

    def klines(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        minutes = int(r.params.get("granularity", 60))
        count = max(1, (int(r.params["to"]) - int(r.params["from"])) // (minutes * 60_000))
        return [list(c) for c in _candles(venue, symbol, min(count, 200), minutes * 60_000)]

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        if venue.take_empty():
            return []
        out = []
        for symbol, leg, held in venue.ledger.held():
            qty = held.contracts if leg == "long" else -held.contracts
            mark = venue.ledger.prices[symbol]
            lev = venue.ledger.lev(symbol, leg)
            out.append({
                "id": f"pos-{symbol}-{leg}", "symbol": self.mid(venue, symbol),
                "crossMode": venue.ledger.cross, "marginMode": "CROSS" if venue.ledger.cross
                else "ISOLATED", "positionSide": leg.upper() if venue.ledger.hedge else "BOTH",
                "leverage": lev, "realLeverage": lev, "isOpen": True, "currentQty": qty,
                "currentCost": qty * held.entry * 0.001, "avgEntryPrice": held.entry,
                "markPrice": mark, "markValue": qty * mark * 0.001, "liquidationPrice": 0,
                "settleCurrency": "USDT", "openingTimestamp": held.opened,
                "currentTimestamp": now_ms(), "unrealisedPnl": 0.0, "realisedPnl": 0.0,
                "posCost": 0.0, "posInit": 0.0, "posMaint": 0.0, "maintMarginReq": 0.004,
            })  # fmt: skip
        return out

    def leverage(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        venue.ledger.set_lev(symbol, float(r.params["leverage"]))
        return True

    def margin_mode(self, venue: FakeVenue, r: Request) -> Payload:
        self.symbol_of(venue, r.params["symbol"])
        mode = "CROSS" if venue.ledger.cross else "ISOLATED"
        return {"symbol": r.params["symbol"], "marginMode": mode}

    def new_order(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_of(venue, p["symbol"])
        if (p.get("marginMode", "ISOLATED") == "CROSS") != venue.ledger.cross:
            raise VenueRefusal("margin", "the order's margin mode is not the symbol's")
        position_side = p.get("positionSide", "BOTH")
        if venue.ledger.hedge and position_side == "BOTH":
            raise VenueRefusal("mode", "positionSide needed")
        if not venue.ledger.hedge and position_side != "BOTH":
            raise VenueRefusal("mode", "no positionSide in one-way mode")
        leg = position_side.lower() if venue.ledger.hedge else None
        side = p["side"]
        reduce = _truthy(p.get("reduceOnly")) or (
            leg is not None and (leg == "long") != (side == "buy")
        )
        order = venue.ledger.place(
            symbol, side, float(p["size"]), reduce_only=reduce, leg=leg, kind=p["type"],
            price=float(p["price"]) if p.get("price") else None, client_id=p.get("clientOid"),
            leverage=float(p["leverage"]),
        )  # fmt: skip
        if not reduce and not venue.ledger.cross:
            venue.ledger.set_lev(symbol, float(p["leverage"]), order.leg)  # isolated: the order's
        return {"orderId": order.id, "clientOid": p.get("clientOid")}

    def order_by_client_oid(self, venue: FakeVenue, r: Request) -> Payload:
        o = venue.ledger.find(client_id=r.params["clientOid"])
        return None if o is None else self._order_row(venue, o)  # KuCoin: data null

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        o = venue.ledger.find(r.path.rsplit("/", 1)[-1])
        if o is None or o.status != "open":
            raise VenueRefusal("cancel", "The order cannot be canceled.")
        venue.ledger.cancel(o.id)
        return {"cancelledOrderIds": [o.id]}

    def order(self, venue: FakeVenue, r: Request) -> Payload:
        o = venue.ledger.find(r.path.rsplit("/", 1)[-1])
        if o is None:
            raise VenueRefusal("order", "The order does not exist.")
        return self._order_row(venue, o)

    def _order_row(self, venue: FakeVenue, o: Order) -> Payload:
        done = o.status != "open"
        size = venue.ledger.markets[o.symbol].contract_size
        return {
            "id": o.id, "symbol": self.mid(venue, o.symbol), "type": o.kind, "side": o.side,
            "price": _s(o.price or 0), "size": o.amount, "value": "0",
            "dealValue": _s(o.filled * (o.average or 0) * size),
            "dealSize": o.filled, "stp": "", "stop": "", "stopPriceType": "",
            "stopTriggered": False, "stopPrice": None, "timeInForce": "GTC", "postOnly": False,
            "hidden": False, "iceberg": False, "leverage": _s(o.leverage or 1),
            "forceHold": False, "closeOrder": False, "visibleSize": None,
            "clientOid": o.client_id, "remark": None, "tags": None, "isActive": not done,
            "cancelExist": o.status == "canceled", "createdAt": o.created, "updatedAt": now_ms(),
            "endAt": now_ms() if done else None, "orderTime": o.created * 1_000_000,
            "settleCurrency": "USDT", "status": "done" if done else "open",
            "filledSize": o.filled, "filledValue": "0", "reduceOnly": o.reduce_only,
            "avgDealPrice": _s(o.average or 0),
        }  # fmt: skip

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/ua/v1/account/mode"): "account_mode",
        ("GET", "/api/v3/margin/symbols"): lambda v, r: {"timestamp": now_ms(), "items": []},
        ("GET", "/api/v1/isolated/symbols"): lambda v, r: [],
        ("GET", "/api/v1/hf/accounts/opened"): lambda v, r: False,
        ("GET", "/api/v1/contracts/active"): "contracts",
        ("GET", "/api/v2/position/getPositionMode"): "position_mode",
        ("GET", "/api/v2/position/getMarginMode"): "margin_mode",
        ("GET", "/api/v1/ticker"): "ticker",
        ("GET", "/api/v1/kline/query"): "klines",
        ("GET", "/api/v1/positions"): "positions",
        ("POST", "/api/v2/changeCrossUserLeverage"): "leverage",
        ("POST", "/api/v1/orders"): "new_order",
        ("GET", "/api/v1/orders/byClientOid"): "order_by_client_oid",
        ("GET", "/api/v1/orders/*"): "order",
        ("DELETE", "/api/v1/orders/*"): "cancel",
    }


DIALECTS["kucoinfutures"] = KuCoin


# ============================================================================ Bybit (v5, linear)


class Bybit(_Base):
    """Bybit v5 unified account, linear perpetuals: ``{"retCode": 0, "retMsg": "OK", "result"}``.

    One-way mode is ``positionIdx`` 0; hedge mode names the leg with ``positionIdx`` 1 (long) or
    2 (short) on every entry and every order. A position list by ``settleCoin`` holds only open
    positions (Bybit lists zero-size entries only when asked for one ``symbol``).

    Every request names its ``category``. ``linear`` holds the USDT perpetuals (``BTCUSDT``) and,
    when a ledger has them (``SCOPES``), USDC ones (``BTCPERP``, settled in USDC); ``inverse``
    holds coin-margined perpetuals (``BTCUSD``, contracts of 1 USD). A linear position list
    without ``symbol`` needs ``settleCoin`` and lists that coin's positions only; an inverse one
    lists the inverse positions. Lists come in pages of ``limit`` entries (1-200, default 20)
    with an opaque ``nextPageCursor`` while more follow, passed back as ``cursor``.
    """

    ccxt_name = "bybit"
    positions_route = "/v5/position/list"
    order_route = "/v5/order/create"
    options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["linear"]}}
    codes: ClassVar[dict[str, tuple[int, str]]] = {
        "mode": (10001, "position idx not match position mode"),
        "reduce": (110017, "Reduce-only rule not satisfied"),
        "amount": (10001, "The number of contracts exceeds minimum limit allowed"),
        "symbol": (10001, "params error: symbol invalid"),
        "order": (110001, "order not exists or too late to cancel"),
        "leverage": (110043, "leverage not modified"),
        "client_id": (110072, "OrderLinkedID is duplicate"),
    }

    def market_id(self, base: str) -> str:
        return base + "USDT"

    def market_id_of(self, market: Market) -> str:
        return _joined_id(market, self.market_id(market.base), "", "PERP")

    @staticmethod
    def category_of(market: Market) -> str:
        return "inverse" if market.inverse else "linear"

    def _categories(self, venue: FakeVenue) -> set[str]:
        """The categories of the ledger's markets (``linear`` alone unless a scope adds one)."""
        return {"linear"} | {self.category_of(m) for m in venue.ledger.markets.values()}

    def _in(self, venue: FakeVenue, category: Any) -> list[Market]:
        return [m for m in venue.ledger.markets.values() if self.category_of(m) == category]

    def _check_category(self, venue: FakeVenue, symbol: str, r: Request) -> None:
        """A symbol is found in its own category only."""
        if self.category_of(venue.ledger.markets[symbol]) != r.params.get("category"):
            raise VenueRefusal("symbol", "params error: symbol invalid")

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def ok(self, payload: Payload) -> Payload:
        return {"retCode": 0, "retMsg": "OK", "result": payload, "retExtInfo": {},
                "time": now_ms()}  # fmt: skip

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, (10001, refusal.message))
        return 200, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
                     "time": now_ms()}  # fmt: skip

    def rate_limited(self) -> tuple[int, Payload]:
        return 200, {"retCode": 10006, "retMsg": "Too many visits!", "result": {},
                     "retExtInfo": {}, "time": now_ms()}  # fmt: skip

    def instruments(self, venue: FakeVenue, r: Request) -> Payload:
        category = r.params.get("category", "linear")
        if r.params.get("status") == "PreLaunch":
            return {"category": category, "list": [], "nextPageCursor": ""}
        rows = [
            {
                "symbol": self.market_id_of(m),
                "contractType": "InversePerpetual" if m.inverse else "LinearPerpetual",
                "status": "Trading", "baseCoin": m.base, "quoteCoin": m.quote,
                "settleCoin": m.settle_coin, "launchTime": "1584230400000", "deliveryTime": "0",
                "deliveryFeeRate": "", "priceScale": "2",
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00",
                                   "leverageStep": "0.01"},
                "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
                "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": _s(m.lot),
                                  "qtyStep": _s(m.lot), "postOnlyMaxOrderQty": "1190.000",
                                  "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
                "unifiedMarginTrade": True, "fundingInterval": 480, "copyTrading": "both",
                "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
            }
            for m in self._in(venue, category)
        ]  # fmt: skip
        return {"category": category, "list": rows, "nextPageCursor": ""}

    def query_api(self, venue: FakeVenue, r: Request) -> Payload:
        return {"id": "13770661", "note": "bot", "apiKey": "key", "readOnly": 0, "secret": "",
                "permissions": {"ContractTrade": ["Order", "Position"]}, "ips": ["*"],
                "type": 1, "deadlineDay": 83, "expiredAt": "", "createdAt": "",
                "unified": 0, "uta": 1, "userID": 24600000, "inviterID": 0,
                "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0,
                "rsaPublicKey": "", "isMaster": True}  # fmt: skip

    def account_info(self, venue: FakeVenue, r: Request) -> Payload:
        return {"marginMode": "REGULAR_MARGIN", "updatedTime": str(now_ms()),
                "unifiedMarginStatus": 4, "dcpStatus": "OFF", "timeWindow": 10,
                "smpGroup": 0, "isMasterTrader": False, "spotHedgingStatus": "OFF"}  # fmt: skip

    def tickers(self, venue: FakeVenue, r: Request) -> Payload:
        """One symbol's ticker, or the whole category's without ``symbol``."""
        category = r.params.get("category")
        if "symbol" in r.params:
            self._check_category(venue, self.symbol_of(venue, r.params["symbol"]), r)
        rows = self.ticker_or_all(venue, r, "symbol", self._in(venue, category))
        return {"category": category, "list": rows if isinstance(rows, list) else [rows]}

    def _ticker(self, venue: FakeVenue, market_id: str) -> Payload:
        p = _s(venue.ledger.prices[self.symbol_of(venue, market_id)])
        return {"symbol": market_id, "lastPrice": p, "indexPrice": p, "markPrice": p,
               "prevPrice24h": p, "price24hPcnt": "0", "highPrice24h": p, "lowPrice24h": p,
               "prevPrice1h": p, "openInterest": "100", "openInterestValue": "1000",
               "turnover24h": "1000", "volume24h": "10", "fundingRate": "0.0001",
               "nextFundingTime": str(now_ms() + 3_600_000), "predictedDeliveryPrice": "",
               "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0", "ask1Size": "1",
               "bid1Price": p, "ask1Price": p, "bid1Size": "1", "basis": ""}  # fmt: skip

    def kline(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        self._check_category(venue, symbol, r)
        minutes = int(r.params.get("interval", 60))
        rows = _candles(venue, symbol, int(r.params.get("limit", 200)), minutes * 60_000)
        newest_first = [[str(t), _s(o), _s(h), _s(lo), _s(c), _s(v), _s(v * c)]
                        for t, o, h, lo, c, v in reversed(rows)]  # fmt: skip
        return {"category": r.params.get("category"), "symbol": r.params["symbol"],
                "list": newest_first}  # fmt: skip

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        category = r.params.get("category")
        if category not in ("linear", "inverse"):
            raise VenueRefusal("param", "params error: category invalid")
        settle = r.params.get("settleCoin")
        if category == "linear" and settle is None and "symbol" not in r.params:
            raise VenueRefusal("param", "symbol or settleCoin is required")
        ledger = venue.ledger
        rows = []
        if "symbol" in r.params:  # one symbol: an entry per leg, open or not
            symbol = self.symbol_of(venue, r.params["symbol"])
            self._check_category(venue, symbol, r)
            for leg in ("long", "short") if ledger.hedge else ("",):
                side = leg or (ledger.held_leg(symbol) or "")
                found = ledger.legs.get((symbol, side))
                size, entry = (found.contracts, found.entry) if found else (0.0, 0.0)
                rows.append(self._position(venue, symbol, side, size, entry))
        elif not venue.take_empty():
            for symbol, leg, held in ledger.held():
                market = ledger.markets[symbol]
                if self.category_of(market) != category:
                    continue
                if settle is not None and market.settle_coin != settle:
                    continue
                rows.append(self._position(venue, symbol, leg, held.contracts, held.entry))
        return self._page(r, category, rows)

    def _page(self, r: Request, category: Any, rows: list[Any]) -> Payload:
        """One page of ``rows``: ``limit`` entries (1-200, default 20) from ``cursor`` on, with
        ``nextPageCursor`` while more follow ('' on the last page)."""
        limit = int(r.params.get("limit", 20))
        if not 1 <= limit <= 200:
            raise VenueRefusal("param", "params error: limit invalid")
        cursor = unquote(str(r.params.get("cursor") or ""))  # sent back raw or decoded
        start = 0
        if cursor:
            head, _, offset = cursor.partition(":")
            if head != "page" or not offset.isdigit():
                raise VenueRefusal("param", "params error: cursor invalid")
            start = int(offset)
        end = start + limit
        more = f"page%3A{end}" if end < len(rows) else ""
        return {"category": category, "list": rows[start:end], "nextPageCursor": more}

    def _position(self, venue: FakeVenue, symbol: str, leg: str, size: float, entry: float) -> Any:
        """A position entry; ``leg`` '' with size 0 is one-way's flat placeholder (side '')."""
        mark = venue.ledger.prices[symbol]
        lev = venue.ledger.lev(symbol, leg or "long")
        idx = (1 if leg == "long" else 2) if venue.ledger.hedge else 0
        signed = size if leg == "long" else -size
        side = ("Buy" if leg == "long" else "Sell") if size else ""
        return {
            "positionIdx": idx, "riskId": 1, "riskLimitValue": "2000000",
            "symbol": self.mid(venue, symbol), "side": side,
            "size": _s(size), "avgPrice": _s(entry), "positionValue": _s(size * entry),
            "tradeMode": 0, "positionStatus": "Normal", "autoAddMargin": 0,
            "adlRankIndicator": 2, "leverage": _s(lev), "positionBalance": "0",
            "markPrice": _s(mark), "liqPrice": "", "bustPrice": "", "positionMM": "0",
            "positionIM": _s(size * entry / lev), "tpslMode": "Full", "takeProfit": "0",
            "stopLoss": "0", "trailingStop": "0", "unrealisedPnl": _s(signed * (mark - entry)),
            "curRealisedPnl": "0", "cumRealisedPnl": "0", "seq": 1, "isReduceOnly": False,
            "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": "",
            "createdTime": str(now_ms() - 60_000), "updatedTime": str(now_ms()),
        }  # fmt: skip

    def set_leverage(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["symbol"])
        self._check_category(venue, symbol, r)
        buy, sell = float(r.params["buyLeverage"]), float(r.params["sellLeverage"])
        if venue.ledger.lev(symbol, "long") == buy and venue.ledger.lev(symbol, "short") == sell:
            raise VenueRefusal("leverage", "leverage not modified")
        venue.ledger.set_lev(symbol, buy, "long")
        venue.ledger.set_lev(symbol, sell, "short")
        return {}

    def create(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        if p.get("category") not in self._categories(venue):
            raise VenueRefusal("param", "category only support linear")
        symbol = self.symbol_of(venue, p["symbol"])
        self._check_category(venue, symbol, r)
        idx = int(p.get("positionIdx", 0))
        if (idx != 0) != venue.ledger.hedge:
            raise VenueRefusal("mode", "position idx not match position mode")
        side = p["side"].lower()
        leg = {1: "long", 2: "short"}.get(idx)
        reduce = _truthy(p.get("reduceOnly")) or (
            leg is not None and (leg == "long") != (side == "buy")
        )
        link = p.get("orderLinkId")
        if link is not None and venue.ledger.find(client_id=link) is not None:
            raise VenueRefusal("client_id", "OrderLinkedID is duplicate")
        order = venue.ledger.place(
            symbol, side, float(p["qty"]), reduce_only=reduce, leg=leg,
            kind=p["orderType"].lower(), price=float(p["price"]) if p.get("price") else None,
            client_id=link,
        )  # fmt: skip
        return {"orderId": f"bb-{order.id}", "orderLinkId": link or ""}

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        status = {"open": "New", "closed": "Filled", "canceled": "Cancelled"}[o.status]
        avg = o.average or 0.0
        idx = (1 if o.leg == "long" else 2) if venue.ledger.hedge else 0
        return {
            "orderId": f"bb-{o.id}", "orderLinkId": o.client_id or "", "blockTradeId": "",
            "symbol": self.mid(venue, o.symbol), "price": _s(o.price or 0), "qty": _s(o.amount),
            "side": "Buy" if o.side == "buy" else "Sell", "isLeverage": "", "positionIdx": idx,
            "orderStatus": status, "cancelType": "UNKNOWN", "rejectReason": "EC_NoError",
            "avgPrice": _s(avg) if o.filled else "", "leavesQty": _s(o.amount - o.filled),
            "leavesValue": "0", "cumExecQty": _s(o.filled), "cumExecValue": _s(o.filled * avg),
            "cumExecFee": "0", "timeInForce": "IOC" if o.kind == "market" else "GTC",
            "orderType": "Market" if o.kind == "market" else "Limit", "stopOrderType": "",
            "orderIv": "", "triggerPrice": "0", "takeProfit": "0", "stopLoss": "0",
            "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0, "triggerBy": "",
            "lastPriceOnCreated": _s(venue.ledger.prices[o.symbol]),
            "reduceOnly": o.reduce_only, "closeOnTrigger": False, "smpType": "None",
            "smpGroup": 0, "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "",
            "slLimitPrice": "", "placeType": "", "createdTime": str(o.created),
            "updatedTime": str(now_ms()),
        }  # fmt: skip

    def _lookup(self, venue: FakeVenue, p: dict[str, Any]) -> Order | None:
        """The order ``p`` names, in the category ``p`` names (an order of another category is
        not found there)."""
        order_id, link = p.get("orderId"), p.get("orderLinkId")
        found = None
        if order_id:
            found = venue.ledger.find(order_id.removeprefix("bb-"))
            if not str(order_id).startswith("bb-"):
                found = None
        elif link:
            found = venue.ledger.find(client_id=link)
        if found is not None and "category" in p:
            if self.category_of(venue.ledger.markets[found.symbol]) != p["category"]:
                return None
        return found

    #: Closed orders ``/v5/order/realtime`` still finds: the account's most recent ones.
    realtime_closed = 500
    #: How long ``/v5/order/history`` keeps a cancelled order without fills (ms); its default
    #: window, 7 days, is longer than any run.
    history_unfilled_ms = 24 * 3_600_000

    def __init__(self) -> None:
        # Closed orders a restart of the venue's service cleared from ``/v5/order/realtime``.
        self.cleared: set[str] = set()

    def restart_service(self, venue: FakeVenue) -> None:
        """What Bybit documents for a restart of its service: ``/v5/order/realtime`` forgets
        every closed order (order history keeps them)."""
        self.cleared.update(o.id for o in venue.ledger.orders_sent() if o.status != "open")

    def realtime(self, venue: FakeVenue, r: Request) -> Payload:
        """Open orders, and the most recent ``realtime_closed`` closed ones not cleared."""
        o = self._lookup(venue, r.params)
        if o is not None and o.status != "open":
            closed = [c.id for c in venue.ledger.orders_sent() if c.status != "open"]
            recent = closed[max(0, len(closed) - self.realtime_closed) :]
            if o.id in self.cleared or o.id not in recent:
                o = None
        rows = [self._order(venue, o)] if o is not None else []
        return {"category": r.params.get("category", "linear"), "list": rows,
                "nextPageCursor": ""}  # fmt: skip

    def history(self, venue: FakeVenue, r: Request) -> Payload:
        """Closed orders: those with fills, and cancelled ones for ``history_unfilled_ms``."""
        o = self._lookup(venue, r.params)
        if o is not None and (
            o.status == "open"
            or (o.filled == 0 and now_ms() - o.created > self.history_unfilled_ms)
        ):
            o = None
        rows = [self._order(venue, o)] if o is not None else []
        return {"category": r.params.get("category", "linear"), "list": rows,
                "nextPageCursor": ""}  # fmt: skip

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._lookup(venue, r.params)
        if o is None:
            raise VenueRefusal("order", "order not exists or too late to cancel")
        venue.ledger.cancel(o.id)
        return {"orderId": f"bb-{o.id}", "orderLinkId": o.client_id or ""}

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/v5/market/instruments-info"): "instruments",
        ("GET", "/v5/user/query-api"): "query_api",
        ("GET", "/v5/account/info"): "account_info",
        ("GET", "/v5/market/tickers"): "tickers",
        ("GET", "/v5/market/kline"): "kline",
        ("GET", "/v5/position/list"): "positions",
        ("POST", "/v5/position/set-leverage"): "set_leverage",
        ("POST", "/v5/order/create"): "create",
        ("GET", "/v5/order/realtime"): "realtime",
        ("GET", "/v5/order/history"): "history",
        ("POST", "/v5/order/cancel"): "cancel",
    }


DIALECTS["bybit"] = Bybit


# ============================================================================ OKX (v5, swap)


class Okx(_Base):
    """OKX v5, USDT swaps: ``{"code": "0", "msg": "", "data": [...]}``; orders as a batch.

    ``net_mode`` lists ``posSide`` ``net`` with a signed ``pos``; ``long_short_mode`` lists and
    takes ``posSide`` ``long``/``short``. A rejected order answers ``code`` 1 with the order's
    own ``sCode``/``sMsg``. Sizes are contracts of ``ctVal`` coins.
    """

    margin_per_position = True
    ccxt_name = "okx"
    markets = CONTRACT_MARKETS
    positions_route = "/api/v5/account/positions"
    order_route = "/api/v5/trade/batch-orders"
    credentials: ClassVar[dict[str, Any]] = {"apiKey": "key", "secret": "secret", "password": "pw"}
    options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}
    codes: ClassVar[dict[str, tuple[str, str]]] = {
        "mode": ("51000", "Parameter posSide error"),
        "td_mode": ("51000", "Parameter tdMode error"),
        "reduce": ("51169", "Order placement failed because you don't have any positions in "
                   "this direction for this contract."),
        "amount": ("51121", "Order count should be the integer multiples of the lot size"),
        "symbol": ("51001", "Instrument ID does not exist"),
        "order": ("51603", "Order does not exist"),
        "cancel": ("51400", "Order cancellation failed as the order has been filled, canceled "
                   "or does not exist"),
        "client_id": ("51016", "Duplicated client order ID"),
    }  # fmt: skip
    #: sCodes answered per order (in ``data``), the others as the envelope's ``code``
    per_order = frozenset({"mode", "td_mode", "reduce", "amount", "cancel", "client_id"})

    def market_id(self, base: str) -> str:
        return base + "-USDT-SWAP"

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def ok(self, payload: Payload) -> Payload:
        return {"code": "0", "msg": "", "data": payload}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, ("51000", refusal.message))
        if refusal.reason in self.per_order:
            return 200, {"code": "1", "msg": "Operation failed.", "data": [
                {"clOrdId": "", "ordId": "", "sCode": code, "sMsg": msg, "tag": "",
                 "ts": str(now_ms())}], "inTime": "", "outTime": ""}  # fmt: skip
        return 200, {"code": code, "msg": msg, "data": []}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, {"msg": "Too Many Requests", "code": "50011"}

    def instruments(self, venue: FakeVenue, r: Request) -> Payload:
        if r.params.get("instType") != "SWAP":
            raise VenueRefusal("param", "Parameter instType error")
        return [
            {
                "instType": "SWAP", "instId": self.market_id(m.base), "uly": f"{m.base}-USDT",
                "instFamily": f"{m.base}-USDT", "baseCcy": "", "quoteCcy": "",
                "settleCcy": "USDT", "ctValCcy": m.base, "ctVal": _s(m.contract_size),
                "ctMult": "1", "ctType": "linear", "optType": "", "stk": "", "listTime":
                "1611916828000", "expTime": "", "lever": "100", "tickSz": "0.1",
                "lotSz": _s(m.lot), "minSz": _s(m.lot), "maxLmtSz": "100000000",
                "maxMktSz": "10000", "maxTwapSz": "", "maxIcebergSz": "", "maxTriggerSz": "",
                "maxStopSz": "", "state": "live", "ruleType": "normal", "alias": "",
                "category": "1",
            }
            for m in venue.ledger.markets.values()
        ]  # fmt: skip

    def config(self, venue: FakeVenue, r: Request) -> Payload:
        mode = "long_short_mode" if venue.ledger.hedge else "net_mode"
        return [{"uid": "44705892343619584", "mainUid": "44705892343619584", "acctLv": "2",
                 "posMode": mode, "autoLoan": False, "greeksType": "PA", "level": "Lv1",
                 "levelTmp": "", "ctIsoMode": "automatic", "mgnIsoMode": "automatic",
                 "spotOffsetType": "", "roleType": "0", "traderInsts": [], "opAuth": "0",
                 "ip": "", "label": "bot", "perm": "read_only,trade"}]  # fmt: skip

    def ticker(self, venue: FakeVenue, r: Request) -> Payload:
        return [self._ticker(venue, r.params["instId"])]

    def tickers(self, venue: FakeVenue, r: Request) -> Payload:
        """Every instrument of ``instType`` (only ``SWAP`` is listed here)."""
        if r.params.get("instType") != "SWAP":
            return []
        return self.every_ticker(venue)

    def _ticker(self, venue: FakeVenue, inst_id: str) -> Payload:
        p = _s(venue.ledger.prices[self.symbol_of(venue, inst_id)])
        return {"instType": "SWAP", "instId": inst_id, "last": p, "lastSz": "1",
                "askPx": p, "askSz": "10", "bidPx": p, "bidSz": "10", "open24h": p,
                "high24h": p, "low24h": p, "volCcy24h": "10", "vol24h": "1000",
                "sodUtc0": p, "sodUtc8": p, "ts": str(now_ms())}  # fmt: skip

    def candles(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.params["instId"])
        bar = r.params.get("bar", "1m")
        minutes = {"1m": 1, "5m": 5, "15m": 15, "1H": 60, "4H": 240, "1D": 1440}[bar]
        rows = _candles(venue, symbol, int(r.params.get("limit", 100)), minutes * 60_000)
        return [[str(t), _s(o), _s(h), _s(lo), _s(c), _s(v), _s(v), _s(v * c), "1"]
                for t, o, h, lo, c, v in reversed(rows)]  # fmt: skip

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        if venue.take_empty():
            return []
        ledger = venue.ledger
        wanted = set(r.params["instId"].split(",")) if r.params.get("instId") else None
        rows = []
        for symbol, leg, held in ledger.held():
            row = self._position(venue, symbol, leg, held.contracts, held.entry)
            if wanted is None or row["instId"] in wanted:
                rows.append(row)
        return rows

    def _position(self, venue: FakeVenue, symbol: str, leg: str, size: float, entry: float) -> Any:
        ledger = venue.ledger
        m = ledger.markets[symbol]
        mark = ledger.prices[symbol]
        lev = ledger.lev(symbol, leg)
        pos = size if (ledger.hedge or leg == "long") else -size
        signed = size if leg == "long" else -size
        upl = signed * (mark - entry) * m.contract_size
        cross = ledger.cross_of(symbol, leg)
        return {
            "adl": "1", "availPos": _s(size), "avgPx": _s(entry), "cTime": str(now_ms() - 1000),
            "ccy": "USDT", "deltaBS": "", "deltaPA": "", "gammaBS": "", "gammaPA": "",
            "imr": _s(size * m.contract_size * mark / lev) if cross else "",
            "instId": self.mid(venue, symbol), "instType": "SWAP", "interest": "",
            "idxPx": _s(mark), "last": _s(mark), "usdPx": "", "bePx": _s(entry),
            "lever": _s(lev), "liab": "", "liabCcy": "", "liqPx": "", "markPx": _s(mark),
            "margin": "" if cross else _s(size * m.contract_size * entry / lev),
            "mgnMode": "cross" if cross else "isolated", "mgnRatio": "",
            "mmr": _s(size * m.contract_size * mark * 0.004),
            "notionalUsd": _s(size * m.contract_size * mark), "optVal": "",
            "pendingCloseOrdLiabVal": "", "pos": _s(pos), "posCcy": "", "posId": "1",
            "posSide": leg if ledger.hedge else "net", "spotInUseAmt": "",
            "spotInUseCcy": "", "thetaBS": "", "thetaPA": "", "tradeId": "1",
            "bizRefId": "", "bizRefType": "", "quoteBal": "", "baseBal": "",
            "baseBorrowed": "", "baseInterest": "", "quoteBorrowed": "", "quoteInterest": "",
            "uTime": str(now_ms()), "upl": _s(upl), "uplLastPx": _s(upl), "uplRatio": "0",
            "uplRatioLastPx": "0", "vegaBS": "", "vegaPA": "", "realizedPnl": "0",
            "pnl": "0", "fee": "0", "fundingFee": "0", "liqPenalty": "0",
            "closeOrderAlgo": [],
        }  # fmt: skip

    def set_leverage(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_of(venue, p["instId"])
        ledger = venue.ledger
        mode = p.get("mgnMode")
        pos_side = p.get("posSide")
        if mode not in ("cross", "isolated"):
            raise VenueRefusal("param", "Parameter mgnMode error")
        if mode == "isolated" and ledger.hedge and pos_side not in ("long", "short"):
            raise VenueRefusal("mode", "Parameter posSide error")
        named = pos_side if ledger.hedge and pos_side in ("long", "short") else None
        if (mode == "cross") != ledger.cross_of(symbol, named):
            raise VenueRefusal("param", "the margin mode does not match the position's")
        leg = pos_side if pos_side in ("long", "short") and not ledger.cross else None
        ledger.set_lev(symbol, float(p["lever"]), leg)
        return [{"lever": p["lever"], "mgnMode": mode, "instId": p["instId"],
                 "posSide": pos_side or ""}]  # fmt: skip

    def batch(self, venue: FakeVenue, r: Request) -> Payload:
        (p,) = r.params["_body"]
        symbol = self.symbol_of(venue, p["instId"])
        ledger = venue.ledger
        pos_side = p.get("posSide", "net" if not ledger.hedge else "")
        if ledger.hedge and pos_side not in ("long", "short"):
            raise VenueRefusal("mode", "Parameter posSide error")
        if not ledger.hedge and pos_side != "net":
            raise VenueRefusal("mode", "Parameter posSide error")
        leg = pos_side if ledger.hedge else None
        # tdMode names the position the order acts on: a cross and an isolated one are apart.
        if p.get("tdMode") != ("cross" if ledger.cross_of(symbol, leg) else "isolated"):
            raise VenueRefusal("td_mode", "Parameter tdMode error", ledger.margin_key(symbol, leg))
        side = p["side"]
        reduce = _truthy(p.get("reduceOnly")) or (
            leg is not None and (leg == "long") != (side == "buy")
        )
        cl = p.get("clOrdId")
        if cl and venue.ledger.find(client_id=cl) is not None:
            raise VenueRefusal("client_id", "Duplicated client order ID")
        kind = "market" if p["ordType"] == "market" else "limit"
        order = ledger.place(
            symbol, side, float(p["sz"]), reduce_only=reduce, leg=leg, kind=kind,
            price=float(p["px"]) if p.get("px") else None, client_id=cl,
        )  # fmt: skip
        return [{"clOrdId": cl or "", "ordId": order.id, "tag": p.get("tag", ""),
                 "ts": str(now_ms()), "sCode": "0", "sMsg": "Order placed"}]  # fmt: skip

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        state = {"open": "live", "closed": "filled", "canceled": "canceled"}[o.status]
        ledger = venue.ledger
        return {
            "accFillSz": _s(o.filled), "algoClOrdId": "", "algoId": "",
            "attachAlgoClOrdId": "", "attachAlgoOrds": [], "avgPx": _s(o.average or 0)
            if o.filled else "", "cTime": str(o.created), "cancelSource": "",
            "cancelSourceReason": "", "category": "normal", "ccy": "", "clOrdId": o.client_id
            or "", "fee": "0", "feeCcy": "USDT", "fillPx": _s(o.average or 0) if o.filled
            else "", "fillSz": _s(o.filled), "fillTime": str(now_ms()) if o.filled else "",
            "instId": self.mid(venue, o.symbol), "instType": "SWAP", "isTpLimit": "false",
            "lever": _s(ledger.lev(o.symbol, o.leg)), "linkedAlgoOrd": {"algoId": ""},
            "ordId": o.id, "ordType": o.kind, "pnl": "0",
            "posSide": o.leg if ledger.hedge else "net",
            "px": _s(o.price) if o.price else "", "pxType": "", "pxUsd": "", "pxVol": "",
            "quickMgnType": "", "rebate": "0", "rebateCcy": "USDT",
            "reduceOnly": "true" if o.reduce_only else "false", "side": o.side,
            "slOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "", "source": "",
            "state": state, "stpId": "", "stpMode": "", "sz": _s(o.amount), "tag": "",
            "tdMode": "cross" if ledger.cross else "isolated", "tgtCcy": "", "tpOrdPx": "",
            "tpTriggerPx": "", "tpTriggerPxType": "", "tradeId": "", "tradeQuoteCcy": "",
            "uTime": str(now_ms()),
        }  # fmt: skip

    def _lookup(self, venue: FakeVenue, p: dict[str, Any]) -> Order | None:
        if p.get("ordId"):
            return venue.ledger.find(p["ordId"])
        if p.get("clOrdId"):
            return venue.ledger.find(client_id=p["clOrdId"])
        raise VenueRefusal("param", "Either parameter ordId or clOrdId is required")

    def order(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._lookup(venue, r.params)
        if o is None:
            raise VenueRefusal("order", "Order does not exist")
        return [self._order(venue, o)]

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._lookup(venue, r.params)
        if o is None or o.status != "open":
            raise VenueRefusal("cancel", "Order cancellation failed")
        venue.ledger.cancel(o.id)
        return [{"clOrdId": o.client_id or "", "ordId": o.id, "sCode": "0", "sMsg": "",
                 "ts": str(now_ms())}]  # fmt: skip

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/v5/public/instruments"): "instruments",
        ("GET", "/api/v5/account/config"): "config",
        ("GET", "/api/v5/market/ticker"): "ticker",
        ("GET", "/api/v5/market/tickers"): "tickers",
        ("GET", "/api/v5/market/candles"): "candles",
        ("GET", "/api/v5/account/positions"): "positions",
        ("POST", "/api/v5/account/set-leverage"): "set_leverage",
        ("POST", "/api/v5/trade/batch-orders"): "batch",
        ("GET", "/api/v5/trade/order"): "order",
        ("POST", "/api/v5/trade/cancel-order"): "cancel",
    }


DIALECTS["okx"] = Okx


# ============================================================================ Bitget (v2 mix)


class Bitget(_Base):
    """Bitget v2 mix, USDT-FUTURES: ``{"code": "00000", "msg": "success", "data": ...}``.

    Sizes are in the base coin. One-way mode (``one_way_mode``) takes ``side`` and
    ``reduceOnly`` YES/NO; hedge mode (``hedge_mode``) takes ``tradeSide`` open/close with
    ``side`` naming the position's direction (closing a long is ``buy`` + ``close``). Entries
    carry ``holdSide`` and ``posMode``; only open positions are listed.

    Every request names its ``productType``: USDT-FUTURES (``BTCUSDT``), and where a ledger has
    them (``SCOPES``) USDC-FUTURES (``BTCPERP``, margined in USDC) and COIN-FUTURES
    (``BTCUSD``, margined in the base coin). The position list of a product needs the matching
    ``marginCoin`` (USDT, USDC, or the coin) and lists that product's positions only. A product
    the ledger has no market of is refused (a simplification: Bitget answers an empty list).
    """

    margin_per_position = True
    margin_per_symbol = True
    ccxt_name = "bitget"
    positions_route = "/api/v2/mix/position/all-position"
    order_route = "/api/v2/mix/order/place-order"
    credentials: ClassVar[dict[str, Any]] = {"apiKey": "key", "secret": "secret", "password": "pw"}
    options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}
    mode_readable_when_flat = False
    codes: ClassVar[dict[str, tuple[str, str]]] = {
        "mode": ("40774", "The order type for unilateral position must also be the unilateral "
                 "position type."),
        "reduce": ("22002", "No position to close"),
        "amount": ("40808", "Parameter verification exception size checkBDScale error"),
        "symbol": ("40034", "Parameter symbol does not exist"),
        "order": ("40109", "The data of the order cannot be found, please confirm the order "
                  "number"),
        "cancel": ("43001", "The order does not exist"),
        "client_id": ("40757", "Duplicate clientOid"),
        "margin": ("40886", "The margin mode cannot be changed"),
    }  # fmt: skip
    PRODUCTS = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES",
                "SCOIN-FUTURES", "SUSDC-FUTURES")  # fmt: skip

    def market_id(self, base: str) -> str:
        return base + "USDT"

    def market_id_of(self, market: Market) -> str:
        return _joined_id(market, self.market_id(market.base), "", "PERP")

    @staticmethod
    def product_of(market: Market) -> str:
        return "COIN-FUTURES" if market.inverse else f"{market.settle_coin}-FUTURES"

    def _of_product(self, venue: FakeVenue, product: str) -> list[Market]:
        return [m for m in venue.ledger.markets.values() if self.product_of(m) == product]

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def ok(self, payload: Payload) -> Payload:
        return {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": payload}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, ("40019", refusal.message))
        return 400, {"code": code, "msg": msg, "requestTime": now_ms(), "data": None}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, {"code": "429", "msg": "Too Many Requests", "requestTime": now_ms(),
                     "data": None}  # fmt: skip

    def _product(self, venue: FakeVenue, r: Request) -> str:
        """The request's ``productType``: one the ledger has markets of, and the product of the
        market ``symbol`` names (when it names one the ledger knows)."""
        product = str(r.params.get("productType", "")).upper()
        if not self._of_product(venue, product):
            raise VenueRefusal("param", "Parameter productType error")
        market_id = r.params.get("symbol")
        if market_id:
            try:
                market = self.market_of(venue, market_id)
            except VenueRefusal:
                return product  # the handler refuses the unknown symbol itself
            if self.product_of(market) != product:
                raise VenueRefusal("param", "Parameter productType error")
        return product

    def uta_settings(self, venue: FakeVenue, r: Request) -> Payload:
        """The unified-account settings: a classic account is refused (ccxt asks to tell the
        two apart and treats any failure as classic; the code here is illustrative)."""
        raise VenueRefusal("classic", "The current account is a classic account")

    def contracts(self, venue: FakeVenue, r: Request) -> Payload:
        if r.params.get("productType") not in self.PRODUCTS:
            raise VenueRefusal("param", "Parameter productType error")
        rows = []
        for m in self._of_product(venue, r.params["productType"]):
            places = len(_s(m.lot).partition(".")[2])
            rows.append({
                "symbol": self.market_id_of(m), "baseCoin": m.base, "quoteCoin": m.quote,
                "buyLimitPriceRatio": "0.9", "sellLimitPriceRatio": "0.9",
                "feeRateUpRatio": "0.1", "makerFeeRate": "0.0004", "takerFeeRate": "0.0006",
                "openCostUpRatio": "0.1", "supportMarginCoins": [m.settle_coin],
                "minTradeNum": _s(m.lot), "priceEndStep": "1", "volumePlace": str(places),
                "pricePlace": "1", "sizeMultiplier": _s(m.lot), "symbolType": "perpetual",
                "minTradeUSDT": "5", "maxSymbolOrderNum": "999999",
                "maxProductOrderNum": "999999", "maxPositionNum": "150",
                "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
                "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "",
                "launchTime": "", "fundInterval": "8", "minLever": "1", "maxLever": "125",
                "posLimit": "0.05", "maintainTime": "", "maxMarketOrderQty": "220",
                "maxOrderQty": "1200",
            })  # fmt: skip
        return rows

    def ticker(self, venue: FakeVenue, r: Request) -> Payload:
        self._product(venue, r)
        return [self._ticker(venue, r.params["symbol"])]

    def tickers(self, venue: FakeVenue, r: Request) -> Payload:
        """Every contract of ``productType``."""
        return self.every_ticker(venue, self._of_product(venue, self._product(venue, r)))

    def _ticker(self, venue: FakeVenue, market_id: str) -> Payload:
        p = _s(venue.ledger.prices[self.symbol_of(venue, market_id)])
        return {"symbol": market_id, "lastPr": p, "askPr": p, "bidPr": p,
                "bidSz": "1", "askSz": "1", "high24h": p, "low24h": p, "ts": str(now_ms()),
                "change24h": "0", "baseVolume": "10", "quoteVolume": "100",
                "usdtVolume": "100", "openUtc": p, "changeUtc24h": "0", "indexPrice": p,
                "fundingRate": "0.0001", "holdingAmount": "100", "deliveryStartTime": None,
                "deliveryTime": None, "deliveryStatus": "", "open24h": p,
                "markPrice": p}  # fmt: skip

    def candles(self, venue: FakeVenue, r: Request) -> Payload:
        self._product(venue, r)
        symbol = self.symbol_of(venue, r.params["symbol"])
        minutes = {"1m": 1, "5m": 5, "15m": 15, "1H": 60, "4H": 240, "1D": 1440}[
            r.params["granularity"]
        ]
        rows = _candles(venue, symbol, int(r.params.get("limit", 100)), minutes * 60_000)
        return [[str(t), _s(o), _s(h), _s(lo), _s(c), _s(v), _s(v * c)]
                for t, o, h, lo, c, v in rows]  # fmt: skip

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        product = self._product(venue, r)
        coin = str(r.params.get("marginCoin", "")).upper()
        listed = {m.symbol for m in self._of_product(venue, product) if m.settle_coin == coin}
        if not listed:
            raise VenueRefusal("param", "Parameter marginCoin error")
        if venue.take_empty():
            return []
        ledger = venue.ledger
        rows = []
        for symbol, leg, held in ledger.held():
            if symbol not in listed:
                continue
            mark = ledger.prices[symbol]
            lev = ledger.lev(symbol, leg)
            signed = held.contracts if leg == "long" else -held.contracts
            rows.append({
                "marginCoin": coin, "symbol": self.mid(venue, symbol), "holdSide": leg,
                "openDelegateSize": "0", "marginSize": _s(held.contracts * held.entry / lev),
                "available": _s(held.contracts), "locked": "0", "total": _s(held.contracts),
                "leverage": _s(lev), "achievedProfits": "0", "openPriceAvg": _s(held.entry),
                "marginMode": "crossed" if ledger.cross_of(symbol, leg) else "isolated",
                "posMode": "hedge_mode" if ledger.hedge else "one_way_mode",
                "unrealizedPL": _s(signed * (mark - held.entry)), "liquidationPrice": "0",
                "keepMarginRate": "0.004", "markPrice": _s(mark), "marginRatio": "0.01",
                "breakEvenPrice": _s(held.entry), "totalFee": "0", "deductedFee": "0",
                "cTime": str(held.opened), "uTime": str(now_ms()), "autoMargin": "off",
            })  # fmt: skip
        return rows

    def set_leverage(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        self._product(venue, r)
        symbol = self.symbol_of(venue, p["symbol"])
        ledger = venue.ledger
        hold = p.get("holdSide")
        cross = ledger.cross_of(symbol, hold if hold in ("long", "short") else None)
        if not cross and ledger.hedge and hold not in ("long", "short"):
            raise VenueRefusal("param", "holdSide is required in isolated hedge mode")
        leg = hold if (hold in ("long", "short") and not cross) else None
        ledger.set_lev(symbol, float(p["leverage"]), leg)
        lev = p["leverage"]
        coin = ledger.markets[symbol].settle_coin
        return {"symbol": p["symbol"], "marginCoin": coin, "longLeverage": lev,
                "shortLeverage": lev, "crossMarginLeverage": lev,
                "marginMode": "crossed" if ledger.cross else "isolated"}  # fmt: skip

    def place(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        self._product(venue, r)
        symbol = self.symbol_of(venue, p["symbol"])
        ledger = venue.ledger
        coin = p.get("marginCoin")
        if coin is not None and str(coin).upper() != ledger.markets[symbol].settle_coin:
            raise VenueRefusal("param", "Parameter marginCoin error")
        trade_side = str(p.get("tradeSide", "")).lower()
        side = p["side"]
        if ledger.hedge:
            if trade_side not in ("open", "close"):
                raise VenueRefusal("mode", "hedge mode needs tradeSide")
            leg: str | None = "long" if side == "buy" else "short"
            reduce = trade_side == "close"
            side = side if not reduce else ("sell" if side == "buy" else "buy")
        else:
            leg, reduce = None, p.get("reduceOnly") == "YES"
        if p.get("marginMode") != ("crossed" if ledger.cross_of(symbol, leg) else "isolated"):
            key = ledger.margin_key(symbol, leg)
            raise VenueRefusal("margin", "The margin mode cannot be changed", key)
        cid = p.get("clientOid")
        if cid and venue.ledger.find(client_id=cid) is not None:
            raise VenueRefusal("client_id", "Duplicate clientOid")
        order = ledger.place(
            symbol, side, float(p["size"]), reduce_only=reduce, leg=leg, kind=p["orderType"],
            price=float(p["price"]) if p.get("price") else None, client_id=cid,
        )  # fmt: skip
        return {"clientOid": cid or f"auto-{order.id}", "orderId": order.id}

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        ledger = venue.ledger
        state = {"open": "live", "closed": "filled", "canceled": "canceled"}[o.status]
        if ledger.hedge:
            side = o.side if not o.reduce_only else ("sell" if o.side == "buy" else "buy")
            trade_side = "close" if o.reduce_only else "open"
        else:
            side, trade_side = o.side, f"{o.side}_single"
        return {
            "symbol": self.mid(venue, o.symbol), "size": _s(o.amount), "orderId": o.id,
            "clientOid": o.client_id or f"auto-{o.id}", "baseVolume": _s(o.filled),
            "fee": "0", "price": _s(o.price) if o.price else "",
            "priceAvg": _s(o.average) if o.filled and o.average else "", "state": state,
            "side": side, "force": "gtc", "totalProfits": "0", "posSide":
            o.leg if ledger.hedge else "net", "marginCoin": ledger.markets[o.symbol].settle_coin,
            "presetStopSurplusPrice": "", "presetStopLossPrice": "",
            "quoteVolume": _s(o.filled * (o.average or 0)), "orderType": o.kind,
            "leverage": _s(ledger.lev(o.symbol, o.leg)),
            "marginMode": "crossed" if ledger.cross else "isolated",
            "reduceOnly": "YES" if o.reduce_only else "NO", "enterPointSource": "API",
            "tradeSide": trade_side, "posMode": "hedge_mode" if ledger.hedge
            else "one_way_mode", "orderSource": o.kind, "cancelReason": "",
            "cTime": str(o.created), "uTime": str(now_ms()),
        }  # fmt: skip

    def _lookup(self, venue: FakeVenue, p: dict[str, Any]) -> Order | None:
        if p.get("orderId"):
            return venue.ledger.find(p["orderId"])
        if p.get("clientOid"):
            return venue.ledger.find(client_id=p["clientOid"])
        raise VenueRefusal("param", "orderId or clientOid is required")

    def detail(self, venue: FakeVenue, r: Request) -> Payload:
        self._product(venue, r)
        o = self._lookup(venue, r.params)
        if o is None:
            raise VenueRefusal("order", "order not found")
        return self._order(venue, o)

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        self._product(venue, r)
        o = self._lookup(venue, r.params)
        if o is None or o.status != "open":
            raise VenueRefusal("cancel", "The order does not exist")
        venue.ledger.cancel(o.id)
        return {"orderId": o.id, "clientOid": o.client_id or f"auto-{o.id}"}

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/v3/account/settings"): "uta_settings",
        ("GET", "/api/v2/mix/market/contracts"): "contracts",
        ("GET", "/api/v2/mix/market/ticker"): "ticker",
        ("GET", "/api/v2/mix/market/tickers"): "tickers",
        ("GET", "/api/v2/mix/market/candles"): "candles",
        ("GET", "/api/v2/mix/position/all-position"): "positions",
        ("POST", "/api/v2/mix/account/set-leverage"): "set_leverage",
        ("POST", "/api/v2/mix/order/place-order"): "place",
        ("GET", "/api/v2/mix/order/detail"): "detail",
        ("POST", "/api/v2/mix/order/cancel-order"): "cancel",
    }


DIALECTS["bitget"] = Bitget


# ============================================================================ Gate (futures usdt)


class Gate(_Base):
    """Gate API v4, USDT perpetual futures: bare JSON answers, errors ``{"label", "message"}``.

    Sizes are signed integers of contracts (``quanto_multiplier`` coins); a cross position shows
    ``leverage`` "0" and its ``cross_leverage_limit``. Single mode lists ``mode`` single; dual
    mode lists a ``dual_long`` and a ``dual_short`` entry per contract (the short one with a
    negative size) and takes leverage on the ``dual_comp`` path only; a dual-mode reduce-only
    order reduces the leg its sign closes (negative: the long one). The list holds every
    contract, flat ones with size 0 (``holding=true``: only open ones). A custom id (``text``,
    "t-...") finds an order while it is open and for less than ``client_id_window`` seconds after
    it ends (0: not once it has ended, even in the same millisecond);
    the list of finished orders keeps it (an order without fills leaves that list
    ``zero_fill_window`` seconds after it was cancelled).

    Every path names its settle currency (``/futures/{settle}/...``): ``usdt`` for the USDT
    contracts, ``btc`` for BTC-settled (inverse) ones such as ``BTC_USD`` where a ledger has them
    (``SCOPES``; ``quanto_multiplier`` "0": a contract is 1 USD). A path of one settle currency
    knows only that currency's contracts, positions and orders.
    """

    ccxt_name = "gate"
    markets = CONTRACT_MARKETS
    positions_route = "/api/v4/futures/usdt/positions"
    order_route = "/api/v4/futures/usdt/orders"
    options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}
    client_id_window = 60.0
    # API v4, "List futures orders": a zero-fill order cannot be retrieved 10 minutes after
    # its cancellation.
    zero_fill_window = 600.0
    leg_from_sign = True
    labels: ClassVar[dict[str, tuple[int, str, str]]] = {
        "mode": (400, "INVALID_PARAM_VALUE", "order does not fit the position mode"),
        "dual": (400, "POSITION_DUAL_MODE", "operation forbidden in dual mode; use dual_comp"),
        "reduce": (400, "POSITION_EMPTY", "position is empty"),
        "amount": (400, "INVALID_PARAM_VALUE", "invalid size"),
        "symbol": (400, "CONTRACT_NOT_FOUND", "contract not found"),
        "order": (404, "ORDER_NOT_FOUND", "order not found"),
        "cancel": (400, "ORDER_FINISHED", "order finished"),
        "client_id": (400, "INVALID_PARAM_VALUE", "text must start with t-"),
    }

    def market_id(self, base: str) -> str:
        return base + "_USDT"

    def market_id_of(self, market: Market) -> str:
        if market.inverse:
            return f"{market.base}_{market.quote}"
        return self.market_id(market.base)

    @staticmethod
    def settle_of(r: Request) -> str:
        """The settle currency a path names (``/api/v4/futures/{settle}/...``)."""
        return r.path.split("/")[4]

    def _settled(self, venue: FakeVenue, r: Request) -> list[Market]:
        settle = self.settle_of(r)
        return [m for m in venue.ledger.markets.values() if m.settle_coin.lower() == settle]

    def _on_path(self, venue: FakeVenue, symbol: str, r: Request) -> str:
        """``symbol``, refused as unknown on a path of another settle currency."""
        if venue.ledger.markets[symbol].settle_coin.lower() != self.settle_of(r):
            raise VenueRefusal("symbol", "contract not found")
        return symbol

    def is_order(self, request: Request) -> bool:
        # The list of orders is a GET on the same path.
        return request.method == "POST" and request.path in (
            self.order_route,
            "/api/v4/futures/btc/orders",
        )

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        status, label, message = self.labels.get(
            refusal.reason, (400, "INVALID_PARAM_VALUE", refusal.message)
        )
        return status, {"label": label, "message": message}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"}

    def __init__(self) -> None:
        self.touched: set[str] = set()  # contracts listed so far (flat ones: size 0)
        self.finished: dict[str, float] = {}  # order id -> when it was finished (seconds)

    def _contract(self, venue: FakeVenue, name: str) -> str:
        return self.symbol_of(venue, name)

    def account_detail(self, venue: FakeVenue, r: Request) -> Payload:
        return {"user_id": 10406147, "ip_whitelist": [], "currency_pairs": [],
                "key": {"mode": 1}, "tier": 0, "tier_expire_time": "0001-01-01T00:00:00Z",
                "copy_trading_role": 0}  # fmt: skip

    def contracts(self, venue: FakeVenue, r: Request) -> Payload:
        return [
            {
                "name": self.market_id_of(m), "type": "inverse" if m.inverse else "direct",
                "quanto_multiplier": "0" if m.inverse else _s(m.contract_size),
                "ref_discount_rate": "0",
                "order_price_deviate": "0.5", "maintenance_rate": "0.005",
                "mark_type": "index", "last_price": _s(venue.ledger.prices[m.symbol]),
                "mark_price": _s(venue.ledger.prices[m.symbol]),
                "index_price": _s(venue.ledger.prices[m.symbol]), "funding_rate_indicative":
                "0.000219", "mark_price_round": "0.01", "funding_offset": 0,
                "in_delisting": False, "risk_limit_base": "1000000", "interest_rate": "0.0003",
                "order_price_round": "0.1", "order_size_min": int(m.lot),
                "ref_rebate_rate": "0.2", "funding_interval": 28800,
                "risk_limit_step": "1000000", "leverage_min": "1", "leverage_max": "100",
                "risk_limit_max": "8000000", "maker_fee_rate": "-0.00025",
                "taker_fee_rate": "0.00075", "funding_rate": "0.002053",
                "order_size_max": 1000000, "funding_next_apply": 1610035200,
                "short_users": 977, "config_change_time": 1609899548, "trade_size": 28530850594,
                "position_size": 5223816, "long_users": 455, "funding_impact_value": "60000",
                "orders_limit": 50, "trade_id": 10851092, "orderbook_id": 2129638396,
                "enable_bonus": True, "enable_credit": True, "create_time": 1669688556,
                "funding_cap_ratio": "0.75", "status": "trading", "launch_time": 1609899548,
            }
            for m in self._settled(venue, r)
        ]  # fmt: skip

    def tickers(self, venue: FakeVenue, r: Request) -> Payload:
        """One contract's ticker (a list of one), or every contract's without ``contract``."""
        if "contract" in r.params:
            self._on_path(venue, self._contract(venue, r.params["contract"]), r)
        rows = self.ticker_or_all(venue, r, "contract", self._settled(venue, r))
        return rows if isinstance(rows, list) else [rows]

    def _ticker(self, venue: FakeVenue, contract: str) -> Payload:
        p = _s(venue.ledger.prices[self._contract(venue, contract)])
        return {"contract": contract, "last": p, "change_percentage": "0",
                 "total_size": "1000", "low_24h": p, "high_24h": p, "volume_24h": "100",
                 "volume_24h_btc": "1", "volume_24h_usd": "1000", "volume_24h_base": "1",
                 "volume_24h_quote": "1000", "volume_24h_settle": "1000", "mark_price": p,
                 "funding_rate": "0.0001", "funding_rate_indicative": "0.0001",
                 "index_price": p, "highest_bid": p, "lowest_ask": p}  # fmt: skip

    def candlesticks(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self._on_path(venue, self._contract(venue, r.params["contract"]), r)
        minutes = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}[
            r.params.get("interval", "5m")
        ]
        rows = _candles(venue, symbol, int(r.params.get("limit", 100)), minutes * 60_000)
        return [{"t": t // 1000, "v": int(v), "c": _s(c), "h": _s(h), "l": _s(lo), "o": _s(o),
                 "sum": _s(v * c)} for t, o, h, lo, c, v in rows]  # fmt: skip

    def _position(self, venue: FakeVenue, symbol: str, leg: str) -> Payload:
        ledger = venue.ledger
        held = ledger.legs.get((symbol, leg))
        m = ledger.markets[symbol]
        size = held.contracts if held else 0.0
        entry = held.entry if held else 0.0
        mark = ledger.prices[symbol]
        signed = size if leg == "long" else -size
        lev = ledger.lev(symbol, leg)
        mode = ("dual_long" if leg == "long" else "dual_short") if ledger.hedge else "single"
        return {
            "user": 10000, "contract": self.mid(venue, symbol), "size": int(signed),
            "leverage": "0" if ledger.cross else _s(lev), "risk_limit": "1000000",
            "leverage_max": "100", "maintenance_rate": "0.005",
            "value": _s(size * m.contract_size * mark),
            "margin": _s(size * m.contract_size * entry / lev),
            "entry_price": _s(entry), "liq_price": "0", "mark_price": _s(mark),
            "initial_margin": "0", "maintenance_margin": "0",
            "unrealised_pnl": _s(signed * (mark - entry) * m.contract_size),
            "realised_pnl": "0", "pnl_pnl": "0", "pnl_fund": "0", "pnl_fee": "0",
            "history_pnl": "0", "last_close_pnl": "0", "realised_point": "0",
            "history_point": "0", "adl_ranking": 5, "pending_orders": 0,
            "close_order": None, "mode": mode,
            "cross_leverage_limit": _s(lev) if ledger.cross else "0",
            "update_time": now_ms() // 1000, "update_id": 1,
            "open_time": (held.opened // 1000) if held else 0,
        }  # fmt: skip

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        if venue.take_empty():
            return []
        ledger = venue.ledger
        settled = {m.symbol for m in self._settled(venue, r)}
        # Without holding=true Gate lists every contract's position record, flat ones too.
        self.touched.update(s for s in settled if s not in venue.listed_late)
        for symbol, _leg, _held in ledger.held():
            self.touched.add(symbol)
        rows = []
        for symbol in sorted(self.touched):
            if symbol not in settled:
                continue  # another settle currency's
            if ledger.hedge:
                rows += [self._position(venue, symbol, "long"),
                         self._position(venue, symbol, "short")]  # fmt: skip
            else:
                rows.append(self._position(venue, symbol, ledger.held_leg(symbol) or "long"))
        if _truthy(r.params.get("holding")):
            rows = [row for row in rows if row["size"] != 0]
        return rows

    def _set_leverage(self, venue: FakeVenue, symbol: str, p: dict[str, Any]) -> None:
        ledger = venue.ledger
        lev = p.get("leverage")
        limit = p.get("cross_leverage_limit")
        if lev is None:
            raise VenueRefusal("param", "leverage is required")
        if float(lev) == 0:
            if not limit:
                raise VenueRefusal("param", "cross_leverage_limit is required for cross")
            ledger.cross = True
            ledger.set_lev(symbol, float(limit))
        else:
            ledger.cross = False
            ledger.set_lev(symbol, float(lev))
        self.touched.add(symbol)

    def leverage(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self._on_path(venue, self._contract(venue, r.path.split("/")[-2]), r)
        if venue.ledger.hedge:
            raise VenueRefusal("dual", "dual mode")
        self._set_leverage(venue, symbol, r.params)
        return self._position(venue, symbol, venue.ledger.held_leg(symbol) or "long")

    def dual_leverage(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self._on_path(venue, self._contract(venue, r.path.split("/")[-2]), r)
        if not venue.ledger.hedge:
            raise VenueRefusal("mode", "not in dual mode")
        self._set_leverage(venue, symbol, r.params)
        return [self._position(venue, symbol, "long"), self._position(venue, symbol, "short")]

    def create(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self._on_path(venue, self._contract(venue, p["contract"]), r)
        ledger = venue.ledger
        size = int(p["size"])
        if size == 0:
            raise VenueRefusal("amount", "size 0 without close")
        side = "buy" if size > 0 else "sell"
        reduce = _truthy(p.get("reduce_only"))
        leg = None
        if ledger.hedge:  # the sign names the leg: a sell opens short or reduces long
            leg = "long" if (side == "buy") != reduce else "short"
        text = p.get("text")
        if text is not None and (not text.startswith("t-") or len(text) > 30):
            raise VenueRefusal("client_id", "bad text")
        market = p["price"] in ("0", 0) and p.get("tif") == "ioc"
        order = ledger.place(
            symbol, side, float(abs(size)), reduce_only=reduce, leg=leg,
            kind="market" if market else "limit",
            price=None if market else float(p["price"]), client_id=text,
        )  # fmt: skip
        self.touched.add(symbol)
        if order.status != "open":
            self.finished[order.id] = now_ms() / 1000
        return self._order(venue, order)

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        signed = o.amount if o.side == "buy" else -o.amount
        left = (o.amount - o.filled) * (1 if o.side == "buy" else -1)
        finish_as = {"open": "_new", "closed": "filled", "canceled": "cancelled"}[o.status]
        return {
            "id": int(o.id), "user": 10000, "contract": self.mid(venue, o.symbol),
            "create_time": o.created / 1000, "finish_time": now_ms() / 1000
            if o.status != "open" else None, "finish_as": None if o.status == "open"
            else finish_as, "status": "open" if o.status == "open" else "finished",
            "size": int(signed), "iceberg": 0, "price": "0" if o.kind == "market"
            else _s(o.price), "close": False, "is_close": False, "reduce_only": o.reduce_only,
            "is_reduce_only": o.reduce_only, "is_liq": False,
            "tif": "ioc" if o.kind == "market" else "gtc", "left": int(left),
            "fill_price": _s(o.average or 0), "text": o.client_id or "api",
            "tkfr": "0.0005", "mkfr": "0", "refu": 0, "auto_size": "", "stp_id": 0,
            "stp_act": "-", "amend_text": "-", "biz_info": "-",
        }  # fmt: skip

    def _find(self, venue: FakeVenue, key: str, r: Request | None = None) -> Order | None:
        """The order of ``key`` (its id, or its custom id "t-..."); on a path of another settle
        currency than its contract's, none."""
        found = self._find_any(venue, key)
        if found is not None and r is not None:
            if venue.ledger.markets[found.symbol].settle_coin.lower() != self.settle_of(r):
                return None
        return found

    def _find_any(self, venue: FakeVenue, key: str) -> Order | None:
        if key.startswith("t-"):
            o = venue.ledger.find(client_id=key)
            if o is None:
                return None
            done = self.finished.get(o.id)
            if done is not None and now_ms() / 1000 - done >= self.client_id_window:
                return None  # a custom id finds a finished order for a short while only
            return o
        return venue.ledger.find(key)

    def order(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._find(venue, r.path.rsplit("/", 1)[-1], r)
        if o is None:
            raise VenueRefusal("order", "order not found")
        return self._order(venue, o)

    def orders(self, venue: FakeVenue, r: Request) -> Payload:
        """The account's orders of one ``status`` (``open`` or ``finished``, required), newest
        first; ``contract`` narrows them to one contract, ``limit`` (1-1000, default 100) and
        ``offset`` page them. A finished order without fills is gone ``zero_fill_window``
        seconds after it ended."""
        p = r.params
        status = p.get("status")
        if status not in ("open", "finished"):
            raise VenueRefusal("param", "status must be open or finished")
        limit, offset = int(p.get("limit", 100)), int(p.get("offset", 0))
        if not 1 <= limit <= 1000 or offset < 0:
            raise VenueRefusal("param", "invalid limit or offset")
        contract = p.get("contract")
        symbol = None
        if contract is not None:
            symbol = self._on_path(venue, self._contract(venue, contract), r)
        settled = {m.symbol for m in self._settled(venue, r)}
        now = now_ms() / 1000
        rows = []
        for o in sorted(venue.ledger.orders_sent(), key=lambda o: int(o.id), reverse=True):
            if (symbol is not None and o.symbol != symbol) or o.status == "rejected":
                continue
            if o.symbol not in settled:
                continue
            if (o.status == "open") != (status == "open"):
                continue
            done = self.finished.get(o.id)
            if o.filled == 0 and done is not None and now - done > self.zero_fill_window:
                continue
            rows.append(self._order(venue, o))
        return rows[offset : offset + limit]

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._find(venue, r.path.rsplit("/", 1)[-1], r)
        if o is None:
            raise VenueRefusal("order", "order not found")
        if o.status != "open":
            raise VenueRefusal("cancel", "order finished")
        venue.ledger.cancel(o.id)
        self.finished[o.id] = now_ms() / 1000
        return self._order(venue, o)

    #: The routes of one settle currency's contracts (``/api/v4/futures/{settle}...``).
    SETTLED = (
        ("GET", "/tickers", "tickers"),
        ("GET", "/candlesticks", "candlesticks"),
        ("GET", "/positions", "positions"),
        ("POST", "/positions/*/leverage", "leverage"),
        ("POST", "/dual_comp/positions/*/leverage", "dual_leverage"),
        ("POST", "/orders", "create"),
        ("GET", "/orders", "orders"),
        ("GET", "/orders/*", "order"),
        ("DELETE", "/orders/*", "cancel"),
    )
    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/v4/account/detail"): "account_detail",
        ("GET", "/api/v4/futures/usdt/contracts"): "contracts",
        ("GET", "/api/v4/futures/btc/contracts"): "contracts",  # none unless a scope's
        **{(m, f"/api/v4/futures/usdt{path}"): handler for m, path, handler in SETTLED},
    }
    #: BTC-settled contracts' routes: served only where a scope adds them (``scoped``).
    scope_routes: ClassVar[dict[tuple[str, str], Any]] = {
        (m, f"/api/v4/futures/btc{path}"): handler for m, path, handler in SETTLED
    }


DIALECTS["gate"] = Gate


# ============================================================================ BingX (swap v2)


class BingX(_Base):
    """BingX perpetual swap (USDT-M): ``{"code": 0, "msg": "", "data": ...}``.

    Orders name ``positionSide`` BOTH in one-way mode, LONG/SHORT in hedge mode (the account's
    ``dualSidePosition``); sizes are in coins. Position entries carry the direction in
    ``positionSide`` in both modes and say which mode with ``onlyOnePosition`` (true: one-way).

    Where a ledger has them (``SCOPES``), coin-margined perpetuals (``BTC-USD``, contracts of
    ``minTickSize`` USD) are served on ``/openApi/cswap/v1`` only, and the swap v2 routes know
    none of them: its ``user/positions`` lists them and nothing else. Its order answer is the
    order itself, without the envelope (as BingX documents "Trade order" and ccxt reads it);
    its entries are modelled on the USD-M ones (``onlyOnePosition`` included: the coin-M page
    shows no example), and an order's custom id is read as ``clientOrderID`` (what ccxt
    sends) or ``clientOrderId`` (what that page names).
    """

    ccxt_name = "bingx"
    positions_route = "/openApi/swap/v2/user/positions"
    order_route = "/openApi/swap/v2/trade/order"
    codes: ClassVar[dict[str, tuple[int, str]]] = {
        "mode": (109400, "In the One-way mode, the 'PositionSide' field can only be set to "
                 "BOTH; in the Hedge mode, it can only be LONG or SHORT"),
        "reduce": (101205, "No position to close"),
        "amount": (101400, "The minimum order amount is 0.001"),
        "symbol": (109425, "symbol not exist, please verify it"),
        "order": (109421, "order not exist"),
        "cancel": (109421, "order not exist"),
        "client_id": (101481, "clientOrderID duplicate"),
    }  # fmt: skip

    def market_id(self, base: str) -> str:
        return base + "-USDT"

    def market_id_of(self, market: Market) -> str:
        return _joined_id(market, self.market_id(market.base), "-")

    @staticmethod
    def coin_m(r: Request) -> bool:
        """Whether ``r`` is on the coin-margined routes (``/openApi/cswap``)."""
        return r.path.startswith("/openApi/cswap/")

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def ok(self, payload: Payload) -> Payload:
        if isinstance(payload, Bare):
            return dict(payload)
        return {"code": 0, "msg": "", "data": payload}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, (109400, refusal.message))
        return 200, {"code": code, "msg": msg, "data": {}}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, {"code": 429, "msg": "Too many requests"}

    def contracts(self, venue: FakeVenue, r: Request) -> Payload:
        return [
            {
                "contractId": str(100 + i), "symbol": self.market_id(m.base), "size": "0.0001",
                "quantityPrecision": len(_s(m.lot).partition(".")[2]), "pricePrecision": 1,
                "feeRate": 0.0005, "makerFeeRate": 0.0002, "takerFeeRate": 0.0005,
                "tradeMinLimit": 0, "tradeMinQuantity": m.lot, "tradeMinUSDT": 2,
                "maxLongLeverage": 125, "maxShortLeverage": 125, "currency": "USDT",
                "asset": m.base, "status": 1, "apiStateOpen": "true", "apiStateClose": "true",
                "ensureTrigger": True, "triggerFeeRate": "0.00050000", "brokerState": False,
                "launchTime": 1586275200000, "maintainTime": 0, "offTime": 0,
            }
            for i, m in enumerate(self.of_kind(venue, inverse=False))
        ]  # fmt: skip

    def coin_contracts(self, venue: FakeVenue, r: Request) -> Payload:
        return [
            {"symbol": self.market_id_of(m), "pricePrecision": 1,
             "minTickSize": _s(m.contract_size), "minTradeValue": _s(m.contract_size),
             "minQty": _s(m.lot), "status": 1, "timeOnline": 1586275200000}
            for m in self.of_kind(venue, inverse=True)
        ]  # fmt: skip

    def ticker(self, venue: FakeVenue, r: Request) -> Payload:
        """One symbol's ticker, or every symbol's (a list) without ``symbol``."""
        inverse = self.coin_m(r)
        if "symbol" in r.params:
            self.symbol_in(venue, r.params["symbol"], inverse)
        return self.ticker_or_all(venue, r, "symbol", self.of_kind(venue, inverse))

    def _ticker(self, venue: FakeVenue, market_id: str) -> Payload:
        p = _s(venue.ledger.prices[self.symbol_of(venue, market_id)])
        return {"symbol": market_id, "priceChange": "0", "priceChangePercent": "0",
                "lastPrice": p, "lastQty": "1", "highPrice": p, "lowPrice": p,
                "volume": "10", "quoteVolume": "100", "openPrice": p,
                "openTime": now_ms() - 86_400_000, "closeTime": now_ms(), "bidPrice": p,
                "bidQty": "1", "askPrice": p, "askQty": "1"}  # fmt: skip

    def klines(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_in(venue, r.params["symbol"], self.coin_m(r))
        minutes = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}[
            r.params["interval"]
        ]
        rows = _candles(venue, symbol, int(r.params.get("limit", 100)), minutes * 60_000)
        return [{"open": _s(o), "close": _s(c), "high": _s(h), "low": _s(lo),
                 "volume": _s(v), "time": t} for t, o, h, lo, c, v in rows]  # fmt: skip

    def dual(self, venue: FakeVenue, r: Request) -> Payload:
        return {"dualSidePosition": "true" if venue.ledger.hedge else "false"}

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        """The positions of the route's kind (USD-M, or on cswap coin-M), of ``symbol`` when
        given."""
        if venue.take_empty():
            return []
        ledger = venue.ledger
        inverse = self.coin_m(r)
        wanted = r.params.get("symbol")
        rows = []
        for symbol, leg, held in ledger.held():
            market = ledger.markets[symbol]
            if market.inverse != inverse or (wanted and self.mid(venue, symbol) != wanted):
                continue
            mark = ledger.prices[symbol]
            lev = ledger.lev(symbol, leg)
            signed = held.contracts if leg == "long" else -held.contracts
            rows.append({
                "positionId": f"{symbol}-{leg}", "symbol": self.mid(venue, symbol),
                "currency": market.settle_coin, "positionAmt": _s(held.contracts),
                "availableAmt": _s(held.contracts), "positionSide": leg.upper(),
                "isolated": not ledger.cross, "avgPrice": _s(held.entry),
                "initialMargin": _s(held.contracts * held.entry / lev),
                "margin": _s(held.contracts * held.entry / lev), "leverage": int(lev),
                "unrealizedProfit": _s(signed * (mark - held.entry)), "realisedProfit": "0",
                "liquidationPrice": 0, "pnlRatio": "0", "maxMarginReduction": "0",
                "riskRate": "0.001", "markPrice": _s(mark),
                "positionValue": _s(held.contracts * mark),
                "onlyOnePosition": not ledger.hedge, "updateTime": now_ms(),
            })  # fmt: skip
        return rows

    def leverage(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_in(venue, p["symbol"], self.coin_m(r))
        side = p.get("side")
        if side not in ("LONG", "SHORT", "BOTH") or (side == "BOTH") == venue.ledger.hedge:
            raise VenueRefusal("mode", "side does not fit the position mode")
        leg = None if side == "BOTH" else side.lower()
        venue.ledger.set_lev(symbol, float(p["leverage"]), leg)
        return {"leverage": int(p["leverage"]), "symbol": p["symbol"]}

    def create(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        inverse = self.coin_m(r)
        symbol = self.symbol_in(venue, p["symbol"], inverse)
        ledger = venue.ledger
        position_side = p.get("positionSide", "BOTH")
        if (position_side == "BOTH") == ledger.hedge:
            raise VenueRefusal("mode", "positionSide does not fit the position mode")
        side = p["side"].lower()
        leg = None if position_side == "BOTH" else position_side.lower()
        reduce = _truthy(p.get("reduceOnly")) or (
            leg is not None and (leg == "long") != (side == "buy")
        )
        cid = p.get("clientOrderID")
        if inverse and not cid:
            cid = p.get("clientOrderId")
        if cid and ledger.find(client_id=cid.lower()) is not None:
            raise VenueRefusal("client_id", "duplicate")
        order = ledger.place(
            symbol, side, float(p["quantity"]), reduce_only=reduce, leg=leg,
            kind=p["type"].lower(), price=float(p["price"]) if p.get("price") else None,
            client_id=cid.lower() if cid else None,  # BingX keeps client ids in lower case
        )  # fmt: skip
        if inverse:  # the order itself, no envelope
            return Bare(
                orderId=int(order.id), symbol=p["symbol"], positionSide=position_side,
                side=p["side"], type=p["type"], price=float(p.get("price") or 0),
                quantity=float(p["quantity"]), stopPrice=0, workingType="MARK_PRICE",
                timeInForce="", clientOrderId=order.client_id or "",
            )  # fmt: skip
        return {
            "order": {
                "symbol": p["symbol"],
                "orderId": int(order.id),
                "side": p["side"],
                "positionSide": position_side,
                "type": p["type"],
                "clientOrderID": order.client_id or "",
                "workingType": "MARK_PRICE",
            }
        }

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        status = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELLED"}[o.status]
        ledger = venue.ledger
        return {
            "symbol": self.mid(venue, o.symbol), "orderId": int(o.id),
            "side": o.side.upper(), "positionSide": o.leg.upper() if ledger.hedge else "BOTH",
            "type": o.kind.upper(), "origQty": _s(o.amount), "price": _s(o.price or 0),
            "executedQty": _s(o.filled), "avgPrice": _s(o.average or 0),
            "cumQuote": _s(o.filled * (o.average or 0)), "stopPrice": "", "profit": "0",
            "commission": "0", "status": status, "time": o.created, "updateTime": now_ms(),
            "clientOrderId": o.client_id or "", "leverage": f"{int(ledger.lev(o.symbol, o.leg))}X",
            "workingType": "MARK_PRICE", "onlyOnePosition": not ledger.hedge,
            "reduceOnly": o.reduce_only,
        }  # fmt: skip

    def _lookup(self, venue: FakeVenue, p: dict[str, Any]) -> Order | None:
        if p.get("orderId"):
            return venue.ledger.find(p["orderId"])
        if p.get("clientOrderId"):
            return venue.ledger.find(client_id=p["clientOrderId"].lower())
        raise VenueRefusal("param", "orderId or clientOrderId is required")

    def _routed(self, venue: FakeVenue, r: Request) -> Order | None:
        """The order ``r`` names, if it is of the route's kind (USD-M, or on cswap coin-M)."""
        o = self._lookup(venue, r.params)
        if o is not None and venue.ledger.markets[o.symbol].inverse != self.coin_m(r):
            return None
        return o

    def query(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._routed(venue, r)
        if o is None:
            raise VenueRefusal("order", "order not exist")
        return {"order": self._order(venue, o)}

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._routed(venue, r)
        if o is None or o.status != "open":
            raise VenueRefusal("cancel", "order not exist")
        venue.ledger.cancel(o.id)
        return {"order": self._order(venue, o)}

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/openApi/swap/v2/quote/contracts"): "contracts",
        ("GET", "/openApi/cswap/v1/market/contracts"): "coin_contracts",  # a scope's only
        ("GET", "/openApi/spot/v1/common/symbols"): lambda v, r: {"symbols": []},  # no spot
        ("GET", "/openApi/swap/v2/quote/ticker"): "ticker",
        ("GET", "/openApi/swap/v3/quote/klines"): "klines",
        ("GET", "/openApi/swap/v1/positionSide/dual"): "dual",
        ("GET", "/openApi/swap/v2/user/positions"): "positions",
        ("POST", "/openApi/swap/v2/trade/leverage"): "leverage",
        ("POST", "/openApi/swap/v2/trade/order"): "create",
        ("GET", "/openApi/swap/v2/trade/order"): "query",
        ("DELETE", "/openApi/swap/v2/trade/order"): "cancel",
    }
    #: Coin-margined perpetuals' routes: served only where a scope adds them (``scoped``).
    scope_routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/openApi/cswap/v1/market/ticker"): "ticker",
        ("GET", "/openApi/cswap/v1/market/klines"): "klines",
        ("GET", "/openApi/cswap/v1/user/positions"): "positions",
        ("POST", "/openApi/cswap/v1/trade/leverage"): "leverage",
        ("POST", "/openApi/cswap/v1/trade/order"): "create",
        ("GET", "/openApi/cswap/v1/trade/orderDetail"): "query",
        ("DELETE", "/openApi/cswap/v1/trade/cancelOrder"): "cancel",
    }


DIALECTS["bingx"] = BingX


# ============================================================================ Hyperliquid


class Hyperliquid(_Base):
    """Hyperliquid perpetuals: ``POST /info`` (by ``type``) and ``POST /exchange`` (signed actions).

    One-way only (``assetPositions`` of ``type`` oneWay, signed ``szi``). Market orders are IOC
    limit orders at a price bounding the slippage; an order answers per order in ``statuses``
    (``filled``, ``resting`` or ``error``). Client order ids (``cloid``) are 128-bit hex strings.
    Signatures are not checked here.

    Where a ledger has them (``SCOPES``), markets of a HIP-3 dex (``Market.dex``; coin names
    ``dex:NAME``, asset ids from 110000 for the first dex, 120000 for the second, ...) are
    listed by ``perpDexs`` and ``metaAndAssetCtxs`` with that ``dex``; ``clearinghouseState``
    lists the positions of the dex it names (none: the main dex) and no other.
    """

    ccxt_name = "hyperliquid"
    markets = (
        Market("BTC", 50000.0, lot=0.001, quote="USDC"),
        Market("ETH", 3000.0, lot=0.01, quote="USDC"),
    )
    positions_route = "/info"
    order_route = "/exchange"
    credentials: ClassVar[dict[str, Any]] = {
        "walletAddress": "0x" + "11" * 20,
        "privateKey": "0x" + "22" * 32,
    }
    options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}
    has_hedge_mode = False

    def market_id(self, base: str) -> str:
        return base  # the coin name; ccxt's market id is its index in the universe

    def market_id_of(self, market: Market) -> str:
        if market.dex:  # "XYZ-XYZ100" on dex "xyz": the coin "xyz:XYZ100"
            return f"{market.dex}:{market.base.partition('-')[2]}"
        return self.market_id(market.base)

    @staticmethod
    def dexes(venue: FakeVenue) -> list[str]:
        """The HIP-3 dexes of the ledger's markets, in the order ``perpDexs`` lists them."""
        return sorted({m.dex for m in venue.ledger.markets.values() if m.dex})

    @staticmethod
    def on_dex(venue: FakeVenue, dex: str) -> list[Market]:
        return [m for m in venue.ledger.markets.values() if m.dex == dex]

    def _dex(self, venue: FakeVenue, r: Request) -> str:
        dex = str(r.params.get("dex") or "")
        if dex and dex not in self.dexes(venue):
            raise VenueRefusal("param", f"Failed to deserialize the JSON body: dex {dex}")
        return dex

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def is_order(self, request: Request) -> bool:
        action = request.params.get("action")
        return (
            request.path == "/exchange"
            and isinstance(action, dict)
            and (action.get("type") == "order")
        )

    def is_positions(self, request: Request) -> bool:
        return request.path == "/info" and request.params.get("type") == "clearinghouseState"

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        return 200, {"status": "err", "response": refusal.message}

    def rate_limited(self) -> tuple[int, Payload]:
        return 429, "null"

    def _asset(self, venue: FakeVenue, index: int) -> str:
        """The symbol of asset ``index``: the main dex's position in its universe, or a HIP-3
        dex's 100000 + 10000 * (its place among the dexes, from 1) + its position."""
        markets = [m.symbol for m in self.on_dex(venue, "")]
        if index >= 110000:
            place, index = divmod(index - 100000, 10000)
            dexes = self.dexes(venue)
            markets = [m.symbol for m in self.on_dex(venue, dexes[place - 1])] if (
                place <= len(dexes)) else []  # fmt: skip
        if not 0 <= index < len(markets):
            raise VenueRefusal("symbol", f"Invalid asset {index}")
        return markets[index]

    # ---- /info

    def info(self, venue: FakeVenue, r: Request) -> Payload:
        kind = r.params.get("type")
        if kind == "metaAndAssetCtxs":
            return self.meta(venue, self._dex(venue, r))
        if kind == "clearinghouseState":
            return self.clearinghouse(venue, self._dex(venue, r))
        if kind == "perpDexs":
            return [None] + [
                {"name": dex, "fullName": dex.upper(), "deployer": "0x" + "33" * 20,
                 "oracleUpdater": None, "feeRecipient": None, "assetToStreamingOiCap": []}
                for dex in self.dexes(venue)
            ]  # fmt: skip
        if kind == "candleSnapshot":
            return self.candles(venue, r.params["req"])
        if kind == "orderStatus":
            return self.order_status(venue, r.params["oid"])
        if kind == "userAbstraction":
            return "disabled"
        raise VenueRefusal("param", f"Failed to deserialize the JSON body: type {kind}")

    def meta(self, venue: FakeVenue, dex: str = "") -> Payload:
        """The universe and asset contexts of ``dex`` ('': the main dex)."""
        universe, ctxs = [], []
        for m in self.on_dex(venue, dex):
            decimals = len(_s(m.lot).partition(".")[2])
            universe.append({"szDecimals": decimals, "name": self.market_id_of(m),
                             "maxLeverage": 50, "marginTableId": 50})  # fmt: skip
            p = _s(venue.ledger.prices[m.symbol])
            ctxs.append({"funding": "0.0000125", "openInterest": "1000", "prevDayPx": p,
                         "dayNtlVlm": "1000000", "premium": "0.0", "oraclePx": p,
                         "markPx": p, "midPx": p, "impactPxs": [p, p],
                         "dayBaseVlm": "100"})  # fmt: skip
        meta: dict[str, Any] = {"universe": universe, "marginTables": []}
        if dex:
            meta["collateralToken"] = 0
        return [meta, ctxs]

    def clearinghouse(self, venue: FakeVenue, dex: str = "") -> Payload:
        """The account's positions on ``dex`` ('': the main dex) and on no other."""
        ledger = venue.ledger
        rows = []
        if not venue.take_empty():
            for symbol, leg, held in ledger.held():
                if ledger.markets[symbol].dex != dex:
                    continue
                mark = ledger.prices[symbol]
                signed = held.contracts if leg == "long" else -held.contracts
                lev = ledger.lev(symbol, leg)
                value = held.contracts * mark
                position = {
                    "coin": self.mid(venue, symbol), "szi": _s(signed),
                    "leverage": {"type": "cross" if ledger.cross_of(symbol, leg)
                                 else "isolated", "value": int(lev)},
                    "entryPx": _s(held.entry), "positionValue": _s(value),
                    "unrealizedPnl": _s(signed * (mark - held.entry)),
                    "returnOnEquity": "0", "liquidationPx": None,
                    "marginUsed": _s(value / lev), "maxLeverage": 50,
                    "cumFunding": {"allTime": "0", "sinceOpen": "0", "sinceChange": "0"},
                }  # fmt: skip
                rows.append({"type": "oneWay", "position": position})
        summary = {"accountValue": "100000", "totalNtlPos": "0", "totalRawUsd": "100000",
                   "totalMarginUsed": "0"}  # fmt: skip
        return {"marginSummary": summary, "crossMarginSummary": summary,
                "crossMaintenanceMarginUsed": "0", "withdrawable": "100000",
                "assetPositions": rows, "time": now_ms()}  # fmt: skip

    def candles(self, venue: FakeVenue, req: dict[str, Any]) -> Payload:
        symbol = self.symbol_of(venue, req["coin"])
        minutes = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}[req["interval"]]
        step = minutes * 60_000
        count = max(1, (int(req["endTime"]) - int(req["startTime"])) // step)
        rows = _candles(venue, symbol, min(count, 500), step)
        return [{"t": t, "T": t + step - 1, "s": req["coin"], "i": req["interval"], "o": _s(o),
                 "c": _s(c), "h": _s(h), "l": _s(lo), "v": _s(v), "n": 10}
                for t, o, h, lo, c, v in rows]  # fmt: skip

    def _order_entry(self, venue: FakeVenue, o: Order) -> Payload:
        return {"coin": self.mid(venue, o.symbol), "side": "B" if o.side == "buy" else "A",
                "limitPx": _s(o.price or 0), "sz": _s(o.amount - o.filled), "oid": int(o.id),
                "timestamp": o.created, "triggerCondition": "N/A", "isTrigger": False,
                "triggerPx": "0.0", "children": [], "isPositionTpsl": False,
                "reduceOnly": o.reduce_only, "orderType": "Limit", "origSz": _s(o.amount),
                "tif": o.extra.get("tif", "Gtc"), "cloid": o.client_id}  # fmt: skip

    def order_status(self, venue: FakeVenue, oid: Any) -> Payload:
        if isinstance(oid, str) and oid.startswith("0x"):
            o = venue.ledger.find(client_id=oid)
        else:
            o = venue.ledger.find(str(oid))
        if o is None:
            return {"status": "unknownOid"}
        status = {"open": "open", "closed": "filled", "canceled": "canceled"}[o.status]
        return {
            "status": "order",
            "order": {
                "order": self._order_entry(venue, o),
                "status": status,
                "statusTimestamp": now_ms(),
            },
        }

    # ---- /exchange

    def exchange(self, venue: FakeVenue, r: Request) -> Payload:
        action = r.params.get("action") or {}
        if not r.params.get("signature") or "nonce" not in r.params:
            raise VenueRefusal("auth", "Missing signature or nonce")
        kind = action.get("type")
        if kind == "order":
            statuses = [self._place(venue, one) for one in action["orders"]]
            return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
        if kind == "updateLeverage":
            symbol = self._asset(venue, int(action["asset"]))
            if bool(action["isCross"]) != venue.ledger.cross_of(symbol):
                held = [leg for s, leg, _h in venue.ledger.held() if s == symbol]
                if held:
                    raise VenueRefusal(
                        "margin",
                        "Cannot switch leverage type with open position.",
                        venue.ledger.margin_key(symbol),
                    )
                venue.ledger.cross = bool(action["isCross"])
            venue.ledger.set_lev(symbol, float(action["leverage"]))
            return {"status": "ok", "response": {"type": "default"}}
        if kind in ("cancel", "cancelByCloid"):
            statuses = [self._cancel(venue, one) for one in action["cancels"]]
            return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}
        if kind in ("approveBuilderFee", "setReferrer"):
            return {"status": "ok", "response": {"type": "default"}}
        raise VenueRefusal("param", f"Unknown action {kind}")

    def _place(self, venue: FakeVenue, one: dict[str, Any]) -> Payload:
        try:
            symbol = self._asset(venue, int(one["a"]))
            tif = one["t"]["limit"]["tif"]
            side = "buy" if one["b"] else "sell"
            price = float(one["p"])
            last = venue.ledger.prices[symbol]
            crosses = price >= last if side == "buy" else price <= last
            if tif == "Ioc" and not crosses:
                raise VenueRefusal("ioc", "Order could not immediately match against any "
                                   "resting orders. asset=0")  # fmt: skip
            if tif == "Alo" and crosses:
                raise VenueRefusal("alo", "Post only order would have immediately matched, "
                                   "bbo was 1. asset=0")  # fmt: skip
            cloid = one.get("c")
            if cloid is not None and (len(cloid) != 34 or not cloid.startswith("0x")):
                raise VenueRefusal("cloid", "Invalid cloid")
            try:
                o = venue.ledger.place(
                    symbol, side, float(one["s"]), reduce_only=bool(one["r"]), leg=None,
                    kind="limit", price=price, client_id=cloid,
                )  # fmt: skip
            except VenueRefusal as refusal:
                if refusal.reason == "reduce":
                    raise VenueRefusal(
                        "reduce", "Reduce only order would increase position. asset=0"
                    ) from None
                raise
            o.extra["tif"] = tif
        except VenueRefusal as refusal:
            return {"error": refusal.message}
        if o.status == "closed":
            done: dict[str, Any] = {"totalSz": _s(o.filled), "avgPx": _s(o.average or 0),
                                    "oid": int(o.id)}  # fmt: skip
            if o.client_id:
                done["cloid"] = o.client_id
            return {"filled": done}
        resting: dict[str, Any] = {"oid": int(o.id)}
        if o.client_id:
            resting["cloid"] = o.client_id
        return {"resting": resting}

    def _cancel(self, venue: FakeVenue, one: dict[str, Any]) -> Payload:
        o = (
            venue.ledger.find(client_id=one["cloid"])
            if "cloid" in one
            else venue.ledger.find(str(one["o"]))
        )
        if o is None or o.status != "open":
            return {"error": "Order was never placed, already canceled, or filled. asset=0"}
        venue.ledger.cancel(o.id)
        return "success"

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("POST", "/info"): "info",
        ("POST", "/exchange"): "exchange",
    }


DIALECTS["hyperliquid"] = Hyperliquid


# ============================================================================ MEXC (contract)


class Mexc(_Base):
    """MEXC futures (contract API v1): ``{"success": true, "code": 0, "data": ...}``.

    Sizes are contracts (``contractSize`` coins). Orders name their effect with ``side`` codes
    (1 open long, 2 close short, 3 open short, 4 close long) in both modes, so every order names
    its leg; ``positionMode`` 1 (hedge) or 2 (one-way) defaults to the account's setting, which
    ``position/position_mode`` answers (entries do not say). A cancel answers per order with an
    ``errorCode`` inside a successful envelope. (MEXC has restricted futures order placement
    through the API for most accounts since 2022; the documented format is what is served.)
    """

    margin_per_position = True
    ccxt_name = "mexc"
    markets = CONTRACT_MARKETS
    positions_route = "/api/v1/private/position/open_positions"
    order_route = "/api/v1/private/order/create"
    leg_from_sign = True
    codes: ClassVar[dict[str, tuple[int, str]]] = {
        "mode": (2011, "order side does not fit the position mode"),
        "reduce": (2009, "Position is not exists or closed."),
        "amount": (2003, "Invalid volume"),
        "symbol": (1001, "Contract does not exist"),
        "client_id": (603, "Repeated request"),
        "isolated": (600, "leverage is required for isolated orders"),
        "margin": (600, "openType does not fit the position"),
    }

    def market_id(self, base: str) -> str:
        return base + "_USDT"

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def ok(self, payload: Payload) -> Payload:
        return {"success": True, "code": 0, "data": payload}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, (600, refusal.message))
        return 200, {"success": False, "code": code, "message": msg}

    def rate_limited(self) -> tuple[int, Payload]:
        return 200, {"success": False, "code": 510, "message": "Requests are too frequent"}

    def spot_info(self, venue: FakeVenue, r: Request) -> Payload:
        return {"timezone": "CST", "serverTime": now_ms(), "rateLimits": [],
                "exchangeFilters": [], "symbols": []}  # fmt: skip

    def detail(self, venue: FakeVenue, r: Request) -> Payload:
        return [
            {
                "symbol": self.market_id(m.base), "displayName": f"{m.base}_USDT永续",
                "displayNameEn": f"{m.base}_USDT PERPETUAL", "positionOpenType": 3,
                "baseCoin": m.base, "quoteCoin": "USDT", "settleCoin": "USDT",
                "contractSize": m.contract_size, "minLeverage": 1, "maxLeverage": 125,
                "priceScale": 1, "volScale": 0, "amountScale": 4, "priceUnit": 0.1,
                "volUnit": m.lot, "minVol": m.lot, "maxVol": 1000000,
                "bidLimitPriceRate": 0.1, "askLimitPriceRate": 0.1, "takerFeeRate": 0.0002,
                "makerFeeRate": 0.0, "maintenanceMarginRate": 0.004,
                "initialMarginRate": 0.008, "riskBaseVol": 10000, "riskIncrVol": 200000,
                "riskIncrMmr": 0.004, "riskIncrImr": 0.004, "riskLevelLimit": 5,
                "priceCoefficientVariation": 0.1, "indexOrigin": ["BINANCE"], "state": 0,
                "isNew": False, "isHot": True, "isHidden": False, "conceptPlate": [],
                "riskLimitType": "BY_VOLUME", "maxNumOrders": [200, 50],
                "marketOrderMaxLevel": 20, "marketOrderPriceLimitRate1": 0.2,
                "marketOrderPriceLimitRate2": 0.005, "triggerProtect": 0.1,
                "appraisal": 0, "showAppraisalCountdown": 0, "automaticDelivery": 0,
                "apiAllowed": False,
            }
            for m in venue.ledger.markets.values()
        ]  # fmt: skip

    def ticker(self, venue: FakeVenue, r: Request) -> Payload:
        """One contract's ticker, or every contract's (a list) without ``symbol``."""
        return self.ticker_or_all(venue, r, "symbol")

    def _ticker(self, venue: FakeVenue, market_id: str) -> Payload:
        p = venue.ledger.prices[self.symbol_of(venue, market_id)]
        return {"contractId": 1, "symbol": market_id, "lastPrice": p, "bid1": p,
                "ask1": p, "volume24": 1000, "amount24": 100000, "holdVol": 1000,
                "lower24Price": p, "high24Price": p, "riseFallRate": 0, "riseFallValue": 0,
                "indexPrice": p, "fairPrice": p, "fundingRate": 0.0001, "maxBidPrice": p * 1.1,
                "minAskPrice": p * 0.9, "timestamp": now_ms()}  # fmt: skip

    def kline(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_of(venue, r.path.rsplit("/", 1)[-1])
        intervals = {"Min1": 1, "Min5": 5, "Min15": 15, "Min30": 30, "Min60": 60, "Hour4": 240,
                     "Hour8": 480, "Day1": 1440}  # fmt: skip
        minutes = intervals.get(r.params.get("interval", "Min1"), 60)
        rows = _candles(venue, symbol, 120, minutes * 60_000)
        return {
            "time": [t // 1000 for t, *_ in rows],
            "open": [o for _, o, *_ in rows],
            "high": [h for _, _, h, *_ in rows],
            "low": [lo for _, _, _, lo, *_ in rows],
            "close": [c for *_, c, _ in rows],
            "vol": [v for *_, v in rows],
            "amount": [v * c for *_, c, v in rows],
        }

    def position_mode(self, venue: FakeVenue, r: Request) -> Payload:
        return 1 if venue.ledger.hedge else 2

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        if venue.take_empty():
            return []
        ledger = venue.ledger
        rows: list[dict[str, Any]] = []
        for symbol, leg, held in ledger.held():
            m = ledger.markets[symbol]
            lev = ledger.lev(symbol, leg)
            rows.append({
                "positionId": 1_000 + len(rows), "symbol": self.mid(venue, symbol),
                "positionType": 1 if leg == "long" else 2,
                "openType": 2 if ledger.cross_of(symbol, leg) else 1, "state": 1,
                "holdVol": held.contracts, "frozenVol": 0, "closeVol": 0,
                "holdAvgPrice": held.entry, "openAvgPrice": held.entry,
                "closeAvgPrice": 0, "liquidatePrice": 0,
                "oim": held.contracts * m.contract_size * held.entry / lev,
                "im": held.contracts * m.contract_size * held.entry / lev, "holdFee": 0,
                "realised": 0, "leverage": int(lev), "createTime": held.opened,
                "updateTime": now_ms(), "autoAddIm": False,
            })  # fmt: skip
        return rows

    def change_leverage(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_of(venue, p["symbol"])
        open_type, position_type = int(p["openType"]), int(p["positionType"])
        if position_type not in (1, 2):
            raise VenueRefusal("param", "openType or positionType does not fit the position")
        leg: str | None = "long" if position_type == 1 else "short"
        named = leg if venue.ledger.hedge else None
        if (open_type == 2) != venue.ledger.cross_of(symbol, named):
            raise VenueRefusal("param", "openType or positionType does not fit the position")
        if venue.ledger.cross and not venue.ledger.hedge:
            leg = None  # one leverage per symbol in one-way cross
        venue.ledger.set_lev(symbol, float(p["leverage"]), leg)
        return None

    def create(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_of(venue, p["symbol"])
        ledger = venue.ledger
        mode = int(p.get("positionMode", 1 if ledger.hedge else 2))
        if (mode == 1) != ledger.hedge:
            raise VenueRefusal("mode", "positionMode does not fit the account")
        if int(p["openType"]) == 1 and not p.get("leverage"):
            raise VenueRefusal("isolated", "leverage is required")
        code = int(p["side"])
        side = "buy" if code in (1, 2) else "sell"
        reduce = code in (2, 4)
        leg = {1: "long", 4: "long", 3: "short", 2: "short"}[code] if ledger.hedge else None
        cross = ledger.cross_of(symbol, leg)
        if (int(p["openType"]) == 2) != cross:
            key = ledger.margin_key(symbol, leg)
            raise VenueRefusal("margin", "openType does not fit the position", key)
        ext = p.get("externalOid")
        if ext and ledger.find(client_id=ext) is not None:
            raise VenueRefusal("client_id", "Repeated request")
        kind = "limit" if int(p["type"]) in (1, 2, 3, 4) else "market"
        order = ledger.place(
            symbol, side, float(p["vol"]), reduce_only=reduce, leg=leg, kind=kind,
            price=float(p["price"]) if kind == "limit" else None, client_id=ext,
            leverage=float(p["leverage"]) if p.get("leverage") else None,
        )  # fmt: skip
        order.extra["code"] = code
        if not reduce and p.get("leverage") and not cross:
            ledger.set_lev(symbol, float(p["leverage"]), order.leg)
        return {"orderId": order.id, "ts": now_ms()}

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        state = {"open": 2, "closed": 3, "canceled": 4}[o.status]
        code = o.extra.get("code") or (
            (1 if o.side == "buy" else 3) if not o.reduce_only else (2 if o.side == "buy" else 4)
        )
        return {
            "orderId": o.id, "symbol": self.mid(venue, o.symbol), "positionId": 1000,
            "price": o.price or 0, "vol": o.amount, "leverage": int(o.leverage or 0),
            "side": code, "category": 1, "orderType": 1 if o.kind == "limit" else 5,
            "dealAvgPrice": o.average or 0, "dealVol": o.filled, "orderMargin": 0,
            "takerFee": 0, "makerFee": 0, "profit": 0, "feeCurrency": "USDT",
            "openType": 2 if venue.ledger.cross else 1, "state": state,
            "externalOid": o.client_id or f"_m_{o.id}", "errorCode": 0, "usedMargin": 0,
            "createTime": o.created, "updateTime": now_ms(),
        }  # fmt: skip

    def get(self, venue: FakeVenue, r: Request) -> Payload:
        o = venue.ledger.find(r.path.rsplit("/", 1)[-1])
        return None if o is None else self._order(venue, o)  # unknown: data null

    def external(self, venue: FakeVenue, r: Request) -> Payload:
        symbol_id, ext = r.path.split("/")[-2:]
        o = venue.ledger.find(client_id=ext)
        if o is None or self.market_id(o.symbol.split("/")[0]) != symbol_id:
            return None
        return self._order(venue, o)

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        rows = []
        for order_id in r.params["_body"]:
            o = venue.ledger.find(str(order_id))
            if o is None or o.status != "open":
                rows.append({"orderId": str(order_id), "errorCode": 2041,
                             "errorMsg": "order state cannot be cancelled"})  # fmt: skip
            else:
                venue.ledger.cancel(o.id)
                rows.append({"orderId": o.id, "errorCode": 0, "errorMsg": "success"})
        return rows

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/v3/exchangeInfo"): "spot_info",
        ("GET", "/api/v1/contract/detail"): "detail",
        ("GET", "/api/v1/contract/ticker"): "ticker",
        ("GET", "/api/v1/contract/kline/*"): "kline",
        ("GET", "/api/v1/private/position/position_mode"): "position_mode",
        ("GET", "/api/v1/private/position/open_positions"): "positions",
        ("POST", "/api/v1/private/position/change_leverage"): ("change_leverage"),
        ("POST", "/api/v1/private/order/create"): "create",
        ("GET", "/api/v1/private/order/get/*"): "get",
        ("GET", "/api/v1/private/order/external/*/*"): "external",
        ("POST", "/api/v1/private/order/cancel"): "cancel",
    }


DIALECTS["mexc"] = Mexc


# ============================================================================ HTX (linear swap, v5)


class Htx(_Base):
    """HTX USDT-margined swaps as ccxt drives them: contract info from ``linear-swap-api/v1``,
    trading on the v5 API (``{"code": 200, "message": "Success", "data": ..., "ts"}``).

    Sizes are contracts (``contract_size`` coins). Entries and orders carry ``position_side``:
    ``both`` in one-way mode (``single_side``), ``long``/``short`` in hedge mode
    (``dual_side``, which ``v5/position/mode`` answers). Leverage is set per contract and margin
    mode on ``v5/position/lever``. Client order ids are integers. An error answers ``code`` with
    a ``message`` (ccxt raises only for the codes it maps).

    Where a ledger has them (``SCOPES``), coin-margined swaps (``BTC-USD``, contracts of
    ``contract_size`` USD) trade on the v1 ``swap-api`` (``{"status": "ok", "data", "ts"}``,
    errors ``{"status": "error", "err_code", "err_msg"}``) with market data on ``swap-ex``:
    ``swap_position_info`` lists them and nothing else, and the v5 and ``linear-swap`` routes
    know none of them. Their orders name ``offset`` (open/close) and ``direction``; in the
    ledger an order with offset ``close`` is reduce-only and the ledger's own mode applies (HTX
    holds coin-margined legs two-way; a one-way ledger nets them: simplified). Every order
    type fills at once at the last price (limit: if it crosses). Loading the inverse markets
    also asks for the coin-margined futures (``api/v1/contract_contract_info``), which ccxt
    refuses to find empty: one quarterly contract per inverse market is listed there, for
    the listing only (it cannot be traded here).
    """

    margin_per_position = True
    ccxt_name = "htx"
    markets = CONTRACT_MARKETS
    positions_route = "/v5/trade/position/opens"
    order_route = "/v5/trade/order"
    options: ClassVar[dict[str, Any]] = {
        "fetchMarkets": {"types": {"spot": False, "linear": True, "inverse": False}}
    }
    codes: ClassVar[dict[str, tuple[int, str]]] = {
        "mode": (1036, "Incorrect field of open long form: position_side does not fit the "
                 "position mode"),
        "reduce": (1048, "Insufficient close amount available."),
        "amount": (1041, "The order amount exceeds the limit"),
        "symbol": (1013, "This contract symbol doesnt exist."),
        "order": (1017, "Order doesnt exist."),
        "cancel": (1061, "The order does not exist."),
        "client_id": (1067, "The client_order_id field is invalid. Please re-enter."),
        "margin": (1034, "margin_mode does not fit the position"),
    }  # fmt: skip

    def market_id(self, base: str) -> str:
        return base + "-USDT"

    def market_id_of(self, market: Market) -> str:
        return _joined_id(market, self.market_id(market.base), "-")

    def prepare(self, exchange: Any) -> None:
        exchange.has = {**exchange.has, "fetchCurrencies": False}

    def ok(self, payload: Payload) -> Payload:
        if isinstance(payload, dict) and "status" in payload:
            return payload  # a v1 or market answer, in its own envelope
        return {"code": 200, "message": "Success", "data": payload, "ts": now_ms()}

    def error(self, refusal: VenueRefusal) -> tuple[int, Payload]:
        code, msg = self.codes.get(refusal.reason, (1000, refusal.message))
        return 200, {"code": code, "message": msg, "data": None, "ts": now_ms()}

    def rate_limited(self) -> tuple[int, Payload]:
        return 200, {"status": "error", "err-code": "rate-too-many-requests",
                     "err-msg": "exceeded rate limit", "data": None}  # fmt: skip

    def contract_info(self, venue: FakeVenue, r: Request) -> Payload:
        rows = [
            {
                "symbol": m.base, "contract_code": self.market_id(m.base),
                "contract_size": m.contract_size, "price_tick": 0.1, "delivery_date": "",
                "delivery_time": "", "create_date": "20201021", "contract_status": 1,
                "settlement_date": "1641110400000", "support_margin_mode": "all",
                "business_type": "swap", "pair": self.market_id(m.base),
                "contract_type": "swap", "trade_partition": "USDT",
            }
            for m in self.of_kind(venue, inverse=False)
        ]  # fmt: skip
        return {"status": "ok", "data": rows, "ts": now_ms()}

    def merged(self, venue: FakeVenue, r: Request) -> Payload:
        self.symbol_in(venue, r.params["contract_code"], r.path.startswith("/swap-ex"))
        tick = self._tick(venue, r.params["contract_code"])
        return {"ch": f"market.{r.params['contract_code']}.detail.merged", "status": "ok",
                "tick": tick, "ts": now_ms()}  # fmt: skip

    def batch_merged(self, venue: FakeVenue, r: Request) -> Payload:
        """Every contract's merged ticker (``business_type`` swap), each with its code (on
        ``swap-ex``: the coin-margined swaps')."""
        inverse = r.path.startswith("/swap-ex")
        ticks = [
            {**self._tick(venue, self.market_id_of(m)), "contract_code": self.market_id_of(m),
             "business_type": "swap", "number_of": "10"}
            for m in self.of_kind(venue, inverse)
        ]  # fmt: skip
        return {"status": "ok", "ticks": ticks, "ts": now_ms()}

    def _tick(self, venue: FakeVenue, contract_code: str) -> Payload:
        p = venue.ledger.prices[self.symbol_of(venue, contract_code)]
        return {"amount": "10", "ask": [p, 1], "bid": [p, 1], "close": _s(p), "count": 10,
                "high": _s(p), "id": now_ms() // 1000, "low": _s(p), "open": _s(p),
                "trade_turnover": "1000", "ts": now_ms(), "vol": "100"}  # fmt: skip

    def kline(self, venue: FakeVenue, r: Request) -> Payload:
        symbol = self.symbol_in(venue, r.params["contract_code"], r.path.startswith("/swap-ex"))
        minutes = {"1min": 1, "5min": 5, "15min": 15, "30min": 30, "60min": 60, "4hour": 240,
                   "1day": 1440}[r.params["period"]]  # fmt: skip
        rows = _candles(venue, symbol, int(r.params.get("size", 150)), minutes * 60_000)
        data = [{"id": t // 1000, "open": o, "close": c, "low": lo, "high": h, "amount": v,
                 "vol": v, "trade_turnover": v * c, "count": 10}
                for t, o, h, lo, c, v in rows]  # fmt: skip
        return {"ch": f"market.{r.params['contract_code']}.kline.{r.params['period']}",
                "data": data, "status": "ok", "ts": now_ms()}  # fmt: skip

    def position_mode(self, venue: FakeVenue, r: Request) -> Payload:
        return {"position_mode": "dual_side" if venue.ledger.hedge else "single_side"}

    def positions(self, venue: FakeVenue, r: Request) -> Payload:
        if venue.take_empty():
            return []
        ledger = venue.ledger
        rows = []
        for symbol, leg, held in ledger.held():
            m = ledger.markets[symbol]
            if m.inverse:
                continue  # listed by swap_position_info only
            mark = ledger.prices[symbol]
            lev = ledger.lev(symbol, leg)
            signed = held.contracts if leg == "long" else -held.contracts
            margin = held.contracts * m.contract_size * held.entry / lev
            rows.append({
                "contract_code": self.mid(venue, symbol),
                "position_side": leg if ledger.hedge else "both",
                "direction": "buy" if leg == "long" else "sell",
                "margin_mode": "cross" if ledger.cross_of(symbol, leg) else "isolated",
                "open_avg_price": _s(held.entry), "volume": _s(held.contracts),
                "available": _s(held.contracts), "lever_rate": int(lev),
                "adl_risk_percent": 1, "liquidation_price": "0", "margin": _s(margin),
                "initial_margin": _s(margin), "maintenance_margin": _s(margin / 10),
                "profit_unreal": _s(signed * (mark - held.entry) * m.contract_size),
                "profit_rate": "0", "margin_rate": "0.01", "mark_price": _s(mark),
                "last_price": _s(mark), "margin_currency": "USDT", "contract_type": "swap",
                "created_time": str(held.opened), "updated_time": str(now_ms()),
            })  # fmt: skip
        return rows

    def lever(self, venue: FakeVenue, r: Request) -> Payload:
        """``v5/position/lever`` names a contract and a margin mode, no position side: HTX
        keeps a leverage per contract and margin mode. One-way: the mode must be the held
        position's (the account's when flat). Hedge mode, where each leg keeps its own mode:
        a mode some held leg is in or a new leg would open in (the account's); it sets the
        legs in that mode, held or not."""
        p = r.params
        symbol = self.symbol_in(venue, p["contract_code"], inverse=False)
        ledger = venue.ledger
        cross = p.get("margin_mode") == "cross"
        with ledger.lock:
            modes = {
                leg: held.cross if held.cross is not None else ledger.cross
                for leg in ("long", "short")
                if (held := ledger.legs.get((symbol, leg))) is not None
            }
        fits = cross in {ledger.cross, *modes.values()} if ledger.hedge else None
        if (
            p.get("margin_mode") not in ("cross", "isolated")
            or fits is False
            or (fits is None and cross != ledger.cross_of(symbol))
        ):
            key = ledger.margin_key(symbol)
            raise VenueRefusal("margin", "margin_mode does not fit the position", key)
        for leg in ("long", "short"):
            if not ledger.hedge or modes.get(leg, ledger.cross) == cross:
                ledger.set_lev(symbol, float(p["lever_rate"]), leg)
        return {"contract_code": p["contract_code"], "margin_mode": p["margin_mode"],
                "lever_rate": int(p["lever_rate"])}  # fmt: skip

    def create(self, venue: FakeVenue, r: Request) -> Payload:
        p = r.params
        symbol = self.symbol_in(venue, p["contract_code"], inverse=False)
        ledger = venue.ledger
        position_side = p.get("position_side", "both")
        if (position_side == "both") == ledger.hedge or position_side not in (
            "both",
            "long",
            "short",
        ):
            raise VenueRefusal("mode", "position_side does not fit the position mode")
        cid = p.get("client_order_id")
        if cid is not None and (not str(cid).isdigit() or not 0 < int(cid) < 2**63):
            raise VenueRefusal("client_id", "client_order_id must be a positive integer")
        if cid is not None and ledger.find(client_id=str(cid)) is not None:
            raise VenueRefusal("client_id", "duplicate client_order_id")
        side = p["side"]
        leg = None if position_side == "both" else position_side
        cross = ledger.cross_of(symbol, leg)
        if p.get("margin_mode") != ("cross" if cross else "isolated"):
            key = ledger.margin_key(symbol, leg)
            raise VenueRefusal("margin", "margin_mode does not fit the position", key)
        reduce = bool(p.get("reduce_only")) and str(p.get("reduce_only")) != "0"
        reduce = reduce or (leg is not None and (leg == "long") != (side == "buy"))
        kind = "market" if p.get("type") == "market" else "limit"
        order = ledger.place(
            symbol, side, float(p["volume"]), reduce_only=reduce, leg=leg, kind=kind,
            price=float(p["price"]) if kind == "limit" else None,
            client_id=str(cid) if cid is not None else None,
        )  # fmt: skip
        order.extra["cross"] = cross  # the margin account it is in
        return {"order_id": order.id, "client_order_id": order.client_id or order.id}

    def _order(self, venue: FakeVenue, o: Order) -> Payload:
        ledger = venue.ledger
        state = {"open": "new", "closed": "filled", "canceled": "canceled"}[o.status]
        m = ledger.markets[o.symbol]
        return {
            "id": o.id, "side": o.side, "type": o.kind, "price": _s(o.price or 0),
            "volume": _s(o.amount), "state": state, "profit": None,
            "contract_code": self.mid(venue, o.symbol),
            "position_side": o.leg if ledger.hedge else "both", "price_match": None,
            "order_id": o.id, "client_order_id": o.client_id or o.id,
            "margin_mode": "cross" if o.extra.get("cross", ledger.cross) else "isolated",
            "lever_rate": int(ledger.lev(o.symbol, o.leg)), "order_source": "api",
            "reduce_only": o.reduce_only, "time_in_force": "gtc", "tp_trigger_price": "",
            "tp_order_price": "", "tp_type": "0", "sl_trigger_price": "",
            "sl_order_price": "", "sl_type": "0", "trade_volume": _s(o.filled),
            "trade_turnover": _s(o.filled * (o.average or 0) * m.contract_size),
            "trade_avg_price": _s(o.average) if o.average else None, "fee_currency": "USDT",
            "fee": "0", "price_protect": False, "real_profit": None, "contract_type": "swap",
            "created_time": str(o.created), "updated_time": str(now_ms()),
            "cancel_reason": None, "self_match_prevent": "cancel_taker",
        }  # fmt: skip

    def _lookup(self, venue: FakeVenue, p: dict[str, Any]) -> Order | None:
        if p.get("order_id") and p["order_id"] != "None":
            return venue.ledger.find(str(p["order_id"]))
        if p.get("client_order_id"):
            return venue.ledger.find(client_id=str(p["client_order_id"]))
        raise VenueRefusal("param", "order_id or client_order_id is required")

    def order(self, venue: FakeVenue, r: Request) -> Payload:
        # The look-up's margin_mode (required; ccxt sends "cross" unless told) names the margin
        # account the order is in: an isolated order is not found under cross (an assumption:
        # the v5 documentation does not say; docs/ccxt-client.md).
        o = self._lookup(venue, r.params)
        if o is not None and venue.ledger.markets[o.symbol].inverse:
            o = None  # a coin-margined swap's: swap_order_info finds it
        if o is None or r.params.get("margin_mode") != (
            "cross" if o.extra.get("cross", venue.ledger.cross) else "isolated"
        ):
            raise VenueRefusal("order", "Order doesnt exist.")
        return self._order(venue, o)

    def cancel(self, venue: FakeVenue, r: Request) -> Payload:
        o = self._lookup(venue, r.params)
        if o is not None and venue.ledger.markets[o.symbol].inverse:
            o = None
        if o is None or o.status != "open":
            raise VenueRefusal("cancel", "The order does not exist.")
        venue.ledger.cancel(o.id)
        return {"order_id": o.id, "client_order_id": o.client_id or o.id}

    # ---- coin-margined swaps (v1 swap-api), where a ledger has them

    def _v1(self, answer: Callable[[], Payload]) -> Payload:
        """``answer()`` in the v1 envelope; a refusal as v1's error body."""
        try:
            data = answer()
        except VenueRefusal as refusal:
            code, msg = self.codes.get(refusal.reason, (1000, refusal.message))
            return {"status": "error", "err_code": code, "err_msg": msg, "ts": now_ms()}
        return {"status": "ok", "data": data, "ts": now_ms()}

    def swap_contract_info(self, venue: FakeVenue, r: Request) -> Payload:
        rows = [
            {"symbol": m.base, "contract_code": self.market_id_of(m),
             "contract_size": m.contract_size, "price_tick": 0.1, "delivery_time": "",
             "create_date": "20200325", "contract_status": 1,
             "settlement_date": "1641110400000"}
            for m in self.of_kind(venue, inverse=True)
        ]  # fmt: skip
        return self._v1(lambda: rows)

    #: The listed-only quarterly contract's delivery (2100-01-01 08:00 UTC).
    QUARTER = ("21000101", "4102473600000")

    def future_contract_info(self, venue: FakeVenue, r: Request) -> Payload:
        day, at = self.QUARTER
        rows = [
            {"symbol": m.base, "contract_code": f"{m.base}{day[2:]}",
             "contract_type": "quarter", "contract_size": m.contract_size, "price_tick": 0.01,
             "delivery_date": day, "delivery_time": at, "create_date": "20250101",
             "contract_status": 1, "settlement_time": at}
            for m in self.of_kind(venue, inverse=True)
        ]  # fmt: skip
        return self._v1(lambda: rows)

    def swap_lever(self, venue: FakeVenue, r: Request) -> Payload:
        def answer() -> Payload:
            p = r.params
            symbol = self.symbol_in(venue, p["contract_code"], inverse=True)
            venue.ledger.set_lev(symbol, float(p["lever_rate"]))
            return {"contract_code": p["contract_code"], "lever_rate": int(p["lever_rate"])}

        return self._v1(answer)

    def swap_order(self, venue: FakeVenue, r: Request) -> Payload:
        def answer() -> Payload:
            p = r.params
            symbol = self.symbol_in(venue, p["contract_code"], inverse=True)
            ledger = venue.ledger
            offset, side = p.get("offset"), p.get("direction")
            if offset not in ("open", "close") or side not in ("buy", "sell"):
                raise VenueRefusal("param", "offset and direction are required")
            cid = p.get("client_order_id")
            if cid is not None and (not str(cid).isdigit() or not 0 < int(cid) < 2**63):
                raise VenueRefusal("client_id", "client_order_id must be a positive integer")
            if cid is not None and ledger.find(client_id=str(cid)) is not None:
                raise VenueRefusal("client_id", "duplicate client_order_id")
            reduce = offset == "close"
            leg = None
            if ledger.hedge:  # two-way: the direction and offset name the leg
                leg = "long" if (side == "buy") != reduce else "short"
            kind = "limit" if p.get("order_price_type") in ("limit", "post_only") else "market"
            order = ledger.place(
                symbol, side, float(p["volume"]), reduce_only=reduce, leg=leg, kind=kind,
                price=float(p["price"]) if kind == "limit" else None,
                client_id=str(cid) if cid is not None else None,
                leverage=float(p.get("lever_rate") or 1),
            )  # fmt: skip
            order.extra["offset"] = offset
            placed: dict[str, Any] = {"order_id": int(order.id), "order_id_str": order.id}
            if cid is not None:
                placed["client_order_id"] = int(cid)
            return placed

        return self._v1(answer)

    def _v1_order(self, venue: FakeVenue, o: Order) -> Payload:
        m = venue.ledger.markets[o.symbol]
        status = {"open": 3, "closed": 6, "canceled": 7}[o.status]
        return {
            "symbol": m.base, "contract_code": self.mid(venue, o.symbol),
            "volume": o.amount, "price": o.price or 0, "order_price_type": o.kind,
            "order_type": 1, "direction": o.side,
            "offset": o.extra.get("offset", "close" if o.reduce_only else "open"),
            "lever_rate": int(o.leverage or 1), "order_id": int(o.id), "order_id_str": o.id,
            "client_order_id": int(o.client_id) if o.client_id else None,
            "created_at": o.created, "canceled_at": 0, "trade_volume": o.filled,
            "trade_turnover": o.filled * m.contract_size, "fee": 0,
            "trade_avg_price": o.average, "margin_frozen": 0, "profit": 0, "status": status,
            "order_source": "api", "fee_asset": m.settle_coin, "liquidation_type": "0",
            "margin_asset": m.settle_coin, "margin_mode": "cross",
            "margin_account": self.mid(venue, o.symbol), "is_tpsl": 0, "real_profit": 0,
        }  # fmt: skip

    def _v1_lookup(self, venue: FakeVenue, p: dict[str, Any]) -> Order | None:
        self.symbol_in(venue, p["contract_code"], inverse=True)
        o = self._lookup(venue, p)
        if o is not None and self.mid(venue, o.symbol) != p["contract_code"]:
            return None
        return o

    def swap_order_info(self, venue: FakeVenue, r: Request) -> Payload:
        def answer() -> Payload:
            o = self._v1_lookup(venue, r.params)
            if o is None:
                raise VenueRefusal("order", "Order doesnt exist.")
            return [self._v1_order(venue, o)]

        return self._v1(answer)

    def swap_cancel(self, venue: FakeVenue, r: Request) -> Payload:
        def answer() -> Payload:
            o = self._v1_lookup(venue, r.params)
            if o is None or o.status != "open":
                key = r.params.get("order_id") or r.params.get("client_order_id")
                code, msg = self.codes["cancel"]
                return {"errors": [{"order_id": str(key), "err_code": code, "err_msg": msg}],
                        "successes": ""}  # fmt: skip
            venue.ledger.cancel(o.id)
            return {"errors": [], "successes": o.id}

        return self._v1(answer)

    def swap_positions(self, venue: FakeVenue, r: Request) -> Payload:
        """The coin-margined swap positions (of ``contract_code`` when given), nothing else."""

        def answer() -> Payload:
            if venue.take_empty():
                return []
            ledger = venue.ledger
            wanted = r.params.get("contract_code")
            rows = []
            for symbol, leg, held in ledger.held():
                m = ledger.markets[symbol]
                if not m.inverse or (wanted and self.mid(venue, symbol) != wanted):
                    continue
                mark = ledger.prices[symbol]
                lev = ledger.lev(symbol, leg)
                signed = held.contracts if leg == "long" else -held.contracts
                margin = held.contracts * m.contract_size / mark / lev
                rows.append({
                    "symbol": m.base, "contract_code": self.mid(venue, symbol),
                    "volume": held.contracts, "available": held.contracts, "frozen": 0,
                    "cost_open": held.entry, "cost_hold": held.entry,
                    "profit_unreal": signed * m.contract_size * (1 / held.entry - 1 / mark),
                    "profit_rate": 0, "profit": 0, "position_margin": margin,
                    "lever_rate": int(lev), "direction": "buy" if leg == "long" else "sell",
                    "last_price": mark, "adjust_factor": 0.01, "margin_asset": m.settle_coin,
                    "margin_mode": "cross", "margin_account": self.mid(venue, symbol),
                })  # fmt: skip
            return rows

        return self._v1(answer)

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/linear-swap-api/v1/swap_contract_info"): "contract_info",
        ("GET", "/linear-swap-ex/market/detail/merged"): "merged",
        ("GET", "/linear-swap-ex/market/detail/batch_merged"): "batch_merged",
        ("GET", "/linear-swap-ex/market/history/kline"): "kline",
        ("GET", "/v5/position/mode"): "position_mode",
        ("GET", "/v5/trade/position/opens"): "positions",
        ("POST", "/v5/position/lever"): "lever",
        ("POST", "/v5/trade/order"): "create",
        ("GET", "/v5/trade/order"): "order",
        ("POST", "/v5/trade/cancel_order"): "cancel",
    }
    #: Coin-margined swaps' routes: served only where a scope adds them (``scoped``).
    scope_routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/swap-api/v1/swap_contract_info"): "swap_contract_info",
        ("GET", "/api/v1/contract_contract_info"): "future_contract_info",
        ("GET", "/swap-ex/market/detail/merged"): "merged",
        ("GET", "/swap-ex/market/detail/batch_merged"): "batch_merged",
        ("GET", "/swap-ex/market/history/kline"): "kline",
        ("POST", "/swap-api/v1/swap_switch_lever_rate"): "swap_lever",
        ("POST", "/swap-api/v1/swap_order"): "swap_order",
        ("POST", "/swap-api/v1/swap_order_info"): "swap_order_info",
        ("POST", "/swap-api/v1/swap_cancel"): "swap_cancel",
        ("POST", "/swap-api/v1/swap_position_info"): "swap_positions",
        # The coin-margined futures' list: their contract is listed for loading only, never held.
        ("POST", "/api/v1/contract_position_info"): "future_positions",
    }

    def future_positions(self, venue: FakeVenue, r: Request) -> Payload:
        """The coin-margined futures positions: none (the ledger holds none of them)."""
        return self._v1(lambda: [])


DIALECTS["htx"] = Htx


# ============================================================================ position scopes


@dataclass(frozen=True)
class Scope:
    """One market of a venue's second position scope (opt-in: no default ``markets`` has one).

    The venue lists it, prices it and trades it like its default markets, but its positions
    appear only in the position list of its own scope, which ccxt reads with
    ``fetch_positions(None, params)``, and never in the default one (``fetch_positions()``);
    a default list request never lists it. ``route`` and ``default_route`` are fault routes
    (``FakeVenue.fail_next``) that match only that scope's list request and only the default
    one. ``options``: the ccxt options the venue's markets of that scope need to be loaded.
    """

    key: str
    venue: str  # the ``DIALECTS`` key
    market: Market
    params: dict[str, Any]
    route: str
    default_route: str
    options: dict[str, Any] = field(default_factory=dict)
    #: The path its orders are created on, when it is not the dialect's ``order_route``.
    order_route: str = ""


def _btc_usd(contract_size: float = 1.0, lot: float = 1.0) -> Market:
    """BTC/USD:BTC, a coin-margined perpetual (``contract_size``: USD per contract)."""
    return Market("BTC", 50000.0, contract_size, lot, "USD", settle="BTC", inverse=True)


SCOPES: dict[str, Scope] = {
    s.key: s
    for s in (
        Scope(
            "bybit-usdc", "bybit", Market("BTC", 50000.0, lot=0.001, quote="USDC"),
            {"subType": "linear", "settleCoin": "USDC"},
            "/v5/position/list?settleCoin=USDC", "/v5/position/list?settleCoin=USDT",
        ),
        Scope(
            "bybit-inverse", "bybit", _btc_usd(),
            {"subType": "inverse"},
            "/v5/position/list?category=inverse",
            "/v5/position/list?category=linear&settleCoin=USDT",
            {"fetchMarkets": {"types": ["linear", "inverse"]}},
        ),
        Scope(
            "bitget-usdc", "bitget", Market("BTC", 50000.0, lot=0.001, quote="USDC"),
            {"productType": "USDC-FUTURES"},
            "/api/v2/mix/position/all-position?productType=USDC-FUTURES",
            "/api/v2/mix/position/all-position?productType=USDT-FUTURES",
        ),
        Scope(
            "bitget-coin", "bitget", _btc_usd(lot=0.001),
            {"productType": "COIN-FUTURES", "marginCoin": "BTC"},
            "/api/v2/mix/position/all-position?productType=COIN-FUTURES",
            "/api/v2/mix/position/all-position?productType=USDT-FUTURES",
        ),
        Scope(
            "gate-btc", "gate", _btc_usd(),
            {"type": "swap", "settle": "btc"},
            "/api/v4/futures/btc/positions", "/api/v4/futures/usdt/positions",
            order_route="/api/v4/futures/btc/orders",
        ),
        Scope(
            "htx-inverse", "htx", _btc_usd(100.0),
            {"subType": "inverse", "type": "swap"},
            "/swap-api/v1/swap_position_info", "/v5/trade/position/opens",
            {"fetchMarkets": {"types": {"spot": False, "linear": True, "inverse": True}}},
            "/swap-api/v1/swap_order",
        ),
        Scope(
            "bingx-inverse", "bingx", _btc_usd(100.0),
            {"subType": "inverse"},
            "/openApi/cswap/v1/user/positions", "/openApi/swap/v2/user/positions",
            order_route="/openApi/cswap/v1/trade/order",
        ),
        Scope(
            "hyperliquid-hip3", "hyperliquid",
            Market("XYZ-XYZ100", 25000.0, lot=0.01, quote="USDC", dex="xyz"),
            {"dex": "xyz"},
            "/info?type=clearinghouseState&dex=xyz", "/info?type=clearinghouseState&dex=",
            {"fetchMarkets": {"types": ["swap", "hip3"]}},
        ),
    )
}  # fmt: skip


def scoped(key: str) -> tuple[Dialect, tuple[Market, ...], Scope]:
    """The dialect of ``SCOPES[key]``'s venue, with the ccxt options its scope needs and the
    routes only a second scope uses (``scope_routes``: kept out of the default ``routes``,
    whose paths seeded runs draw faults from), and the markets of a ledger that holds the
    scope's market after the venue's default ones."""
    scope = SCOPES[key]
    base = DIALECTS[scope.venue]
    extra = {
        "options": {**base.options, **scope.options},
        "routes": {**base.routes, **getattr(base, "scope_routes", {})},
    }
    dialect: Dialect = type(f"{base.__name__}Scoped", (base,), extra)()
    return dialect, (*dialect.markets, scope.market), scope
