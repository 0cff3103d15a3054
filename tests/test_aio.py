"""asyncio: ``AsyncCcxtClient`` on real ``ccxt.async_support`` classes and the manager's a-methods.

The exchanges are ccxt's asyncio classes (aiohttp) talking to the fake venues over loopback HTTP:
``fake_venue.FakeBinanceUsdm`` and ``venue_sim`` in KuCoin's dialect. Every test runs its event
loop under ``asyncio.wait_for`` and pytest-timeout: a hang fails.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, Callable

import ccxt  # type: ignore[import-untyped]
import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]
import pytest
from fake_venue import FakeBinanceUsdm
from venue_dialects import KuCoin
from venue_sim import FakeVenue, Ledger

from position_manager_rs import PaperExchange, PositionManager
from position_manager_rs.aio import AsyncCcxtClient
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(30)

BTC = "BTC/USDT:USDT"
POSITIONS = "/fapi/v3/positionRisk"


def run(body: Callable[[Any], Awaitable[None]], venue: FakeBinanceUsdm) -> None:
    """Runs ``body(exchange)`` on a fresh loop with an asyncio binanceusdm pointed at ``venue``."""

    async def main() -> None:
        exchange = ccxt_async.binanceusdm(
            {
                "apiKey": venue.api_key,
                "secret": venue.secret,
                "enableRateLimit": False,
                "timeout": 3000,
                "options": {"fetchCurrencies": False, "adjustForTimeDifference": False},
            }
        )
        venue.point(exchange)
        try:
            await asyncio.wait_for(body(exchange), timeout=20)
        finally:
            await exchange.close()

    asyncio.run(main())


@pytest.fixture
def venue() -> Any:
    with FakeBinanceUsdm() as venue:
        yield venue


def test_the_cycle_runs_off_the_loop_with_the_same_guarantees(venue: FakeBinanceUsdm) -> None:
    venue.open_position(BTC, "long", 0.01, 50000.0, leverage=10)

    async def body(exchange: Any) -> None:
        client = AsyncCcxtClient(exchange)
        manager = PositionManager(client)
        assert await manager.async_existing_positions() == 1
        position = manager.positions[BTC]

        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        venue.delay_next(POSITIONS, 0.3)  # a slow venue: the loop keeps serving meanwhile
        assert [item async for item in manager.aupdate_positions()] == []
        beat.cancel()
        assert ticks >= 5
        assert manager.positions[BTC] is position

        venue.fail_next(POSITIONS, status=429)  # an error removes nothing
        assert [item async for item in manager.aupdate_positions()] == []
        assert manager.positions[BTC] is position

        venue.remove_position(BTC)  # closed on the venue
        assert [item async for item in manager.aupdate_positions()] == []
        assert BTC not in manager.positions
        assert manager.events[-1]["reason"] == "closed_externally"

    run(body, venue)


def test_open_and_close_round_trip(venue: FakeBinanceUsdm) -> None:
    async def body(exchange: Any) -> None:
        manager = PositionManager(AsyncCcxtClient(exchange))
        assert await manager.aopen_position(BTC, "BUY", 0.02, 5, 0.02) is True
        assert venue.position_size(BTC) == 0.02
        assert venue.leverage["BTCUSDT"] == 5
        assert isinstance(await manager.ascale_out_position(BTC, 0.01), float)  # its P/L
        assert venue.position_size(BTC) == pytest.approx(0.01)
        pnl = await manager.aclose_position(BTC)
        assert isinstance(pnl, float)
        assert venue.position_size(BTC) == 0.0 and BTC not in manager.positions
        assert await manager.areconcile_positions() == 0

    run(body, venue)


def test_a_sized_close_reads_the_amount_step_through_the_loop(venue: FakeBinanceUsdm) -> None:
    # contracts= (the manager's size, below a list that lags it) is rounded to the market's
    # step, which the client reads from the markets through the loop bridge.
    async def body(exchange: Any) -> None:
        client = AsyncCcxtClient(exchange)
        assert client.sized_closes is True
        venue.open_position(BTC, "long", 0.03, 49000.0)
        assert await asyncio.to_thread(client.close_position, BTC, contracts=0.03 - 0.01) is True
        assert venue.position_size(BTC) == pytest.approx(0.01)

    run(body, venue)


def test_the_async_iterator_is_lazy_and_yields_closes_one_at_a_time(
    venue: FakeBinanceUsdm,
) -> None:
    venue.open_position(BTC, "long", 0.01, 50000.0, leverage=10)

    async def body(exchange: Any) -> None:
        manager = PositionManager(AsyncCcxtClient(exchange))
        await manager.async_existing_positions()
        manager.positions[BTC].stop_loss = 50500.0  # above the price: the cycle closes it
        before = len(venue.requests_to(POSITIONS))
        cycle = manager.aupdate_positions()
        await asyncio.sleep(0.05)
        assert len(venue.requests_to(POSITIONS)) == before  # nothing before the first step
        closed = [item async for item in cycle]
        assert [(symbol, type(pnl)) for symbol, pnl, _ in closed] == [(BTC, float)]
        assert venue.position_size(BTC) == 0.0

    run(body, venue)


def test_a_close_made_after_its_await_was_cancelled_reaches_the_next_cycle(
    venue: FakeBinanceUsdm,
) -> None:
    """The bot bounds its cycle with ``asyncio.wait_for``; the stop-loss close is answered late,
    after the bound. The close order in flight answers in its worker thread (a step given up
    stops at its next client call, not inside one), the close goes through, and the next
    ``aupdate_positions()`` yields it first: the bot's loop body sees every close. (Before,
    the cancelled await dropped it: the position was closed and booked, and no cycle ever
    yielded it.)"""
    venue.open_position(BTC, "long", 0.01, 50000.0, leverage=10)

    async def body(exchange: Any) -> None:
        manager = PositionManager(AsyncCcxtClient(exchange))
        await manager.async_existing_positions()
        manager.positions[BTC].stop_loss = 50500.0  # above the price: the cycle closes it
        venue.delay_next("/fapi/v1/order", 1.0)

        async def cycle() -> list[str]:
            return [symbol async for symbol, _, _ in manager.aupdate_positions()]

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cycle(), timeout=0.3)
        await asyncio.sleep(1.5)  # the step finishes in its thread: the order went through
        assert venue.position_size(BTC) == 0.0
        assert not manager.has_position(BTC)
        assert await cycle() == [BTC], "delivered by the next cycle"
        assert await cycle() == [], "once"
        assert [e["kind"] for e in manager.events].count("closed") == 1

    run(body, venue)


def test_a_step_its_task_gave_up_before_it_started_does_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The manager calls' threads are all busy when a cycle is asked for (here: one thread);
    the bot gives up on the cycle before its step could start: the step never runs (no read of
    the positions), and the next cycle runs as usual."""
    import position_manager_rs.aio as aio

    monkeypatch.setattr(aio, "_MAX_WORKERS", 1)
    paper = PaperExchange(seed=1, volatility=0.0)
    manager = PositionManager(paper, clock=paper.clock, ticker_retry_delays=())
    assert manager.open_position(BTC, "BUY", 1, 10, 0.05)
    release = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = loop.run_in_executor(aio._executor(loop), release.wait, 10)
        reads = len(paper.calls_of("get_open_positions"))

        async def cycle() -> list[str]:
            return [symbol async for symbol, _, _ in manager.aupdate_positions()]

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cycle(), timeout=0.2)
        release.set()
        await busy
        await asyncio.sleep(0.1)
        assert len(paper.calls_of("get_open_positions")) == reads, "the step never ran"
        assert await cycle() == []
        assert len(paper.calls_of("get_open_positions")) > reads

    asyncio.run(asyncio.wait_for(main(), timeout=20))


