"""Port of ``test_position_manager_thread_safety`` from the bot's ``test_thread_safety.py``.

The original built a ``PositionManager`` around a plain-class client (no ``Mock``) and only
printed that the lock existed. Here that construction is checked, and the manager is then actually
used from several threads at once — writers mutating ``positions``, readers iterating it and
calling the accessors, and an update cycle running — with a timeout, so a deadlock is a failure
rather than a hung run. (``test_market_scanner_thread_safety`` is about the bot's scanner and is not
ported.)
"""

from __future__ import annotations

import threading

import pytest

from position_manager_rs import Position, PositionManager


class MockClient:
    """The original test's client: a plain class with just these two methods."""

    def get_ticker(self, symbol):
        return {"last": 100.0}

    def get_open_positions(self):
        return []


N_WRITERS = 3
SYMBOLS_PER_WRITER = 5
WRITER_ROUNDS = 1000
JOIN_TIMEOUT = 30.0


def _symbol(writer: int, k: int) -> str:
    return f"W{writer}K{k}/USDT:USDT"


ALL_SYMBOLS = [_symbol(w, k) for w in range(N_WRITERS) for k in range(SYMBOLS_PER_WRITER)]


class BusyExchangeClient(MockClient):
    """Reports every symbol the writers use as open, so the cleanup never removes them; flat
    price (the entry price), so no exit rule ever closes one."""

    def get_open_positions(self):
        return [
            {"symbol": s, "side": "long", "contracts": 1.0, "leverage": 10} for s in ALL_SYMBOLS
        ]

    def get_ohlcv(self, symbol, timeframe="1h", limit=100):
        return []


def _flat_long(symbol: str) -> Position:
    return Position(symbol, "long", 100.0, 1.0, 10, 95.0, 110.0)


def test_position_manager_thread_safety():
    """Construction with a plain-class client, as the original; an update cycle works with it."""
    client = MockClient()
    pm = PositionManager(client)

    assert pm.client is client
    assert pm.trailing_stop_percentage == 0.02
    assert hasattr(pm, "_positions_lock")
    assert len(pm.positions) == 0

    pm.positions["BTC/USDT:USDT"] = _flat_long("BTC/USDT:USDT")
    assert list(pm.update_positions()) == []
    assert len(pm.positions) == 0  # the exchange reported no positions


@pytest.mark.timeout(90)
def test_position_manager_thread_safety_under_concurrent_use():
    """Writers, readers and update cycles in parallel: nothing raises, nothing hangs, and the
    book ends up exactly as the writers left it."""
    pm = PositionManager(BusyExchangeClient(), ticker_retry_delays=(0, 0))
    errors: list[BaseException] = []
    writers_done = threading.Event()
    passes = {"reader": 0, "updater": 0}
    start = threading.Barrier(N_WRITERS + 3)

    def guarded(fn):
        def run():
            try:
                start.wait(timeout=JOIN_TIMEOUT)
                fn()
            except BaseException as exc:  # collected and re-raised in the main thread
                errors.append(exc)

        return run

    def writer(w: int):
        def work():
            mine = [_symbol(w, k) for k in range(SYMBOLS_PER_WRITER)]
            for i in range(WRITER_ROUNDS):
                symbol = mine[i % SYMBOLS_PER_WRITER]
                pm.positions[symbol] = _flat_long(symbol)
                if i % 3 == 0:
                    pm.positions.pop(symbol, None)
                elif i % 3 == 1:
                    tracked = pm.positions.get(symbol)
                    if tracked is not None:
                        tracked.stop_loss = 95.0  # a field write through the live object
            for symbol in mine:  # leave all of this writer's symbols tracked
                pm.positions[symbol] = _flat_long(symbol)

        return work

    def reader():
        while True:  # at least one pass, then until the writers are done
            for symbol in pm.positions:  # iterating while others mutate must not raise
                pm.positions.get(symbol)
            list(pm.positions.items())
            pm.get_all_positions()
            pm.get_open_positions_count()
            pm.has_position(ALL_SYMBOLS[0])
            pm.get_position(ALL_SYMBOLS[-1])
            passes["reader"] += 1
            if writers_done.is_set():
                break

    def updater():
        while True:
            assert list(pm.update_positions()) == []
            passes["updater"] += 1
            if writers_done.is_set():
                break

    writer_threads = [
        threading.Thread(target=guarded(writer(w)), daemon=True) for w in range(N_WRITERS)
    ]
    other_threads = [
        threading.Thread(target=guarded(reader), daemon=True),
        threading.Thread(target=guarded(reader), daemon=True),
        threading.Thread(target=guarded(updater), daemon=True),
    ]
    for t in writer_threads + other_threads:
        t.start()
    for t in writer_threads:
        t.join(timeout=JOIN_TIMEOUT)
    writers_done.set()
    for t in other_threads:
        t.join(timeout=JOIN_TIMEOUT)

    stuck = [t for t in writer_threads + other_threads if t.is_alive()]
    assert not stuck, f"{len(stuck)} thread(s) still running after {JOIN_TIMEOUT}s (deadlock?)"
    if errors:
        raise errors[0]
    assert passes["reader"] >= 2
    assert passes["updater"] >= 1

    assert sorted(pm.positions.keys()) == sorted(ALL_SYMBOLS)
    assert pm.get_open_positions_count() == len(ALL_SYMBOLS)
    # A final cycle on the settled book closes nothing and keeps everything.
    assert list(pm.update_positions()) == []
    assert len(pm.positions) == len(ALL_SYMBOLS)
