"""``CcxtClient``'s position lists on venues whose ccxt list holds one kind of market.

A stub exchange stands for ccxt here: it answers ``fetch_positions`` per list as ccxt's classes
send them (checked against ccxt's source; ``tests/test_position_scopes.py`` runs the real ccxt
classes against fake venues). What is proved: which list holds which market (``list_scope``),
that every list the client knows of is read and a failure of any fails the read, that a Bybit
list is read to its last page, that a close reads only its symbol's list, and that
``watch_symbols`` checks its argument.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers_clients import make_manager, make_position

from position_manager_rs import PositionManager
from position_manager_rs.ccxt_client import BYBIT_POSITIONS_PAGE, CcxtClient, list_scope

pytestmark = pytest.mark.timeout(20)


def market(symbol: str, **fields: Any) -> dict[str, Any]:
    """A ccxt market dict with the fields ``list_scope`` reads."""
    base, rest = symbol.split("/")
    quote, settle = rest.split(":")
    settle = settle.split("-")[0]
    return {
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle,
        "settleId": fields.pop("settleId", settle),
        "type": fields.pop("type", "swap"),
        "contract": True,
        "linear": settle == quote,
        "inverse": settle != quote,
        **fields,
    }


USDT = market("BTC/USDT:USDT")
USDC = market("BTC/USDC:USDC")
INVERSE = market("BTC/USD:BTC")


@pytest.mark.parametrize(
    ("venue", "m", "expected"),
    [
        ("bybit", USDT, (("linear", "USDT"), {"subType": "linear", "settleCoin": "USDT"})),
        ("bybit", USDC, (("linear", "USDC"), {"subType": "linear", "settleCoin": "USDC"})),
        ("bybit", INVERSE, (("inverse",), {"subType": "inverse"})),
        ("bitget", USDT, (("USDT-FUTURES", "USDT"), {"productType": "USDT-FUTURES"})),
        ("bitget", USDC, (("USDC-FUTURES", "USDC"), {"productType": "USDC-FUTURES"})),
        (
            "bitget",
            INVERSE,
            (("COIN-FUTURES", "BTC"), {"productType": "COIN-FUTURES", "marginCoin": "BTC"}),
        ),
        ("gate", USDT, (("swap", "usdt"), {"type": "swap", "settle": "usdt"})),
        ("gate", INVERSE, (("swap", "btc"), {"type": "swap", "settle": "btc"})),
        (
            "gate",
            market("BTC/USDT:USDT-261225", type="future"),
            (("future", "usdt"), {"type": "future", "settle": "usdt"}),
        ),
        ("htx", USDT, (("linear",), {"subType": "linear"})),
        ("htx", INVERSE, (("inverse", "swap"), {"subType": "inverse", "type": "swap"})),
        ("bingx", INVERSE, (("inverse",), {"subType": "inverse"})),
        ("hyperliquid", market("BTC/USDC:USDC", baseName="BTC"), (("dex", None), {})),
        (
            "hyperliquid",
            market("XYZ-XYZ100/USDC:USDC", baseName="xyz:XYZ100"),
            (("dex", "xyz"), {"dex": "xyz"}),
        ),
        # one list holds every market
        ("binanceusdm", USDC, None),
        ("okx", INVERSE, None),
        ("kucoinfutures", USDC, None),
        ("mexc", USDC, None),
        # not a contract
        ("bybit", {**USDT, "contract": False, "type": "spot"}, None),
    ],
)
def test_which_list_holds_a_market(venue: str, m: dict[str, Any], expected: Any) -> None:
    assert list_scope(venue, m) == expected


def entry(symbol: str, side: str = "long", contracts: float = 1.0, **info: Any) -> dict[str, Any]:
    """A ccxt Bybit position entry; its ``info`` carries Bybit's own ``size``, ``positionIdx``
    and ``side``, as every entry ccxt parses from Bybit's list does (the client reads a flat
    entry from the first, the leg from the others)."""
    return {
        "symbol": symbol,
        "side": side,
        "contracts": contracts,
        "entryPrice": 100.0,
        "hedged": False,
        "info": {
            "size": str(contracts),
            "positionIdx": 0,
            "side": "Buy" if side == "long" else "Sell",
            **info,
        },
    }


#: What the client adds to each Bybit list read: ccxt's own paging asked off.
UNPAGED = {"paginate": False}


class ScopedExchange:
    """ccxt's Bybit as far as lists go: ``fetch_positions()`` answers the USDT-settled list,
    ``fetch_positions(None, params)`` the list ``params`` name, pages of ``page`` entries with
    the next page's cursor in the first entry's ``info`` (as ccxt puts it there)."""

    id = "bybit"

    def __init__(self, held: dict[str, list[dict[str, Any]]], page: int = 200) -> None:
        self.has = {"fetchPositions": True, "fetchTickers": True}
        self.markets = {m["symbol"]: m for m in (USDT, USDC, INVERSE)}
        self.held = held  # list key ('USDT', 'USDC', 'inverse') -> entries
        self.page = page
        self.requests: list[dict[str, Any] | None] = []
        self.failing: set[str] = set()

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        return self.markets

    def fetch_positions(
        self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        self.requests.append(params)
        params = dict(params or {})
        which = (
            "inverse" if params.get("subType") == "inverse" else params.get("settleCoin", "USDT")
        )
        if which in self.failing:
            raise ConnectionError(f"list {which} unreachable")
        start = int(params.get("cursor", 0))
        rows = [dict(e, info=dict(e["info"])) for e in self.held.get(which, [])]
        page = rows[start : start + self.page]
        if page and start + self.page < len(rows):
            page[0]["info"]["nextPageCursor"] = str(start + self.page)
        elif page:
            page[0]["info"]["nextPageCursor"] = ""
        return page

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "last": 100.0}

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        return []


def held_lists() -> dict[str, list[dict[str, Any]]]:
    return {
        "USDT": [entry(USDT["symbol"])],
        "USDC": [entry(USDC["symbol"], "short")],
        "inverse": [entry(INVERSE["symbol"])],
    }


def symbols(positions: list[dict[str, Any]]) -> set[str]:
    return {p["symbol"] for p in positions}


def test_a_fresh_client_reads_the_default_list_as_ccxt_does() -> None:
    exchange = ScopedExchange(held_lists())
    client = CcxtClient(exchange)
    assert symbols(client.get_open_positions()) == {USDT["symbol"]}
    # ccxt's default list, its own paging asked off (``NO_PAGING``)
    assert exchange.requests == [UNPAGED]


def test_a_symbol_the_client_dealt_with_has_its_list_read(caplog: pytest.LogCaptureFixture) -> None:
    exchange = ScopedExchange(held_lists())
    client = CcxtClient(exchange)
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        client.get_ticker(USDC["symbol"])
    assert "also read bybit's linear USDC positions (for BTC/USDC:USDC)" in caplog.text
    assert symbols(client.get_open_positions()) == {USDT["symbol"], USDC["symbol"]}
    assert exchange.requests[-1] == {"subType": "linear", "settleCoin": "USDC", **UNPAGED}


def test_watch_symbols_adds_each_list_once() -> None:
    exchange = ScopedExchange(held_lists())
    client = CcxtClient(exchange)
    client.watch_symbols([USDC["symbol"], INVERSE["symbol"], USDT["symbol"], USDC["symbol"]])
    client.watch_symbols(s for s in [INVERSE["symbol"]])
    assert symbols(client.get_open_positions()) == {m["symbol"] for m in (USDT, USDC, INVERSE)}
    assert exchange.requests == [
        UNPAGED,
        {"subType": "linear", "settleCoin": "USDC", **UNPAGED},
        {"subType": "inverse", **UNPAGED},
    ]


def test_every_position_list_reads_each_kind_of_market_the_markets_hold() -> None:
    exchange = ScopedExchange(held_lists())
    exchange.markets["ETH/USDC:USDC"] = market("ETH/USDC:USDC")  # a second USDC market
    client = CcxtClient(exchange, every_position_list=True)
    assert symbols(client.get_open_positions()) == {m["symbol"] for m in (USDT, USDC, INVERSE)}
    assert exchange.requests == [
        UNPAGED,
        {"subType": "linear", "settleCoin": "USDC", **UNPAGED},
        {"subType": "inverse", **UNPAGED},
    ]
    client.get_open_positions()
    assert len(exchange.requests) == 6  # every read reads the three lists again


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_every_position_list_must_be_a_bool(bad: Any) -> None:
    with pytest.raises(TypeError, match="every_position_list must be a bool"):
        CcxtClient(ScopedExchange(held_lists()), every_position_list=bad)


@pytest.mark.parametrize("bad", ["BTC/USDC:USDC", None, 7, [USDC["symbol"], 1], [b"BTC"]])
def test_watch_symbols_refuses_what_is_not_symbols(bad: Any) -> None:
    client = CcxtClient(ScopedExchange(held_lists()))
    with pytest.raises(TypeError, match="symbols must be an iterable of str"):
        client.watch_symbols(bad)


def test_a_symbol_ccxt_does_not_know_yet_is_placed_once_it_does() -> None:
    exchange = ScopedExchange(held_lists())
    del exchange.markets[USDC["symbol"]]
    client = CcxtClient(exchange)
    client.watch_symbols([USDC["symbol"]])
    assert symbols(client.get_open_positions()) == {USDT["symbol"]}
    exchange.markets[USDC["symbol"]] = USDC  # the markets reloaded
    assert symbols(client.get_open_positions()) == {USDT["symbol"], USDC["symbol"]}


def test_a_failure_of_any_list_fails_the_whole_read() -> None:
    exchange = ScopedExchange(held_lists())
    client = CcxtClient(exchange)
    client.watch_symbols([USDC["symbol"]])
    exchange.failing.add("USDC")
    with pytest.raises(ConnectionError):
        client.get_open_positions()


def test_a_bybit_list_is_read_to_its_last_page() -> None:
    many = [entry(f"C{i}/USDT:USDT") for i in range(2 * BYBIT_POSITIONS_PAGE + 50)]
    exchange = ScopedExchange({"USDT": many}, page=BYBIT_POSITIONS_PAGE)
    exchange.markets.update({e["symbol"]: market(e["symbol"]) for e in many})
    client = CcxtClient(exchange)
    assert len(client.get_open_positions()) == len(many)
    assert [r and r.get("cursor") for r in exchange.requests] == [None, "200", "400"]


def test_a_full_page_that_names_no_next_one_ends_the_list() -> None:
    many = [entry(f"C{i}/USDT:USDT") for i in range(BYBIT_POSITIONS_PAGE)]
    exchange = ScopedExchange({"USDT": many}, page=BYBIT_POSITIONS_PAGE)
    exchange.markets.update({e["symbol"]: market(e["symbol"]) for e in many})
    client = CcxtClient(exchange)
    assert len(client.get_open_positions()) == BYBIT_POSITIONS_PAGE
    assert len(exchange.requests) == 1  # the venue named no next page


def test_a_list_that_never_ends_is_not_taken_for_whole() -> None:
    class Endless(ScopedExchange):
        def fetch_positions(
            self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
        ) -> list[dict[str, Any]]:
            self.requests.append(params)
            page = [entry(f"C{i}/USDT:USDT") for i in range(BYBIT_POSITIONS_PAGE)]
            page[0]["info"]["nextPageCursor"] = "again"
            return page

    client = CcxtClient(Endless({}))
    with pytest.raises(RuntimeError, match="still had more pages"):
        client.get_open_positions()


def test_a_close_reads_only_its_symbols_list() -> None:
    exchange = ScopedExchange(held_lists())
    orders: list[tuple[Any, ...]] = []

    def create_order(*args: Any, **kwargs: Any) -> dict[str, Any]:
        orders.append(args)
        return {"id": "1", "status": "closed", "filled": args[3], "amount": args[3]}

    exchange.create_order = create_order  # type: ignore[attr-defined]
    exchange.has = {**exchange.has, "createOrder": True}
    client = CcxtClient(exchange, position_mode="oneway")
    assert client.close_position(USDC["symbol"]) is True
    assert exchange.requests == [{"subType": "linear", "settleCoin": "USDC", **UNPAGED}]
    assert orders and orders[0][0] == USDC["symbol"] and orders[0][2] == "buy"


def removals(manager: PositionManager) -> list[str]:
    return [e["symbol"] for e in manager.events if e["kind"] == "removed"]


@pytest.mark.parametrize("how", ["assigned", "replaced_client"])
def test_the_manager_tells_the_client_what_it_holds(how: str) -> None:
    """A position the bot assigned in a market the default list does not hold (no call of the
    client named its symbol) stays tracked: the manager tells the client before it reads."""
    exchange = ScopedExchange(held_lists())
    manager = make_manager(CcxtClient(exchange))
    manager.positions[USDC["symbol"]] = make_position(USDC["symbol"], "short")
    if how == "replaced_client":
        list(manager.update_positions())
        exchange = ScopedExchange(held_lists())
        manager.client = CcxtClient(exchange)  # knows nothing of the USDC market
    for _ in range(4):
        list(manager.update_positions())
    assert USDC["symbol"] in manager.positions, removals(manager)
    assert not removals(manager)
    # Its list is read with the very first list read (before any call names the symbol).
    assert exchange.requests[:2] == [
        UNPAGED,
        {"subType": "linear", "settleCoin": "USDC", **UNPAGED},
    ]