def test_manager_calls_leave_the_loops_default_executor_to_host_name_lookups(
    venue: FakeBinanceUsdm,
) -> None:
    """aiohttp looks host names up in the loop's default executor (``loop.getaddrinfo``). The
    a-methods wait for the loop in threads of their own, so even a loop whose default executor
    has one thread reaches a venue named ``localhost``. (They ran in that default executor:
    with its threads taken by manager calls waiting for the loop, a look-up waited for a thread
    that waited for it, until ccxt's timeout; here the one sync found nothing.)"""
    from urllib.parse import urlsplit

    venue.open_position(BTC, "long", 0.01, 50000.0, leverage=10)

    async def body(exchange: Any) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        by_name = venue.base_url.replace("127.0.0.1", "localhost")
        exchange.urls = {
            **exchange.urls,
            "api": {k: by_name + urlsplit(v).path for k, v in exchange.urls["api"].items()},
        }
        manager = PositionManager(AsyncCcxtClient(exchange))
        assert await manager.async_existing_positions() == 1
        assert BTC in manager.positions

    run(body, venue)


def test_a_sync_call_on_the_loop_thread_raises_instead_of_hanging(
    venue: FakeBinanceUsdm,
) -> None:
    async def body(exchange: Any) -> None:
        client = AsyncCcxtClient(exchange)
        with pytest.raises(RuntimeError, match="event loop's own thread"):
            client.get_open_positions()
        assert await asyncio.to_thread(client.get_open_positions) == []

    run(body, venue)


