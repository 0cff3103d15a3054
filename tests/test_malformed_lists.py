"""Malformed position lists through the real ccxt classes never lose a tracked position.

ccxt's parsers read a venue entry whose size field is null, missing, empty or a bool as
``contracts=None``, an entry without its side field as ``side=None`` (HTX and MEXC: as
``'short'``), and an answer that is not a position list at all (an HTML page with status 200,
an empty body, ``data: null``, ``data`` an object, another endpoint's JSON) as ``[]``.
``CcxtClient`` took the first two for flat placeholders and the last for "no position": the
manager removed live positions as closed outside (and on HTX and MEXC "flipped" a long into
an imagined short). Each venue of ``venue_dialects.DIALECTS`` runs its real ccxt class against
the fake venue (``venue_sim``) whose position-list answers are rewritten for several cycles,
with the manager reading one and four symbols at a time (``max_concurrent_calls``). The
tracked positions must stay (the very objects, no ``removed`` event, no order), with a warning
naming the unreadable entry; a legitimately flat entry (its size field ``"0"``) and a real
empty list still say "closed". A list answered with a page (a 524 gateway page, a body of no
text type, an HTML page with status 200) is a failed read through both clients, the synchronous
and the asyncio one (``test_a_page_answering_the_position_list_is_a_failed_read``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from venue_clients import CLIENTS, Driver, connected
from venue_dialects import DIALECTS
from venue_sim import FakeVenue, Payload, running

from position_manager_rs import PositionManager
from position_manager_rs import _position_answers as answers
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(60)

VENUES = sorted(DIALECTS)

#: The size field of each venue's own position entry (the venues' API references).
SIZE = {
    "binanceusdm": "positionAmt",
    "bingx": "positionAmt",
    "bitget": "total",
    "bybit": "size",
    "gate": "size",
    "htx": "volume",
    "hyperliquid": "szi",
    "kucoinfutures": "currentQty",
    "mexc": "holdVol",
    "okx": "pos",
}
#: The field a venue's one-way entry names its side with, where the size does not tell it
#: (Gate, KuCoin and Hyperliquid give the side by the size's sign: nothing else to remove;
#: Binance's one-way entry says ``positionSide`` BOTH, its leg then the sign of its size).
SIDE = {
    "binanceusdm": "positionSide",
    "bingx": "positionSide",
    "bitget": "holdSide",
    "bybit": "side",
    "htx": "direction",
    "mexc": "positionType",
    "okx": "posSide",
}
_GONE = object()
UNREADABLE_SIZES = {"null": None, "missing": _GONE, "empty": "", "true": True}
GARBAGE = ("html", "empty body", "data null", "data an object", "another endpoint")


def _btc_entries(payload: Any, key: str) -> Iterator[dict[str, Any]]:
    """The dicts of ``payload`` holding ``key`` that belong to BTC (KuCoin: XBT)."""
    if isinstance(payload, dict):
        text = json.dumps(payload)
        if key in payload and ("BTC" in text or "XBT" in text):
            yield payload
            return
        for value in payload.values():
            yield from _btc_entries(value, key)
    elif isinstance(payload, list):
        for value in payload:
            yield from _btc_entries(value, key)


def _set_btc(key: str, value: Any) -> Callable[[Payload], tuple[int, Payload]]:
    def rewrite(payload: Payload) -> tuple[int, Payload]:
        found = list(_btc_entries(payload, key))
        assert found, f"no BTC entry with {key!r} in {payload!r:.300}"
        for entry in found:
            if value is _GONE:
                del entry[key]
            else:
                entry[key] = value
        return 200, payload

    return rewrite


def _container(payload: Any, size: str) -> tuple[Any, Any] | None:
    """(parent, key) of the list of position entries in ``payload`` (``None``: the payload)."""
    if isinstance(payload, list):
        return None
    stack: list[Any] = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, list) and any(
                    size in json.dumps(item) for item in value if isinstance(item, dict)
                ):
                    return node, key
                stack.append(value)
    raise AssertionError(f"no position list in {payload!r:.300}")


def _garbage(venue: FakeVenue, name: str, kind: str) -> Callable[[Payload], tuple[int, Payload]]:
    def rewrite(payload: Payload) -> tuple[int, Payload]:
        if kind == "html":
            return 200, "<html><body>Service temporarily unavailable</body></html>"
        if kind == "empty body":
            return 200, ""
        if kind == "another endpoint":
            return 200, _ticker_answer(venue, name)
        where = _container(payload, SIZE[name])
        if where is None:  # the answer is the list (Binance, Gate)
            return 200, ("null" if kind == "data null" else payload[0])
        parent, key = where
        parent[key] = None if kind == "data null" else parent[key][0]
        return 200, payload

    return rewrite


def _ticker_answer(venue: FakeVenue, name: str) -> Payload:
    for (path, kind), answer in venue.answers.items():
        if name == "hyperliquid" and kind == "metaAndAssetCtxs":
            return answer
        if name != "hyperliquid" and any(
            mark in path for mark in ("ticker", "batch_merged", "contracts/active")
        ):
            return answer
    raise AssertionError(f"no ticker answer seen on {name}: {sorted(venue.answers)}")


@dataclass
class Book:
    venue: FakeVenue
    manager: PositionManager
    caplog: pytest.LogCaptureFixture
    btc: str
    eth: str
    #: the manager's calls as a bot on the client makes them (``None``: called directly)
    drive: Driver | None = None

    def cycle(self, n: int = 1) -> None:
        for _ in range(n):
            if self.drive is not None:
                assert self.drive.update_positions() == []
            else:
                assert list(self.manager.update_positions()) == []

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.levelno >= logging.WARNING]

    def keeps_both_through(
        self,
        rewrite: Callable[[Payload], tuple[int, Payload]],
        said: str,
        cycles: int = 3,
        case: str = "",
    ) -> None:
        """Both tracked positions stay through ``cycles`` cycles of rewritten lists (the same
        objects, no removal, no order sent), with a warning containing ``said``; a failure
        names ``case``."""
        try:
            self._keeps_both_through(rewrite, said, cycles)
        except AssertionError as e:
            if not case:
                raise
            raise AssertionError(f"{case}: {e}") from None

    def _keeps_both_through(
        self, rewrite: Callable[[Payload], tuple[int, Payload]], said: str, cycles: int
    ) -> None:
        held = {s: self.manager.positions[s] for s in (self.btc, self.eth)}
        seq = self.manager.events[-1]["seq"] if self.manager.events else 0
        orders = len(self.venue.ledger.orders_sent())
        self.caplog.clear()
        self.venue.rewrite_positions_next(rewrite, n=1000)
        try:
            self.cycle(cycles)
        finally:
            self.venue.calm()
        changes = [
            (e["kind"], e["symbol"], e.get("reason")) for e in self.manager.events_since(seq)
        ]
        assert changes == [], changes
        for symbol, position in held.items():
            assert self.manager.positions.get(symbol) is position, (symbol, changes)
        assert len(self.venue.ledger.orders_sent()) == orders
        assert any(said in w for w in self.warnings()), (said, self.warnings())
        self.cycle()  # a good list again: nothing changes either
        assert {s: self.manager.positions.get(s) for s in held} == held


@contextmanager
def tracking(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture, **options: Any
) -> Iterator[Book]:
    """A venue holding BTC (opened by the manager) and ETH (found by a sync), both tracked."""
    caplog.set_level(logging.WARNING)
    with running(DIALECTS[name]()) as (venue, exchange):
        btc, eth = list(venue.ledger.markets.values())[:2]
        venue.ledger.open(eth.symbol, "long", 4 * eth.lot, eth.price)
        client = CcxtClient(exchange, sleep=lambda s: None)
        manager = PositionManager(
            client, ticker_retry_delays=(), max_concurrent_calls=mcc, **options
        )
        assert manager.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02)
        manager.sync_existing_positions()
        book = Book(venue, manager, caplog, btc.symbol, eth.symbol)
        book.cycle()
        assert sorted(manager.positions) == sorted([btc.symbol, eth.symbol])
        yield book
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", VENUES)
def test_an_entry_whose_size_cannot_be_read_keeps_its_position(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, mcc, caplog) as book:
        for how, value in UNREADABLE_SIZES.items():
            # e.g. "Position entry for BTC/USDT:USDT is unusable (... okx 'pos' is None ...)"
            said = f"Position entry for {book.btc} is unusable"
            book.keeps_both_through(_set_btc(SIZE[name], value), said, case=f"{name} size {how}")
            assert any(f"'{SIZE[name]}'" in w for w in book.warnings()), book.warnings()


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", sorted(SIDE))
def test_an_entry_whose_side_cannot_be_read_keeps_its_position(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, mcc, caplog) as book:
        for how, value in (("missing", _GONE), ("null", None)):
            said = f"Position entry for {book.btc} is unusable"
            book.keeps_both_through(_set_btc(SIDE[name], value), said, case=f"{name} side {how}")


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", VENUES)
def test_an_answer_that_is_not_a_position_list_keeps_every_position(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, mcc, caplog) as book:
        book.venue.answers.clear()
        book.cycle()  # the tickers' answer, as the venue last gave it
        for kind in GARBAGE:
            book.keeps_both_through(
                _garbage(book.venue, name, kind),
                "Unable to verify positions",
                case=f"{name} {kind}",
            )


def _bybit_order_list(payload: Payload) -> tuple[int, Payload]:
    """Bybit's answer to an order look-up (``/v5/order/realtime``) in place of the positions:
    the same envelope and ``result.list``, order entries with ``qty`` where a position has
    ``size`` (ccxt's parser reads either)."""
    orders = []
    for entry in payload["result"]["list"]:
        if "BTC" in entry["symbol"]:
            order = {k: v for k, v in entry.items() if k != "size"}
            orders.append({**order, "qty": entry["size"], "orderId": "1", "orderStatus": "Filled"})
    payload["result"]["list"] = orders
    return 200, payload


@pytest.mark.parametrize("mcc", [1, 4])
def test_bybit_an_order_list_answered_for_the_positions_keeps_every_position(
    mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking("bybit", mcc, caplog) as book:
        book.keeps_both_through(_bybit_order_list, "none of its 1 entries has 'size'")


def _gate_order_list(payload: Payload) -> tuple[int, Payload]:
    """Gate's list of finished orders (``/futures/usdt/orders``) in place of the positions:
    order entries carry ``contract`` and ``size`` as position entries do."""
    return 200, [
        {
            "id": 1,
            "contract": entry["contract"],
            "size": entry["size"],
            "price": "0",
            "fill_price": entry["entry_price"],
            "status": "finished",
            "finish_as": "filled",
            "tif": "ioc",
            "text": "t-1",
        }
        for entry in payload
        if "BTC" in entry["contract"] and entry["size"]
    ]


@pytest.mark.parametrize("mcc", [1, 4])
def test_gate_an_order_list_answered_for_the_positions_keeps_every_position(
    mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking("gate", mcc, caplog) as book:
        book.keeps_both_through(
            _gate_order_list, "none of its 1 entries has 'size' and 'entry_price'"
        )


@pytest.mark.parametrize("entry_price", ["0", None])
def test_an_open_entry_ccxt_leaves_out_keeps_every_position(
    entry_price: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Binance: ccxt's parser leaves out an entry whose ``entryPrice`` is not above 0 (the flat
    symbols of the older endpoint); one with a nonzero ``positionAmt`` is a position it could
    not read, not a closed one."""
    with tracking("binanceusdm", 1, caplog) as book:
        book.keeps_both_through(
            _set_btc("entryPrice", entry_price), "ccxt left out of its answer 1 of them ('BTCUSDT')"
        )


@pytest.mark.parametrize("name", VENUES)
def test_a_flat_entry_is_a_placeholder_and_an_empty_list_still_closes(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, 1, caplog) as book:
        # BTC listed flat (its size field "0"): closed outside, without a warning about it
        held = book.manager.positions[book.btc]
        book.caplog.clear()
        book.venue.rewrite_positions_next(_set_btc(SIZE[name], "0"), n=1)
        book.cycle()
        assert book.btc not in book.manager.positions
        assert book.manager.events[-1]["kind"] == "removed"
        assert not [w for w in book.warnings() if book.btc in w], book.warnings()
        book.cycle()  # listed again: the very position comes back
        assert book.manager.positions.get(book.btc) is held
        # both closed by hand: the venue's real empty list removes them
        book.venue.ledger.remove(book.btc)
        book.venue.ledger.remove(book.eth)
        book.cycle(2)
        assert dict(book.manager.positions) == {}
        removed = {e["symbol"] for e in book.manager.events if e["kind"] == "removed"}
        assert {book.btc, book.eth} <= removed


def with_async_client(name: str, body: Callable[..., Awaitable[None]]) -> None:
    """``await body(venue, exchange, client, btc, eth)``: an ``AsyncCcxtClient`` over ccxt's
    asyncio class of ``name``, against its fake venue holding BTC and ETH long (listed once
    already); the exchange closed after it, every request expected."""
    import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

    from position_manager_rs.aio import AsyncCcxtClient

    async def main(venue: FakeVenue) -> None:
        exchange = venue.make_exchange(module=ccxt_async)
        try:
            client = AsyncCcxtClient(exchange)
            btc, eth = list(venue.ledger.markets.values())[:2]
            venue.ledger.open(btc.symbol, "long", 3 * btc.lot, btc.price)
            venue.ledger.open(eth.symbol, "long", 4 * eth.lot, eth.price)
            listed = await asyncio.to_thread(client.get_open_positions)
            assert sorted(p["symbol"] for p in listed) == [btc.symbol, eth.symbol]
            await body(venue, exchange, client, btc, eth)
        finally:
            await exchange.close()

    with running(DIALECTS[name]()) as (venue, _):
        asyncio.run(asyncio.wait_for(main(venue), timeout=20))
        assert venue.unexpected == []


@pytest.mark.parametrize("name", ["binanceusdm", "htx", "hyperliquid", "okx"])
def test_an_asyncio_client_reads_malformed_lists_as_the_synchronous_one(name: str) -> None:
    """``AsyncCcxtClient``: ccxt's asyncio ``fetch`` runs on the loop, in a task submitted from
    the manager's thread; the answers it reads there are checked as the synchronous ones."""

    async def body(venue: FakeVenue, exchange: Any, client: Any, btc: Any, eth: Any) -> None:
        venue.rewrite_positions_next(_set_btc(SIZE[name], None))
        listed = await asyncio.to_thread(client.get_open_positions)
        (entry,) = [p for p in listed if p["symbol"] == btc.symbol]
        assert f"'{SIZE[name]}' is None" in entry["unreadable"]
        assert entry["unreadable"] in str(entry["contracts"])
        for kind in ("html", "data null"):
            venue.rewrite_positions_next(_garbage(venue, name, kind))
            with pytest.raises(ValueError, match="not a position list"):
                await asyncio.to_thread(client.get_open_positions)

    with_async_client(name, body)


@pytest.mark.parametrize("name", ["htx", "okx"])
def test_a_close_of_an_entry_that_cannot_be_read_sends_nothing(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No order can be sized or sided from an entry that cannot be read: the client's close
    raises before anything is sent, and the manager keeps the position for its next check."""
    with tracking(name, 1, caplog) as book:
        client = book.manager.client
        held = book.manager.positions[book.btc]
        orders = len(book.venue.ledger.orders_sent())
        for field in (SIZE[name], SIDE[name]):
            book.venue.rewrite_positions_next(_set_btc(field, None), n=1)
            with pytest.raises(ValueError, match=f"'{field}' is None"):
                client.close_position(book.btc)
            book.venue.rewrite_positions_next(_set_btc(field, None), n=1000)
            try:
                assert not book.manager.close_position(book.btc)
            finally:
                book.venue.calm()
            assert book.manager.positions.get(book.btc) is held
        assert len(book.venue.ledger.orders_sent()) == orders
        assert book.manager.close_position(book.btc)  # readable again: closed
        assert book.btc not in book.manager.positions


# ----------------------------------------------------------------- second audit (2026-12-07)

#: What a list element was replaced by (the audit's findings): ccxt reads each as an entry of
#: no symbol and no size (Binance leaves ``null`` out), which looked flat.
NOT_ENTRIES: dict[str, Any] = {
    "''": "",
    "null": None,
    "0": 0,
    "'nan'": "nan",
    "[]": [],
    "true": True,
    "{}": {},
}


def _btc_element(name: str, value: Any) -> Callable[[Payload], tuple[int, Payload]]:
    """BTC's element of the venue's list replaced by ``value``."""

    def rewrite(payload: Payload) -> tuple[int, Payload]:
        held, _ = answers.position_container(name, payload)
        assert held is not None, payload
        (at,) = [i for i, e in enumerate(held) if list(_btc_entries(e, SIZE[name]))]
        held[at] = value
        return 200, payload

    return rewrite


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", VENUES)
def test_a_list_element_that_is_not_a_position_entry_keeps_every_position(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, mcc, caplog) as book:
        for how, value in NOT_ENTRIES.items():
            # "okx's position list ('data') holds at #0 '' (a str), not a position entry"
            book.keeps_both_through(
                _btc_element(name, value), "not a position entry", 1, case=f"{name} element {how}"
            )
            assert any("holds at #" in w for w in book.warnings()), book.warnings()


@pytest.mark.parametrize("info", ["", None, {}])
def test_an_entry_without_the_venues_fields_is_presence_only(info: Any) -> None:
    """ccxt's entry made from an element that was none of the venue's (``info`` empty) is no
    flat placeholder: nothing says its symbol holds nothing."""
    with running(DIALECTS["okx"]()) as (venue, exchange):
        btc = next(iter(venue.ledger.markets.values()))
        exchange.fetch_positions = lambda *a, **k: [
            {"symbol": btc.symbol, "info": info, "contracts": None, "side": None}
        ]
        (entry,) = CcxtClient(exchange).get_open_positions()
        assert entry["symbol"] == btc.symbol
        assert "not the venue's position entry" in entry["unreadable"]


def test_an_asyncio_client_reads_an_element_that_is_not_an_entry_as_unreadable() -> None:
    import ccxt.async_support as ccxt_async

    from position_manager_rs.aio import AsyncCcxtClient

    async def main(venue: FakeVenue) -> None:
        exchange = venue.make_exchange(module=ccxt_async)
        try:
            client = AsyncCcxtClient(exchange)
            btc, eth = list(venue.ledger.markets.values())[:2]
            venue.ledger.open(btc.symbol, "long", 3 * btc.lot, btc.price)
            venue.ledger.open(eth.symbol, "long", 4 * eth.lot, eth.price)
            values: tuple[Any, ...] = ("", None, {})
            for value in values:
                venue.rewrite_positions_next(_btc_element("okx", value))
                with pytest.raises(ValueError, match=r"holds at #0 .*not a position entry"):
                    await asyncio.to_thread(client.get_open_positions)
        finally:
            await exchange.close()

    with running(DIALECTS["okx"]()) as (venue, _):
        asyncio.run(asyncio.wait_for(main(venue), timeout=20))
        assert venue.unexpected == []


#: Where each venue's entry names its market (Hyperliquid: ``coin`` inside ``position``).
MARKET_ID = {
    "binanceusdm": "symbol",
    "bingx": "symbol",
    "bitget": "symbol",
    "bybit": "symbol",
    "gate": "contract",
    "htx": "contract_code",
    "hyperliquid": "coin",
    "kucoinfutures": "symbol",
    "mexc": "symbol",
    "okx": "instId",
}


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", VENUES)
def test_an_entry_naming_no_market_keeps_every_position(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    """BTC's entry naming a market id ccxt cannot map, even after reloading the markets: it
    is attributed to no symbol, so the list proves nothing absent."""
    with tracking(name, mcc, caplog) as book:
        # Hyperliquid's coin 0 is read as market id '0': BTC's (ccxt's ids are indexes)
        for value in ("abc",) if name == "hyperliquid" else ("abc", 0):
            field = f"'{MARKET_ID[name]}'"
            if name == "hyperliquid":
                field = "'position'.'coin'"
            said = f"names a market ccxt does not know ({name} {field} is {value!r})"
            book.keeps_both_through(
                _set_btc(MARKET_ID[name], value), said, 2, case=f"{name} market id {value!r}"
            )


def test_an_entry_naming_no_market_leaves_the_other_entries_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The other, well-formed entries are read as usual meanwhile (a scale-in by hand resizes
    ETH), and once BTC's entry reads again, a position closed by hand meanwhile is removed."""
    with tracking("okx", 1, caplog) as book:
        book.venue.rewrite_positions_next(_set_btc("instId", "abc"), n=1000)
        eth = book.venue.ledger.markets[book.eth]
        book.venue.ledger.open(book.eth, "long", 5 * eth.lot, eth.price)
        book.cycle()
        assert book.manager.positions[book.eth].amount == pytest.approx(5 * eth.lot)
        assert book.btc in book.manager.positions
        book.venue.calm()
        book.venue.ledger.remove(book.btc)
        book.cycle()
        assert book.btc not in book.manager.positions


@pytest.mark.parametrize("name", ["okx", "bybit", "gate", "hyperliquid"])
def test_a_position_opened_by_hand_in_a_market_listed_after_start_is_still_reported(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A market id of the venue's form that ccxt has not loaded is kept as the venue reports
    it (docs/ccxt-client.md), and the list still shows a position closed by hand."""
    caplog.set_level(logging.WARNING)
    with running(DIALECTS[name]()) as (venue, exchange):
        btc, eth = list(venue.ledger.markets.values())[:2]
        client = CcxtClient(exchange, sleep=lambda s: None)
        manager = PositionManager(client, ticker_retry_delays=())
        assert manager.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02)
        venue.listed_late.add(eth.symbol)
        venue.ledger.open(eth.symbol, "long", 4 * eth.lot, eth.price)
        listed = client.get_open_positions()
        late = [p for p in listed if p["symbol"] != btc.symbol]
        assert len(late) == 1 and late[0]["side"] == "long" and late[0]["contracts"]
        assert "unmapped" not in late[0]
        venue.ledger.remove(btc.symbol)
        for _ in range(2):  # a list that would empty the book is corroborated first
            list(manager.update_positions())
        assert btc.symbol not in manager.positions
        messages = [r.getMessage() for r in caplog.records]
        assert any("a market ccxt does not know" in m for m in messages)
        assert not any("cannot be attributed" in m for m in messages)


def _other_kinds(payload: Payload) -> tuple[int, Payload]:
    """OKX lists every instrument type: a MARGIN and an OPTION position beside the SWAPs."""
    (swap, *_) = payload["data"]
    payload["data"] += [
        {**swap, "instType": "MARGIN", "instId": "BTC-USDT", "pos": "0.5", "posCcy": "USDT"},
        {**swap, "instType": "OPTION", "instId": "BTC-USD-261225-60000-C", "pos": "-2"},
    ]
    return 200, payload


def test_okx_positions_in_markets_of_other_kinds_are_still_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ids of the venue's forms in markets ccxt did not load are kept as reported (guard)."""
    with tracking("okx", 1, caplog) as book:
        book.venue.rewrite_positions_next(_other_kinds, n=1000)
        listed = book.manager.client.get_open_positions()
        assert len(listed) == 4 and all(isinstance(p["symbol"], str) for p in listed)
        assert not any("unmapped" in p for p in listed)
        # ccxt: a margin position held in its quote currency is short; an option by pos's sign
        sides = {p["info"]["instType"]: p["side"] for p in listed if p["symbol"] != book.eth}
        assert sides == {"SWAP": "long", "MARGIN": "short", "OPTION": "short"}


@contextmanager
def tracking_hedge(name: str, caplog: pytest.LogCaptureFixture) -> Iterator[Book]:
    """A hedge-mode venue holding BTC long (tracked) and ETH short (found by a sync)."""
    caplog.set_level(logging.WARNING)
    dialect = DIALECTS[name]()
    with running(dialect, hedge=True) as (venue, exchange):
        btc, eth = list(venue.ledger.markets.values())[:2]
        venue.ledger.open(eth.symbol, "short", 4 * eth.lot, eth.price)
        client = CcxtClient(exchange, sleep=lambda s: None)
        manager = PositionManager(client, ticker_retry_delays=(), position_mode="hedge")
        assert manager.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02)
        manager.sync_existing_positions()
        book = Book(venue, manager, caplog, f"{btc.symbol}@long", f"{eth.symbol}@short")
        book.cycle()
        assert sorted(manager.positions) == sorted([book.btc, book.eth])
        yield book
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


#: A side field that contradicts the size (or is no value of the field's): ccxt took its side
#: from it (Binance: the sign of ``notional``; Bybit: ``positionIdx``; Gate: ``side``).
CONTRADICTIONS: dict[str, list[tuple[str, Any]]] = {
    "binanceusdm": [("notional", "-150.0"), ("positionSide", "SHORT"), ("positionSide", "x")],
    "bybit": [("positionIdx", v) for v in ("null", -1, "-0", "abc", 3, 2)],
    "gate": [("side", "short")],
}


def _set_on_btc(name: str, field: str, value: Any) -> Callable[[Payload], tuple[int, Payload]]:
    """``field`` of BTC's entry (the one with the venue's size field) set to ``value``."""

    def rewrite(payload: Payload) -> tuple[int, Payload]:
        found = list(_btc_entries(payload, SIZE[name]))
        assert found, payload
        for entry in found:
            entry[field] = value
        return 200, payload

    return rewrite


@pytest.mark.parametrize("mcc", [1, 4])
@pytest.mark.parametrize("name", sorted(CONTRADICTIONS))
def test_a_side_field_that_contradicts_the_size_keeps_the_position(
    name: str, mcc: int, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, mcc, caplog) as book:
        for field, value in CONTRADICTIONS[name]:
            said = f"Position entry for {book.btc} is unusable"
            book.keeps_both_through(
                _set_on_btc(name, field, value), said, 2, case=f"{name} {field}={value!r}"
            )
            assert any(f"'{field}' is {value!r}" in w for w in book.warnings()), book.warnings()


@pytest.mark.parametrize("name", ["binanceusdm", "bybit", "okx"])
def test_hedge_mode_a_side_field_that_contradicts_the_leg_keeps_the_position(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    field, value = {
        "binanceusdm": ("notional", "-150.0"),
        "bybit": ("side", "Sell"),
        "okx": ("pos", "-3"),
    }[name]
    with tracking_hedge(name, caplog) as book:
        book.keeps_both_through(_set_btc(field, value), f"'{field}' is {value!r}", 2)


@pytest.mark.parametrize("name", ["binanceusdm", "bybit"])
def test_binance_and_bybit_legs_are_read_from_the_venues_fields(name: str) -> None:
    for hedge in (False, True):
        with running(DIALECTS[name](), hedge=hedge) as (venue, exchange):
            btc, eth = list(venue.ledger.markets.values())[:2]
            venue.ledger.open(btc.symbol, "long", 3 * btc.lot, btc.price)
            venue.ledger.open(eth.symbol, "short", 4 * eth.lot, eth.price)
            if hedge:
                venue.ledger.open(btc.symbol, "short", 2 * btc.lot, btc.price)
            listed = sorted(
                (p["symbol"], p["side"], p["contracts"], p["hedged"])
                for p in CcxtClient(exchange).get_open_positions()
            )
            expected = [
                (btc.symbol, "long", pytest.approx(3 * btc.lot), hedge),
                (eth.symbol, "short", pytest.approx(4 * eth.lot), hedge),
            ]
            if hedge:
                expected.insert(1, (btc.symbol, "short", pytest.approx(2 * btc.lot), True))
            assert listed == expected


def _long_leg(name: str, field: str, value: Any) -> Callable[[Payload], tuple[int, Payload]]:
    """The long leg's entry of BTC (the first open one) with ``field`` set to ``value``."""

    def rewrite(payload: Payload) -> tuple[int, Payload]:
        held, _ = answers.position_container(name, payload)
        assert held is not None
        first = next(e for e in held if answers.raw_size(name, e)[0] == "open")
        first[field] = value
        return 200, payload

    return rewrite


def _hedged_btc(name: str) -> Iterator[tuple[FakeVenue, Any, Any]]:
    with running(DIALECTS[name](), hedge=True) as (venue, exchange):
        btc = next(iter(venue.ledger.markets.values()))
        venue.ledger.open(btc.symbol, "long", 3 * btc.lot, btc.price)
        venue.ledger.open(btc.symbol, "short", 2 * btc.lot, btc.price)
        yield venue, exchange, btc


def _one_leg_as_a_copy_of_the_other(name: str) -> Callable[[Payload], tuple[int, Payload]]:
    """BTC's first open entry (one leg) replaced by an exact copy of its second (the other)."""

    def rewrite(payload: Payload) -> tuple[int, Payload]:
        held, _ = answers.position_container(name, payload)
        assert held is not None
        legs = [i for i, e in enumerate(held) if answers.raw_size(name, e)[0] == "open"]
        assert len(legs) == 2, payload
        held[legs[0]] = json.loads(json.dumps(held[legs[1]]))
        return 200, payload

    return rewrite


@pytest.mark.parametrize("name", [n for n in VENUES if DIALECTS[n]().has_hedge_mode])
def test_hedge_mode_a_leg_listed_as_a_copy_of_the_other_keeps_both(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hedge venue never lists one leg twice: a list showing one leg twice and the other
    not at all proves nothing about the other (it was removed as closed outside while the
    venue held it)."""
    caplog.set_level(logging.WARNING)
    for venue, exchange, btc in _hedged_btc(name):
        client = CcxtClient(exchange, sleep=lambda s: None)
        manager = PositionManager(client, ticker_retry_delays=(), position_mode="hedge")
        manager.sync_existing_positions()
        book = Book(venue, manager, caplog, f"{btc.symbol}@long", f"{btc.symbol}@short")
        book.cycle()
        assert sorted(manager.positions) == sorted([book.btc, book.eth])
        book.keeps_both_through(
            _one_leg_as_a_copy_of_the_other(name), f"entry for {btc.symbol} exactly", 2
        )


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [("okx", "posSide", None), ("bybit", "positionIdx", "abc"), ("bybit", "positionIdx", 3)],
)
def test_hedge_mode_an_unreadable_leg_does_not_block_the_close_of_the_other(
    name: str, field: str, value: Any
) -> None:
    for venue, exchange, btc in _hedged_btc(name):
        client = CcxtClient(exchange, sleep=lambda s: None, position_mode="hedge")
        venue.rewrite_positions_next(_long_leg(name, field, value), n=1000)
        with pytest.raises(ValueError, match="its entry cannot be read"):
            client.close_position(btc.symbol, side="long")  # might be that one
        with pytest.raises(ValueError, match="its entry cannot be read"):
            client.close_position(btc.symbol)  # names no leg
        assert venue.ledger.orders_sent() == []
        assert client.close_position(btc.symbol, side="short") is True
        assert venue.ledger.size(btc.symbol, "short") == 0
        assert venue.ledger.size(btc.symbol, "long") == pytest.approx(3 * btc.lot)


def test_hedge_mode_the_manager_closes_the_readable_leg(caplog: pytest.LogCaptureFixture) -> None:
    """The manager's stop-loss close of the short leg goes out while the long leg's entry
    cannot be read (the long leg is kept, nothing sent for it)."""
    caplog.set_level(logging.WARNING)
    for venue, exchange, btc in _hedged_btc("okx"):
        venue.ledger.remove(btc.symbol)
        client = CcxtClient(exchange, sleep=lambda s: None)
        manager = PositionManager(client, ticker_retry_delays=(), position_mode="hedge")
        assert manager.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02)
        assert manager.open_position(btc.symbol, "SELL", 2 * btc.lot, 5, 0.02)
        list(manager.update_positions())
        venue.rewrite_positions_next(_long_leg("okx", "posSide", None), n=1000)
        venue.ledger.prices[btc.symbol] = btc.price * 1.10  # the short leg's stop
        closed = [p[0] for p in manager.update_positions()]
        assert closed == [f"{btc.symbol}@short"]
        assert venue.ledger.size(btc.symbol, "short") == 0
        assert venue.ledger.size(btc.symbol, "long") == pytest.approx(3 * btc.lot)
        assert list(manager.positions) == [f"{btc.symbol}@long"]


def test_an_asyncio_client_closes_the_readable_leg_in_hedge_mode() -> None:
    import ccxt.async_support as ccxt_async

    from position_manager_rs.aio import AsyncCcxtClient

    async def main(venue: FakeVenue, btc: Any) -> None:
        exchange = venue.make_exchange(module=ccxt_async)
        try:
            client = AsyncCcxtClient(exchange, position_mode="hedge")
            venue.rewrite_positions_next(_long_leg("bybit", "positionIdx", "abc"), n=1000)
            with pytest.raises(ValueError, match="its entry cannot be read"):
                await asyncio.to_thread(client.close_position, btc.symbol, None, "long")
            assert await asyncio.to_thread(client.close_position, btc.symbol, None, "short")
        finally:
            await exchange.close()

    for venue, _, btc in _hedged_btc("bybit"):
        asyncio.run(asyncio.wait_for(main(venue, btc), timeout=20))
        assert venue.ledger.size(btc.symbol, "short") == 0
        assert venue.ledger.size(btc.symbol, "long") == pytest.approx(3 * btc.lot)


#: Venues whose ccxt fetch_positions parses each entry on its own (read entry by entry when
#: ccxt fails on one), and the others (the error names the entry).
ONE_BY_ONE = [
    "binanceusdm", "bingx", "bitget", "bybit", "gate", "htx", "hyperliquid", "mexc", "okx"
]  # fmt: skip


def _eth_size(name: str, value: str) -> Callable[[Payload], tuple[int, Payload]]:
    def rewrite(payload: Payload) -> tuple[int, Payload]:
        held, _ = answers.position_container(name, payload)
        assert held is not None
        (entry,) = [e for e in held if "ETH" in json.dumps(e)]
        target = entry["position"] if name == "hyperliquid" else entry
        target[SIZE[name]] = value
        return 200, payload

    return rewrite


@pytest.mark.parametrize("name", ONE_BY_ONE)
def test_an_entry_ccxt_cannot_parse_does_not_block_the_other_closes(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with tracking(name, 1, caplog) as book:
        for value in ("abc", "NaN", "1e400"):
            book.venue.rewrite_positions_next(_eth_size(name, value), n=1000)
            listed = book.manager.client.get_open_positions()
            book.venue.calm()
            (eth,) = [p for p in listed if p["symbol"] == book.eth]
            # ccxt fails on the entry (BingX, MEXC: reads it as a size it cannot use)
            assert f"'{SIZE[name]}' is {value!r}" in eth["unreadable"], eth
            assert [p["side"] for p in listed if p["symbol"] == book.btc] == ["long"]
        held = book.manager.positions[book.eth]
        book.venue.rewrite_positions_next(_eth_size(name, "abc"), n=1000)
        assert book.manager.close_position(book.btc)  # the stop-loss close goes out
        book.cycle()
        assert book.manager.positions.get(book.eth) is held
        assert book.venue.ledger.size(book.btc.split("@")[0], "long") == 0


@pytest.mark.parametrize("name", ["kucoinfutures"])
def test_an_entry_ccxt_cannot_parse_is_named(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with tracking(name, 1, caplog) as book:
        book.venue.rewrite_positions_next(_eth_size(name, "abc"), n=1)
        field = f"{name} '{SIZE[name]}' is 'abc'"
        with pytest.raises(ValueError, match=f"ccxt could not read {name}'s position list") as e:
            book.manager.client.get_open_positions()
        assert field in str(e.value) and "#1" in str(e.value)


# ----------------------------------------------------------------- pages (2026-12-07)


@contextmanager
def tracking_through(name: str, client: str, caplog: pytest.LogCaptureFixture) -> Iterator[Book]:
    """``tracking``, through ``client`` (``tests/venue_clients.py``: ``"sync"``, or
    ``"asyncio"``: ``AsyncCcxtClient`` on ccxt's asyncio class, the manager driven by its
    a-methods on a running loop)."""
    caplog.set_level(logging.WARNING)
    with connected(DIALECTS[name](), client, sleep=lambda s: None) as on:
        venue = on.venue
        btc, eth = list(venue.ledger.markets.values())[:2]
        venue.ledger.open(eth.symbol, "long", 4 * eth.lot, eth.price)
        manager = PositionManager(on.client, ticker_retry_delays=())
        drive = on.drive(manager)
        assert drive.open_position(btc.symbol, "BUY", 3 * btc.lot, 5, 0.02)
        drive.sync_existing_positions()
        book = Book(venue, manager, caplog, btc.symbol, eth.symbol, drive)
        book.cycle()
        assert sorted(manager.positions) == sorted([btc.symbol, eth.symbol])
        yield book
        assert venue.unexpected == [], [(r.method, r.path) for r in venue.unexpected]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("name", VENUES)
def test_a_page_answering_the_position_list_is_a_failed_read(
    name: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The position-list request answered with a page (``test_price_payloads.PAGES``: a 524
    gateway page, which ccxt's asyncio class returns as the answer; a body of no text type,
    aiohttp's ``StreamReader`` there; an HTML page with status 200) is a failed read through
    both clients: the cycles keep both tracked positions (the same objects, no event, no
    order), and a sync imports nothing and removes nothing (a list read as empty would remove
    both), each with a warning. No warning quotes the asyncio class's ``StreamReader`` by its
    repr (``<StreamReader eof low=...>``, before): it names a body that is not text."""
    from test_price_payloads import PAGES

    with tracking_through(name, client, caplog) as book:
        assert book.drive is not None
        for kind, page in PAGES.items():
            case = f"{name} {client} {kind}"

            def answer(payload: Payload, page: tuple[int, Payload] = page) -> tuple[int, Payload]:
                return page

            book.keeps_both_through(answer, "Unable to verify positions", 2, case=case)
            warnings = book.warnings()
            held = dict(book.manager.positions)
            seq = book.manager.events[-1]["seq"] if book.manager.events else 0
            caplog.clear()
            book.venue.rewrite_positions_next(answer, n=1000)
            try:
                assert book.drive.sync_existing_positions() == 0, case
            finally:
                book.venue.calm()
            assert dict(book.manager.positions) == held, case
            assert book.manager.events_since(seq) == [], case
            warnings += book.warnings()
            assert any("Error syncing existing positions" in w for w in warnings), (case, warnings)
            assert not any("<StreamReader" in w for w in warnings), (case, warnings)
            if client == "asyncio" and kind == "a body of no text type":
                said = "a body of a content type that is not text"
                assert any(said in w for w in warnings if "Unable to verify" in w), warnings