def test_a_sync_call_on_the_loop_thread_raises_while_a_worker_loads_the_markets(
    venue: FakeBinanceUsdm,
) -> None:
    """A worker thread loads the markets (the client's markets lock held, the load waiting for
    the loop) when the bot makes a synchronous call on the loop's thread: it raises at once, and
    the worker's read goes through. (Before, the mistaken call waited on the markets lock,
    blocking the loop: the load could not run, the worker's read timed out after
    ``call_timeout`` and only then did the loop-thread call raise.)"""

    async def body(exchange: Any) -> None:
        client = AsyncCcxtClient(exchange, call_timeout=3.0)
        venue.delay_next("/fapi/v1/exchangeInfo", 0.5)
        worker = asyncio.ensure_future(asyncio.to_thread(client.get_ticker, BTC))
        while not client._markets_lock.locked():
            await asyncio.sleep(0.005)
        with pytest.raises(RuntimeError, match="event loop's own thread"):
            client.get_ticker(BTC)
        ticker = await worker
        assert ticker is not None and ticker["last"] == 50000.0

    run(body, venue)


def test_a_call_that_outlives_call_timeout_is_an_unknown_outcome(
    venue: FakeBinanceUsdm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="TradingBot")

    async def body(exchange: Any) -> None:
        client = AsyncCcxtClient(exchange, call_timeout=0.3)
        await asyncio.to_thread(client.get_market_limits, BTC)
        venue.delay_next("/fapi/v1/order", 1.0)
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(client.create_market_order, BTC, "buy", 0.01)

    run(body, venue)


def test_batched_prices_and_concurrent_candles_through_the_loop(venue: FakeBinanceUsdm) -> None:
    symbols = [BTC, "ETH/USDT:USDT", "SOL/USDT:USDT"]
    for symbol in symbols:
        venue.open_position(symbol, "long", 1.0)

    async def body(exchange: Any) -> None:
        manager = PositionManager(AsyncCcxtClient(exchange), max_concurrent_calls=3)
        assert await manager.async_existing_positions() == len(symbols)
        before = len(venue.requests_to("/fapi/v1/ticker/24hr"))
        assert [item async for item in manager.aupdate_positions()] == []
        tickers = venue.requests_to("/fapi/v1/ticker/24hr")[before:]
        assert [r.params.get("symbol") for r in tickers] == [None]  # one request, every price
        assert len(venue.requests_to("/fapi/v1/klines")) == len(symbols)

    run(body, venue)


def test_construction_is_checked() -> None:
    with pytest.raises(TypeError, match="use CcxtClient"):
        AsyncCcxtClient(ccxt.binanceusdm())
    with pytest.raises(TypeError, match="no running event loop"):
        AsyncCcxtClient(ccxt_async.binanceusdm())
    with pytest.raises(TypeError, match="AsyncCcxtClient"):
        CcxtClient(ccxt_async.binanceusdm())


def test_the_manager_methods_are_coroutines_and_an_async_iterator() -> None:
    for name in (
        "aopen_position",
        "aclose_position",
        "ascale_in_position",
        "ascale_out_position",
        "async_existing_positions",
        "areconcile_positions",
    ):
        assert inspect.iscoroutinefunction(getattr(PositionManager, name)), name
    assert inspect.isasyncgenfunction(PositionManager.aupdate_positions)


def test_kucoin_futures_async_round_trip_in_hedge_mode() -> None:
    """The bot's venue through ccxt.async_support: both legs, a close that takes one."""

    async def main(venue: FakeVenue) -> None:
        exchange = venue.make_exchange(module=ccxt_async)
        try:
            client = AsyncCcxtClient(exchange)
            positions = await asyncio.to_thread(client.get_open_positions)
            assert sorted((p["side"], p["contracts"], p["hedged"]) for p in positions) == [
                ("long", 5.0, True),
                ("short", 3.0, True),
            ]
            assert await asyncio.to_thread(client.close_position, BTC, None, "long") is True
            assert venue.ledger.size(BTC, "long") == 0
            assert venue.ledger.size(BTC, "short") == 3.0
        finally:
            await exchange.close()

    dialect = KuCoin()
    with FakeVenue(dialect, Ledger(dialect.markets, hedge=True)) as venue:
        venue.ledger.open(BTC, "long", 5, 50000.0)
        venue.ledger.open(BTC, "short", 3, 50000.0)
        asyncio.run(asyncio.wait_for(main(venue), timeout=20))
        assert venue.unexpected == []


@pytest.mark.timeout(300)
def test_the_async_cycle_types_as_an_async_generator(tmp_path: Path) -> None:
    """A bot ends a cycle early with ``aclose()`` (the counterpart of ``close()``): the stub types
    ``aupdate_positions()`` as the async generator it is. (It said ``AsyncIterator``, which has
    no ``aclose``: mypy refused correct code.)"""
    from test_stubs import mypy_errors

    code = """\
        import contextlib

        from position_manager_rs import PositionManager


        async def bot(manager: PositionManager) -> None:
            cycle = manager.aupdate_positions()
            async for symbol, pnl, position in cycle:
                break
            await cycle.aclose()
        """
    aclosing = """\
            async with contextlib.aclosing(manager.aupdate_positions()) as c:
                async for item in c:
                    break
        """
    if sys.version_info >= (3, 10):  # contextlib.aclosing is new in 3.10 (mypy checks for 3.9)
        code = code.rstrip(" ") + aclosing
    errors = mypy_errors(tmp_path, code)
    assert errors == []


@pytest.mark.parametrize("name", ["bybit", "bingx", "mexc", "htx", "gate"])
def test_venue_specific_calls_run_through_the_loop(name: str) -> None:
    """The client's own venue calls (Bybit orderLinkId and order history, BingX and MEXC
    client-id look-ups, HTX's position mode, Gate's list of finished orders) are coroutines of
    the asyncio exchange too, bridged like ccxt's unified methods: a flat hedge account's first
    order names its leg, its client id is found again."""
    from venue_dialects import DIALECTS, Bybit

    async def main(venue: FakeVenue) -> None:
        exchange = venue.make_exchange(module=ccxt_async)
        try:
            dialect = venue.dialect
            mode = "auto" if dialect.mode_readable_when_flat else "hedge"
            client = AsyncCcxtClient(exchange, position_mode=mode)
            m = next(iter(venue.ledger.markets.values()))
            order = await asyncio.to_thread(
                client.create_market_order, m.symbol, "buy", 2 * m.lot, 5, False, False, "pma1"
            )
            assert order is not None and order["clientOrderId"] == "pma1"
            assert venue.ledger.size(m.symbol, "long") == pytest.approx(2 * m.lot)
            found = await asyncio.to_thread(client.get_order_by_client_id, "pma1", m.symbol)
            assert found is not None and found["id"] == order["id"]
            if isinstance(dialect, Bybit):  # its realtime list forgets closed orders...
                dialect.restart_service(venue)
                found = await asyncio.to_thread(client.get_order_by_client_id, "pma1", m.symbol)
                assert found is not None and found["id"] == order["id"]  # ... not its history
            if dialect.client_id_window is not None:
                dialect.client_id_window = 0.0  # Gate: no longer found by its id...
                other = AsyncCcxtClient(exchange, position_mode=mode)
                found = await asyncio.to_thread(other.get_order_by_client_id, "pma1", m.symbol)
                assert found is not None and found["id"] == order["id"]  # ... but in the list
                assert found["clientOrderId"] == "pma1"
        finally:
            await exchange.close()

    dialect = DIALECTS[name]()
    with FakeVenue(dialect, Ledger(dialect.markets, hedge=True)) as venue:
        asyncio.run(asyncio.wait_for(main(venue), timeout=20))
        assert venue.unexpected == []


# --------------------------------------------------------------- steps whose task was cancelled


def _tracked_fake(*symbols: str, **options: Any) -> tuple[Any, PositionManager]:
    """``helpers_clients.FakeExchange`` holding ``symbols``, tracked at entry 100, stop 95."""
    from helpers_clients import FakeExchange, make_manager, make_position

    exchange = FakeExchange()
    pm = make_manager(exchange, **options)
    for symbol in symbols:
        exchange.open(symbol, contracts=1.0)
        pm.positions[symbol] = make_position(symbol, amount=1.0, entry_price=100.0, stop_loss=95.0)
    return exchange, pm


async def _kept_for(pm: PositionManager, n: int) -> None:
    """Waits until ``n`` things are kept for ``pm``'s next cycle (steps whose task was cancelled
    returned)."""
    import position_manager_rs.aio as aio

    while len(aio._UNDELIVERED.get(pm, [])) < n:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("how", ["break", "raise", "cancel"])
def test_closes_kept_from_cancelled_steps_each_reach_a_loop_body(how: str) -> None:
    """Two cycles bounded by ``asyncio.wait_for`` are cancelled while their stop-loss closes are
    answered late: both closes are kept. The next cycle yields the first and the bot leaves its
    loop body (``break``, an exception, a cancel): the second is yielded by a later cycle.
    (Before, the next cycle took both out at once, and the second was never yielded.)"""
    eth = "ETH/USDT:USDT"
    exchange, pm = _tracked_fake(BTC, eth)
    exchange.set_price(BTC, 90.0)  # below the stop: both close
    exchange.set_price(eth, 90.0)

    def slow_close(symbol: str) -> bool:
        time.sleep(0.5)  # answered after the cycle's bound
        exchange.drop(symbol)
        return True

    exchange.on_close_position = slow_close

    async def cycle() -> list[str]:
        return [symbol async for symbol, _, _ in pm.aupdate_positions()]

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(cycle(), timeout=0.15)
        await _kept_for(pm, 2)
        seen: list[str] = []

        async def body() -> None:
            async for symbol, _, _ in pm.aupdate_positions():
                seen.append(symbol)
                if how == "break":
                    break
                if how == "raise":
                    raise RuntimeError("the bot's loop body failed")
                await asyncio.sleep(5)  # "cancel": the bound below fires meanwhile

        with pytest.raises((RuntimeError, asyncio.TimeoutError)) if how != "break" else _nothing():
            await asyncio.wait_for(body(), timeout=0.3)
        seen += await cycle()
        seen += await cycle()
        assert sorted(seen) == sorted([BTC, eth]), "each close reaches a loop body, once"

    asyncio.run(asyncio.wait_for(main(), timeout=20))
    assert [e["kind"] for e in pm.events].count("closed") == 2


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def test_a_cancelled_step_sends_nothing_more() -> None:
    """The bot's task is cancelled (a Ctrl+C under ``asyncio.run``, a ``wait_for`` bound) while a
    step reads position after position: the step stops at its next client call, as a
    synchronous cycle stops at a Ctrl+C — no further read, and no close for the position below
    its stop further down the book. (Before, the step read every remaining position in its
    thread and sent that close about 5 s after the cancel.) The next cycle closes it."""
    from position_manager_rs import Position

    symbols = [f"C{i}/USDT:USDT" for i in range(12)]
    reads: list[str] = []
    closes: list[str] = []
    slow = threading.Event()
    slow.set()

    class Client:
        def get_open_positions(self) -> list[dict[str, Any]]:
            return [
                {"symbol": s, "side": "long", "contracts": 1.0, "entryPrice": 100.0}
                for s in symbols
                if s not in closes
            ]

        def get_ticker(self, symbol: str) -> dict[str, Any]:
            reads.append(symbol)
            if slow.is_set():
                time.sleep(0.1)
            return {"symbol": symbol, "last": 90.0 if symbol == symbols[-1] else 100.0}

        def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
            return []

        def close_position(self, symbol: str) -> bool:
            closes.append(symbol)
            return True

    manager = PositionManager(Client(), 0.02, ticker_retry_delays=())
    for s in symbols:
        manager.positions[s] = Position(s, "long", 100.0, 1.0, 10, 95.0, 200.0)

    async def cycle() -> list[str]:
        return [symbol async for symbol, _, _ in manager.aupdate_positions()]

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cycle(), timeout=0.25)
        await asyncio.sleep(0.5)  # the step's read in flight answers; nothing after it
        assert 2 <= len(reads) <= 4, reads
        assert closes == []
        assert manager.get_open_positions_count() == len(symbols)
        slow.clear()
        assert await asyncio.wait_for(cycle(), timeout=10) == [symbols[-1]]
        assert closes == [symbols[-1]]

    asyncio.run(main())
